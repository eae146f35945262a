// Crop and clean: a finished scene's edit list (docs/api.md, "Crop and clean"). The server keeps the original;
// the edited files are made by a worker and served once all are in place.

import { enc, sendJson } from "./client";

export type Vec3 = [number, number, number];

export interface EditOperation {
  op: "keep_inside" | "delete_inside";
  shape: "box" | "sphere";
  center: Vec3;
  half_size?: Vec3;
  radius?: number;
  rotation?: [number, number, number, number];
}

export interface SceneEdit {
  operations: EditOperation[];
  /** Counts every change; the files shown are those of `served` (0: the original). */
  version: number;
  served: number;
  state: "original" | "preparing" | "ready" | "failed";
  kept: number | null;
  total: number | null;
  message: string;
}

export async function sceneEdit(id: string, signal?: AbortSignal): Promise<SceneEdit> {
  return sendJson<SceneEdit>("GET", `/user/scene/edits/${enc(id)}`, { signal });
}

export async function saveEdit(id: string, operations: EditOperation[]): Promise<SceneEdit> {
  return sendJson<SceneEdit>("PUT", `/user/scene/edits/${enc(id)}`, { json: { operations } });
}

export async function revertEdit(id: string): Promise<SceneEdit> {
  return sendJson<SceneEdit>("DELETE", `/user/scene/edits/${enc(id)}`);
}
