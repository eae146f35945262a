// "Rename" opens a small form in place of the button: Enter or Save sends it, Escape or Cancel closes it.

import type { JSX } from "preact";
import { useEffect, useId, useRef, useState } from "preact/hooks";

import { renameScene } from "../api/scenes";
import { useLimits } from "../catalogue";
import { errorText } from "../components";

export function RenameButton({ id, name, onRenamed }: {
  id: string;
  name: string;
  onRenamed: (name: string) => void;
}): JSX.Element {
  const [editing, setEditing] = useState(false);
  if (!editing) {
    return (
      <button type="button" class="secondary small" onClick={() => setEditing(true)}>
        Rename
      </button>
    );
  }
  return <RenameForm id={id} name={name} onRenamed={onRenamed} onClose={() => setEditing(false)} />;
}

/** The form, opened with the current name selected; `onClose` when saved (or unchanged) or cancelled. */
function RenameForm({ id, name, onRenamed, onClose }: {
  id: string;
  name: string;
  onRenamed: (name: string) => void;
  onClose: () => void;
}): JSX.Element {
  const limits = useLimits();
  const inputId = useId();
  const [value, setValue] = useState(name);
  const [error, setError] = useState<string | null>(null);
  const [busy, setBusy] = useState(false);
  const input = useRef<HTMLInputElement>(null);
  useEffect(() => input.current?.select(), []);

  async function onSubmit(e: Event): Promise<void> {
    e.preventDefault();
    const next = value.trim();
    if (!next) {
      setError("Give the scene a name.");
      return;
    }
    if (next === name) {
      onClose();
      return;
    }
    setBusy(true);
    setError(null);
    try {
      onRenamed(await renameScene(id, next));
      onClose();
    } catch (err) {
      setError(errorText(err));
    } finally {
      setBusy(false);
    }
  }

  return (
    <form class="rename" onSubmit={onSubmit} noValidate onKeyDown={(e) => e.key === "Escape" && onClose()}>
      <label for={inputId} class="visually-hidden">Scene name</label>
      <input id={inputId} type="text" value={value} maxLength={limits?.max_scene_name} ref={input} disabled={busy}
        onInput={(e) => setValue(e.currentTarget.value)} />
      <button type="submit" class="small" disabled={busy}>Save</button>
      <button type="button" class="secondary small" onClick={onClose} disabled={busy}>
        Cancel
      </button>
      {error && <span class="error-text" role="alert">{error}</span>}
    </form>
  );
}
