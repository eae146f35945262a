// A new scene's video, sent with the tus protocol (resumable uploads).

import * as tus from "tus-js-client";

import { ApiError, send } from "./client";
import { session, sessionEndedReason } from "./session";
import { trainingFormFields } from "./scenes";
import type { TrainingFields } from "./types";

export interface NewSceneFields extends TrainingFields {
  file: File;
  sceneName: string;
}

export interface UploadHandle {
  promise: Promise<Uploaded>;
  /** Stops the upload and deletes what the server has of it (tus termination). */
  abort(): void;
}

/** How a resumable upload goes: bytes sent, and where it started when the server already had some. */
export interface UploadEvents {
  onProgress(sent: number, total: number): void;
  /** The server already held `offset` bytes of this file from an earlier try (a reload, a closed tab). */
  onResume(offset: number, total: number): void;
  /** The upload's URL on the server is known (created, or found again): it can be resumed from there. */
  onUrl?(url: string): void;
}

const TUS_ENDPOINT = "/user/scene/uploads";
// A dropped connection is retried after these pauses (ms), each time from the offset the server reports.
const RETRY_DELAYS = [0, 1000, 3000, 5000, 10000, 20000, 30000];
// Answers that no retry can change: bad fields, too large, not a video, no such upload any more, logged out.
const FINAL_STATUSES = new Set([400, 401, 403, 404, 410, 413, 415, 507]);

function tusErrorStatus(err: unknown): number {
  return err instanceof tus.DetailedError ? (err.originalResponse?.getStatus() ?? 0) : 0;
}

function tusErrorMessage(err: unknown): string {
  const body = err instanceof tus.DetailedError ? err.originalResponse?.getBody() : undefined;
  if (body) {
    try {
      const parsed = JSON.parse(body) as Record<string, unknown>;
      if (typeof parsed.error === "string" && parsed.error) return parsed.error;
    } catch {
      /* not JSON */
    }
  }
  return (
    "The upload was interrupted and could not be resumed. Check your connection, then choose the same file " +
    "with the same settings: it continues from where it stopped."
  );
}

type TusOptions = ConstructorParameters<typeof tus.Upload>[1];
type Uploaded = { id: string; message: string };

/** What Upload-Metadata carries: the file's name and type, the training fields and the scene's name. */
function uploadMetadata(fields: NewSceneFields): Record<string, string> {
  return {
    filename: fields.file.name,
    filetype: fields.file.type,
    ...trainingFormFields(fields),
    ...(fields.sceneName ? { scene_name: fields.sceneName } : {}),
  };
}

/**
 * The scene a finished upload made, when no answer named it (the last one was lost): asked of the upload
 * again, and when the server stopped before making the scene, made by sending the end once more.
 */
async function sceneOfFinishedUpload(uploadUrl: string, size: number): Promise<string | null> {
  const path = new URL(uploadUrl, window.location.href).pathname;
  const body = (await (await send("GET", path)).json()) as { id?: unknown };
  if (typeof body.id === "string") return body.id;
  // Every byte arrived but the server stopped before making the scene: the end, sent again, makes it.
  const res = await send("PATCH", path, {
    headers: {
      "Tus-Resumable": "1.0.0",
      "Upload-Offset": String(size),
      "Content-Type": "application/offset+octet-stream",
    },
  });
  return res.headers.get("Upload-Scene-Id");
}

/** One tus upload of a new scene's video, from its start (or resumption) to its scene id, or its end. */
class SceneUpload {
  readonly promise: Promise<Uploaded>;
  private readonly upload: tus.Upload;
  private settle: { resolve: (v: Uploaded) => void; reject: (e: unknown) => void } | null = null;
  private sceneId: string | null = null;
  private resuming = false;
  // Cancel can land while the creating POST is on its way. Dropping that request would not undo it (the
  // server may already have made the upload) and would lose its answer, the only thing that names it: the
  // upload would then sit on the server until it expired. So the request is left to answer, and the upload
  // it names is terminated as soon as its URL is known.
  private cancelled = false;
  private creating = false;

