import type { JSX } from "preact";
import { useEffect, useId, useRef, useState } from "preact/hooks";

import type { PresetOption, SceneOptions, UploadHandle } from "../api";
import { uploadScene } from "../api";
import { modeNamed, outputLabel, presetValues, useSceneOptions } from "../catalogue";
import { ErrorMessage, Notice, OptionsUnavailable, PageHeading, ProgressBar, errorText, isAbort } from "../components";
import { formatBytes } from "../format";
import { navigate } from "../router";
import {
  outputTypesError,
  parseSaveIterations,
  parseTotalIterations,
  sceneNameError,
  videoFileError,
} from "../validate";

export function UploadPage(): JSX.Element {
  const options = useSceneOptions();
  return (
    <section class="upload">
      <PageHeading title="New scene">
        <p class="muted">Upload a video that walks slowly around the subject; the server does the rest.</p>
      </PageHeading>
      {options.status === "ready" ? (
        <UploadForm options={options.options} />
      ) : options.status === "error" ? (
        <div class="card">
          <OptionsUnavailable what="the training options" error={options.error} onRetry={options.retry} />
        </div>
      ) : (
        <p class="card muted" role="status">
          Loading the training options…
        </p>
      )}
    </section>
  );
}

/** The form's first values: the server's default preset in the first training mode it lists. */
function startingValues(options: SceneOptions): {
  preset: string | null;
  mode: string;
  outputs: string[];
  total: string;
  save: string;
} {
  const mode = options.training_modes[0]!; // the options check refuses an empty list
  const preset = options.presets.find((p) => p.name === options.default_preset) ?? options.presets[0];
  const values = preset ? presetValues(preset, mode.name) : null;
  if (!preset || !values) return { preset: null, mode: mode.name, outputs: mode.default_outputs, total: "", save: "" };
  return {
    preset: preset.name,
    mode: mode.name,
    outputs: values.outputs,
    total: String(values.totalIterations),
    save: values.saveIterations.join(", "),
  };
}

