// The capture check's frame timeline: one thin bar per frame kept, placed at its time in the clip. A bar's
// height is the frame's sharpness; its colour says blurred, or not placed in 3D by structure from motion; the
// share of it painted from the top is what was left out as moving. A problem's frames stand out when the
// problem is hovered or picked.

import type { JSX } from "preact";
import { useState } from "preact/hooks";

import type { CaptureFrame } from "../api/types";

/** Under this relative sharpness a frame is blurred (capture_check.BLUR_RELATIVE). */
export const BLURRED_BELOW = 0.35;
/** A bar is full height at this relative sharpness (the clip's median is 1). */
const FULL_HEIGHT_SHARPNESS = 1.2;
/** A moving share under this is not worth painting (capture_check.MOVING_FRAME is 0.03). */
const MOVING_SHOWN_FROM = 0.01;

type Placed = "yes" | "no" | "unknown";

function placedOf(frame: CaptureFrame): Placed {
  return frame.registered === null ? "unknown" : frame.registered ? "yes" : "no";
}

const PLACED_TEXT: Record<Placed, string> = {
  yes: "placed in 3D",
  no: "not placed in 3D",
  unknown: "not placed yet (camera poses come next)",
};

/** "12.4 s · sharpness 0.21 (blurred) · not placed in 3D · 15% moving" */
export function frameText(frame: CaptureFrame): string {
  const parts = [
    `Frame ${frame.index} at ${frame.time_s.toFixed(1)} s`,
    `sharpness ${frame.sharpness.toFixed(2)}${frame.sharpness < BLURRED_BELOW ? " (blurred)" : ""}`,
    PLACED_TEXT[placedOf(frame)],
  ];
  if (frame.moving_fraction >= MOVING_SHOWN_FROM) parts.push(`${Math.round(100 * frame.moving_fraction)}% moving, left out`);
  return parts.join(" · ");
}

function FrameBar({ frame, left, width, highlighted, inspected }: {
  frame: CaptureFrame;
  left: number;
  width: number;
  /** null: no problem is picked, every bar looks normal. */
  highlighted: boolean | null;
  inspected: boolean;
}): JSX.Element {
  const blurred = frame.sharpness < BLURRED_BELOW;
  const height = Math.max(0.12, Math.min(1, frame.sharpness / FULL_HEIGHT_SHARPNESS));
  const moving = frame.moving_fraction >= MOVING_SHOWN_FROM ? Math.min(1, frame.moving_fraction) : 0;
  return (
    <span
      class="frame-bar"
      data-frame={frame.index}
      data-sharp={blurred ? "blurred" : "sharp"}
      data-placed={placedOf(frame)}
      data-moving={frame.moving_fraction}
      data-highlighted={highlighted === null ? undefined : String(highlighted)}
      data-inspected={inspected ? "true" : undefined}
      title={frameText(frame)}
      style={{ left: `${left}%`, width: `${width}%` }}
    >
      <span class="frame-body" style={{ height: `${(100 * height).toFixed(1)}%` }}>
        {moving > 0 && <span class="frame-moving" style={{ height: `${(100 * moving).toFixed(1)}%` }} />}
      </span>
    </span>
  );
}

function nearestFrame(frames: readonly CaptureFrame[], distance: (f: CaptureFrame) => number): CaptureFrame {
  return frames.reduce((best, f) => (distance(f) < distance(best) ? f : best));
}

/** What the bars say in one sentence, for screen readers (the bars themselves are a picture). */
function timelineSummary(frames: readonly CaptureFrame[], duration: number): string {
  const blurred = frames.filter((f) => f.sharpness < BLURRED_BELOW).length;
  const unplaced = frames.filter((f) => f.registered === false).length;
  const moving = frames.filter((f) => f.moving_fraction >= 0.03).length;
  const parts = [`${frames.length} frames over ${duration.toFixed(1)} s`, `${blurred} blurred`];
  if (frames.some((f) => f.registered !== null)) parts.push(`${unplaced} not placed in 3D`);
  parts.push(`${moving} with something moving`);
  return `Frame timeline: ${parts.join(", ")}.`;
}

function TimelineLegend({ placement }: { placement: boolean }): JSX.Element {
  return (
    <ul class="timeline-legend">
      <li><span class="swatch swatch-sharp" aria-hidden="true" />Sharp</li>
      <li><span class="swatch swatch-blurred" aria-hidden="true" />Blurred</li>
      {placement && <li><span class="swatch swatch-unplaced" aria-hidden="true" />Not placed in 3D</li>}
      <li><span class="swatch swatch-moving" aria-hidden="true" />Moving, left out (share of the frame)</li>
      <li class="muted">Bar height: sharpness</li>
    </ul>
  );
}

/** The timeline of `frames` (in time order); `highlighted`: the frames of the problem picked, if any. */
export function FrameTimeline({ frames, highlighted }: {
  frames: readonly CaptureFrame[];
  highlighted: ReadonlySet<number> | null;
}): JSX.Element | null {
  const [inspectedIndex, setInspected] = useState<number | null>(null);
  if (frames.length === 0) return null;
  const inspected = frames.find((f) => f.index === inspectedIndex) ?? null;
  const start = frames[0]!.time_s;
  const duration = Math.max(0, frames[frames.length - 1]!.time_s - start);
  // Thin bars with a gap between them; a few frames still get bars narrow enough to read as a timeline.
  const width = Math.min(2, 70 / frames.length);
  const place = (t: number): number => (duration > 0 ? ((t - start) / duration) * (100 - width) : 50 - width / 2);
  // The bars are too thin to aim at on a phone: pointing anywhere on the track reads the nearest frame.
  const inspectAt = (e: PointerEvent): void => {
    const box = (e.currentTarget as HTMLElement).getBoundingClientRect();
    const at = box.width > 0 ? ((e.clientX - box.left) / box.width) * 100 : 0;
    setInspected(nearestFrame(frames, (f) => Math.abs(place(f.time_s) + width / 2 - at)).index);
  };
  return (
    <figure class="timeline" data-testid="frame-timeline">
      <div class="timeline-track" role="img" aria-label={timelineSummary(frames, duration)}
        data-highlighting={highlighted ? "true" : "false"} onPointerMove={inspectAt} onPointerDown={inspectAt}>
        {frames.map((f) => (
          <FrameBar key={f.index} frame={f} left={place(f.time_s)} width={width}
            highlighted={highlighted ? highlighted.has(f.index) : null} inspected={f.index === inspectedIndex} />
        ))}
      </div>
      <div class="timeline-axis" aria-hidden="true">
        <span>{start.toFixed(1)} s</span>
        <span>{(start + duration).toFixed(1)} s</span>
      </div>
      <figcaption class="timeline-readout muted">
        {inspected ? frameText(inspected) : "Point at or tap a bar to read its frame."}
      </figcaption>
      <TimelineLegend placement={frames.some((f) => f.registered !== null)} />
    </figure>
  );
}
