// A scene's outputs as the pages use them: fetched once per page whoever asks (the viewer, the video player and
// a download button share the bytes), from the owner's routes or through a share link, and which file the 3D
// viewer shows.

import type { DownloadedOutput, Metadata, ResourceInfo } from "./api";
import { downloadOutput, downloadSharedOutput } from "./api";
import type { ViewerFormat } from "./viewer";

type Download = (
  type: string,
  iteration: string,
  info: ResourceInfo,
  onProgress: (received: number, total: number) => void,
  signal?: AbortSignal,
) => Promise<DownloadedOutput>;

export class OutputCache {
  private readonly files = new Map<string, Promise<DownloadedOutput>>();

  constructor(private readonly download: Download) {}

  /** The file's bytes, downloaded on the first call; later calls get the same promise (and a full bar). */
  fetch(
    type: string,
    iteration: string,
    info: ResourceInfo,
    onProgress: (received: number, total: number) => void,
    signal?: AbortSignal,
  ): Promise<DownloadedOutput> {
    const key = `${type}/${iteration}/${info.size}`;
    const hit = this.files.get(key);
    if (hit) {
      void hit.then(() => onProgress(info.size, info.size)).catch(() => undefined);
      return hit;
    }
    const promise = this.download(type, iteration, info, onProgress, signal);
    this.files.set(key, promise);
    promise.catch(() => this.files.delete(key));
    return promise;
  }
}

export const ownerOutputs = (sceneId: string): OutputCache =>
  new OutputCache((...args) => downloadOutput(sceneId, ...args));

export const sharedOutputs = (token: string): OutputCache =>
  new OutputCache((...args) => downloadSharedOutput(token, ...args));

/**
 * The files the 3D viewer can show, best first: the SPZ (smallest, and it keeps the view-dependent colour),
 * then the `.splat` and the PLY that scenes made before SPZ existed have.
 */
export const CLOUD_TYPES = ["spz", "splat_cloud", "point_cloud"] as const;
export type CloudType = (typeof CLOUD_TYPES)[number];

export const VIEWER_FORMATS: Record<CloudType, ViewerFormat> = { spz: "spz", splat_cloud: "splat", point_cloud: "ply" };

/** Existing files of one output type, keyed by iteration, in ascending iteration order. */
export function existing(meta: Metadata | null, type: string): [string, ResourceInfo][] {
  const entries = Object.entries(meta?.resources[type] ?? {}).filter(([, info]) => info.exists);
  return entries.sort((a, b) => Number(a[0]) - Number(b[0]));
}

/** Every iteration with something to show (a 3D file or the video), ascending. */
export function viewableIterations(meta: Metadata | null): string[] {
  const all = new Set([...CLOUD_TYPES, "video"].flatMap((type) => existing(meta, type).map(([it]) => it)));
  return [...all].sort((a, b) => Number(a) - Number(b));
}

/** The file the viewer shows at an iteration: the first of CLOUD_TYPES that exists there, or null. */
export function cloudAt(meta: Metadata | null, iteration: string | null): { type: CloudType; info: ResourceInfo } | null {
  if (iteration === null) return null;
  for (const type of CLOUD_TYPES) {
    const info = meta?.resources[type]?.[iteration];
    if (info?.exists) return { type, info };
  }
  return null;
}
