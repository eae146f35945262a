import type { JSX } from "preact";
import { useEffect, useId, useMemo, useRef, useState } from "preact/hooks";

import type { SceneOptions } from "../api/options";
import type { InitialView, Metadata, Progress, ResourceInfo, SceneState } from "../api/types";
import { ApiError } from "../api/client";
import { deleteScene, isFinished, renameScene, sceneMetadata, sceneName, sceneProgress, stateOf } from "../api/scenes";
import type { OptionsState } from "../catalogue";
import { modesMaking, outputExtension, outputLabel, outputNamed, useLimits, useSceneOptions } from "../catalogue";
import {
  ConfirmDialog,
  ErrorMessage,
  OptionsUnavailable,
  PageHeading,
  ProgressBar,
  errorText,
  isAbort,
} from "../components";
import { formatBytes } from "../format";
import type { CloudType, OutputCache } from "../outputs";
import { cloudAt, existing, openCloudViewer, ownerOutputs, viewableIterations } from "../outputs";
import { navigate } from "../router";
import type { ControlMode, ViewerHandle } from "../viewer/types";
import { MetricsPanel } from "./MetricsPanel";
import { ViewerTools } from "./ViewerTools";
import { SceneStatus } from "./SceneStatus";
import { SharePanel } from "./SharePanel";
import { usePolling } from "../polling";
import { StateBadge } from "./Scenes";

const POLL_MS = 2500;

type Cache = OutputCache;

export function Viewer({
  sceneId,
  type,
  iteration,
  info,
  cache,
  initialView = null,
}: {
  sceneId: string;
  type: CloudType;
  iteration: string;
  info: ResourceInfo;
  cache: Cache;
  /** The first capture camera (metadata's initial_view): where the view opens. */
  initialView?: InitialView | null;
}): JSX.Element {
  const container = useRef<HTMLDivElement>(null);
  const handle = useRef<ViewerHandle | null>(null);
  const [mode, setMode] = useState<ControlMode>("orbit");
  const [loaded, setLoaded] = useState<number | null>(0);
  const [status, setStatus] = useState<"loading" | "ready" | "error">("loading");
  const [error, setError] = useState<string | null>(null);
  const modeName = useId();
  const modeRef = useRef(mode);
  modeRef.current = mode;
  const viewRef = useRef(initialView); // read when the view is built: a metadata poll must not rebuild it
  viewRef.current = initialView;

  useEffect(() => {
    const controller = new AbortController();
    setStatus("loading");
    setError(null);
    setLoaded(0);
    (async () => {
      const h = await openCloudViewer(container, cache, { type, info }, iteration, setLoaded, controller.signal,
        modeRef.current, viewRef.current);
      if (!h) return;
      handle.current = h;
      setStatus("ready");
    })().catch((err: unknown) => {
      if (controller.signal.aborted || isAbort(err)) return;
      setStatus("error");
      setError(`Could not show the 3D view: ${errorText(err)}`);
    });
    return () => {
      controller.abort();
      handle.current?.dispose();
      handle.current = null;
    };
  }, [sceneId, type, iteration, info.size]);

  function pickMode(next: ControlMode): void {
    setMode(next);
    handle.current?.setMode(next);
  }

  return (
    <section class="viewer card" aria-labelledby="viewer-heading">
      <div class="section-head">
        <h2 id="viewer-heading">3D view</h2>
        <div class="viewer-tools">
          <fieldset class="segmented">
            <legend class="visually-hidden">Camera controls</legend>
            {(["orbit", "fly"] as ControlMode[]).map((m) => (
              <label key={m}>
                <input type="radio" name={modeName} value={m} checked={mode === m} onChange={() => pickMode(m)} />
                <span>{m === "orbit" ? "Orbit" : "Fly"}</span>
              </label>
            ))}
          </fieldset>
          <button type="button" class="secondary small" onClick={() => handle.current?.resetView()}
            disabled={status !== "ready"}>
            {initialView ? "First camera" : "Reset view"}
          </button>
          <ViewerTools handle={handle} stage={container} ready={status === "ready"} />
        </div>
      </div>
      <div class="viewer-stage" ref={container} data-status={status} data-testid="viewer">
        {status === "loading" && (
          <div class="viewer-overlay">
            <ProgressBar value={loaded} label="Loading the 3D scene"
              text={loaded === null ? "Preparing…" : `Loading ${Math.floor(loaded)}%`} />
          </div>
        )}
      </div>
      <ErrorMessage message={error} />
      <p class="hint">
        {mode === "orbit"
          ? "Drag to orbit, right-drag or two fingers to pan, scroll or pinch to zoom. With the view focused, arrow keys pan."
          : "Click the view, then W A S D or the arrow keys to move, E and Q to rise and sink; drag to look around."}
      </p>
    </section>
  );
}

