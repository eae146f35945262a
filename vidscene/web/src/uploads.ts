// The one upload the app runs at a time, kept outside the pages: leaving the upload form (for the scene list,
// say) must not abort a multi-gigabyte upload, and whichever page is open shows how it is going. While bytes
// are on their way, closing or reloading the tab asks first (beforeunload).

import { useEffect, useState } from "preact/hooks";

import { ApiError } from "./api/client";
import type { NewSceneFields, UploadHandle } from "./api/uploads";
import { session } from "./api/session";
import { uploadScene } from "./api/uploads";
import { errorText, isAbort } from "./components";
import { navigate, parseRoute } from "./router";
import type { SettingsDraft } from "./settings";
import type { UnfinishedUpload } from "./unfinishedUploads";
import { forgetUpload, newUploadId, rememberUpload } from "./unfinishedUploads";

export type UploadState =
  // `label`: the scene name typed, else the file's name.
  /** Bytes on their way (`loaded` of `total`); once all are sent the server probes the video. */
  /** `resumedFrom`: bytes the server already had from an earlier try of this file (0: a fresh upload). */
  | { phase: "sending"; label: string; fileName: string; loaded: number; total: number; resumedFrom: number }
  | { phase: "done"; label: string; id: string }
  | { phase: "failed"; label: string; error: string }
  | { phase: "cancelled"; label: string };

type Listener = () => void;

/** What the upload form holds, kept while the user is on other pages. */
export interface UploadDraft {
  file: File | null;
  name: string;
  settings: SettingsDraft;
}

let current: UploadState | null = null;
// The form's contents survive leaving the page (to look at the scene list while a video uploads, say): coming
// back shows the same file, name and settings, not a blank form beside an upload of something else.
let draft: UploadDraft | null = null;
let handle: UploadHandle | null = null;
// The running upload's entry among the unfinished ones (unfinishedUploads.ts).
let runningId: string | null = null;
const listeners = new Set<Listener>();

function set(next: UploadState | null): void {
  current = next;
  if (next?.phase === "sending") window.addEventListener("beforeunload", warnBeforeUnload);
  else window.removeEventListener("beforeunload", warnBeforeUnload);
  listeners.forEach((fn) => fn());
}

function warnBeforeUnload(event: BeforeUnloadEvent): void {
  // Browsers show their own wording; both calls are needed across engines.
  event.preventDefault();
  event.returnValue = "";
}

export function uploadDraft(): UploadDraft | null {
  return draft;
}

export function saveUploadDraft(next: UploadDraft): void {
  draft = next;
}

export function isUploading(): boolean {
  return current?.phase === "sending";
}

/** The id of the unfinished upload this page is sending now (not one to offer for resuming). */
export function runningUploadId(): string | null {
  return isUploading() ? runningId : null;
}

// Answers after which the upload cannot be resumed: bad fields, refused, too large, not a video, gone.
const UNRESUMABLE = new Set([400, 403, 404, 410, 413, 415]);

/** The unfinished-upload entry of an upload about to start; it is stored once the server names its URL. */
function entryOf(fields: NewSceneFields, settings: SettingsDraft, resume?: UnfinishedUpload): Omit<UnfinishedUpload, "url"> {
  const { file, sceneName, trainingMode, outputTypes, saveIterations, totalIterations, preset } = fields;
  return {
    id: resume?.id ?? newUploadId(),
    user: session.username ?? "",
    fileName: file.name,
    size: file.size,
    lastModified: file.lastModified,
    sceneName,
    fields: { trainingMode, outputTypes, saveIterations, totalIterations, preset },
    settings,
    startedAt: resume?.startedAt ?? Date.now(),
  };
}

/**
 * Starts an upload (one at a time: a running one is refused with an Error). It is resumable: a dropped
 * connection carries on by itself, and after a reload it is listed as unfinished (with `settings`, the form
 * as filled in) and `resume`d from what the server already has. `chunkBytes`: the server's PATCH size.
 */
export function startUpload(fields: NewSceneFields, chunkBytes: number | undefined, settings: SettingsDraft,
  resume?: UnfinishedUpload): void {
  if (isUploading()) throw new Error("Another upload is still running; wait for it or cancel it first.");
  const label = fields.sceneName || fields.file.name; // what the user recognises the upload by
  const entry = entryOf(fields, settings, resume);
  const mine = uploadScene(
    fields,
    {
      onProgress: (loaded, total) => {
        if (handle === mine && current?.phase === "sending") set({ ...current, loaded, total });
      },
      onResume: (offset, total) => {
        if (handle === mine && current?.phase === "sending") {
          set({ ...current, resumedFrom: offset, loaded: Math.max(current.loaded, offset), total });
        }
      },
      onUrl: (url) => {
        if (handle === mine) rememberUpload({ ...entry, url }, fields.file);
      },
    },
    chunkBytes,
    resume?.url,
  );
  handle = mine;
  runningId = entry.id;
  set({ phase: "sending", label, fileName: fields.file.name, loaded: 0, total: fields.file.size, resumedFrom: 0 });
  followUpload(mine, entry.id, label);
}

/** What becomes of the upload: the new scene, a failure (resumable or not), or the cancellation. */
function followUpload(mine: UploadHandle, entryId: string, label: string): void {
  mine.promise.then(
    ({ id }) => {
      forgetUpload(entryId);
      if (handle !== mine) return;
      handle = null;
      draft = null; // sent: the next visit to the form starts afresh
      // Someone still on the form is taken to the new scene; anywhere else the banner offers the link.
      if (parseRoute(window.location.hash).name === "new") {
        set(null);
        navigate({ name: "scene", id });
      } else {
        set({ phase: "done", label, id });
      }
    },
    (err: unknown) => {
      // Cancelled (the server's copy is deleted) or refused for good: nothing left to resume.
      if (isAbort(err) || (err instanceof ApiError && UNRESUMABLE.has(err.status))) forgetUpload(entryId);
      if (handle !== mine) return;
      handle = null;
      set(isAbort(err) ? { phase: "cancelled", label } : { phase: "failed", label, error: errorText(err) });
    },
  );
}

export function cancelUpload(): void {
  handle?.abort(); // deletes the upload on the server; the promise's rejection records the cancellation
}

/** Forgets a finished, failed or cancelled upload (its banner or message goes away). */
export function dismissUpload(): void {
  if (!isUploading()) set(null);
}

// Logging out (or a session the server ended) stops the upload: it belongs to the user who started it.
session.subscribe(() => {
  if (session.token) return;
  if (handle) {
    const stopping = handle;
    handle = null;
    stopping.abort();
  }
  draft = null;
  if (current) set(null);
});

export function useUpload(): UploadState | null {
  const [state, setState] = useState(current);
  useEffect(() => {
    const update = (): void => setState(current);
    listeners.add(update);
    update();
    return () => void listeners.delete(update);
  }, []);
  return state;
}
