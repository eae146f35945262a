// The upload page's list of unfinished uploads (unfinishedUploads.ts): each with its file, how much the server
// holds, its settings and when it started; "Resume" sends the rest with the settings it was started with
// (picking the file again when this page has not seen it), "Discard" deletes it on the server.

import type { JSX } from "preact";
import { useEffect, useId, useRef, useState } from "preact/hooks";

import { ApiError } from "./api/client";
import type { SceneOptions } from "./api/options";
import { session } from "./api/session";
import { terminateUpload, uploadOffset } from "./api/uploads";
import { modeNamed } from "./catalogue";
import { errorText, isAbort } from "./components";
import { formatBytes } from "./format";
import { runningUploadId, saveUploadDraft, startUpload, useUpload } from "./uploads";
import type { UnfinishedUpload } from "./unfinishedUploads";
import { forgetUpload, knownFile, onUnfinishedChange, unfinishedUploads } from "./unfinishedUploads";

type Standing =
  | { status: "checking" }
  | { status: "known"; offset: number; length: number }
  | { status: "unknown"; error: string };

/** "just now", "10 min ago", "3 h ago", "2 days ago" */
export function formatAgo(ms: number): string {
  const min = Math.floor(Math.max(0, ms) / 60_000);
  if (min < 1) return "just now";
  if (min < 60) return `${min} min ago`;
  const h = Math.floor(min / 60);
  return h < 48 ? `${h} h ago` : `${Math.floor(h / 24)} days ago`;
}

/** "Quick preview", or "Custom: Gaussian splatting, 2,000 iterations". */
function settingsText(options: SceneOptions, entry: UnfinishedUpload): string {
  const preset = entry.fields.preset ? options.presets.find((p) => p.name === entry.fields.preset) : undefined;
  if (preset) return preset.label;
  const mode = modeNamed(options, entry.fields.trainingMode)?.label ?? entry.fields.trainingMode;
  return `Custom: ${mode}, ${entry.fields.totalIterations.toLocaleString("en")} iterations`;
}

/** Where the upload stands on the server; one that is gone or complete is forgotten (and leaves the list). */
function useStanding(entry: UnfinishedUpload): Standing {
  const [standing, setStanding] = useState<Standing>({ status: "checking" });
  useEffect(() => {
    const controller = new AbortController();
    uploadOffset(entry.url, controller.signal).then(
      (at) => {
        if (at.sceneId !== null || at.offset >= at.length) forgetUpload(entry.id);
        else setStanding({ status: "known", offset: at.offset, length: at.length });
      },
      (err: unknown) => {
        if (isAbort(err)) return;
        if (err instanceof ApiError && (err.status === 404 || err.status === 410)) forgetUpload(entry.id);
        else setStanding({ status: "unknown", error: errorText(err) });
      },
    );
    return () => controller.abort();
  }, [entry.id, entry.url]);
  return standing;
}

function sentText(standing: Standing): string {
  if (standing.status === "checking") return "checking how much was sent…";
  if (standing.status === "unknown") return "the server could not be asked how much it has";
  return `${Math.floor((100 * standing.offset) / Math.max(1, standing.length))}% sent`;
}

/** Why `file` is not the upload's file, or null when its name and size match. */
function otherFileProblem(entry: UnfinishedUpload, file: File): string | null {
  if (file.name === entry.fileName && file.size === entry.size) return null;
  return `That is ${file.name} (${formatBytes(file.size)}); choose ${entry.fileName} (${formatBytes(entry.size)}) to resume this upload.`;
}

