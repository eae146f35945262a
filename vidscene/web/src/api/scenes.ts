// A user's scenes: the list, each one's name, progress and metadata, and what the owner does with one.

import { enc, send, sendJson } from "./client";
import type { components } from "./schema";
import type { CaptureReport, Metadata, Progress, SceneState, TrainingFields } from "./types";

export async function sceneHistory(signal?: AbortSignal): Promise<string[]> {
  const body = await sendJson<components["schemas"]["SceneHistory"]>("GET", "/user/scene/history", { signal });
  return body.resources;
}

export async function sceneName(id: string, signal?: AbortSignal): Promise<string> {
  const body = await sendJson<components["schemas"]["SceneName"]>("GET", `/user/scene/name/${enc(id)}`, { signal });
  return body.name;
}

export async function sceneProgress(id: string, signal?: AbortSignal): Promise<Progress> {
  return sendJson<Progress>("GET", `/user/scene/progress/${enc(id)}`, { signal });
}

export async function sceneMetadata(id: string, signal?: AbortSignal): Promise<Metadata> {
  return sendJson<Metadata>("GET", `/user/scene/metadata/${enc(id)}`, { signal });
}

/** The capture check's report; a 404 until the frames stage has run (and for scenes made before it existed). */
export async function sceneCapture(id: string, signal?: AbortSignal): Promise<CaptureReport> {
  return sendJson<CaptureReport>("GET", `/user/scene/capture/${enc(id)}`, { signal });
}

export async function sceneThumbnail(id: string, signal?: AbortSignal): Promise<Blob> {
  const res = await send("GET", `/user/scene/thumbnail/${enc(id)}`, { signal });
  return res.blob();
}

/** Renames the scene; returns the name as the server stored it (trimmed). */
export async function renameScene(id: string, name: string): Promise<string> {
  const body = await sendJson<components["schemas"]["SceneName"]>("PATCH", `/user/scene/name/${enc(id)}`, { json: { name } });
  return body.name;
}

/** The training fields as the server's form (and the tus upload's metadata) names them. */
export function trainingFormFields(fields: TrainingFields): Record<string, string> {
  return {
    training_mode: fields.trainingMode,
    output_types: fields.outputTypes.join(","),
    save_iterations: fields.saveIterations.join(","),
    total_iterations: String(fields.totalIterations),
    ...(fields.preset ? { preset: fields.preset } : {}),
  };
}

/** Processes a finished or failed scene's video again with these settings (409 while it is still processing). */
export async function retryScene(id: string, fields: TrainingFields): Promise<void> {
  await sendJson("POST", `/user/scene/retry/${enc(id)}`, { json: trainingFormFields(fields) });
}

export async function deleteScene(id: string): Promise<void> {
  await sendJson("DELETE", `/user/scene/delete/${enc(id)}`);
}

// ---- derived views of progress ----

export function stateOf(p: Progress): SceneState {
  if (p.state) return p.state;
  if (p.processing) return p.current_position > 0 || p.overall_position === 0 ? "processing" : "queued";
  return p.error ? "failed" : "done";
}

export function isFinished(state: SceneState): boolean {
  return state === "done" || state === "failed" || state === "cancelled";
}
