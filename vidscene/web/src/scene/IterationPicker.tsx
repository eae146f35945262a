// The choice of which saved iteration the scene page shows; the newest is marked "(latest)".

import type { JSX } from "preact";
import { useId } from "preact/hooks";

export function IterationPicker({ iterations, chosen, onPick }: {
  iterations: string[];
  chosen: string | null;
  onPick: (iteration: string) => void;
}): JSX.Element | null {
  const pickerId = useId();
  if (iterations.length === 0) return null;
  return (
    <div class="iteration-picker card">
      <label for={pickerId}>Iteration</label>
      <select id={pickerId} value={chosen ?? ""} onChange={(e) => onPick(e.currentTarget.value)}>
        {iterations.map((it) => (
          <option value={it} key={it}>
            {Number(it).toLocaleString("en")}
            {it === iterations.at(-1) ? " (latest)" : ""}
          </option>
        ))}
      </select>
    </div>
  );
}
