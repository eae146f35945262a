// The crop panel's edit operations: new shapes placed and sized for the scene in view, their names in the
// list, the turn about the vertical in degrees, and numbers rounded so what the fields show is what is saved.

import type { EditOperation, Vec3 } from "../api/edits";
import type { ViewerEditor } from "../viewer/types";

type Rotation = [number, number, number, number];

const DECIMALS = 1e5;
const ERASER_RADII = 0.15; // a new eraser's radius, in scene radii

function round(value: number): number {
  return Math.round(value * DECIMALS) / DECIMALS;
}

function roundVec(values: Vec3): Vec3 {
  return [round(values[0]), round(values[1]), round(values[2])];
}

/** The operation with its numbers rounded (and its turn normalised), as the fields show and Save sends. */
export function rounded(operation: EditOperation): EditOperation {
  const out: EditOperation = { ...operation, center: roundVec(operation.center) };
  if (operation.half_size) out.half_size = roundVec(operation.half_size);
  if (operation.radius !== undefined) out.radius = round(operation.radius);
  if (operation.rotation) {
    const [w, x, y, z] = operation.rotation;
    const norm = Math.hypot(w, x, y, z) || 1;
    out.rotation = [w, x, y, z].map((v) => round(v / norm)) as Rotation;
  }
  return out;
}

/** A crop box around the scene in view (or a unit box at the origin before the view is there). */
export function newCropBox(editor: ViewerEditor | null): EditOperation {
  const radius = editor?.sceneRadius ?? 1;
  return rounded({ op: "keep_inside", shape: "box", center: editor?.sceneCenter ?? [0, 0, 0],
    half_size: [radius, radius, radius], rotation: [1, 0, 0, 0] });
}

/** An eraser at `at` (or the point at the view's centre), sized for the scene. */
export function newEraser(editor: ViewerEditor | null, at?: Vec3): EditOperation {
  const center = at ?? editor?.pointAtViewCentre() ?? [0, 0, 0];
  return rounded({ op: "delete_inside", shape: "sphere", center, radius: (editor?.sceneRadius ?? 1) * ERASER_RADII,
    rotation: [1, 0, 0, 0] });
}

/** "Crop box", "Eraser 2"…: what the list calls the operation at `index`. */
export function operationName(operations: EditOperation[], index: number): string {
  const operation = operations[index];
  if (!operation) return "";
  const sameKind = operations.slice(0, index + 1).filter((o) => o.op === operation.op && o.shape === operation.shape);
  const n = sameKind.length;
  if (operation.op === "keep_inside") return operation.shape === "box" ? `Crop box${n > 1 ? ` ${n}` : ""}` : `Keep sphere ${n}`;
  return operation.shape === "sphere" ? `Eraser ${n}` : `Erase box ${n}`;
}

/** The box's turn about the vertical (the files' y axis), in degrees. */
export function turnDegrees(operation: EditOperation): number {
  const [w, , y] = operation.rotation ?? [1, 0, 0, 0];
  return Math.round(((2 * Math.atan2(y, w) * 180) / Math.PI) * 100) / 100;
}

/** The operation turned `degrees` about the vertical (and no other way). */
export function withTurn(operation: EditOperation, degrees: number): EditOperation {
  const half = (degrees * Math.PI) / 360;
  return rounded({ ...operation, rotation: [Math.cos(half), 0, Math.sin(half), 0] });
}

export function replaceAt(operations: EditOperation[], index: number, operation: EditOperation): EditOperation[] {
  return operations.map((o, i) => (i === index ? operation : o));
}
