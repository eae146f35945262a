// What the 3D viewer offers the pages, and the shapes its parts share. Type-only, so the pages can name them
// without loading the renderer, which comes in its own chunk when a scene is opened.

import type * as THREE from "three";

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
}

/** Where the scene is, and how large: a centre and a radius that leave out the far floaters. */
export interface Bounds {
  center: THREE.Vector3;
  radius: number;
}
