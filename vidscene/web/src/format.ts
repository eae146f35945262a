import type { Progress, SceneState } from "./api";
import { stateOf } from "./api";

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

const STEP_LABELS: Record<string, string> = {
  frames: "Picking frames",
  sfm: "Finding camera poses",
  train: "Training",
  export: "Exporting",
  sfm_list: "Frames and camera poses",
  nerf_list: "Training and export",
};

/** One line describing where a scene is: stage, counters, ETA and place in the queue. */
export function describeProgress(p: Progress): string {
  const state = stateOf(p);
  if (state === "done") return "Finished";
  if (state === "failed") return p.message || "Processing failed";
  if (state === "cancelled") return "Cancelled";
  if (state === "queued") {
    const place = p.overall_position + 1;
    return p.overall_size > 0 ? `Waiting in queue: ${place} of ${p.overall_size}` : "Waiting in queue";
  }
  const parts: string[] = [];
  parts.push(STEP_LABELS[p.step ?? ""] ?? STEP_LABELS[p.stage] ?? p.stage);
  if (p.current_size > 0) parts.push(`${p.current_position} / ${p.current_size}`);
  if (typeof p.eta_seconds === "number" && p.eta_seconds > 0) parts.push(`about ${formatDuration(p.eta_seconds)} left`);
  return parts.join(" · ");
}
