// Crop and clean: the scene's edit list (a crop box that keeps what is inside it, erasers that remove what is
// inside them), in the coordinates of the exported files. The shapes are drawn in the 3D view with handles,
// and what they remove disappears from the view at once; Save stores the list on the server, which makes
// every format again from the kept models and then serves the edited files (downloads, the viewer, share
// links); "Revert to original" serves the untouched originals again.

import type { JSX } from "preact";
import { useEffect, useRef, useState } from "preact/hooks";

import type { EditOperation, SceneEdit, Vec3 } from "../api/edits";
import { revertEdit, saveEdit, sceneEdit } from "../api/edits";
import { ErrorMessage, errorText } from "../components";
import { usePolling } from "../polling";
import type { ViewerEditor } from "../viewer/types";
import type { EditBridge } from "./editBridge";
import type { EditHistory } from "./editHistory";
import { useEditHistory, useUndoKeys } from "./editHistory";
import { newCropBox, newEraser, replaceAt, rounded } from "./editOps";
import { changeAt, HistoryButtons, OperationFields, OperationList } from "./EditTools";

const PREPARING_POLL_MS = 2000;

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

/** The view's editor while there is one (for placing and sizing new shapes). */
function useViewEditor(bridge: EditBridge): ViewerEditor | null {
  const [editor, setEditor] = useState<ViewerEditor | null>(bridge.current);
  useEffect(() => bridge.watch(setEditor), [bridge]);
  return editor;
}

/** Keeps the view showing the list and the selection, and takes the handles' drags and picks into the list. */
function useViewSync(bridge: EditBridge, history: EditHistory, selected: number | null, placing: boolean,
  onPlaced: (operations: EditOperation[]) => void): void {
  const latest = useRef(history);
  latest.current = history;
  useEffect(() => bridge.show(history.operations, selected), [bridge, history.operations, selected]);
  useEffect(() => {
    bridge.onDrag(({ index, operation, done }) => {
      const next = replaceAt(latest.current.operations, index, rounded(operation));
      if (done) latest.current.commit(next);
      else latest.current.preview(next);
    });
    return () => bridge.onDrag(null);
  }, [bridge]);
  useEffect(() => {
    if (!placing) return;
    bridge.onPick((point: Vec3) => {
      const next = [...latest.current.operations, newEraser(bridge.current, point)];
      latest.current.commit(next);
      onPlaced(next);
    });
    return () => bridge.onPick(null);
  }, [bridge, placing]);
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

/** Adding shapes: a crop box around the scene, an eraser at the view's centre, or erasers where clicked. */
function AddButtons({ history, editor, placing, onPlacing, onAdded }: {
  history: EditHistory;
  editor: ViewerEditor | null;
  placing: boolean;
  onPlacing: (on: boolean) => void;
  onAdded: (operations: EditOperation[]) => void;
}): JSX.Element {
  const add = (operation: EditOperation): void => {
    const next = [...history.operations, operation];
    history.commit(next);
    onAdded(next);
  };
  const hasCrop = history.operations.some((o) => o.op === "keep_inside");
  return (
    <div class="actions">
      <button type="button" class="secondary" disabled={hasCrop} onClick={() => add(newCropBox(editor))}>
        Add crop box
      </button>
      <button type="button" class="secondary" onClick={() => add(newEraser(editor))}>Add eraser</button>
      <button type="button" class="secondary" aria-pressed={placing} disabled={editor === null}
        onClick={() => onPlacing(!placing)}>
        {placing ? "Stop placing erasers" : "Place erasers by clicking the view"}
      </button>
    </div>
  );
}

/** The saved list, once, when it first arrives: later answers (polling, Save) must not undo the user's work. */
function useStartFromSaved(edit: SceneEdit | null, history: EditHistory, select: (index: number | null) => void): void {
  const started = useRef(false);
  useEffect(() => {
    if (edit === null || started.current) return;
    started.current = true;
    history.reset(edit.operations);
    select(edit.operations.length > 0 ? 0 : null);
  }, [edit]);
}

/** Save (the list, or the original when it is empty) and revert, with their busy state and error. */
function useSaveActions(sceneId: string, setEdit: (edit: SceneEdit) => void, history: EditHistory,
  select: (index: number | null) => void): { busy: boolean; error: string | null; save(): void; revert(): void } {
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<string | null>(null);
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
  return {
    busy,
    error,
    save: () => {
      const operations = history.operations;
      void run(() => (operations.length === 0 ? revertEdit(sceneId) : saveEdit(sceneId, operations)));
    },
    revert: () => {
      history.commit([]);
      select(null);
      void run(() => revertEdit(sceneId));
    },
  };
}

export function CropPanel({ sceneId, onServedChange, editing }: {
  sceneId: string;
  onServedChange: () => void;
  editing: EditBridge;
}): JSX.Element {
  const [edit, setEdit, loadError] = useSceneEdit(sceneId, onServedChange);
  const history = useEditHistory();
  const [selected, setSelected] = useState<number | null>(null);
  const [placing, setPlacing] = useState(false);
  const editor = useViewEditor(editing);
  const selectLast = (operations: EditOperation[]): void => setSelected(operations.length - 1);
  useViewSync(editing, history, selected, placing, selectLast);
  useUndoKeys(history);
  useStartFromSaved(edit, history, setSelected);
  const actions = useSaveActions(sceneId, setEdit, history, setSelected);
  const operations = history.operations;
  const shown = selected !== null && selected < operations.length ? selected : null;
  const selectedOperation = shown === null ? undefined : operations[shown];
  return (
    <section class="crop card" aria-labelledby="crop-heading" data-testid="crop">
      <div class="section-head">
        <h2 id="crop-heading">Crop and clean</h2>
        <HistoryButtons history={history} />
      </div>
      <p class="hint">
        A crop box keeps what is inside it, erasers remove what is inside them (in the downloaded files'
        coordinates). Drag the handles in the 3D view: the view hides what the list removes at once, and Save
        makes the files. The original is kept. The view can only hide: where the scene shown is already cropped,
        what a looser crop brings back appears after Save.
      </p>
      <AddButtons history={history} editor={editor} placing={placing} onPlacing={setPlacing} onAdded={selectLast} />
      <OperationList history={history} selected={shown} onSelect={setSelected} />
      <form onSubmit={(e) => { e.preventDefault(); actions.save(); }}>
        {selectedOperation && shown !== null && (
          <OperationFields operation={selectedOperation} sceneRadius={editor?.sceneRadius ?? 1}
            onChange={changeAt(history, shown)} />
        )}
        <div class="actions">
          <button type="submit" disabled={actions.busy}>Save crop</button>
          <button type="button" class="secondary"
            disabled={actions.busy || edit === null || edit.state === "original"} onClick={actions.revert}>
            Revert to original
          </button>
        </div>
      </form>
      <p role="status" data-testid="crop-status">{editSummary(edit)}</p>
      <ErrorMessage message={actions.error ?? loadError} />
    </section>
  );
}
