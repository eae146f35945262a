// The uploads this browser started and has not finished, kept in localStorage so that a reload, a closed tab
// or a crash does not lose them: each one's file (name, size, last change), the settings it was sent with and
// its tus URL on the server. The upload page lists them with "Resume" and "Discard"; an upload is forgotten
// when it completes, is cancelled or discarded, or the server no longer has it.

import type { TrainingFields } from "./api/types";
import type { SettingsDraft } from "./settings";

export interface UnfinishedUpload {
  id: string;
  /** Whose it is: another user logged in on this browser does not see it. */
  user: string;
  /** The upload on the server (tus); resumed from its offset there. */
  url: string;
  fileName: string;
  size: number;
  lastModified: number;
  sceneName: string;
  /** What was sent (the upload's metadata), and the form as it was, to show it again. */
  fields: TrainingFields;
  settings: SettingsDraft;
  /** When it was started (ms since the epoch). */
  startedAt: number;
}

const KEY = "vidscene:unfinished-uploads";
const listeners = new Set<() => void>();
// The files picked in this page's life: resuming one of them needs no second pick.
const files = new Map<string, File>();

function readAll(): UnfinishedUpload[] {
  try {
    const raw: unknown = JSON.parse(localStorage.getItem(KEY) ?? "[]");
    return Array.isArray(raw) ? raw.filter(isEntry) : [];
  } catch {
    return []; // storage unavailable (private mode) or garbled: nothing to list
  }
}

function isEntry(x: unknown): x is UnfinishedUpload {
  if (!x || typeof x !== "object") return false;
  const e = x as Record<string, unknown>;
  return typeof e.id === "string" && typeof e.user === "string" && typeof e.url === "string" &&
    typeof e.fileName === "string" && typeof e.size === "number" && typeof e.fields === "object" &&
    typeof e.settings === "object" && typeof e.startedAt === "number";
}

function writeAll(entries: UnfinishedUpload[]): void {
  try {
    localStorage.setItem(KEY, JSON.stringify(entries));
  } catch {
    /* storage full or unavailable: the upload still runs, it just cannot be listed after a reload */
  }
  listeners.forEach((fn) => fn());
}

export function newUploadId(): string {
  return `${Date.now().toString(36)}-${Math.random().toString(36).slice(2, 10)}`;
}

/** `user`'s unfinished uploads, oldest first. */
export function unfinishedUploads(user: string | null): UnfinishedUpload[] {
  return readAll().filter((e) => e.user === user).sort((a, b) => a.startedAt - b.startedAt);
}

/** Records (or updates) an upload once its URL is known; another entry for the same URL is the same upload. */
export function rememberUpload(entry: UnfinishedUpload, file?: File): void {
  if (file) files.set(entry.id, file);
  writeAll([...readAll().filter((e) => e.id !== entry.id && e.url !== entry.url), entry]);
}

export function forgetUpload(id: string): void {
  files.delete(id);
  const entries = readAll();
  if (entries.some((e) => e.id === id)) writeAll(entries.filter((e) => e.id !== id));
}

/** The file of an upload when it was picked in this page's life, else null (it must be picked again). */
export function knownFile(id: string): File | null {
  return files.get(id) ?? null;
}

/** Calls `fn` whenever the list changes, here or in another tab; returns the unsubscribe. */
export function onUnfinishedChange(fn: () => void): () => void {
  const fromOtherTab = (e: StorageEvent): void => {
    if (e.key === KEY) fn();
  };
  listeners.add(fn);
  window.addEventListener("storage", fromOtherTab);
  return () => {
    listeners.delete(fn);
    window.removeEventListener("storage", fromOtherTab);
  };
}
