// Crop: keep only what is inside a box, in the coordinates of the exported files. Saving stores the edit on
// the server, which makes every format again from the kept models and then serves the cropped files
// (downloads, the viewer, share links); "Revert to original" serves the untouched originals again.

import type { JSX } from "preact";
import { useEffect, useId, useRef, useState } from "preact/hooks";

import type { EditOperation, SceneEdit, Vec3 } from "../api/edits";
import { revertEdit, saveEdit, sceneEdit } from "../api/edits";
import { ErrorMessage, errorText } from "../components";
import { usePolling } from "../polling";

const PREPARING_POLL_MS = 2000;
const AXES = ["x", "y", "z"] as const;

interface Box {
  center: Vec3;
  half: Vec3;
}

const WHOLE: Box = { center: [0, 0, 0], half: [1, 1, 1] };

function boxOf(edit: SceneEdit | null): Box {
  const op = edit?.operations.find((o) => o.shape === "box" && o.op === "keep_inside");
  return op?.half_size ? { center: op.center, half: op.half_size } : WHOLE;
}

/** The scene's edit, polled while its files are being made; `onServed` when the files shown change. */
function useSceneEdit(id: string, onServed: () => void): [SceneEdit | null, (edit: SceneEdit) => void, string | null] {
  const [edit, setEdit] = useState<SceneEdit | null>(null);
  const [error, setError] = useState<string | null>(null);
  const served = useRef<number | null>(null);
  useEffect(() => {
    if (edit === null) return;
    if (served.current !== null && served.current !== edit.served) onServed();
    served.current = edit.served;
  }, [edit?.served]);
  usePolling(async (signal) => {
    try {
      const found = await sceneEdit(id, signal);
      setEdit(found);
      setError(null);
      return found.state === "preparing";
    } catch (err) {
      setError(errorText(err));
      return false;
    }
  }, PREPARING_POLL_MS, [id, edit?.version]);
  return [edit, setEdit, error];
}

function Vec3Fields({ legend, value, min, onChange }: {
  legend: string;
  value: Vec3;
  min?: number;
  onChange: (value: Vec3) => void;
}): JSX.Element {
  const id = useId();
  return (
    <fieldset class="vec3">
      <legend>{legend}</legend>
      {AXES.map((axis, i) => (
        <span key={axis} class="field inline">
          <label for={`${id}-${axis}`}>{axis}</label>
          <input id={`${id}-${axis}`} type="number" step="any" min={min} value={value[i]} required
            onInput={(e) => {
              const next = [...value] as Vec3;
              next[i] = Number(e.currentTarget.value);
              onChange(next);
            }} />
        </span>
      ))}
    </fieldset>
  );
}

function editSummary(edit: SceneEdit | null): string {
  if (edit === null) return "";
  const counted = edit.kept !== null && edit.total !== null ? ` ${edit.kept} of ${edit.total} gaussians kept.` : "";
  switch (edit.state) {
    case "original": return "Showing the original scene.";
    case "preparing": return `Making the cropped files…${counted}`;
    case "ready": return `Showing the cropped scene.${counted}`;
    case "failed": return `The crop could not be made: ${edit.message}`;
  }
}

export function CropPanel({ sceneId, onServedChange }: { sceneId: string; onServedChange: () => void }): JSX.Element {
  const [edit, setEdit, loadError] = useSceneEdit(sceneId, onServedChange);
  const [box, setBox] = useState<Box | null>(null);
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<string | null>(null);
  const shown = box ?? boxOf(edit);

  async function run(action: () => Promise<SceneEdit>): Promise<void> {
    setBusy(true);
    setError(null);
    try {
      setEdit(await action());
    } catch (err) {
      setError(errorText(err));
    } finally {
      setBusy(false);
    }
  }

  const crop: EditOperation = { op: "keep_inside", shape: "box", center: shown.center, half_size: shown.half };
  return (
    <section class="crop card" aria-labelledby="crop-heading" data-testid="crop">
      <h2 id="crop-heading">Crop</h2>
      <p class="hint">Keep only what is inside a box (in the downloaded files' coordinates). The original is kept.</p>
      <form onSubmit={(e) => { e.preventDefault(); void run(() => saveEdit(sceneId, [crop])); }}>
        <Vec3Fields legend="Centre" value={shown.center}
          onChange={(center) => setBox({ ...shown, center })} />
        <Vec3Fields legend="Half size" value={shown.half} min={0.001}
          onChange={(half) => setBox({ ...shown, half })} />
        <div class="actions">
          <button type="submit" disabled={busy}>Save crop</button>
          <button type="button" class="secondary" disabled={busy || edit === null || edit.state === "original"}
            onClick={() => { setBox(null); void run(() => revertEdit(sceneId)); }}>
            Revert to original
          </button>
        </div>
      </form>
      <p role="status" data-testid="crop-status">{editSummary(edit)}</p>
      <ErrorMessage message={error ?? loadError} />
    </section>
  );
}
