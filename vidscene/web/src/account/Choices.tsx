import type { JSX } from "preact";

export interface Choice<T extends string> {
  value: T;
  label: string;
  hint: string;
}

interface Props<T extends string> {
  legend: string;
  choices: readonly Choice<T>[];
  chosen: T[];
  disabled: boolean;
  /** The chosen values, always in the order of ``choices`` (what the server is sent). */
  onChange: (chosen: T[]) => void;
}

/** A fieldset of checkboxes, one per choice with its hint: a token's scopes, a webhook's events. */
export function Choices<T extends string>({ legend, choices, chosen, disabled, onChange }: Props<T>): JSX.Element {
  function toggle(value: T, on: boolean): void {
    onChange(choices.map((c) => c.value).filter((v) => (v === value ? on : chosen.includes(v))));
  }
  return (
    <fieldset class="token-scopes">
      <legend>{legend}</legend>
      {choices.map((c) => (
        <label key={c.value}>
          <input type="checkbox" checked={chosen.includes(c.value)} disabled={disabled}
            onChange={(e) => toggle(c.value, e.currentTarget.checked)} />
          {c.label} <span class="hint">({c.hint})</span>
        </label>
      ))}
    </fieldset>
  );
}
