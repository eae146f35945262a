// Client for the public vidscene HTTP API (seed-api.txt + API-NOTES.md). The app uses nothing else: every
// request here is one any other client could make.

import * as tus from "tus-js-client";
import type { InitialView } from "./viewer";

export type SceneState = "queued" | "processing" | "done" | "failed" | "cancelled";

export class ApiError extends Error {
  readonly status: number;
  /** Seconds to wait before trying again, from a 429's `Retry-After`; null when the server named none. */
  readonly retryAfter: number | null;

  constructor(status: number, message: string, retryAfter: number | null = null) {
    super(message);
    this.name = "ApiError";
    this.status = status;
    this.retryAfter = retryAfter;
  }
}

/** `Retry-After` as seconds from now: either delay-seconds or an HTTP date (RFC 9110 10.2.3). */
export function retryAfterSeconds(header: string | null): number | null {
  if (!header) return null;
  const text = header.trim();
  if (/^\d+$/.test(text)) return Number(text);
  const at = Date.parse(text);
  return Number.isNaN(at) ? null : Math.max(0, Math.ceil((at - Date.now()) / 1000));
}

// ---- session: the JWT lives in localStorage so a reload or a new tab stays logged in ----

const TOKEN_KEY = "vidscene.token";
const USERNAME_KEY = "vidscene.username";

type SessionListener = () => void;
const listeners = new Set<SessionListener>();

function readStorage(key: string): string | null {
  try {
    return window.localStorage.getItem(key);
  } catch {
    return null; // storage disabled (private mode): the session lasts as long as the page
  }
}

let memoryToken: string | null = readStorage(TOKEN_KEY);
let memoryUsername: string | null = readStorage(USERNAME_KEY);
// Why the last session ended when the user did not log out here; the login page shows it once.
let endReason: string | null = null;

export const session = {
  get token(): string | null {
    return memoryToken;
  },
  get username(): string | null {
    return memoryUsername;
  },
  /** Why the user was logged out (a session the server ended, a log out in another tab), or null. */
  get endReason(): string | null {
    return endReason;
  },
  set(token: string, username: string): void {
    memoryToken = token;
    memoryUsername = username;
    endReason = null;
    try {
      window.localStorage.setItem(TOKEN_KEY, token);
      window.localStorage.setItem(USERNAME_KEY, username);
    } catch {
      /* keep the in-memory copy */
    }
    listeners.forEach((fn) => fn());
  },
  /** Logs out: the user asked to, or (with a reason the login page shows) the session ended otherwise. */
  clear(reason: string | null = null): void {
    memoryToken = null;
    memoryUsername = null;
    endReason = reason;
    try {
      window.localStorage.removeItem(TOKEN_KEY);
      window.localStorage.removeItem(USERNAME_KEY);
    } catch {
      /* nothing stored */
    }
    listeners.forEach((fn) => fn());
  },
  subscribe(fn: SessionListener): () => void {
    listeners.add(fn);
    return () => listeners.delete(fn);
  },
};

// Another tab logging in or out changes localStorage; follow it so tabs never disagree about the user.
window.addEventListener("storage", (event) => {
  if (event.key !== TOKEN_KEY && event.key !== USERNAME_KEY && event.key !== null) return;
  const hadToken = memoryToken !== null;
  memoryToken = readStorage(TOKEN_KEY);
  memoryUsername = readStorage(USERNAME_KEY);
  if (hadToken && memoryToken === null) endReason = "You logged out in another tab.";
  listeners.forEach((fn) => fn());
});

/**
 * The login page's explanation of a 401 on a request made with a token: the server no longer accepts the
 * session (a password changed or an account deleted elsewhere revokes every token; tokens also expire).
 */
function sessionEndedReason(serverMessage: string): string {
  return (
    `You were logged out: the server no longer accepts this session (“${serverMessage}”). This happens when ` +
    "the password is changed elsewhere or the session expires. Log in to carry on where you were."
  );
}

// ---- low-level request helpers ----