export function VideoPlayer({
  sceneId,
  iteration,
  info,
  cache,
}: {
  sceneId: string;
  iteration: string;
  info: ResourceInfo;
  cache: Cache;
}): JSX.Element {
  const [url, setUrl] = useState<string | null>(null);
  const [loaded, setLoaded] = useState(0);
  const [error, setError] = useState<string | null>(null);

  useEffect(() => {
    const controller = new AbortController();
    let objectUrl: string | null = null;
    setUrl(null);
    setError(null);
    cache.fetch("video", iteration, info, (r, t) => setLoaded(t ? (100 * r) / t : 0), controller.signal)
      .then(({ blob }) => {
        if (controller.signal.aborted) return;
        objectUrl = URL.createObjectURL(blob);
        setUrl(objectUrl);
      })
      .catch((err: unknown) => {
        if (!isAbort(err)) setError(errorText(err));
      });
    return () => {
      controller.abort();
      if (objectUrl) URL.revokeObjectURL(objectUrl);
    };
  }, [sceneId, iteration, info.size]);

  return (
    <section class="video card" aria-labelledby="video-heading">
      <h2 id="video-heading">Rendered video</h2>
      {url ? (
        <video src={url} controls loop playsInline muted preload="auto" aria-label={`Rendered video at iteration ${iteration}`} />
      ) : (
        !error && <ProgressBar value={loaded} label="Loading the video" text={`Loading ${Math.floor(loaded)}%`} />
      )}
      <ErrorMessage message={error} />
    </section>
  );
}

function DownloadButton({
  sceneId,
  type,
  label: outputText,
  extension,
  iteration,
  info,
  cache,
}: {
  sceneId: string;
  type: string;
  /** The output's label with its extension, as the table shows it. */
  label: string;
  /** For the file name when the server sends none. */
  extension: string;
  iteration: string;
  info: ResourceInfo;
  cache: Cache;
}): JSX.Element {
  const [progress, setProgress] = useState<number | null>(null);
  const [error, setError] = useState<string | null>(null);

  async function onClick(): Promise<void> {
    setError(null);
    setProgress(0);
    try {
      const { blob, fileName } = await cache.fetch(type, iteration, info, (r, t) =>
        setProgress(t ? (100 * r) / t : 100),
      );
      const url = URL.createObjectURL(blob);
      const a = document.createElement("a");
      a.href = url;
      a.download = fileName ?? `${sceneId}-${type}-${iteration}${extension}`;
      a.style.display = "none";
      document.body.appendChild(a);
      a.click();
      a.remove();
      // Give the browser time to start the save before the blob goes away.
      window.setTimeout(() => URL.revokeObjectURL(url), 60_000);
      setProgress(100);
    } catch (err) {
      setProgress(null);
      setError(errorText(err));
    }
  }

  const busy = progress !== null && progress < 100;
  const label = `${outputText}, iteration ${iteration}`;
  return (
    <div class="download">
      <button type="button" class="secondary small" onClick={() => void onClick()} disabled={busy}
        aria-label={`Download ${label}`} data-output={type} data-iteration={iteration}>
        {busy ? "Downloading…" : "Download"}
      </button>
      {progress !== null && (
        <ProgressBar value={progress} label={`Download of ${label}`} text={`${Math.floor(progress)}%`}
          tone={progress >= 100 ? "ok" : undefined} />
      )}
      {error && (
        <span class="error-text" role="alert">
          {error}
        </span>
      )}
    </div>
  );
}

