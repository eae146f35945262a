import type { JSX } from "preact";
import { useEffect, useId, useRef, useState } from "preact/hooks";

import type { OutputType, TrainingMode, UploadHandle } from "../api";
import { uploadScene } from "../api";
import { ErrorMessage, PageHeading, ProgressBar, errorText, isAbort } from "../components";
import { formatBytes } from "../format";
import { PRESETS } from "../presets";
import { navigate } from "../router";
import {
  ITERATIONS_MAX,
  OUTPUTS_BY_MODE,
  OUTPUT_LABELS,
  SCENE_NAME_MAX,
  outputTypesError,
  parseSaveIterations,
  parseTotalIterations,
  sceneNameError,
  videoFileError,
} from "../validate";

type PresetChoice = (typeof PRESETS)[number]["id"] | "custom";

export function UploadPage(): JSX.Element {
  const ids = {
    file: useId(),
    name: useId(),
    mode: useId(),
    total: useId(),
    save: useId(),
    saveHint: useId(),
  };
  const first = PRESETS[0]!;
  const [file, setFile] = useState<File | null>(null);
  const [name, setName] = useState("");
  const [preset, setPreset] = useState<PresetChoice>(first.id);
  const [mode, setMode] = useState<TrainingMode>(first.trainingMode);
  const [outputs, setOutputs] = useState<OutputType[]>(first.outputTypes);
  const [total, setTotal] = useState(String(first.totalIterations));
  const [save, setSave] = useState(first.saveIterations.join(", "));
  const [error, setError] = useState<string | null>(null);
  const [settingsOpen, setSettingsOpen] = useState(false);
  const [sent, setSent] = useState<{ loaded: number; total: number } | null>(null);
  const upload = useRef<UploadHandle | null>(null);

  useEffect(() => () => upload.current?.abort(), []);

  function applyPreset(id: PresetChoice): void {
    setPreset(id);
    const p = PRESETS.find((x) => x.id === id);
    if (!p) return;
    setMode(p.trainingMode);
    setOutputs(p.outputTypes);
    setTotal(String(p.totalIterations));
    setSave(p.saveIterations.join(", "));
  }

  function changeMode(next: TrainingMode): void {
    setPreset("custom");
    setMode(next);
    // Keep what the new mode allows; tensorf has no splat cloud.
    const allowed = OUTPUTS_BY_MODE[next];
    const kept = outputs.filter((o) => allowed.includes(o));
    setOutputs(kept.length ? kept : ["video"]);
  }

  function toggleOutput(type: OutputType, on: boolean): void {
    setPreset("custom");
    setOutputs((cur) => (on ? [...cur.filter((t) => t !== type), type] : cur.filter((t) => t !== type)));
  }

  async function onSubmit(e: Event): Promise<void> {
    e.preventDefault();
    setError(null);
    const totalParsed = parseTotalIterations(total);
    if ("error" in totalParsed) {
      setError(totalParsed.error);
      return;
    }
    const saveParsed = parseSaveIterations(save, totalParsed.value);
    if ("error" in saveParsed) {
      setError(saveParsed.error);
      return;
    }
    const ordered = OUTPUTS_BY_MODE[mode].filter((t) => outputs.includes(t));
    const problem =
      videoFileError(file) ?? sceneNameError(name.trim()) ?? outputTypesError(mode, outputs);
    if (problem || !file) {
      setError(problem ?? "Choose a video file to upload.");
      return;
    }
    setSent({ loaded: 0, total: file.size });
    const handle = uploadScene(
      {
        file,
        trainingMode: mode,
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
      if (!isAbort(err)) setError(errorText(err));
      setSent(null);
    } finally {
      upload.current = null;
    }
  }

  const uploading = sent !== null;
  const pct = sent && sent.total > 0 ? (100 * sent.loaded) / sent.total : 0;

  return (
    <section class="upload">
      <PageHeading title="New scene">
        <p class="muted">Upload a video that walks slowly around the subject; the server does the rest.</p>
      </PageHeading>
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
            maxLength={SCENE_NAME_MAX}
            placeholder="Untitled Scene"
            disabled={uploading}
            onInput={(e) => setName(e.currentTarget.value)}
          />
        </div>

        <fieldset disabled={uploading}>
          <legend>Preset</legend>
          <div class="presets">
            {PRESETS.map((p) => (
              <label class={`preset ${preset === p.id ? "selected" : ""}`} key={p.id}>
                <input
                  type="radio"
                  name="preset"
                  value={p.id}
                  checked={preset === p.id}
                  onChange={() => applyPreset(p.id)}
                />
                <span class="preset-label">{p.label}</span>
                <small class="hint">
                  {p.totalIterations.toLocaleString("en")} iterations. {p.hint}
                </small>
              </label>
            ))}
            <label class={`preset ${preset === "custom" ? "selected" : ""}`}>
              <input
                type="radio"
                name="preset"
                value="custom"
                checked={preset === "custom"}
                onChange={() => {
                  setPreset("custom");
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
                value={mode}
                onChange={(e) => changeMode(e.currentTarget.value as TrainingMode)}
              >
                <option value="gaussian">Gaussian splatting</option>
                <option value="tensorf">TensoRF</option>
              </select>
            </div>
            <fieldset class="outputs">
              <legend>Outputs</legend>
              {(["splat_cloud", "point_cloud", "video", "model"] as OutputType[]).map((t) => {
                const allowed = OUTPUTS_BY_MODE[mode].includes(t);
                return (
                  <label key={t} class={allowed ? "" : "unavailable"}>
                    <input
                      type="checkbox"
                      name="output_types"
                      value={t}
                      checked={allowed && outputs.includes(t)}
                      disabled={!allowed}
                      onChange={(e) => toggleOutput(t, e.currentTarget.checked)}
                    />
                    {OUTPUT_LABELS[t]}
                    {!allowed && <span class="visually-hidden"> (not available with {mode})</span>}
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
                  max={ITERATIONS_MAX}
                  step={1}
                  inputMode="numeric"
                  value={total}
                  onInput={(e) => {
                    setPreset("custom");
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
                    setPreset("custom");
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
          {uploading ? (
            <button type="button" class="secondary" onClick={() => upload.current?.abort()}>
              Cancel upload
            </button>
          ) : (
            <button type="submit">Upload and start</button>
          )}
        </div>
      </form>
    </section>
  );
}