interface RequestOptions {
  json?: unknown;
  auth?: boolean;
  headers?: Record<string, string>;
  signal?: AbortSignal;
  /** A 401 from a route that checks the current password means "wrong password", not "logged out". */
  passwordChecked?: boolean;
}

function authHeaders(): Record<string, string> {
  return memoryToken ? { Authorization: `Bearer ${memoryToken}` } : {};
}

async function errorFrom(res: Response): Promise<ApiError> {
  let message = `${res.status} ${res.statusText || "error"}`;
  try {
    const body: unknown = await res.json();
    if (body && typeof body === "object") {
      const b = body as Record<string, unknown>;
      const text = b.error ?? b.message ?? b.detail;
      if (typeof text === "string" && text) message = text;
    }
  } catch {
    /* not JSON: keep the status line */
  }
  return new ApiError(res.status, message, retryAfterSeconds(res.headers.get("Retry-After")));
}

function handleUnauthorized(error: ApiError, options: RequestOptions): void {
  if (error.status === 401 && options.auth !== false && !options.passwordChecked && memoryToken) {
    session.clear(sessionEndedReason(error.message)); // expired or revoked token: back to the login page
  }
}

async function send(method: string, path: string, options: RequestOptions = {}): Promise<Response> {
  const headers: Record<string, string> = { ...(options.auth === false ? {} : authHeaders()), ...options.headers };
  let body: string | undefined;
  if (options.json !== undefined) {
    headers["Content-Type"] = "application/json";
    body = JSON.stringify(options.json);
  }
  let res: Response;
  try {
    res = await fetch(path, { method, headers, body, signal: options.signal ?? null, cache: "no-store" });
  } catch (err) {
    if (err instanceof DOMException && err.name === "AbortError") throw err;
    throw new ApiError(0, "Cannot reach the server. Check your connection and try again.");
  }
  if (!res.ok) {
    const error = await errorFrom(res);
    handleUnauthorized(error, options);
    throw error;
  }
  return res;
}

export async function sendJson<T>(method: string, path: string, options: RequestOptions = {}): Promise<T> {
  const res = await send(method, path, options);
  return (await res.json()) as T;
}

const enc = encodeURIComponent;

// ---- accounts ----

export async function register(username: string, password: string): Promise<void> {
  await sendJson("POST", "/user/account/register", { json: { username, password }, auth: false });
}

export async function login(username: string, password: string): Promise<string> {
  const body = await sendJson<{ jwtToken: string }>("POST", "/user/account/login", {
    json: { username, password },
    auth: false,
  });
  if (!body.jwtToken) throw new ApiError(500, "The server did not return a token.");
  return body.jwtToken;
}

export async function updateUsername(password: string, newUsername: string): Promise<void> {
  await sendJson("PATCH", "/user/account/update/username", {
    json: { password, new_username: newUsername },
    passwordChecked: true,
  });
}

export async function updatePassword(oldPassword: string, newPassword: string): Promise<void> {
  await sendJson("PATCH", "/user/account/update/password", {
    json: { old_password: oldPassword, new_password: newPassword },
    passwordChecked: true,
  });
}

export async function deleteAccount(password: string): Promise<void> {
  await sendJson("DELETE", "/user/account/delete", { json: { password }, passwordChecked: true });
}

// ---- scenes ----

export interface Progress {
  uuid: string;
  status: number;
  error: number;
  message: string;
  processing: boolean;
  overall_position: number;
  overall_size: number;
  stage: string;
  current_position: number;
  current_size: number;
  // Extras the server may add (API-NOTES): used when present.
  state?: SceneState;
  step?: string;
  percent?: number;
  /** Work left for the whole scene (the current step and those after it; while queued, all of it). */
  eta_seconds?: number | null;
  /** While queued: the server's estimate of when a worker starts on it. */
  starts_in_seconds?: number | null;
  /** The preset the scene is processed with (a name from the options). */
  preset?: string;
  // ISO 8601 times, shown on the scene cards when the server sends them (it does not yet: see README.md).
  created_at?: string | null;
  started_at?: string | null;
  finished_at?: string | null;
}

export interface ResourceInfo {
  exists: boolean;
  size: number;
  chunks: number;
  last_chunk_size: number;
}