  constructor(private readonly fields: NewSceneFields, private readonly events: UploadEvents, chunkBytes?: number,
    private readonly resumeUrl?: string) {
    this.promise = new Promise<Uploaded>((resolve, reject) => {
      this.settle = { resolve, reject };
    });
    this.upload = new tus.Upload(fields.file, this.options(uploadMetadata(fields), chunkBytes));
  }

  private options(metadata: Record<string, string>, chunkBytes: number | undefined): TusOptions {
    const user = session.username ?? "";
    return {
      endpoint: TUS_ENDPOINT,
      // Resuming a listed upload: straight from its URL (a HEAD says where it stopped).
      ...(this.resumeUrl ? { uploadUrl: this.resumeUrl } : {}),
      metadata,
      ...(chunkBytes ? { chunkSize: chunkBytes } : {}),
      retryDelays: RETRY_DELAYS,
      removeFingerprintOnSuccess: true,
      // The same file sent by another user, or with other settings, is another upload.
      fingerprint: (file: File) =>
        Promise.resolve(["vidscene-tus", user, file.name, file.size, file.lastModified, JSON.stringify(metadata)].join("|")),
      onBeforeRequest: (req) => {
        const token = session.token;
        if (token) req.setHeader("Authorization", `Bearer ${token}`);
        if (req.getMethod() === "POST") this.creating = true;
      },
      onUploadUrlAvailable: () => {
        this.creating = false;
        if (this.cancelled) this.terminate();
        else if (this.upload.url) this.events.onUrl?.(this.upload.url);
      },
      onAfterResponse: (req, res) => this.answered(req, res),
      onProgress: (sent, total) => this.events.onProgress(sent, total),
      onShouldRetry: (err) => {
        if (this.cancelled) {
          this.creating = false; // a creation that failed made nothing: there is nothing left to wait for
          return false;
        }
        return !FINAL_STATUSES.has(tusErrorStatus(err));
      },
      onSuccess: () => void this.succeeded().catch((error: unknown) => this.finish({ error })),
      onError: (err) => this.failed(err),
    };
  }

  /** Follows each answer: the creation's outcome, the scene it names, and where a resumed upload goes on. */
  private answered(req: tus.HttpRequest, res: tus.HttpResponse): void {
    if (req.getMethod() === "POST" && !(res.getStatus() >= 200 && res.getStatus() < 300)) this.creating = false;
    const id = res.getHeader("Upload-Scene-Id");
    if (id) this.sceneId = id;
    const offset = Number(res.getHeader("Upload-Offset") ?? "0");
    if (this.resuming && req.getMethod() === "HEAD" && res.getStatus() === 200 && offset > 0) {
      this.resuming = false;
      this.events.onResume(offset, this.fields.file.size);
    }
  }

  private async succeeded(): Promise<void> {
    // Every answer about a finished upload names its scene; ask once more if the last one was lost.
    if (!this.sceneId && this.upload.url) {
      this.sceneId = await sceneOfFinishedUpload(this.upload.url, this.fields.file.size);
    }
    if (this.upload.url) forgetStoredUrl(this.upload.url); // copies left by earlier tries of this file
    if (!this.sceneId) throw new ApiError(0, "The video was uploaded but the server named no scene for it.");
    this.finish({ id: this.sceneId });
  }

  private failed(err: Error): void {
    const status = tusErrorStatus(err);
    const text = tusErrorMessage(err);
    if (status === 401 && session.token) session.clear(sessionEndedReason(text));
    this.finish({ error: new ApiError(status, text) });
  }

  private finish(outcome: { id: string } | { error: unknown }): void {
    const done = this.settle;
    this.settle = null;
    if (!done) return;
    if ("id" in outcome) done.resolve({ id: outcome.id, message: "Video received and processing scene." });
    else done.reject(outcome.error);
  }

  /**
   * Starts the upload, from where an earlier try of the same file and settings stopped if there was one (the
   * one at `resumeUrl` when given: its stored copy is taken over, so that success removes it).
   */
  start(): void {
    void this.upload.findPreviousUploads().then(
      (previous) => {
        if (!this.settle) return; // cancelled meanwhile
        const wanted = this.resumeUrl ? absoluteUrl(this.resumeUrl) : null;
        const last = wanted ? previous.find((p) => p.uploadUrl && absoluteUrl(p.uploadUrl) === wanted) : previous[0];
        if (last) this.upload.resumeFromPreviousUpload(last);
        this.resuming = Boolean(last ?? this.resumeUrl);
        this.upload.start();
      },
      (error: unknown) => this.finish({ error }),
    );
  }

