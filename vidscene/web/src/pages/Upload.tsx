import type { JSX, Ref, RefObject } from "preact";
import { useEffect, useId, useRef, useState } from "preact/hooks";

import type { OptionLimits, SceneOptions } from "../api/options";
import { useSceneOptions } from "../catalogue";
import { ErrorMessage, Notice, OptionsUnavailable, PageHeading, ProgressBar, errorText } from "../components";
import { FilmingAdvice } from "../filming";
import { formatBytes } from "../format";
import { UnfinishedUploads } from "../resumeList";
import { href } from "../router";
import type { SettingsDraft } from "../settings";
import { TrainingSettings, checkSettings, defaultSettings } from "../settings";
import type { UploadDraft, UploadState } from "../uploads";
import { cancelUpload, dismissUpload, saveUploadDraft, startUpload, uploadDraft, useUpload } from "../uploads";
import { sceneNameError, videoFileError } from "../validate";

export function UploadPage(): JSX.Element {
  const options = useSceneOptions();
  // A resumed upload puts its file and settings into the form's draft: the form is made again to show them.
  const [formKey, setFormKey] = useState(0);
  return (
    <section class="upload">
      <PageHeading title="New scene">
        <p class="muted">Upload a video that walks slowly around the subject; the server does the rest.</p>
      </PageHeading>
      <div class="upload-layout">
        <div class="upload-main">
          {options.status === "ready" ? (
            <>
              <UnfinishedUploads options={options.options} onResumed={() => setFormKey((k) => k + 1)} />
              <UploadForm options={options.options} key={formKey} />
            </>
          ) : options.status === "error" ? (
            <div class="card">
              <OptionsUnavailable what="the training options" error={options.error} onRetry={options.retry} />
            </div>
          ) : (
            <p class="card muted" role="status">
              Loading the training options…
            </p>
          )}
        </div>
        <aside class="card upload-filming">
          <FilmingAdvice />
        </aside>
      </div>
    </section>
  );
}

/** The upload's progress, as the form and the banner on other pages show it. */
export function UploadProgress({ state }: { state: Extract<UploadState, { phase: "sending" }> }): JSX.Element {
  const pct = state.total > 0 ? (100 * state.loaded) / state.total : 0;
  return (
    <div class="upload-progress">
      {state.resumedFrom > 0 && (
        <p class="hint" role="status">
          Resumed: the server already had {formatBytes(state.resumedFrom)} of this video from the earlier try.
        </p>
      )}
      <ProgressBar
        value={pct}
        label="Upload progress"
        text={
          state.loaded >= state.total
            ? "Uploaded; the server is checking the video…"
            : `${Math.floor(pct)}% · ${formatBytes(state.loaded)} of ${formatBytes(state.total)}`
        }
      />
    </div>
  );
}

function UploadForm({ options }: { options: SceneOptions }): JSX.Element {
  const { limits } = options;
  const { file, setFile, name, setName, settings, setSettings, fileInput } = useUploadDraft(options);
  const [error, setError] = useState<string | null>(null);
  const upload = useUpload();
  const uploading = upload?.phase === "sending";

  function onSubmit(e: Event): void {
    e.preventDefault();
    setError(null);
    dismissUpload();
    const problem = sendUpload(options, file, name, settings);
    if (problem) setError(problem);
  }

  const failed = upload?.phase === "failed" ? upload.error : null;
  const cancelled = upload?.phase === "cancelled" ? "Upload cancelled. Nothing was kept on the server." : null;

  return (
    <form class="card" onSubmit={onSubmit} noValidate>
      <FileField file={file} onChange={setFile} inputRef={fileInput} disabled={uploading} />
      <SceneNameField limits={limits} value={name} onChange={setName} disabled={uploading} />
      <TrainingSettings options={options} value={settings} onChange={setSettings} disabled={uploading} />
      <p class="hint">
        Uploads resume: a dropped connection carries on by itself, and if this page is closed or reloaded, the
        upload is listed above with a button to resume it (or choose the same video with the same settings to
        continue from where it stopped).
      </p>
      <ErrorMessage message={error ?? failed} />
      <Notice message={cancelled} />
      {upload?.phase === "sending" && <UploadProgress state={upload} />}
      <UploadActions uploading={uploading} />
    </form>
  );
}

/** Starts the upload of what the form holds; returns why it cannot, or null once it has started. */
function sendUpload(options: SceneOptions, file: File | null, name: string, settings: SettingsDraft): string | null {
  const checked = checkSettings(options, settings);
  if ("error" in checked) return checked.error;
  const problem = videoFileError(file, options.limits) ?? sceneNameError(name.trim(), options.limits);
  if (problem || !file) return problem ?? "Choose a video file to upload.";
  try {
    startUpload({ file, sceneName: name.trim(), ...checked.value }, options.limits.upload_chunk_bytes, settings);
  } catch (err) {
    return errorText(err);
  }
  return null;
}