/** Output type name (one of the options' `output_types`) -> iteration (as a string) -> file. */
export type Resources = Record<string, Record<string, ResourceInfo>>;

export interface Metadata {
  uuid: string;
  resources: Resources;
  /** The scene's training mode and preset (names from the options), on servers that report them. */
  training_mode?: string;
  preset?: string;
  /** The first capture camera, where the 3D view opens (null before export and for older scenes). */
  initial_view?: InitialView | null;
}

export async function sceneHistory(signal?: AbortSignal): Promise<string[]> {
  const body = await sendJson<{ resources: string[] }>("GET", "/user/scene/history", { signal });
  return body.resources;
}

export async function sceneName(id: string, signal?: AbortSignal): Promise<string> {
  const body = await sendJson<{ name: string }>("GET", `/user/scene/name/${enc(id)}`, { signal });
  return body.name;
}

export async function sceneProgress(id: string, signal?: AbortSignal): Promise<Progress> {
  return sendJson<Progress>("GET", `/user/scene/progress/${enc(id)}`, { signal });
}

export async function sceneMetadata(id: string, signal?: AbortSignal): Promise<Metadata> {
  return sendJson<Metadata>("GET", `/user/scene/metadata/${enc(id)}`, { signal });
}

export async function sceneThumbnail(id: string, signal?: AbortSignal): Promise<Blob> {
  const res = await send("GET", `/user/scene/thumbnail/${enc(id)}`, { signal });
  return res.blob();
}

/** Renames the scene; returns the name as the server stored it (trimmed). */
export async function renameScene(id: string, name: string): Promise<string> {
  const body = await sendJson<{ name: string }>("PATCH", `/user/scene/name/${enc(id)}`, { json: { name } });
  return body.name;
}

/** The training fields of an upload, as POST /user/scene/new and /retry take them. */
export interface TrainingFields {
  /** Names from the options' `training_modes` and `output_types`; validate.ts checks them against it. */
  trainingMode: string;
  outputTypes: string[];
  saveIterations: number[];
  totalIterations: number;
  /** A preset name from the options; null (Custom) leaves the field out, so the server uses its default. */
  preset: string | null;
}

