// A scene's output files, downloaded in the Range chunks the metadata describes: the owner's, and those a
// share link opens without login.

import { ApiError, enc, retryAfterSeconds, send } from "./client";
import type { ResourceInfo } from "./types";

export interface DownloadedOutput {
  blob: Blob;
  /** The server's name for the file (Content-Disposition), or null when it sent none. */
  fileName: string | null;
}

function fileNameFrom(disposition: string | null): string | null {
  if (!disposition) return null;
  const star = /filename\*\s*=\s*UTF-8''([^;]+)/i.exec(disposition);
  if (star?.[1]) {
    try {
      return decodeURIComponent(star[1].trim());
    } catch {
      /* fall through */
    }
  }
  const plain = /filename\s*=\s*"?([^";]+)"?/i.exec(disposition);
  return plain?.[1]?.trim() || null;
}

/**
 * The size of every chunk but the last, from the metadata's own numbers (size = (chunks - 1) * chunk + last),
 * so the Range requests are exactly the chunks the server described.
 */
function chunkBytesOf(info: ResourceInfo): number {
  if (info.chunks <= 1) return info.size;
  const chunk = (info.size - info.last_chunk_size) / (info.chunks - 1);
  if (!Number.isInteger(chunk) || chunk <= 0 || info.last_chunk_size <= 0 || info.last_chunk_size > chunk) {
    throw new ApiError(0, "The server described this file's chunks inconsistently.");
  }
  return chunk;
}

/**
 * Downloads one output in the Range chunks the metadata route describes (1 MiB each), so a large checkpoint
 * never rides on one long request and the progress bar moves chunk by chunk.
 */
export async function downloadOutput(
  sceneId: string,
  type: string,
  iteration: string,
  info: ResourceInfo,
  onProgress: (received: number, total: number) => void,
  signal?: AbortSignal,
): Promise<DownloadedOutput> {
  const url = `/user/scene/output/${enc(type)}/${enc(sceneId)}?iteration=${enc(iteration)}`;
  return downloadInChunks(url, info, onProgress, { signal });
}

async function downloadInChunks(
  url: string,
  info: ResourceInfo,
  onProgress: (received: number, total: number) => void,
  options: { signal?: AbortSignal | undefined; auth?: boolean },
): Promise<DownloadedOutput> {
  const chunkBytes = chunkBytesOf(info);
  const parts: ArrayBuffer[] = [];
  let contentType = "application/octet-stream";
  let fileName: string | null = null;
  let received = 0;
  onProgress(0, info.size);
  for (let i = 0; i < info.chunks; i++) {
    const start = i * chunkBytes;
    const length = i === info.chunks - 1 ? info.last_chunk_size : chunkBytes;
    const end = start + length - 1;
    const res = await send("GET", url, { ...options, headers: { Range: `bytes=${start}-${end}` } });
    const buf = await res.arrayBuffer();
    if (res.status === 200 && info.chunks === 1 && buf.byteLength === info.size) {
      // A server may answer a range covering the whole file with the whole file; that is still right.
    } else if (res.status !== 206 || buf.byteLength !== length) {
      throw new ApiError(res.status, `The server sent an unexpected chunk (${i + 1} of ${info.chunks}).`);
    }
    if (i === 0) {
      contentType = res.headers.get("Content-Type") ?? contentType;
      fileName = fileNameFrom(res.headers.get("Content-Disposition"));
    }
    parts.push(buf);
    received += buf.byteLength;
    onProgress(received, info.size);
  }
  return { blob: new Blob(parts, { type: contentType }), fileName };
}

export async function downloadSharedOutput(
  token: string,
  type: string,
  iteration: string,
  info: ResourceInfo,
  onProgress: (received: number, total: number) => void,
  signal?: AbortSignal,
): Promise<DownloadedOutput> {
  const url = `/public/${enc(token)}/output/${enc(type)}?iteration=${enc(iteration)}`;
  return downloadInChunks(url, info, onProgress, { signal, auth: false });
}

/** What the output route says of a type made after the fact: there (ready), or being made. */
export type OutputAnswer =
  | { ready: true }
  | { ready: false; message: string; retryAfterSeconds: number | null };

/**
 * Asks the owner's output route for a type the upload did not ask for: the first ask has it made (202 with
 * `Retry-After` while a worker makes it), later asks only look, and `retry` asks for a new try after a
 * failure (which the route answers as a 409 ApiError with the worker's reason). Only the first byte is
 * asked for, so the answer once it is made costs nothing; the file itself comes in chunks afterwards.
 */
export async function askForOutput(
  sceneId: string,
  type: string,
  iteration: string,
  retry: boolean,
  signal?: AbortSignal,
): Promise<OutputAnswer> {
  const query = `iteration=${enc(iteration)}${retry ? "&retry=true" : ""}`;
  const res = await send("GET", `/user/scene/output/${enc(type)}/${enc(sceneId)}?${query}`, {
    signal,
    headers: { Range: "bytes=0-0" },
  });
  if (res.status !== 202) {
    await res.arrayBuffer();
    return { ready: true };
  }
  const body = (await res.json().catch(() => ({}))) as { message?: unknown };
  return {
    ready: false,
    message: typeof body.message === "string" ? body.message : "Being made from the trained model.",
    retryAfterSeconds: retryAfterSeconds(res.headers.get("Retry-After")),
  };
}
