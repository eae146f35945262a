// The scene's quality numbers (held-out PSNR, SSIM, gaussian count, training time per saved iteration), read
// from GET /user/scene/metrics while the scene is processed and once it is done, with a small PSNR chart; and
// the latest of them on a scene card.

import type { JSX } from "preact";
import { useId, useState } from "preact/hooks";

import type { SceneState } from "../api/types";
import { ApiError } from "../api/client";
import { formatDuration } from "../format";
import type { IterationQuality, SceneMetrics } from "../metrics";
import { formatCount, formatPsnr, qualityByIteration, sceneMetrics } from "../metrics";
import { usePolling } from "../polling";

const METRICS_POLL_MS = 5000;

/** The scene's metrics: polled while it is queued or processing, read once when it is finished. */
function useMetrics(id: string, state: SceneState | null): SceneMetrics | null {
  const [metrics, setMetrics] = useState<SceneMetrics | null>(null);
  const live = state === "queued" || state === "processing";
  usePolling(
    async (signal) => {
      if (state === null) return false;
      try {
        setMetrics(await sceneMetrics(id, signal));
      } catch (err) {
        if (err instanceof ApiError && err.status === 404) return false; // deleted, or an older server
        throw err;
      }
      return live;
    },
    METRICS_POLL_MS,
    [id, state],
  );
  return metrics;
}

const CHART = { width: 320, height: 120, left: 48, right: 10, top: 10, bottom: 24 };

/** PSNR by iteration as a line with a dot per saved iteration (plain SVG; a single point is just a dot). */
export function PsnrChart({ points }: { points: [number, IterationQuality][] }): JSX.Element {
  const { width, height, left, right, top, bottom } = CHART;
  const iterations = points.map(([it]) => it);
  const values = points.map(([, q]) => q.psnr);
  const [lo, hi] = [Math.min(...values), Math.max(...values)];
  const pad = Math.max(0.5, (hi - lo) * 0.1);
  const [yMin, yMax] = [Math.floor(lo - pad), Math.ceil(hi + pad)];
  const xMax = Math.max(...iterations);
  const x = (it: number): number => left + (xMax > 0 ? (it / xMax) * (width - left - right) : 0);
  const y = (db: number): number => top + ((yMax - db) / (yMax - yMin)) * (height - top - bottom);
  const line = points.map(([it, q]) => `${x(it).toFixed(1)},${y(q.psnr).toFixed(1)}`).join(" ");
  const summary = points.map(([it, q]) => `iteration ${formatCount(it)}: ${formatPsnr(q.psnr)}`).join(", ");
  return (
    <svg class="psnr-chart" viewBox={`0 0 ${width} ${height}`} role="img" data-testid="psnr-chart"
      aria-label={`Held-out PSNR by iteration: ${summary}`}>
      <line class="axis" x1={left} y1={height - bottom} x2={width - right} y2={height - bottom} />
      <line class="axis" x1={left} y1={top} x2={left} y2={height - bottom} />
      <text class="tick" x={left - 4} y={y(yMax) + 4} text-anchor="end">{`${yMax} dB`}</text>
      <text class="tick" x={left - 4} y={y(yMin)} text-anchor="end">{yMin}</text>
      <text class="tick" x={left} y={height - 6} text-anchor="start">0</text>
      <text class="tick" x={width - right} y={height - 6} text-anchor="end">{formatCount(xMax)}</text>
      <text class="tick" x={(left + width - right) / 2} y={height - 6} text-anchor="middle">iteration</text>
      {points.length > 1 && <polyline class="series" points={line} />}
      {points.map(([it, q]) => (
        <circle class="dot" key={it} cx={x(it)} cy={y(q.psnr)} r={3.5} data-iteration={it} data-psnr={q.psnr}>
          <title>{`Iteration ${formatCount(it)}: ${formatPsnr(q.psnr)}`}</title>
        </circle>
      ))}
    </svg>
  );
}

/** The scene page's quality panel: nothing until the first saved iteration has been measured. */
export function MetricsPanel({ id, state }: { id: string; state: SceneState | null }): JSX.Element | null {
  const metrics = useMetrics(id, state);
  const headingId = useId();
  const rows = metrics ? qualityByIteration(metrics) : [];
  if (rows.length === 0) {
    if (state !== "processing") return null;
    return (
      <section class="metrics card" aria-labelledby={headingId} data-testid="metrics">
        <h2 id={headingId}>Quality</h2>
        <p class="muted">Quality numbers appear here as each saved iteration is measured.</p>
      </section>
    );
  }
  const heldout = rows.every(([, q]) => q.heldout);
  const [, last] = rows[rows.length - 1]!;
  return (
    <section class="metrics card" aria-labelledby={headingId} data-testid="metrics">
      <div class="section-head">
        <h2 id={headingId}>Quality</h2>
      </div>
      <p class="muted">
        {heldout ? "Measured on frames held out from training" : "Measured on training frames (the video was too short to hold any out)"}
        {last.resolution.length === 2 ? `, at ${last.resolution[0]}×${last.resolution[1]}` : ""}. Higher is better.
      </p>
      <div class="metrics-body">
        <div class="metrics-table-wrap">
        <table class="metrics-table">
          <thead>
            <tr>
              <th scope="col">Iteration</th>
              <th scope="col">PSNR</th>
              <th scope="col">SSIM</th>
              <th scope="col">Gaussians</th>
              <th scope="col">Training time</th>
            </tr>
          </thead>
          <tbody>
            {rows.map(([it, q]) => (
              <tr key={it} data-iteration={it}>
                <td data-label="Iteration">{formatCount(it)}</td>
                <td data-label="PSNR">{formatPsnr(q.psnr)}</td>
                <td data-label="SSIM">{q.ssim.toFixed(3)}</td>
                <td data-label="Gaussians">{q.gaussians === null ? "—" : formatCount(q.gaussians)}</td>
                <td data-label="Training time">{formatDuration(q.seconds)}</td>
              </tr>
            ))}
          </tbody>
        </table>
        </div>
        <PsnrChart points={rows} />
      </div>
    </section>
  );
}

/** "30,000 gaussians · 34.3 dB PSNR" on a finished scene's card, from its latest saved iteration. */
export function CardQuality({ id, state }: { id: string; state: SceneState | null }): JSX.Element | null {
  const metrics = useMetrics(id, state === "done" ? state : null);
  const rows = metrics ? qualityByIteration(metrics) : [];
  if (rows.length === 0) return null;
  const [, q] = rows[rows.length - 1]!;
  const facts = [...(q.gaussians === null ? [] : [`${formatCount(q.gaussians)} gaussians`]), `${formatPsnr(q.psnr)} PSNR`];
  return <p class="scene-quality muted" data-testid="card-quality">{facts.join(" · ")}</p>;
}
