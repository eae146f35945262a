// The live preview of an edit list: Spark hides the splats an operation removes on the GPU (SplatEdit with
// signed-distance shapes, multiplying their opacity by 0), so nothing is downloaded or rebuilt while the
// user drags; and the same rule on the CPU counts what stays, to say so and to check against the server.

import * as THREE from "three";
import { SplatEdit, SplatEditRgbaBlendMode, SplatEditSdf, SplatEditSdfType } from "@sparkjsdev/spark";

import type { EditOperation } from "../api/edits";

const IDENTITY: [number, number, number, number] = [1, 0, 0, 0];

/** The operation's turn as three.js's quaternion (the API writes [w, x, y, z], normalised here as there). */
export function rotationOf(operation: EditOperation): THREE.Quaternion {
  const [w, x, y, z] = operation.rotation ?? IDENTITY;
  const q = new THREE.Quaternion(x, y, z, w);
  return q.length() > 1e-6 ? q.normalize() : new THREE.Quaternion();
}

/**
 * One Spark edit per operation. Spark evaluates shapes in world space from their `matrixWorld`, so they are
 * placed in `parent` (the stage's content, which holds the file's coordinates): the preview then cuts where
 * the server cuts, whatever turn the viewer gives the file. `keep_inside` inverts the edit (it acts outside
 * the shape), `delete_inside` acts inside; both multiply opacity by 0. Opacity products commute, so the
 * picture is the server's mask (each operation's keep-or-drop ANDed in order) whatever order Spark uses.
 */
function sparkEdit(operation: EditOperation): SplatEdit {
  const sdf = new SplatEditSdf({
    type: operation.shape === "box" ? SplatEditSdfType.BOX : SplatEditSdfType.SPHERE,
    opacity: 0,
    color: new THREE.Color(1, 1, 1),
    radius: operation.shape === "sphere" ? operation.radius ?? 0 : 0,
  });
  const [cx, cy, cz] = operation.center;
  sdf.position.set(cx, cy, cz);
  sdf.quaternion.copy(rotationOf(operation));
  // A box's half sizes are the shape's scale in Spark (its distance is |p| - scale); a sphere keeps scale 1.
  if (operation.shape === "box" && operation.half_size) sdf.scale.set(...operation.half_size);
  const edit = new SplatEdit({
    rgbaBlendMode: SplatEditRgbaBlendMode.MULTIPLY,
    invert: operation.op === "keep_inside",
    sdfs: [sdf],
  });
  edit.add(sdf);
  return edit;
}

/** The Spark edits of the list shown in the view, replaced whenever the list changes. */
export class EditPreview {
  private readonly group = new THREE.Group();

  constructor(parent: THREE.Object3D) {
    this.group.name = "edit-preview";
    parent.add(this.group);
  }

  show(operations: EditOperation[]): void {
    this.group.clear();
    for (const operation of operations) this.group.add(sparkEdit(operation));
    this.group.updateMatrixWorld(true);
  }

  dispose(): void {
    this.group.removeFromParent();
  }
}

/** Whether the point (x, y, z) is inside the operation's shape, its surface included (vidscene/edits.py). */
function insideTest(operation: EditOperation): (x: number, y: number, z: number) => boolean {
  const [cx, cy, cz] = operation.center;
  if (operation.shape === "sphere") {
    const r2 = (operation.radius ?? 0) ** 2;
    return (x, y, z) => (x - cx) ** 2 + (y - cy) ** 2 + (z - cz) ** 2 <= r2;
  }
  const [hx, hy, hz] = operation.half_size ?? [0, 0, 0];
  const toBox = rotationOf(operation).invert();
  const local = new THREE.Vector3();
  return (x, y, z) => {
    local.set(x - cx, y - cy, z - cz).applyQuaternion(toBox);
    return Math.abs(local.x) <= hx && Math.abs(local.y) <= hy && Math.abs(local.z) <= hz;
  };
}

/** How many of `count` points (x, y, z each, in the file's coordinates) the operations keep, in order. */
export function keptCount(points: Float32Array, count: number, operations: EditOperation[]): number {
  const tests = operations.map((operation) => ({ keep: operation.op === "keep_inside", inside: insideTest(operation) }));
  let kept = 0;
  for (let i = 0; i < count; i += 1) {
    const x = points[3 * i] ?? 0;
    const y = points[3 * i + 1] ?? 0;
    const z = points[3 * i + 2] ?? 0;
    if (tests.every(({ keep, inside }) => inside(x, y, z) === keep)) kept += 1;
  }
  return kept;
}
