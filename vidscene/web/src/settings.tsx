// The training settings of a scene (preset, mode, outputs, iterations) as one form part, shared by the upload
// form and the scene page's "Try again with other settings": both send the same fields to the server.

import type { JSX } from "preact";
import { useId, useState } from "preact/hooks";

import type { OptionLimits, PresetOption, SceneOptions, TrainingModeOption } from "./api/options";
import type { Metadata, TrainingFields } from "./api/types";
import { modeNamed, outputLabel, presetValues } from "./catalogue";
import { presetCost } from "./metrics";
import { outputTypesError, parseSaveIterations, parseTotalIterations } from "./validate";

/** What the fields hold, as typed; `preset` null is Custom. */
export interface SettingsDraft {
  preset: string | null;
  mode: string;
  outputs: string[];
  total: string;
  save: string;
}

function draftOfPreset(preset: PresetOption, mode: string): SettingsDraft | null {
  const values = presetValues(preset, mode);
  if (!values) return null;
  return {
    preset: preset.name,
    mode,
    outputs: values.outputs,
    total: String(values.totalIterations),
    save: values.saveIterations.join(", "),
  };
}

/** The server's default preset in the first training mode it lists. */
export function defaultSettings(options: SceneOptions): SettingsDraft {
  const mode = options.training_modes[0]!; // the options check refuses an empty list
  const preset = options.presets.find((p) => p.name === options.default_preset) ?? options.presets[0];
  const fromPreset = preset ? draftOfPreset(preset, mode.name) : null;
  return fromPreset ?? { preset: null, mode: mode.name, outputs: mode.default_outputs, total: "", save: "" };
}

const sameSet = (a: readonly unknown[], b: readonly unknown[]): boolean =>
  a.length === b.length && a.every((x) => b.includes(x));

/**
 * A scene's own settings, from its metadata (mode, preset, one entry per output type and saved iteration):
 * its preset when the numbers are still the preset's, else Custom with the scene's numbers.
 */
export function settingsOfScene(options: SceneOptions, meta: Metadata): SettingsDraft {
  const fallback = defaultSettings(options);
  const mode = modeNamed(options, meta.training_mode ?? "")?.name ?? fallback.mode;
  const outputs = Object.keys(meta.resources);
  const iterations = [...new Set(Object.values(meta.resources).flatMap((byIt) => Object.keys(byIt)))]
    .map(Number)
    .filter((n) => Number.isInteger(n) && n > 0)
    .sort((a, b) => a - b);
  if (outputs.length === 0 || iterations.length === 0) return { ...fallback, mode };
  const total = iterations.at(-1)!;
  const draft: SettingsDraft = { preset: null, mode, outputs, total: String(total), save: iterations.join(", ") };
  const preset = options.presets.find((p) => p.name === meta.preset);
  const values = preset ? presetValues(preset, mode) : null;
  if (preset && values && values.totalIterations === total && sameSet(values.outputs, outputs) &&
      sameSet([...values.saveIterations, values.totalIterations], iterations)) {
    draft.preset = preset.name;
  }
  return draft;
}

export function checkSettings(options: SceneOptions, draft: SettingsDraft): { value: TrainingFields } | { error: string } {
  const total = parseTotalIterations(draft.total, options.limits);
  if ("error" in total) return total;
  const save = parseSaveIterations(draft.save, total.value);
  if ("error" in save) return save;
  const training = modeNamed(options, draft.mode);
  const problem = outputTypesError(options, draft.mode, draft.outputs);
  if (problem || !training) return { error: problem ?? `Unknown training mode "${draft.mode}".` };
  return {
    value: {
      preset: draft.preset,
      trainingMode: training.name,
      outputTypes: training.outputs.filter((t) => draft.outputs.includes(t)), // in the catalogue's order
      totalIterations: total.value,
      saveIterations: save.value,
    },
  };
}

/** Preset cards, then the individual settings, folded away unless `initiallyOpen` (choosing Custom opens them). */
export function TrainingSettings({ options, value, onChange, disabled, initiallyOpen = false }: {
  options: SceneOptions;
  value: SettingsDraft;
  onChange: (next: SettingsDraft) => void;
  disabled?: boolean;
  initiallyOpen?: boolean;
}): JSX.Element {
  const [open, setOpen] = useState(initiallyOpen);
  const training = modeNamed(options, value.mode) ?? options.training_modes[0]!;
  const custom = (changes: Partial<SettingsDraft>): void => onChange({ ...value, ...changes, preset: null });

  return (
    <>
      <PresetChoice
        options={options}
        training={training}
        chosen={value.preset}
        onChange={onChange}
        onCustom={() => {
          custom({});
          setOpen(true);
        }}
        disabled={disabled}
      />
      <details class="settings" open={open} onToggle={(e) => setOpen(e.currentTarget.open)}>
        <summary>Training settings</summary>
        <fieldset disabled={disabled}>
          <legend class="visually-hidden">Training settings</legend>
          <ModeField options={options} training={training} value={value} onChange={custom} />
          <OutputFields options={options} training={training} value={value} onChange={custom} />
          <IterationFields limits={options.limits} value={value} onChange={custom} />
        </fieldset>
      </details>
    </>
  );
}