interface DownloadRow {
  type: string;
  label: string;
  extension: string;
  iteration: string;
  info: ResourceInfo;
}

/** One row per file, output types in the catalogue's order (any it does not name last, by their name). */
function downloadRows(options: SceneOptions, meta: Metadata): DownloadRow[] {
  const types = Object.keys(meta.resources);
  const modes = modesMaking(options, types);
  const rank = (type: string): number => {
    const i = options.output_types.findIndex((o) => o.name === type);
    return i < 0 ? options.output_types.length : i;
  };
  return types
    .sort((a, b) => rank(a) - rank(b) || a.localeCompare(b))
    .flatMap((type) => {
      const output = outputNamed(options, type);
      const label = output ? outputLabel(output, modes) : type;
      const extension = output ? outputExtension(output, modes) : "";
      return Object.entries(meta.resources[type] ?? {})
        .sort((a, b) => Number(a[0]) - Number(b[0]))
        .map(([iteration, info]) => ({ type, label, extension, iteration, info }));
    });
}

/**
 * The files to download. While processing, every requested file is listed (those to come as "Not ready
 * yet"); once finished, only the files that exist: a failed scene with none has no section at all.
 */
export function Downloads({ sceneId, meta, options, cache, state }: {
  sceneId: string;
  meta: Metadata;
  options: OptionsState;
  cache: Cache;
  state: SceneState | null;
}): JSX.Element | null {
  const finished = state !== null && isFinished(state);
  const anyFile = Object.values(meta.resources).some((byIteration) => Object.values(byIteration).some((i) => i.exists));
  if (finished && !anyFile) {
    if (state !== "done") return null; // the failure box says what happened
    return (
      <section class="downloads card" aria-labelledby="downloads-heading">
        <h2 id="downloads-heading">Downloads</h2>
        <p class="muted">No files were produced.</p>
      </section>
    );
  }
  if (options.status !== "ready") {
    return (
      <section class="downloads card" aria-labelledby="downloads-heading">
        <h2 id="downloads-heading">Downloads</h2>
        {options.status === "error" ? (
          <OptionsUnavailable what="the list of output types" error={options.error} onRetry={options.retry} />
        ) : (
          <p class="muted" role="status">Loading…</p>
        )}
      </section>
    );
  }
  const rows = downloadRows(options.options, meta).filter((row) => !finished || row.info.exists);
  return (
    <section class="downloads card" aria-labelledby="downloads-heading">
      <h2 id="downloads-heading">Downloads</h2>
      {rows.length === 0 ? (
        <p class="muted">No outputs were requested.</p>
      ) : (
        <table>
          <thead>
            <tr>
              <th scope="col">Output</th>
              <th scope="col">Iteration</th>
              <th scope="col">Size</th>
              <th scope="col">
                <span class="visually-hidden">Download</span>
              </th>
            </tr>
          </thead>
          <tbody>
            {rows.map(({ type, label, extension, iteration, info }) => (
              <tr key={`${type}/${iteration}`}>
                <td data-label="Output">{label}</td>
                <td data-label="Iteration">{Number(iteration).toLocaleString("en")}</td>
                <td data-label="Size">{info.exists ? formatBytes(info.size) : "—"}</td>
                <td>
                  {info.exists ? (
                    <DownloadButton sceneId={sceneId} type={type} label={label} extension={extension}
                      iteration={iteration} info={info} cache={cache} />
                  ) : (
                    <span class="muted">Not ready yet</span>
                  )}
                </td>
              </tr>
            ))}
          </tbody>
        </table>
      )}
    </section>
  );
}

