// The link between the crop panel (which owns the edit list) and the 3D view (which shows it and reports
// the user's handle drags). They sit apart on the page and the view comes and goes (another iteration, the
// edited files once saved), so the panel talks to this object and it forwards to whichever view is there.

import type { EditOperation, Vec3 } from "../api/edits";
import type { HandleDrag, ViewerEditor } from "../viewer/types";

export class EditBridge {
  private editor: ViewerEditor | null = null;
  private operations: EditOperation[] = [];
  private selected: number | null = null;
  private drag: ((drag: HandleDrag) => void) | null = null;
  private pick: ((point: Vec3) => void) | null = null;
  private readonly watchers = new Set<(editor: ViewerEditor | null) => void>();

  /** The view's editor once it is ready, null when it goes; it is shown the current list at once. */
  attach(editor: ViewerEditor | null): void {
    this.editor?.onDrag(null);
    this.editor?.onPick(null);
    this.editor = editor;
    if (editor) {
      editor.show(this.operations, this.selected);
      editor.onDrag(this.drag);
      editor.onPick(this.pick);
    }
    for (const watcher of this.watchers) watcher(editor);
  }

  get current(): ViewerEditor | null {
    return this.editor;
  }

  /** Hears when a view's editor comes or goes. Returns what stops it. */
  watch(watcher: (editor: ViewerEditor | null) => void): () => void {
    this.watchers.add(watcher);
    return () => this.watchers.delete(watcher);
  }

  show(operations: EditOperation[], selected: number | null): void {
    this.operations = operations;
    this.selected = selected;
    this.editor?.show(operations, selected);
  }

  onDrag(listener: ((drag: HandleDrag) => void) | null): void {
    this.drag = listener;
    this.editor?.onDrag(listener);
  }

  onPick(listener: ((point: Vec3) => void) | null): void {
    this.pick = listener;
    this.editor?.onPick(listener);
  }
}
