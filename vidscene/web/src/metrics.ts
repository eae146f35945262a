// Quality numbers of a scene (GET /user/scene/metrics/:id) and the cost of a preset (from the options), as
// the scene page, the scene cards and the upload form show them.

import type { PresetOption } from "./api/options";
import type { components } from "./api/schema";
import { sendJson } from "./api/client";
import { formatDuration } from "./format";

/** One saved iteration's held-out quality, as the server measured it after saving (`masked`: the share of the
 * measured pixels left out because something moved through them). */
export type IterationQuality = components["schemas"]["IterationQuality"];
export type SceneMetrics = components["schemas"]["SceneMetrics"];

export async function sceneMetrics(id: string, signal?: AbortSignal): Promise<SceneMetrics> {
  return sendJson<SceneMetrics>("GET", `/user/scene/metrics/${encodeURIComponent(id)}`, { signal });
}

/** The saved iterations with their numbers, in iteration order. */
export function qualityByIteration(m: SceneMetrics): [number, IterationQuality][] {
  return Object.entries(m.metrics)
    .map(([it, q]): [number, IterationQuality] => [Number(it), q])
    .filter(([it]) => Number.isFinite(it))
    .sort((a, b) => a[0] - b[0]);
}

export function formatPsnr(db: number): string {
  return `${db.toFixed(1)} dB`;
}

export function formatCount(n: number): string {
  return n.toLocaleString("en");
}

/**
 * "about 1 min on this server (measured over 3 scenes)": what the preset's default run costs in `mode`, from
 * the server's figure; null when the server sends none for it.
 */
export function presetCost(preset: PresetOption, mode: string): string | null {
  const estimate = preset.estimates?.[mode];
  if (!estimate) return null;
  if (estimate.estimated_seconds === null || estimate.source === null) return "time not measured yet";
  const time = `about ${formatDuration(estimate.estimated_seconds)}`;
  if (estimate.source === "server") {
    return `${time} on this server (measured over ${estimate.scenes} ${estimate.scenes === 1 ? "scene" : "scenes"})`;
  }
  return `${time} on a 2-core CPU (reference measurement)`;
}