/** "Rename" opens a small form in place of the button: Enter or Save sends it, Escape or Cancel closes it. */
function RenameButton({ id, name, onRenamed }: {
  id: string;
  name: string;
  onRenamed: (name: string) => void;
}): JSX.Element {
  const limits = useLimits();
  const inputId = useId();
  const [editing, setEditing] = useState(false);
  const [value, setValue] = useState(name);
  const [error, setError] = useState<string | null>(null);
  const [busy, setBusy] = useState(false);
  const input = useRef<HTMLInputElement>(null);
  useEffect(() => {
    if (editing) input.current?.select();
  }, [editing]);

  if (!editing) {
    return (
      <button type="button" class="secondary small" onClick={() => {
        setValue(name);
        setError(null);
        setEditing(true);
      }}>
        Rename
      </button>
    );
  }

  async function onSubmit(e: Event): Promise<void> {
    e.preventDefault();
    const next = value.trim();
    if (!next) {
      setError("Give the scene a name.");
      return;
    }
    if (next === name) {
      setEditing(false);
      return;
    }
    setBusy(true);
    setError(null);
    try {
      onRenamed(await renameScene(id, next));
      setEditing(false);
    } catch (err) {
      setError(errorText(err));
    } finally {
      setBusy(false);
    }
  }

  return (
    <form class="rename" onSubmit={onSubmit} noValidate onKeyDown={(e) => e.key === "Escape" && setEditing(false)}>
      <label for={inputId} class="visually-hidden">Scene name</label>
      <input
        id={inputId}
        type="text"
        value={value}
        maxLength={limits?.max_scene_name}
        ref={input}
        disabled={busy}
        onInput={(e) => setValue(e.currentTarget.value)}
      />
      <button type="submit" class="small" disabled={busy}>Save</button>
      <button type="button" class="secondary small" onClick={() => setEditing(false)} disabled={busy}>
        Cancel
      </button>
      {error && <span class="error-text" role="alert">{error}</span>}
    </form>
  );
}

