// A scene's outputs as the pages use them: fetched once per page whoever asks (the viewer, the video player and
// a download button share the bytes), from the owner's routes or through a share link, and which file the 3D
// viewer shows.

import type { DownloadedOutput } from "./api/downloads";
import type { InitialView, Metadata, ResourceInfo } from "./api/types";
import { downloadOutput, downloadSharedOutput } from "./api/downloads";
import type { ControlMode, ViewerFormat, ViewerHandle } from "./viewer/types";

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

/**
 * Downloads `cloud` through `cache` while the viewer module loads, then builds the 3D viewer on it in
 * `container`: what the scene page and the share page both do. `onPercent` follows the download, then gets
 * null once it is done. Null when `signal` was aborted or the container went away meanwhile (a viewer built
 * by then is disposed).
 */
export async function openCloudViewer(
  container: { readonly current: HTMLElement | null },
  cache: OutputCache,
  cloud: { type: CloudType; info: ResourceInfo },
  iteration: string,
  onPercent: (percent: number | null) => void,
  signal: AbortSignal,
  mode: ControlMode = "orbit",
  view: InitialView | null = null,
): Promise<ViewerHandle | null> {
  const [{ blob }, viewer] = await Promise.all([
    cache.fetch(cloud.type, iteration, cloud.info, (r, t) => onPercent(t ? (100 * r) / t : null), signal),
    import("./viewer/viewer"),
  ]);
  const element = container.current;
  if (signal.aborted || !element) return null;
  onPercent(null);
  const handle = await viewer.createViewer(element, new Uint8Array(await blob.arrayBuffer()),
    VIEWER_FORMATS[cloud.type], mode, view);
  if (signal.aborted) {
    handle.dispose();
    return null;
  }
  element.dataset.points = String(handle.pointCount);
  return handle;
}