function UploadForm({ options }: { options: SceneOptions }): JSX.Element {
  const ids = {
    file: useId(),
    name: useId(),
    mode: useId(),
    modeHint: useId(),
    total: useId(),
    save: useId(),
    saveHint: useId(),
  };
  const { limits } = options;
  const [start] = useState(() => startingValues(options));
  const [file, setFile] = useState<File | null>(null);
  const [name, setName] = useState("");
  const [preset, setPreset] = useState<string | null>(start.preset); // null: Custom
  const [mode, setMode] = useState(start.mode);
  const [outputs, setOutputs] = useState<string[]>(start.outputs);
  const [total, setTotal] = useState(start.total);
  const [save, setSave] = useState(start.save);
  const [error, setError] = useState<string | null>(null);
  const [notice, setNotice] = useState<string | null>(null);
  const [settingsOpen, setSettingsOpen] = useState(false);
  const [sent, setSent] = useState<{ loaded: number; total: number } | null>(null);
  const upload = useRef<UploadHandle | null>(null);
  const training = modeNamed(options, mode) ?? options.training_modes[0]!;

  useEffect(() => () => upload.current?.abort(), []);

  /** A preset fills in the fields for the chosen training mode. */
  function applyPreset(p: PresetOption): void {
    const values = presetValues(p, training.name);
    if (!values) return;
    setPreset(p.name);
    setOutputs(values.outputs);
    setTotal(String(values.totalIterations));
    setSave(values.saveIterations.join(", "));
  }

  function changeMode(next: string): void {
    const nextMode = modeNamed(options, next);
    if (!nextMode) return;
    setPreset(null);
    setMode(nextMode.name);
    // Keep what the new mode makes (tensorf has no splat cloud); nothing left: the mode's defaults.
    const kept = outputs.filter((o) => nextMode.outputs.includes(o));
    setOutputs(kept.length ? kept : nextMode.default_outputs);
  }

  function toggleOutput(type: string, on: boolean): void {
    setPreset(null);
    setOutputs((cur) => (on ? [...cur.filter((t) => t !== type), type] : cur.filter((t) => t !== type)));
  }

  async function onSubmit(e: Event): Promise<void> {
    e.preventDefault();
    setError(null);
    setNotice(null);
    const totalParsed = parseTotalIterations(total, limits);
    if ("error" in totalParsed) {
      setError(totalParsed.error);
      return;
    }
    const saveParsed = parseSaveIterations(save, totalParsed.value);
    if ("error" in saveParsed) {
      setError(saveParsed.error);
      return;
    }
    const ordered = training.outputs.filter((t) => outputs.includes(t));
    const problem =
      videoFileError(file, limits) ??
      sceneNameError(name.trim(), limits) ??
      outputTypesError(options, training.name, outputs);
    if (problem || !file) {
      setError(problem ?? "Choose a video file to upload.");
      return;
    }
    setSent({ loaded: 0, total: file.size });
    const handle = uploadScene(
      {
        file,
        trainingMode: training.name,
        outputTypes: ordered,
        saveIterations: saveParsed.value,
        totalIterations: totalParsed.value,
        sceneName: name.trim(),
      },
      (loaded, size) => setSent({ loaded, total: size }),
    );
    upload.current = handle;
    try {
      const { id } = await handle.promise;
      navigate({ name: "scene", id });
    } catch (err) {
      if (isAbort(err)) setNotice("Upload cancelled. Nothing was kept on the server.");
      else setError(errorText(err));
      setSent(null);
    } finally {
      upload.current = null;
    }
  }

  const uploading = sent !== null;
  const pct = sent && sent.total > 0 ? (100 * sent.loaded) / sent.total : 0;

  return (
    <form class="card" onSubmit={onSubmit} noValidate>
      <div class="field">
        <label for={ids.file}>Video file</label>
        <input
          id={ids.file}
          name="file"
          type="file"
          accept="video/*,.mp4,.mov,.m4v,.webm,.mkv,.avi"
          required
          disabled={uploading}
          onChange={(e) => setFile(e.currentTarget.files?.[0] ?? null)}
        />
        {file && (
          <small class="hint">
            {file.name} · {formatBytes(file.size)}
          </small>
        )}
      </div>

      <div class="field">
        <label for={ids.name}>Scene name (optional)</label>
        <input
          id={ids.name}
          name="scene_name"
          type="text"
          value={name}
          maxLength={limits.max_scene_name}
          placeholder={limits.default_scene_name}
          disabled={uploading}
          onInput={(e) => setName(e.currentTarget.value)}
        />
      </div>

      <fieldset disabled={uploading}>
        <legend>Preset</legend>
        <div class="presets">
          {options.presets.map((p) => {
            const values = presetValues(p, training.name);
            return (
              <label class={`preset ${preset === p.name ? "selected" : ""}`} key={p.name}>
                <input
                  type="radio"
                  name="preset"
                  value={p.name}
                  checked={preset === p.name}
                  disabled={!values}
                  onChange={() => applyPreset(p)}
                />
                <span class="preset-label">{p.label}</span>
                <small class="hint">
                  {values
                    ? `${values.totalIterations.toLocaleString("en")} iterations`
                    : `Not available with ${training.label}`}{" "}
                  · {p.description}
                </small>
              </label>
            );
          })}
          <label class={`preset ${preset === null ? "selected" : ""}`}>
            <input
              type="radio"
              name="preset"
              value="custom"
              checked={preset === null}
              onChange={() => {
                setPreset(null);
                setSettingsOpen(true);
              }}
            />
            <span class="preset-label">Custom</span>
            <small class="hint">Set the fields below yourself.</small>
          </label>
        </div>
      </fieldset>

      <details class="settings" open={settingsOpen} onToggle={(e) => setSettingsOpen(e.currentTarget.open)}>
        <summary>Training settings</summary>
        <fieldset disabled={uploading}>
          <legend class="visually-hidden">Training settings</legend>
          <div class="field">
            <label for={ids.mode}>Training mode</label>
            <select
              id={ids.mode}
              name="training_mode"
              value={training.name}
              aria-describedby={ids.modeHint}
              onChange={(e) => changeMode(e.currentTarget.value)}
            >
              {options.training_modes.map((m) => (
                <option value={m.name} key={m.name}>
                  {m.label}
                </option>
              ))}
            </select>
            <small id={ids.modeHint} class="hint">
              {training.description}
            </small>
          </div>
          <fieldset class="outputs">
            <legend>Outputs</legend>
            {options.output_types.map((o) => {
              const allowed = training.outputs.includes(o.name);
              return (
                <label key={o.name} class={allowed ? "" : "unavailable"} title={o.description}>
                  <input
                    type="checkbox"
                    name="output_types"
                    value={o.name}
                    checked={allowed && outputs.includes(o.name)}
                    disabled={!allowed}
                    onChange={(e) => toggleOutput(o.name, e.currentTarget.checked)}
                  />
                  {outputLabel(o, [training.name])}
                  {!allowed && <span class="visually-hidden"> (not available with {training.label})</span>}
                </label>
              );
            })}
          </fieldset>
          <div class="grid-2">
            <div class="field">
              <label for={ids.total}>Total iterations</label>
              <input
                id={ids.total}
                name="total_iterations"
                type="number"
                min={1}
                max={limits.max_total_iterations}
                step={1}
                inputMode="numeric"
                value={total}
                onInput={(e) => {
                  setPreset(null);
                  setTotal(e.currentTarget.value);
                }}
              />
            </div>
            <div class="field">
              <label for={ids.save}>Save at iterations</label>
              <input
                id={ids.save}
                name="save_iterations"
                type="text"
                inputMode="text"
                value={save}
                aria-describedby={ids.saveHint}
                onInput={(e) => {
                  setPreset(null);
                  setSave(e.currentTarget.value);
                }}
              />
              <small id={ids.saveHint} class="hint">
                Comma-separated; the last iteration is always saved.
              </small>
            </div>
          </div>
        </fieldset>
      </details>

      <ErrorMessage message={error} />
      <Notice message={notice} />
      {uploading && sent && (
        <div class="upload-progress">
          <ProgressBar
            value={pct}
            label="Upload progress"
            text={
              sent.loaded >= sent.total
                ? "Uploaded; the server is checking the video…"
                : `${Math.floor(pct)}% · ${formatBytes(sent.loaded)} of ${formatBytes(sent.total)}`
            }
          />
        </div>
      )}
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
              upload.current?.abort();
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
    </form>
  );
}
