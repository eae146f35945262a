// The files of a scene to download, one row per output and saved iteration, each downloaded in the chunks the
// metadata describes (with a bar) and saved under the server's name for it. On the owner's page a finished
// scene also offers every other type its mode makes, at each iteration whose model is kept: "Prepare" has the
// server make it (PrepareButton).

import type { ComponentChildren, JSX } from "preact";
import { useState } from "preact/hooks";

import type { SceneOptions } from "../api/options";
import { isFinished } from "../api/scenes";
import type { Metadata, ResourceInfo, SceneState } from "../api/types";
import type { OptionsState } from "../catalogue";
import { modesMaking, outputExtension, outputLabel, outputNamed } from "../catalogue";
import { OptionsUnavailable, ProgressBar, errorText } from "../components";
import { formatBytes } from "../format";
import type { OutputCache } from "../outputs";
import { PrepareButton } from "./PrepareButton";
import { saveFile } from "./saveFile";

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
  cache: OutputCache;
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
      saveFile(blob, fileName ?? `${sceneId}-${type}-${iteration}${extension}`);
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
  /** The file as the metadata describes it; null for a type to prepare (not made yet). */
  info: ResourceInfo | null;
}

/** The types the scene's mode makes but its metadata does not list, at each iteration whose model is kept. */
function toPrepare(options: SceneOptions, meta: Metadata): { type: string; iteration: string }[] {
  const mode = options.training_modes.find((m) => m.name === meta.training_mode);
  const missing = (mode?.outputs ?? []).filter((type) => !(type in meta.resources));
  return missing.flatMap((type) => (meta.models_kept ?? []).map((iteration) => ({ type, iteration: String(iteration) })));
}

/**
 * One row per file, output types in the catalogue's order (any it does not name last, by their name), then
 * by iteration; with `preparable`, also the rows of `toPrepare`.
 */
function downloadRows(options: SceneOptions, meta: Metadata, preparable: boolean): DownloadRow[] {
  const made = Object.entries(meta.resources).flatMap(([type, byIteration]) =>
    Object.entries(byIteration).map(([iteration, info]) => ({ type, iteration, info: info as ResourceInfo | null })));
  const other = preparable ? toPrepare(options, meta).map((row) => ({ ...row, info: null })) : [];
  const modes = meta.training_mode ? [meta.training_mode] : modesMaking(options, Object.keys(meta.resources));
  const rank = (type: string): number => {
    const i = options.output_types.findIndex((o) => o.name === type);
    return i < 0 ? options.output_types.length : i;
  };
  return [...made, ...other]
    .sort((a, b) => rank(a.type) - rank(b.type) || a.type.localeCompare(b.type)
      || Number(a.iteration) - Number(b.iteration))
    .map((row) => {
      const output = outputNamed(options, row.type);
      return { ...row, label: output ? outputLabel(output, modes) : row.type,
        extension: output ? outputExtension(output, modes) : "" };
    });
}

function DownloadsCard({ children }: { children: ComponentChildren }): JSX.Element {
  return (
    <section class="downloads card" aria-labelledby="downloads-heading">
      <h2 id="downloads-heading">Downloads</h2>
      {children}
    </section>
  );
}

function DownloadCell({ sceneId, row, cache, onPrepared }: {
  sceneId: string;
  row: DownloadRow;
  cache: OutputCache;
  onPrepared: (() => void) | undefined;
}): JSX.Element {
  const { type, label, extension, iteration, info } = row;
  if (info === null) {
    return onPrepared ? (
      <PrepareButton target={{ sceneId, type, iteration, extension }} label={label} cache={cache} onMade={onPrepared} />
    ) : <span class="muted">Not made</span>;
  }
  if (!info.exists) return <span class="muted">Not ready yet</span>;
  return <DownloadButton sceneId={sceneId} type={type} label={label} extension={extension}
    iteration={iteration} info={info} cache={cache} />;
}

function DownloadTable({ sceneId, rows, cache, onPrepared }: {
  sceneId: string;
  rows: DownloadRow[];
  cache: OutputCache;
  onPrepared: (() => void) | undefined;
}): JSX.Element {
  return (
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
        {rows.map((row) => (
          <tr key={`${row.type}/${row.iteration}`} data-made={row.info === null ? "later" : undefined}>
            <td data-label="Output">{row.label}</td>
            <td data-label="Iteration">{Number(row.iteration).toLocaleString("en")}</td>
            <td data-label="Size">{row.info?.exists ? formatBytes(row.info.size) : "—"}</td>
            <td>
              <DownloadCell sceneId={sceneId} row={row} cache={cache} onPrepared={onPrepared} />
            </td>
          </tr>
        ))}
      </tbody>
    </table>
  );
}

/**
 * The files to download. While processing, every requested file is listed (those to come as "Not ready
 * yet"); once finished, the files that exist and, with `onPrepared` (the owner's page: share links cannot
 * ask for a type), the other types the mode makes, to prepare. A failed scene with no file has no section.
 */
export function Downloads({ sceneId, meta, options, cache, state, onPrepared }: {
  sceneId: string;
  meta: Metadata;
  options: OptionsState;
  cache: OutputCache;
  state: SceneState | null;
  /** A type made after the fact is there now: the page reads the metadata again. */
  onPrepared?: () => void;
}): JSX.Element | null {
  const finished = state !== null && isFinished(state);
  const anyFile = Object.values(meta.resources).some((byIteration) => Object.values(byIteration).some((i) => i.exists));
  if (finished && !anyFile && !(state === "done" && onPrepared && meta.models_kept?.length)) {
    if (state !== "done") return null; // the failure box says what happened
    return <DownloadsCard><p class="muted">No files were produced.</p></DownloadsCard>;
  }
  if (options.status !== "ready") {
    return (
      <DownloadsCard>
        {options.status === "error" ? (
          <OptionsUnavailable what="the list of output types" error={options.error} onRetry={options.retry} />
        ) : (
          <p class="muted" role="status">Loading…</p>
        )}
      </DownloadsCard>
    );
  }
  const preparable = state === "done" && onPrepared !== undefined;
  const rows = downloadRows(options.options, meta, preparable).filter((row) => !finished || row.info?.exists !== false);
  return (
    <DownloadsCard>
      {rows.length === 0 ? (
        <p class="muted">No outputs were requested.</p>
      ) : (
        <DownloadTable sceneId={sceneId} rows={rows} cache={cache} onPrepared={preparable ? onPrepared : undefined} />
      )}
    </DownloadsCard>
  );
}