export function ScenePage({ id }: { id: string }): JSX.Element {
  const [name, setName] = useState<string | null>(null);
  const [progress, setProgress] = useState<Progress | null>(null);
  const [meta, setMeta] = useState<Metadata | null>(null);
  const [error, setError] = useState<string | null>(null);
  const [missing, setMissing] = useState(false);
  const [iteration, setIteration] = useState<string | null>(null);
  const [confirming, setConfirming] = useState(false);
  const [deleting, setDeleting] = useState(false);
  const [deleteError, setDeleteError] = useState<string | null>(null);
  const cache = useRef<Cache>(ownerOutputs(id));
  const nameRef = useRef<string | null>(null);
  const pickerId = useId();
  const options = useSceneOptions();
  // Bumped when a retry starts a new run: the polling (stopped once the last run finished) starts again.
  const [run, setRun] = useState(0);

  useEffect(() => {
    cache.current = ownerOutputs(id);
    nameRef.current = null;
    setName(null);
    setProgress(null);
    setMeta(null);
    setIteration(null);
    setMissing(false);
  }, [id]);

  function followNewRun(): void {
    cache.current = ownerOutputs(id); // the old run's files are gone
    setProgress(null);
    setMeta(null);
    setIteration(null);
    setRun((n) => n + 1);
  }

  function renamed(next: string): void {
    nameRef.current = next;
    setName(next);
  }

  usePolling(
    async (signal) => {
      try {
        const [n, p, m] = await Promise.all([
          nameRef.current === null ? sceneName(id, signal) : Promise.resolve(nameRef.current),
          sceneProgress(id, signal),
          sceneMetadata(id, signal),
        ]);
        nameRef.current = n;
        setName(n);
        setProgress(p);
        setMeta(m);
        setError(null);
        return !isFinished(stateOf(p));
      } catch (err) {
        if (isAbort(err)) throw err;
        if (err instanceof ApiError && err.status === 404) {
          setMissing(true);
          return false;
        }
        setError(errorText(err));
        return true;
      }
    },
    POLL_MS,
    [id, run],
  );

  const videos = existing(meta, "video");
  const iterations = useMemo(() => viewableIterations(meta), [meta]);

  // Follow the newest iteration until the user picks one.
  const chosen = iteration !== null && iterations.includes(iteration) ? iteration : (iterations.at(-1) ?? null);
  const videoAt = videos.find(([it]) => it === chosen);
  const cloud = cloudAt(meta, chosen);

  async function onDelete(): Promise<void> {
    setDeleting(true);
    setDeleteError(null);
    try {
      await deleteScene(id);
      setConfirming(false);
      navigate({ name: "scenes" }, true);
    } catch (err) {
      setConfirming(false);
      setDeleteError(errorText(err));
    } finally {
      setDeleting(false);
    }
  }

  if (missing) {
    return (
      <section class="card narrow">
        <PageHeading title="Scene not found" />
        <p>This scene does not exist or was deleted.</p>
        <p>
          <a href="#/">Back to your scenes</a>
        </p>
      </section>
    );
  }

  const state = progress ? stateOf(progress) : null;
  return (
    <section class="scene" data-scene-id={id}>
      <p class="crumbs">
        <a href="#/">← All scenes</a>
      </p>
      <PageHeading title={name ?? "Scene"}>
        <div class="heading-tools">
          {state && <StateBadge state={state} />}
          {name !== null && <RenameButton id={id} name={name} onRenamed={renamed} />}
          <button type="button" class="danger small" onClick={() => setConfirming(true)}>
            Delete scene…
          </button>
        </div>
      </PageHeading>
      <ErrorMessage message={error} />
      <ErrorMessage message={deleteError} />

      {progress && state !== "done" && (
        <SceneStatus id={id} name={name} progress={progress} meta={meta} onRetried={followNewRun} />
      )}

      {iterations.length > 0 && (
        <div class="iteration-picker card">
          <label for={pickerId}>Iteration</label>
          <select id={pickerId} value={chosen ?? ""} onChange={(e) => setIteration(e.currentTarget.value)}>
            {iterations.map((it) => (
              <option value={it} key={it}>
                {Number(it).toLocaleString("en")}
                {it === iterations.at(-1) ? " (latest)" : ""}
              </option>
            ))}
          </select>
        </div>
      )}

      <div class="scene-media">
        {cloud && chosen && (
          <Viewer sceneId={id} type={cloud.type} iteration={chosen} info={cloud.info} cache={cache.current}
            initialView={meta?.initial_view ?? null} />
        )}
        {videoAt && chosen && <VideoPlayer sceneId={id} iteration={chosen} info={videoAt[1]} cache={cache.current} />}
        {meta && !cloud && !videoAt && state === "done" && (
          <p class="card muted">This scene has no 3D or video output to show at this iteration.</p>
        )}
      </div>

      <MetricsPanel id={id} state={state} />

      {meta && <Downloads sceneId={id} meta={meta} options={options} cache={cache.current} state={state} />}
      {meta && <SharePanel sceneId={id} sceneName={name ?? "Scene"} />}

      <ConfirmDialog
        open={confirming}
        title="Delete this scene?"
        confirmLabel="Delete scene"
        busy={deleting}
        onConfirm={() => void onDelete()}
        onCancel={() => setConfirming(false)}
      >
        <p>
          “{name ?? id}” and all its files will be deleted for good.
          {state && !isFinished(state) ? " Processing will be stopped." : ""}
        </p>
      </ConfirmDialog>
    </section>
  );
}