/** Resuming (with `file`, checked against the entry's) and discarding an unfinished upload. */
function useResumeActions(entry: UnfinishedUpload, chunkBytes: number | undefined, onResumed: () => void): {
  error: string | null;
  discarding: boolean;
  resumeWith: (file: File) => void;
  discard: () => void;
} {
  const [error, setError] = useState<string | null>(null);
  const [discarding, setDiscarding] = useState(false);

  function resumeWith(file: File): void {
    const problem = otherFileProblem(entry, file);
    setError(problem);
    if (problem) return;
    try {
      saveUploadDraft({ file, name: entry.sceneName, settings: entry.settings }); // the form shows what is sent
      startUpload({ file, sceneName: entry.sceneName, ...entry.fields }, chunkBytes, entry.settings, entry);
      onResumed();
    } catch (err) {
      setError(errorText(err));
    }
  }

  async function discard(): Promise<void> {
    setDiscarding(true);
    setError(null);
    try {
      await terminateUpload(entry.url);
      forgetUpload(entry.id);
    } catch (err) {
      setError(errorText(err));
      setDiscarding(false);
    }
  }

  return { error, discarding, resumeWith, discard: () => void discard() };
}

function UnfinishedItem({ entry, options, chunkBytes, blocked, onResumed }: {
  entry: UnfinishedUpload;
  options: SceneOptions;
  chunkBytes: number | undefined;
  /** Another upload is running: one at a time. */
  blocked: boolean;
  onResumed: () => void;
}): JSX.Element {
  const standing = useStanding(entry);
  const { error, discarding, resumeWith, discard } = useResumeActions(entry, chunkBytes, onResumed);
  const picker = useRef<HTMLInputElement>(null);
  const describedBy = useId();
  const known = knownFile(entry.id);
  return (
    <li class="unfinished-upload" data-upload-url={entry.url}>
      <p id={describedBy} class="unfinished-what">
        <strong>{entry.fileName}</strong>, {formatBytes(entry.size)}, {sentText(standing)},{" "}
        {settingsText(options, entry)}
        {entry.sceneName ? <>, as “{entry.sceneName}”</> : null}, started {formatAgo(Date.now() - entry.startedAt)}
      </p>
      {/* Opened by "Resume" (a click from the button's own click, which browsers allow to open a picker). */}
      <input ref={picker} type="file" hidden aria-label={`Choose ${entry.fileName} again to resume its upload`}
        onChange={(e) => {
          const file = e.currentTarget.files?.[0];
          e.currentTarget.value = "";
          if (file) resumeWith(file);
        }} />
      <div class="actions">
        <button type="button" class="small" aria-describedby={describedBy} disabled={blocked || discarding}
          onClick={() => (known ? resumeWith(known) : picker.current?.click())}>
          Resume
        </button>
        <button type="button" class="secondary small" aria-describedby={describedBy} disabled={discarding}
          onClick={discard}>
          {discarding ? "Discarding…" : "Discard"}
        </button>
      </div>
      {!known && !blocked && <small class="hint">Resume asks for the file again: this page has not seen it since the reload.</small>}
      {error && <p class="error" role="alert">{error}</p>}
    </li>
  );
}

/** The current user's unfinished uploads (not the one running here), kept up to date with the store. */
function useUnfinished(): UnfinishedUpload[] {
  const upload = useUpload(); // re-rendered when an upload starts or ends
  const read = (): UnfinishedUpload[] => unfinishedUploads(session.username);
  const [entries, setEntries] = useState(read);
  useEffect(() => onUnfinishedChange(() => setEntries(read())), []);
  const running = upload?.phase === "sending" ? runningUploadId() : null;
  return entries.filter((e) => e.id !== running);
}

/** The list, or nothing when every upload finished. `onResumed`: an upload was resumed (the form shows it). */
export function UnfinishedUploads({ options, onResumed }: { options: SceneOptions; onResumed: () => void }): JSX.Element | null {
  const entries = useUnfinished();
  const upload = useUpload();
  const headingId = useId();
  if (entries.length === 0) return null;
  return (
    <section class="card unfinished" aria-labelledby={headingId}>
      <h2 id={headingId}>Unfinished uploads</h2>
      <p class="muted">
        These stopped before the whole video was sent. Resume one to send the rest with the settings it was
        started with; the server keeps what it has for a while.
      </p>
      <ul class="unfinished-list">
        {entries.map((entry) => (
          <UnfinishedItem key={entry.id} entry={entry} options={options} chunkBytes={options.limits.upload_chunk_bytes}
            blocked={upload?.phase === "sending"} onResumed={onResumed} />
        ))}
      </ul>
    </section>
  );
}