/** A part of the settings form: `onChange` takes the fields it changes (the draft becomes Custom). */
interface FieldsProps {
  value: SettingsDraft;
  onChange: (changes: Partial<SettingsDraft>) => void;
}

/** The preset cards (each with its length and cost in the chosen mode) and Custom. */
function PresetChoice({ options, training, chosen, onChange, onCustom, disabled }: {
  options: SceneOptions;
  training: TrainingModeOption;
  chosen: string | null;
  onChange: (next: SettingsDraft) => void;
  onCustom: () => void;
  disabled?: boolean;
}): JSX.Element {
  return (
    <fieldset disabled={disabled}>
      <legend>Preset</legend>
      <div class="presets">
        {options.presets.map((p) => (
          <PresetCard
            preset={p}
            training={training}
            selected={chosen === p.name}
            key={p.name}
            onChoose={() => {
              const next = draftOfPreset(p, training.name);
              if (next) onChange(next);
            }}
          />
        ))}
        <label class={`preset ${chosen === null ? "selected" : ""}`}>
          <input type="radio" name="preset" value="custom" checked={chosen === null} onChange={onCustom} />
          <span class="preset-label">Custom</span>
          <small class="hint">Set the fields below yourself.</small>
        </label>
      </div>
    </fieldset>
  );
}

function PresetCard({ preset, training, selected, onChoose }: {
  preset: PresetOption;
  training: TrainingModeOption;
  selected: boolean;
  onChoose: () => void;
}): JSX.Element {
  const values = presetValues(preset, training.name);
  const cost = presetCost(preset, training.name);
  return (
    <label class={`preset ${selected ? "selected" : ""}`}>
      <input
        type="radio"
        name="preset"
        value={preset.name}
        checked={selected}
        disabled={!values}
        onChange={onChoose}
      />
      <span class="preset-label">{preset.label}</span>
      <small class="hint">
        {values
          ? `${values.totalIterations.toLocaleString("en")} iterations`
          : `Not available with ${training.label}`}{" "}
        · {preset.description}
        {values && cost && (
          <span class="preset-cost" data-testid="preset-cost">{cost}</span>
        )}
      </small>
    </label>
  );
}

function ModeField({ options, training, value, onChange }: FieldsProps & {
  options: SceneOptions;
  training: TrainingModeOption;
}): JSX.Element {
  const ids = { mode: useId(), hint: useId() };

  function changeMode(next: string): void {
    const nextMode = modeNamed(options, next);
    if (!nextMode) return;
    // Keep what the new mode makes (tensorf has no splat cloud); nothing left: the mode's defaults.
    const kept = value.outputs.filter((o) => nextMode.outputs.includes(o));
    onChange({ mode: nextMode.name, outputs: kept.length ? kept : nextMode.default_outputs });
  }

  return (
    <div class="field">
      <label for={ids.mode}>Training mode</label>
      <select
        id={ids.mode}
        name="training_mode"
        value={training.name}
        aria-describedby={ids.hint}
        onChange={(e) => changeMode(e.currentTarget.value)}
      >
        {options.training_modes.map((m) => (
          <option value={m.name} key={m.name}>
            {m.label}
          </option>
        ))}
      </select>
      <small id={ids.hint} class="hint">
        {training.description}
      </small>
    </div>
  );
}

/** One box per output type; those the mode cannot make are shown, disabled, so that the choice is visible. */
function OutputFields({ options, training, value, onChange }: FieldsProps & {
  options: SceneOptions;
  training: TrainingModeOption;
}): JSX.Element {
  function toggle(type: string, on: boolean): void {
    const others = value.outputs.filter((t) => t !== type);
    onChange({ outputs: on ? [...others, type] : others });
  }

  return (
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
              checked={allowed && value.outputs.includes(o.name)}
              disabled={!allowed}
              onChange={(e) => toggle(o.name, e.currentTarget.checked)}
            />
            {outputLabel(o, [training.name])}
            {!allowed && <span class="visually-hidden"> (not available with {training.label})</span>}
          </label>
        );
      })}
    </fieldset>
  );
}

function IterationFields({ limits, value, onChange }: FieldsProps & { limits: OptionLimits }): JSX.Element {
  const ids = { total: useId(), save: useId(), saveHint: useId() };
  return (
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
          value={value.total}
          onInput={(e) => onChange({ total: e.currentTarget.value })}
        />
      </div>
      <div class="field">
        <label for={ids.save}>Save at iterations</label>
        <input
          id={ids.save}
          name="save_iterations"
          type="text"
          inputMode="text"
          value={value.save}
          aria-describedby={ids.saveHint}
          onInput={(e) => onChange({ save: e.currentTarget.value })}
        />
        <small id={ids.saveHint} class="hint">
          Comma-separated; the last iteration is always saved.
        </small>
      </div>
    </div>
  );
}
