// The crop panel's tools: the list of operations (select, remove), the selected one's numbers (kept in step
// with the handles in the view), adding a crop box or erasers, and undo/redo.

import type { JSX } from "preact";
import { useId } from "preact/hooks";

import type { EditOperation, Vec3 } from "../api/edits";
import type { EditHistory } from "./editHistory";
import { operationName, replaceAt, rounded, turnDegrees, withTurn } from "./editOps";

const AXES = ["x", "y", "z"] as const;

/** A change from a field: `done` once the user leaves it (one undo step), not on each key. */
type Change = (operation: EditOperation, done: boolean) => void;

function NumberField({ label, value, min, onChange }: {
  label: string;
  value: number;
  min?: number;
  onChange: (value: number, done: boolean) => void;
}): JSX.Element {
  const id = useId();
  const read = (e: { currentTarget: HTMLInputElement }): number | null => {
    const value = e.currentTarget.valueAsNumber;
    return Number.isFinite(value) && (min === undefined || value >= min) ? value : null;
  };
  return (
    <span class="field inline">
      <label for={id}>{label}</label>
      <input id={id} type="number" step="any" min={min} value={value} required
        onInput={(e) => { const v = read(e); if (v !== null) onChange(v, false); }}
        onChange={(e) => { const v = read(e); if (v !== null) onChange(v, true); }} />
    </span>
  );
}

function Vec3Fields({ legend, value, min, onChange }: {
  legend: string;
  value: Vec3;
  min?: number;
  onChange: (value: Vec3, done: boolean) => void;
}): JSX.Element {
  return (
    <fieldset class="vec3">
      <legend>{legend}</legend>
      {AXES.map((axis, i) => (
        <NumberField key={axis} label={axis} value={value[i] ?? 0} min={min} onChange={(v, done) => {
          const next = [...value] as Vec3;
          next[i] = v;
          onChange(next, done);
        }} />
      ))}
    </fieldset>
  );
}

function RadiusField({ operation, sceneRadius, onChange }: {
  operation: EditOperation;
  sceneRadius: number;
  onChange: Change;
}): JSX.Element {
  const id = useId();
  const radius = operation.radius ?? 0;
  const set = (value: number, done: boolean): void => onChange(rounded({ ...operation, radius: value }), done);
  return (
    <fieldset class="radius">
      <legend>Radius</legend>
      <input id={id} type="range" aria-label="Radius slider" min={sceneRadius * 0.01} max={sceneRadius}
        step={sceneRadius / 1000} value={radius}
        onInput={(e) => set(e.currentTarget.valueAsNumber, false)}
        onChange={(e) => set(e.currentTarget.valueAsNumber, true)} />
      <NumberField label="Radius" value={radius} min={0.00001} onChange={set} />
    </fieldset>
  );
}

/** The selected operation's numbers; every change goes to the list (and so to the view) at once. */
export function OperationFields({ operation, sceneRadius, onChange }: {
  operation: EditOperation;
  sceneRadius: number;
  onChange: Change;
}): JSX.Element {
  return (
    <div class="operation-fields" data-testid="operation-fields">
      <Vec3Fields legend="Centre" value={operation.center}
        onChange={(center, done) => onChange({ ...operation, center }, done)} />
      {operation.shape === "box" ? (
        <>
          <Vec3Fields legend="Half size" value={operation.half_size ?? [1, 1, 1]} min={0.00001}
            onChange={(half_size, done) => onChange({ ...operation, half_size }, done)} />
          <NumberField label="Turn about the vertical (degrees)" value={turnDegrees(operation)}
            onChange={(degrees, done) => onChange(withTurn(operation, degrees), done)} />
        </>
      ) : (
        <RadiusField operation={operation} sceneRadius={sceneRadius} onChange={onChange} />
      )}
    </div>
  );
}

/** The operations in order, each to select (for its handles and numbers) or remove. */
export function OperationList({ history, selected, onSelect }: {
  history: EditHistory;
  selected: number | null;
  onSelect: (index: number | null) => void;
}): JSX.Element {
  const operations = history.operations;
  if (operations.length === 0) return <p class="muted">No operations: the whole scene is kept.</p>;
  return (
    <ol class="operations" aria-label="Operations">
      {operations.map((operation, index) => {
        const name = operationName(operations, index);
        return (
          <li key={index}>
            <button type="button" class="link" aria-pressed={index === selected} onClick={() => onSelect(index)}>
              {name}
            </button>
            <span class="muted"> {operation.op === "keep_inside" ? "keeps what is inside" : "removes what is inside"}</span>
            <button type="button" class="secondary small" aria-label={`Remove ${name}`} onClick={() => {
              history.commit(operations.filter((_, i) => i !== index));
              onSelect(selected === null || selected < index ? selected : selected > index ? selected - 1 : null);
            }}>Remove</button>
          </li>
        );
      })}
    </ol>
  );
}

export function HistoryButtons({ history }: { history: EditHistory }): JSX.Element {
  return (
    <span class="history">
      <button type="button" class="secondary small" disabled={!history.canUndo} onClick={history.undo}
        title="Ctrl+Z">Undo</button>
      <button type="button" class="secondary small" disabled={!history.canRedo} onClick={history.redo}
        title="Ctrl+Shift+Z or Ctrl+Y">Redo</button>
    </span>
  );
}

/** Applies a change from the fields or the handles to the list: shown at once, one undo step when done. */
export function changeAt(history: EditHistory, index: number): Change {
  return (operation, done) => {
    const next = replaceAt(history.operations, index, operation);
    if (done) history.commit(next);
    else history.preview(next);
  };
}
