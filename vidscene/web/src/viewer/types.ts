// What the 3D viewer offers the pages, and the shapes its parts share. Type-only, so the pages can name them
// without loading the renderer, which comes in its own chunk when a scene is opened.

import type * as THREE from "three";

import type { EditOperation, Vec3 } from "../api/edits";

export type ControlMode = "orbit" | "fly";

/** The file formats the viewer reads: SPZ, antimatter15's `.splat`, and PLY (3DGS gaussians or plain points). */
export type ViewerFormat = "spz" | "splat" | "ply";

export interface ViewerHandle {
  setMode(mode: ControlMode): void;
  /** Back to where the view opened: the first capture camera when the scene has one. */
  resetView(): void;
  /** Keep the viewing direction, level the horizon and move so the scene's robust bounds fill the view. */
  frameScene(): void;
  dispose(): void;
  readonly pointCount: number;
  /** The crop editor in the view: shapes with handles and the live preview of an edit list. */
  readonly editor: ViewerEditor;
}

/** A change the user made by dragging a handle: the operation at `index` is now `operation`. */
export interface HandleDrag {
  index: number;
  operation: EditOperation;
  /** True when the drag ended (one undo step per drag); false while it goes on. */
  done: boolean;
}

/**
 * The edit list shown in the view, in the exported files' coordinates: every shape as a wireframe, the
 * selected one with handles, and the splats it removes hidden at once (before anything is saved).
 */
export interface ViewerEditor {
  /** Shows `operations` (handles on `selected`, none for null) and previews what they keep. */
  show(operations: EditOperation[], selected: number | null): void;
  /** Called on every handle drag; null stops it. */
  onDrag(listener: ((drag: HandleDrag) => void) | null): void;
  /** Where the scene is, in the files' coordinates: for new shapes' first place and size. */
  readonly sceneCenter: Vec3;
  readonly sceneRadius: number;
  /** The surface point under the view's centre (or the orbit's target when nothing is there). */
  pointAtViewCentre(): Vec3;
  /** While set, a click in the view (not a drag) gives the surface point under the pointer. */
  onPick(listener: ((point: Vec3) => void) | null): void;
  /** How many of the file's splats the shown operations keep (the same rule as the server's). */
  readonly visibleCount: number;
}

/** Where the scene is, and how large: a centre and a radius that leave out the far floaters. */
export interface Bounds {
  center: THREE.Vector3;
  radius: number;
}