interface UploadFields {
  file: File | null;
  setFile: (file: File | null) => void;
  name: string;
  setName: (name: string) => void;
  settings: SettingsDraft;
  setSettings: (settings: SettingsDraft) => void;
  fileInput: RefObject<HTMLInputElement | null>;
}

/**
 * The form's fields, kept as a draft while the user goes elsewhere in the app (and restored from a resumed
 * upload): the file, the scene name and the training settings.
 */
function useUploadDraft(options: SceneOptions): UploadFields {
  const [start] = useState<UploadDraft>(
    () => uploadDraft() ?? { file: null, name: "", settings: defaultSettings(options) },
  );
  const [file, setFile] = useState<File | null>(start.file);
  const [name, setName] = useState(start.name);
  const [settings, setSettings] = useState<SettingsDraft>(start.settings);
  const fileInput = useRef<HTMLInputElement>(null);

  useEffect(() => {
    saveUploadDraft({ file, name, settings });
  }, [file, name, settings]);

  // A file chosen before leaving the page is put back into the input, so the form shows what it will send.
  useEffect(() => {
    const input = fileInput.current;
    if (!input || !start.file || input.files?.[0] === start.file) return;
    try {
      const files = new DataTransfer();
      files.items.add(start.file);
      input.files = files.files;
    } catch {
      /* the hint below still names the file */
    }
  }, []);

  return { file, setFile, name, setName, settings, setSettings, fileInput };
}

function FileField({ file, onChange, inputRef, disabled }: {
  file: File | null;
  onChange: (file: File | null) => void;
  inputRef: Ref<HTMLInputElement>;
  disabled: boolean;
}): JSX.Element {
  const id = useId();
  return (
    <div class="field">
      <label for={id}>Video file</label>
      <input
        id={id}
        ref={inputRef}
        name="file"
        type="file"
        accept="video/*,.mp4,.mov,.m4v,.webm,.mkv,.avi"
        required
        disabled={disabled}
        onChange={(e) => onChange(e.currentTarget.files?.[0] ?? null)}
      />
      {file && (
        <small class="hint">
          {file.name} · {formatBytes(file.size)}
        </small>
      )}
    </div>
  );
}

function SceneNameField({ limits, value, onChange, disabled }: {
  limits: OptionLimits;
  value: string;
  onChange: (name: string) => void;
  disabled: boolean;
}): JSX.Element {
  const id = useId();
  return (
    <div class="field">
      <label for={id}>Scene name (optional)</label>
      <input
        id={id}
        name="scene_name"
        type="text"
        value={value}
        maxLength={limits.max_scene_name}
        placeholder={limits.default_scene_name}
        disabled={disabled}
        onInput={(e) => onChange(e.currentTarget.value)}
      />
    </div>
  );
}

function UploadActions({ uploading }: { uploading: boolean }): JSX.Element {
  return (
    <div class="actions">
      {/* Two keyed elements, never one that changes type: the click that cancels would otherwise submit
          the form again, since the button is back to type=submit by the time the click's default runs. */}
      {uploading ? (
        <button
          type="button"
          class="secondary"
          key="cancel"
          onClick={(e) => {
            e.preventDefault();
            cancelUpload();
          }}
        >
          Cancel upload
        </button>
      ) : (
        <button type="submit" key="submit">
          Upload and start
        </button>
      )}
    </div>
  );
}

/**
 * The running (or just finished) upload on every page but the form: uploads go on while the user looks
 * around, so the progress, a way to cancel and the link to the new scene must be at hand everywhere.
 */
export function UploadBanner({ onForm }: { onForm: boolean }): JSX.Element | null {
  const upload = useUpload();
  if (!upload || (onForm && upload.phase !== "done")) return null;
  const label = `“${upload.label}”`;
  return (
    <section class={`upload-banner card upload-banner-${upload.phase}`} aria-label="Upload">
      {upload.phase === "sending" ? (
        <>
          <p>
            Uploading {label}. Keep this tab open until it is sent; the rest of the app works meanwhile.
          </p>
          <UploadProgress state={upload} />
          <div class="actions">
            <a class="button secondary small" href="#/new">Show the upload</a>
            <button type="button" class="secondary small" onClick={cancelUpload}>
              Cancel upload
            </button>
          </div>
        </>
      ) : (
        <div class="upload-banner-row">
          {upload.phase === "done" ? (
            <p role="status">
              {label} is uploaded and queued for processing.{" "}
              <a href={href({ name: "scene", id: upload.id })} onClick={dismissUpload}>Open the scene</a>
            </p>
          ) : upload.phase === "failed" ? (
            <p role="alert" class="error-text">
              The upload of {label} failed: {upload.error} <a href="#/new">Back to the form</a>
            </p>
          ) : (
            <p role="status">The upload of {label} was cancelled.</p>
          )}
          <button type="button" class="link" onClick={dismissUpload}>
            Dismiss
          </button>
        </div>
      )}
    </section>
  );
}
