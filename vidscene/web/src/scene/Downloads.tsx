// The files of a scene to download, one row per output and saved iteration, each downloaded in the chunks the
// metadata describes (with a bar) and saved under the server's name for it.

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

/** Hands the bytes to the browser's own "save file", under `name`. */
function saveFile(blob: Blob, name: string): void {
  const url = URL.createObjectURL(blob);
  const a = document.createElement("a");
  a.href = url;
  a.download = name;
  a.style.display = "none";
  document.body.appendChild(a);
  a.click();
  a.remove();
  // Give the browser time to start the save before the blob goes away.
  window.setTimeout(() => URL.revokeObjectURL(url), 60_000);
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


function DownloadsCard({ children }: { children: ComponentChildren }): JSX.Element {
  return (
    <section class="downloads card" aria-labelledby="downloads-heading">
      <h2 id="downloads-heading">Downloads</h2>
      {children}
    </section>
  );
}

function DownloadTable({ sceneId, rows, cache }: { sceneId: string; rows: DownloadRow[]; cache: OutputCache }): JSX.Element {
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
  );
}

/**
 * The files to download. While processing, every requested file is listed (those to come as "Not ready
 * yet"); once finished, only the files that exist: a failed scene with none has no section at all.
 */
export function Downloads({ sceneId, meta, options, cache, state }: {
  sceneId: string;
  meta: Metadata;
  options: OptionsState;
  cache: OutputCache;
  state: SceneState | null;
}): JSX.Element | null {
  const finished = state !== null && isFinished(state);
  const anyFile = Object.values(meta.resources).some((byIteration) => Object.values(byIteration).some((i) => i.exists));
  if (finished && !anyFile) {
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
  const rows = downloadRows(options.options, meta).filter((row) => !finished || row.info.exists);
  return (
    <DownloadsCard>
      {rows.length === 0 ? (
        <p class="muted">No outputs were requested.</p>
      ) : (
        <DownloadTable sceneId={sceneId} rows={rows} cache={cache} />
      )}
    </DownloadsCard>
  );
}
