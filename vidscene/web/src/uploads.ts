// The one upload the app runs at a time, kept outside the pages: leaving the upload form (for the scene list,
// say) must not abort a multi-gigabyte upload, and whichever page is open shows how it is going. While bytes
// are on their way, closing or reloading the tab asks first (beforeunload).

import { useEffect, useState } from "preact/hooks";

import type { NewSceneFields, UploadHandle } from "./api/uploads";
import { session } from "./api/session";
import { uploadScene } from "./api/uploads";
import { errorText, isAbort } from "./components";
import { navigate, parseRoute } from "./router";
import type { SettingsDraft } from "./settings";

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

/**
 * Starts an upload (one at a time: a running one is refused with an Error). It is resumable: a dropped
 * connection carries on by itself, and after a reload the same file with the same settings continues from
 * what the server already has. `chunkBytes`: the server's PATCH size, when it names one.
 */
export function startUpload(fields: NewSceneFields, chunkBytes?: number): void {
  if (isUploading()) throw new Error("Another upload is still running; wait for it or cancel it first.");
  const label = fields.sceneName || fields.file.name; // what the user recognises the upload by
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
    },
    chunkBytes,
  );
  handle = mine;
  set({ phase: "sending", label, fileName: fields.file.name, loaded: 0, total: fields.file.size, resumedFrom: 0 });
  mine.promise.then(
    ({ id }) => {
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