  abort(): void {
    if (!this.settle) return;
    this.cancelled = true;
    this.finish({ error: new DOMException("Upload cancelled", "AbortError") });
    if (this.creating && !this.upload.url) return; // onUploadUrlAvailable terminates it (see `cancelled`)
    this.terminate();
  }

  /** Stops the request in flight and deletes the upload on the server (and its stored URL). */
  private terminate(): void {
    this.upload.abort(true).catch(() => {
      /* nothing was created yet, or the server already forgot it */
    });
  }
}

/**
 * Uploads the video with the tus protocol (resumable): a dropped connection is retried from the server's
 * offset, and after a reload choosing the same file with the same settings continues the earlier upload
 * (tus-js-client keeps its URL in localStorage, under a fingerprint of the user, the file and the settings).
 * The fields travel in Upload-Metadata and are checked by the server before any byte is sent. `resumeUrl`:
 * the upload to continue (a listed unfinished one), whose fields were sent when it was created.
 */
export function uploadScene(fields: NewSceneFields, events: UploadEvents, chunkBytes?: number,
  resumeUrl?: string): UploadHandle {
  const upload = new SceneUpload(fields, events, chunkBytes, resumeUrl);
  upload.start();
  return { promise: upload.promise, abort: () => upload.abort() };
}

// ---- an unfinished upload, known by its URL (listed after a reload) ----

function absoluteUrl(url: string): string {
  return new URL(url, window.location.href).href;
}

/** The route of an upload's URL (same origin: the API serves the app). */
function uploadPath(url: string): string {
  return new URL(url, window.location.href).pathname;
}

const TUS_HEADERS = { "Tus-Resumable": "1.0.0" };

export interface UploadOffset {
  offset: number;
  length: number;
  /** The scene it became, once every byte arrived. */
  sceneId: string | null;
}

/**
 * How much of the upload at `url` the server holds (tus HEAD). An ApiError with status 404 or 410 means it
 * is gone: expired, terminated, or never this user's.
 */
export async function uploadOffset(url: string, signal?: AbortSignal): Promise<UploadOffset> {
  const res = await send("HEAD", uploadPath(url), { headers: TUS_HEADERS, signal });
  const number = (name: string): number => Number.parseInt(res.headers.get(name) ?? "", 10);
  const [offset, length] = [number("Upload-Offset"), number("Upload-Length")];
  if (Number.isNaN(offset) || Number.isNaN(length)) throw new ApiError(0, "The server did not say where this upload stands.");
  return { offset, length, sceneId: res.headers.get("Upload-Scene-Id") };
}

/** Deletes the upload at `url` and its bytes on the server (tus termination); one already gone is fine. */
export async function terminateUpload(url: string): Promise<void> {
  try {
    await send("DELETE", uploadPath(url), { headers: TUS_HEADERS });
  } catch (err) {
    if (!(err instanceof ApiError && (err.status === 404 || err.status === 410))) throw err;
  }
  forgetStoredUrl(url);
}

/** Removes what tus-js-client stored to resume the upload at `url` (every copy, under any fingerprint). */
export function forgetStoredUrl(url: string): void {
  const wanted = absoluteUrl(url);
  const storedUrl = (key: string): string | null => {
    try {
      const stored = JSON.parse(localStorage.getItem(key) ?? "null") as { uploadUrl?: unknown } | null;
      return typeof stored?.uploadUrl === "string" ? absoluteUrl(stored.uploadUrl) : null;
    } catch {
      return null; // not ours to judge
    }
  };
  try {
    for (const key of Object.keys(localStorage)) {
      if (key.startsWith("tus::") && storedUrl(key) === wanted) localStorage.removeItem(key);
    }
  } catch {
    /* storage unavailable: nothing stored to forget */
  }
}
