// The transport of the client for the public vidscene HTTP API (docs/api.md): requests with
// the session's token, and the server's errors as ApiError. The app uses nothing else: every request made
// through it is one any other client could make.

import { session, sessionEndedReason } from "./session";

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

export interface RequestOptions {
  json?: unknown;
  auth?: boolean;
  headers?: Record<string, string>;
  signal?: AbortSignal;
  /** A 401 from a route that checks the current password means "wrong password", not "logged out". */
  passwordChecked?: boolean;
}

function authHeaders(): Record<string, string> {
  const token = session.token;
  return token ? { Authorization: `Bearer ${token}` } : {};
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
  if (error.status === 401 && options.auth !== false && !options.passwordChecked && session.token) {
    session.clear(sessionEndedReason(error.message)); // expired or revoked token: back to the login page
  }
}

export async function send(method: string, path: string, options: RequestOptions = {}): Promise<Response> {
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

/** Encodes one path segment or query value. */
export const enc = encodeURIComponent;
