// Undo and redo of the crop panel's edit list. A drag or a field being typed in changes the list shown at
// once (`preview`) but makes one undo step only when it ends (`commit`), so undo goes back to before the
// whole drag, not one pointer move.

import { useEffect, useMemo, useState } from "preact/hooks";

import type { EditOperation } from "../api/edits";

type List = EditOperation[];

interface History {
  past: List[];
  /** The last committed list: what undo steps back from. */
  base: List;
  /** What is shown: `base`, or a drag or typing under way. */
  present: List;
  future: List[];
}

const LIMIT = 100;

export interface EditHistory {
  operations: List;
  canUndo: boolean;
  canRedo: boolean;
  preview(next: List): void;
  commit(next: List): void;
  undo(): void;
  redo(): void;
  /** A new start (the saved list arrived): no steps to undo. */
  reset(next: List): void;
}

type Actions = Pick<EditHistory, "preview" | "commit" | "undo" | "redo" | "reset">;

function actionsOf(setH: (update: (s: History) => History) => void): Actions {
  return {
    preview: (next) => setH((s) => ({ ...s, present: next })),
    commit: (next) => setH((s) => ({ past: [...s.past, s.base].slice(-LIMIT), base: next, present: next, future: [] })),
    undo: () => setH((s) => {
      if (s.present !== s.base) return { ...s, present: s.base }; // a change under way: drop it first
      const previous = s.past[s.past.length - 1];
      if (!previous) return s;
      return { past: s.past.slice(0, -1), base: previous, present: previous, future: [s.base, ...s.future] };
    }),
    redo: () => setH((s) => {
      const next = s.future[0];
      if (!next) return s;
      return { past: [...s.past, s.base], base: next, present: next, future: s.future.slice(1) };
    }),
    reset: (next) => setH(() => ({ past: [], base: next, present: next, future: [] })),
  };
}

export function useEditHistory(): EditHistory {
  const [h, setH] = useState<History>({ past: [], base: [], present: [], future: [] });
  const actions = useMemo(() => actionsOf(setH), []);
  return {
    ...actions,
    operations: h.present,
    canUndo: h.past.length > 0 || h.present !== h.base,
    canRedo: h.future.length > 0,
  };
}

/** Whether a key press goes to something the user types in (where Ctrl+Z undoes the typing instead). */
function typing(target: EventTarget | null): boolean {
  if (!(target instanceof HTMLElement)) return false;
  return target.isContentEditable || ["INPUT", "TEXTAREA", "SELECT"].includes(target.tagName);
}

/** Ctrl+Z undoes, Ctrl+Shift+Z and Ctrl+Y redo (Cmd on a Mac), anywhere on the page but in a field. */
export function useUndoKeys(history: EditHistory): void {
  useEffect(() => {
    const onKey = (event: KeyboardEvent): void => {
      if (!(event.ctrlKey || event.metaKey) || event.altKey || typing(event.target)) return;
      const key = event.key.toLowerCase();
      if (key === "z" && !event.shiftKey) history.undo();
      else if ((key === "z" && event.shiftKey) || key === "y") history.redo();
      else return;
      event.preventDefault();
    };
    document.addEventListener("keydown", onKey);
    return () => document.removeEventListener("keydown", onKey);
  }, [history.undo, history.redo]);
}
