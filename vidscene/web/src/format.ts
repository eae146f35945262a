import type { Progress, SceneState } from "./api/types";
import { isFinished, stateOf } from "./api/scenes";
import { formatRemaining, shownEta } from "./eta";

export function formatBytes(n: number): string {
  if (n < 1024) return `${n} B`;
  const units = ["KiB", "MiB", "GiB", "TiB"];
  let value = n / 1024;
  let unit = 0;
  while (value >= 1024 && unit < units.length - 1) {
    value /= 1024;
    unit++;
  }
  return `${value.toFixed(value < 10 ? 1 : 0)} ${units[unit]}`;
}

export function formatDuration(seconds: number): string {
  const s = Math.max(0, Math.round(seconds));
  if (s < 60) return `${s} s`;
  const m = Math.round(s / 60);
  if (m < 60) return `${m} min`;
  const h = Math.floor(m / 60);
  return `${h} h ${m % 60} min`;
}

export const STATE_LABELS: Record<SceneState, string> = {
  queued: "Queued",
  processing: "Processing",
  done: "Done",
  failed: "Failed",
  cancelled: "Cancelled",
};

/** The pipeline's steps in order, as progress `step` names them. */
export const STEPS = [
  { step: "frames", label: "Frames", doing: "Picking frames" },
  { step: "sfm", label: "Camera poses", doing: "Finding camera poses" },
  { step: "train", label: "Training", doing: "Training" },
  { step: "export", label: "Export", doing: "Exporting" },
] as const;

const STAGE_LABELS: Record<string, string> = {
  sfm_list: "Frames and camera poses",
  nerf_list: "Training and export",
};

const count = (n: number): string => n.toLocaleString("en");

/** Index into STEPS of the step the scene is at (or stopped at), or -1 when the server does not say. */
export function stepIndex(p: Progress): number {
  return STEPS.findIndex((s) => s.step === p.step);
}

/** What the step's counter counts: frames read, training iterations; other steps count in their own units. */
export function stepCounter(p: Progress): string | null {
  if (p.current_size <= 0) return null;
  const at = Math.max(0, Math.min(p.current_position, p.current_size));
  switch (p.step) {
    case "frames":
      return `frame ${count(at)} of ${count(p.current_size)}`;
    case "train":
      return `iteration ${count(at)} of ${count(p.current_size)}`;
    default:
      // Camera poses and export advance in steps of their own (sub-tasks, files): a share reads best.
      return `${Math.floor((100 * at) / p.current_size)}% of this step`;
  }
}

/** "Training", "Picking frames"...: what the server is doing now. */
export function stepDoing(p: Progress): string {
  const i = stepIndex(p);
  return i >= 0 ? STEPS[i]!.doing : (STAGE_LABELS[p.stage] ?? "Processing");
}

/** "1 scene ahead", "3 scenes ahead" or "next in line", from the 0-based place in the queue. */
export function queuePlace(p: Progress): string {
  const ahead = Math.max(0, p.overall_position);
  if (ahead === 0) return "next in line";
  return `${count(ahead)} ${ahead === 1 ? "scene" : "scenes"} ahead`;
}

/**
 * One line describing where a scene is: the step with its counter and the time left (smoothed), the place in the
 * queue (with when it should start, when `startsIn` can be estimated), or why it failed.
 */
export function describeProgress(p: Progress, startsIn: number | null = null): string {
  const state = stateOf(p);
  if (state === "done") return "Finished";
  if (state === "failed") return p.message || "Processing failed";
  if (state === "cancelled") return "Cancelled";
  if (state === "queued") {
    const parts = ["Waiting in queue", queuePlace(p)];
    if (startsIn !== null) parts.push(`starts in about ${formatDuration(startsIn)}`);
    if (typeof p.eta_seconds === "number" && p.eta_seconds > 0) parts.push(`then about ${formatDuration(p.eta_seconds)} of work`);
    return parts.join(" · ");
  }
  const parts = [stepDoing(p)];
  const counter = stepCounter(p);
  if (counter) parts.push(counter);
  const left = shownEta(p); // smoothed: the server's estimate swings early in a step
  if (left !== null) parts.push(`about ${formatRemaining(left)} left`);
  return parts.join(" · ");
}

/**
 * When a queued scene should start, in seconds, or null when that cannot be told: the server's
 * `starts_in_seconds` when it sends one. Otherwise the app guesses, which it can when every scene
 * ahead of it is one of the user's own (the only ones whose progress the app can read) and all of those are
 * being processed with an estimate: the queue then moves when the first of them finishes. A queued scene
 * ahead, or another user's, has no duration the app could know.
 */
export function startEstimate(p: Progress, others: readonly Progress[]): number | null {
  if (stateOf(p) !== "queued") return null;
  // The server's own estimate covers every scene ahead, other users' too; this guess is for servers without it.
  if (typeof p.starts_in_seconds === "number") return p.overall_position > 0 ? Math.max(1, p.starts_in_seconds) : null;
  if (p.overall_position <= 0) return null;
  const ahead = others.filter(
    (o) => o.uuid !== p.uuid && !isFinished(stateOf(o)) && o.overall_position < p.overall_position,
  );
  if (ahead.length !== p.overall_position) return null;
  const etas = ahead.map((o) => (stateOf(o) === "processing" && typeof o.eta_seconds === "number" ? o.eta_seconds : null));
  if (etas.some((eta) => eta === null)) return null;
  return Math.max(1, Math.min(...(etas as number[])));
}

/** "3 Mar 2026" in the user's locale, or null for a missing or unreadable time. */
export function formatDate(iso: string | null | undefined): string | null {
  if (!iso) return null;
  const t = Date.parse(iso);
  if (Number.isNaN(t)) return null;
  return new Date(t).toLocaleDateString(undefined, { year: "numeric", month: "short", day: "numeric" });
}

/** How long processing took, from the server's start and finish times, or null when either is missing. */
export function processingTime(p: Progress): number | null {
  if (!p.started_at || !p.finished_at) return null;
  const ms = Date.parse(p.finished_at) - Date.parse(p.started_at);
  return Number.isFinite(ms) && ms >= 0 ? ms / 1000 : null;
}