function trainingFormFields(fields: TrainingFields): Record<string, string> {
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

// ---- the server's catalogue: training modes, output types, presets and limits ----

export interface TrainingModeOption {
  name: string;
  label: string;
  description: string;
  /** Names of the output types this mode can produce, in catalogue order. */
  outputs: string[];
  default_outputs: string[];
}

export interface OutputTypeOption {
  name: string;
  label: string;
  description: string;
  media_type: string;
  /** Training mode name -> file extension (with its dot), for the modes that produce this output only. */
  extensions: Record<string, string>;
}

export interface PresetOption {
  name: string;
  label: string;
  description: string;
  /** Each keyed by training mode name: the form's total_iterations, save_iterations and ticked outputs. */
  iterations: Record<string, number>;
  save_iterations: Record<string, number[]>;
  outputs: Record<string, string[]>;
  /** Training mode -> what the preset's default run costs on this server (servers that measure it). */
  estimates?: Record<string, PresetEstimate> | undefined;
}

export interface PresetEstimate {
  seconds_per_iteration: number | null;
  estimated_seconds: number | null;
  /** "server": measured on this server's scenes; "reference": on the reference CPU; null: never measured. */
  source: string | null;
  scenes: number;
  basis: string;
}

export interface OptionLimits {
  max_total_iterations: number;
  max_scene_name: number;
  default_scene_name: string;
  chunk_bytes: number;
  username_pattern: string;
  username_min: number;
  username_max: number;
  password_min: number;
  password_max: number;
  /** Only when the server caps the size of an upload. */
  max_upload_bytes?: number | undefined;
  /** The size of each PATCH of a resumable upload (the server's proxy may cap request bodies). */
  upload_chunk_bytes?: number | undefined;
}

/** The body of GET /user/scene/options: what the server accepts, and so what the app offers. */
export interface SceneOptions {
  training_modes: TrainingModeOption[];
  output_types: OutputTypeOption[];
  presets: PresetOption[];
  default_preset: string;
  limits: OptionLimits;
}

// The options drive the whole upload form, so their shape is checked once here rather than trusted by a cast:
// a server that answers something else gets one clear message instead of a form that breaks field by field.
type Check<T> = (value: unknown, where: string) => T;

function malformed(where: string): never {
  throw new Error(`The server's scene options are malformed (${where}).`);
}

function objectAt(value: unknown, where: string): Record<string, unknown> {
  if (value === null || typeof value !== "object" || Array.isArray(value)) malformed(where);
  return value as Record<string, unknown>;
}

const text: Check<string> = (v, w) => (typeof v === "string" ? v : malformed(w));
const whole: Check<number> = (v, w) => (typeof v === "number" && Number.isInteger(v) ? v : malformed(w));

const number: Check<number> = (v, w) => (typeof v === "number" && Number.isFinite(v) ? v : malformed(w));

function nullable<T>(item: Check<T>): Check<T | null> {
  return (v, w) => (v === null ? null : item(v, w));
}

function optional<T>(item: Check<T>): Check<T | undefined> {
  return (v, w) => (v === undefined ? undefined : item(v, w));
}

function listOf<T>(item: Check<T>, { nonEmpty = false } = {}): Check<T[]> {
  return (v, w) => {
    if (!Array.isArray(v) || (nonEmpty && v.length === 0)) malformed(w);
    return v.map((x, i) => item(x, `${w}[${i}]`));
  };
}

function byName<T>(item: Check<T>): Check<Record<string, T>> {
  return (v, w) => Object.fromEntries(Object.entries(objectAt(v, w)).map(([k, x]) => [k, item(x, `${w}.${k}`)]));
}

function shape<T>(fields: { [K in keyof T]-?: Check<T[K]> }): Check<T> {
  return (v, w) => {
    const o = objectAt(v, w);
    const out = {} as T;
    for (const key in fields) out[key] = fields[key](o[key], `${w}.${key}`);
    return out;
  };
}

const checkOptions: Check<SceneOptions> = shape<SceneOptions>({
  training_modes: listOf(
    shape<TrainingModeOption>({
      name: text, label: text, description: text, outputs: listOf(text), default_outputs: listOf(text),
    }),
    { nonEmpty: true },
  ),
  output_types: listOf(
    shape<OutputTypeOption>({ name: text, label: text, description: text, media_type: text, extensions: byName(text) }),
    { nonEmpty: true },
  ),
  presets: listOf(
    shape<PresetOption>({
      name: text, label: text, description: text, iterations: byName(whole), save_iterations: byName(listOf(whole)),
      outputs: byName(listOf(text)),
      estimates: optional(byName(shape<PresetEstimate>({
        seconds_per_iteration: nullable(number), estimated_seconds: nullable(whole), source: nullable(text),
        scenes: whole, basis: text,
      }))),
    }),
  ),
  default_preset: text,
  limits: shape<OptionLimits>({
    max_total_iterations: whole, max_scene_name: whole, default_scene_name: text, chunk_bytes: whole,
    username_pattern: text, username_min: whole, username_max: whole, password_min: whole, password_max: whole,
    max_upload_bytes: optional(whole), upload_chunk_bytes: optional(whole),
  }),
});

let optionsRequest: Promise<SceneOptions> | null = null;

/**
 * GET /user/scene/options (no login needed), asked once per page load and shared by every page; a failed
 * request is forgotten, so calling again (a "Try again" button) asks the server again.
 */
export function sceneOptions(): Promise<SceneOptions> {
  if (optionsRequest) return optionsRequest;
  const request = send("GET", "/user/scene/options", { auth: false })
    .then((res) => res.json() as Promise<unknown>)
    .then((body) => checkOptions(body, "body"), (err: unknown) => {
      if (err instanceof SyntaxError) throw new Error("The server's scene options are not JSON.");
      throw err;
    });
  optionsRequest = request;
  request.catch(() => {
    if (optionsRequest === request) optionsRequest = null;
  });
  return request;
}

export interface NewSceneFields extends TrainingFields {
  file: File;
  sceneName: string;
}

export interface UploadHandle {
  promise: Promise<{ id: string; message: string }>;
  /** Stops the upload and deletes what the server has of it (tus termination). */
  abort(): void;
}

/** How a resumable upload goes: bytes sent, and where it started when the server already had some. */
export interface UploadEvents {
  onProgress(sent: number, total: number): void;
  /** The server already held `offset` bytes of this file from an earlier try (a reload, a closed tab). */
  onResume(offset: number, total: number): void;
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

/**
 * Uploads the video with the tus protocol (resumable): a dropped connection is retried from the server's
 * offset, and after a reload choosing the same file with the same settings continues the earlier upload
 * (tus-js-client keeps its URL in localStorage, under a fingerprint of the user, the file and the settings).
 * The fields travel in Upload-Metadata and are checked by the server before any byte is sent.
 */
export function uploadScene(fields: NewSceneFields, events: UploadEvents, chunkBytes?: number): UploadHandle {
  const metadata: Record<string, string> = {
    filename: fields.file.name,
    filetype: fields.file.type,
    ...trainingFormFields(fields),
    ...(fields.sceneName ? { scene_name: fields.sceneName } : {}),
  };
  const user = session.username ?? "";
  let sceneId: string | null = null;
  let resuming = false;
  // Cancel can land while the creating POST is on its way. Dropping that request would not undo it (the
  // server may already have made the upload) and would lose its answer, the only thing that names it: the
  // upload would then sit on the server until it expired. So the request is left to answer, and the upload
  // it names is terminated as soon as its URL is known.
  let cancelled = false;
  let creating = false;
  let settle: { resolve: (v: { id: string; message: string }) => void; reject: (e: unknown) => void } | null = null;
  const promise = new Promise<{ id: string; message: string }>((resolve, reject) => {
    settle = { resolve, reject };
  });
  const finish = (outcome: { id: string } | { error: unknown }): void => {
    const done = settle;
    settle = null;
    if (!done) return;
    if ("id" in outcome) done.resolve({ id: outcome.id, message: "Video received and processing scene." });
    else done.reject(outcome.error);
  };

  const upload = new tus.Upload(fields.file, {
    endpoint: TUS_ENDPOINT,
    metadata,
    ...(chunkBytes ? { chunkSize: chunkBytes } : {}),
    retryDelays: RETRY_DELAYS,
    removeFingerprintOnSuccess: true,
    // The same file sent by another user, or with other settings, is another upload.
    fingerprint: (file: File) =>
      Promise.resolve(["vidscene-tus", user, file.name, file.size, file.lastModified, JSON.stringify(metadata)].join("|")),
    onBeforeRequest: (req) => {
      if (memoryToken) req.setHeader("Authorization", `Bearer ${memoryToken}`);
      if (req.getMethod() === "POST") creating = true;
    },
    onUploadUrlAvailable: () => {
      creating = false;
      if (cancelled) terminate();
    },
    onAfterResponse: (req, res) => {
      if (req.getMethod() === "POST" && !(res.getStatus() >= 200 && res.getStatus() < 300)) creating = false;
      const id = res.getHeader("Upload-Scene-Id");
      if (id) sceneId = id;
      const offset = Number(res.getHeader("Upload-Offset") ?? "0");
      if (resuming && req.getMethod() === "HEAD" && res.getStatus() === 200 && offset > 0) {
        resuming = false;
        events.onResume(offset, fields.file.size);
      }
    },
    onProgress: (sent, total) => events.onProgress(sent, total),
    onShouldRetry: (err) => {
      if (cancelled) {
        creating = false; // a creation that failed made nothing: there is nothing left to wait for
        return false;
      }
      return !FINAL_STATUSES.has(tusErrorStatus(err));
    },
    onSuccess: () => {
      void (async () => {
        // Every answer about a finished upload names its scene; ask once more if the last one was lost.
        if (!sceneId && upload.url) {
          const path = new URL(upload.url, window.location.href).pathname;
          const body = (await (await send("GET", path)).json()) as { id?: unknown };
          if (typeof body.id === "string") sceneId = body.id;
          else {
            // Every byte arrived but the server stopped before making the scene: the end, sent again, makes it.
            const res = await send("PATCH", path, {
              headers: {
                "Tus-Resumable": "1.0.0",
                "Upload-Offset": String(fields.file.size),
                "Content-Type": "application/offset+octet-stream",
              },
            });
            sceneId = res.headers.get("Upload-Scene-Id");
          }
        }
        if (!sceneId) throw new ApiError(0, "The video was uploaded but the server named no scene for it.");
        finish({ id: sceneId });
      })().catch((error: unknown) => finish({ error }));
    },
    onError: (err) => {
      const status = tusErrorStatus(err);
      const text = tusErrorMessage(err);
      if (status === 401 && memoryToken) session.clear(sessionEndedReason(text));
      finish({ error: new ApiError(status, text) });
    },
  });

  void upload.findPreviousUploads().then(
    (previous) => {
      if (!settle) return; // cancelled meanwhile
      const last = previous[0];
      if (last) {
        resuming = true;
        upload.resumeFromPreviousUpload(last);
      }
      upload.start();
    },
    (error: unknown) => finish({ error }),
  );

  // Stops the request in flight and deletes the upload on the server (and its stored URL).
  const terminate = (): void => {
    upload.abort(true).catch(() => {
      /* nothing was created yet, or the server already forgot it */
    });
  };

  return {
    promise,
    abort: () => {
      if (!settle) return;
      cancelled = true;
      finish({ error: new DOMException("Upload cancelled", "AbortError") });
      if (creating && !upload.url) return; // onUploadUrlAvailable terminates it (see `cancelled`)
      terminate();
    },
  };
}

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

// ---- share links: the owner's management, and what a token opens without login ----

export interface ShareLink {
  token: string;
  /** The share page, relative to the server ("/s/<token>"). */
  url: string;
  /** ISO 8601. */
  created: string;
  expires: string | null;
}

export async function createShare(sceneId: string, expiresInDays: number | null): Promise<ShareLink> {
  return sendJson<ShareLink>("POST", `/user/scene/share/${enc(sceneId)}`,
    expiresInDays === null ? {} : { json: { expires_in_days: expiresInDays } });
}

export async function listShares(sceneId: string, signal?: AbortSignal): Promise<ShareLink[]> {
  const body = await sendJson<{ shares: ShareLink[] }>("GET", `/user/scene/shares/${enc(sceneId)}`, { signal });
  return body.shares;
}

export async function revokeShare(sceneId: string, token: string): Promise<void> {
  await sendJson("DELETE", `/user/scene/share/${enc(sceneId)}/${enc(token)}`);
}

/** A shared scene's metadata (the seed's shape, with its name); 404 for a dead link. Never sends the JWT. */
export async function sharedMetadata(token: string, signal?: AbortSignal): Promise<Metadata & { name: string }> {
  return sendJson<Metadata & { name: string }>("GET", `/public/${enc(token)}/metadata`, { signal, auth: false });
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

// ---- derived views of progress ----

export function stateOf(p: Progress): SceneState {
  if (p.state) return p.state;
  if (p.processing) return p.current_position > 0 || p.overall_position === 0 ? "processing" : "queued";
  return p.error ? "failed" : "done";
}

export function isFinished(state: SceneState): boolean {
  return state === "done" || state === "failed" || state === "cancelled";
}

/** Percent of the whole job, 0..100, from the server's `percent` or else from the stage counters. */
export function percentOf(p: Progress): number {
  const state = stateOf(p);
  if (state === "done") return 100;
  if (typeof p.percent === "number" && Number.isFinite(p.percent)) return Math.max(0, Math.min(100, p.percent));
  if (state === "queued" || p.current_size <= 0) return 0;
  const inStage = Math.max(0, Math.min(1, p.current_position / p.current_size));
  // sfm_list is roughly the first fifth of a typical job; nerf_list the rest.
  return p.stage === "nerf_list" ? 20 + 80 * inStage : 20 * inStage;
}
