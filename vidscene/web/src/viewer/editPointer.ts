// The pointer in the view while editing: a press on a handle starts a drag of it (and never reaches the
// camera's controls, which would orbit at the same time), and a click (press and release without moving) can
// pick the surface point under the pointer, for placing an eraser where a floater is.

import * as THREE from "three";

import type { EditOperation, Vec3 } from "../api/edits";
import type { DragStart } from "./editDrag";
import { dragged } from "./editDrag";
import type { Handle } from "./editGizmo";

const CLICK_SLOP_PX = 5;

/** What the pointer tools read from and report to the editor. */
export interface PointerHost {
  canvas: HTMLCanvasElement;
  camera: THREE.PerspectiveCamera;
  /** The stage's content: the exported files' coordinates. */
  content: THREE.Object3D;
  handles(): THREE.Mesh[];
  /** The selected operation and its index, when there is one. */
  selected(): { index: number; operation: EditOperation } | null;
  minSize: number;
  onDrag(index: number, operation: EditOperation, done: boolean): void;
  /** The surface point (in world space) under the pointer's normalised device coordinates. */
  surfaceAt(ndc: THREE.Vector2): THREE.Vector3;
}

export class PointerTools {
  private drag: { start: DragStart; index: number; pointerId: number; last: EditOperation } | null = null;
  private press: { x: number; y: number } | null = null;
  private readonly raycaster = new THREE.Raycaster();
  private readonly target: HTMLElement;
  private pick: ((point: Vec3) => void) | null = null;

  constructor(private readonly host: PointerHost) {
    // The canvas's parent, in the capture phase: this runs before the controls' own listeners on the canvas,
    // so a press on a handle can be kept from them.
    this.target = host.canvas.parentElement ?? host.canvas;
    this.target.addEventListener("pointerdown", this.onDown, { capture: true });
    window.addEventListener("pointermove", this.onMove);
    window.addEventListener("pointerup", this.onUp);
    window.addEventListener("pointercancel", this.onUp);
  }

  setPickListener(listener: ((point: Vec3) => void) | null): void {
    this.pick = listener;
  }

  private ndc(event: PointerEvent): THREE.Vector2 {
    const rect = this.host.canvas.getBoundingClientRect();
    return new THREE.Vector2(((event.clientX - rect.left) / rect.width) * 2 - 1,
      -((event.clientY - rect.top) / rect.height) * 2 + 1);
  }

  /** The pointer's ray in the files' coordinates. */
  private rayInFile(event: PointerEvent): THREE.Ray {
    this.raycaster.setFromCamera(this.ndc(event), this.host.camera);
    const toFile = this.host.content.matrixWorld.clone().invert();
    return this.raycaster.ray.clone().applyMatrix4(toFile);
  }

  private readonly onDown = (event: PointerEvent): void => {
    if (event.target !== this.host.canvas || event.button !== 0) return;
    this.press = { x: event.clientX, y: event.clientY };
    const selected = this.host.selected();
    this.raycaster.setFromCamera(this.ndc(event), this.host.camera);
    const hit = selected ? this.raycaster.intersectObjects(this.host.handles(), false)[0] : undefined;
    if (!selected || !hit) return;
    event.stopPropagation();
    event.preventDefault();
    this.press = null;
    const facing = this.host.camera.getWorldDirection(new THREE.Vector3())
      .applyQuaternion(this.host.content.getWorldQuaternion(new THREE.Quaternion()).invert());
    const start: DragStart = { operation: selected.operation, handle: hit.object.userData.handle as Handle,
      ray: this.rayInFile(event), facing, minSize: this.host.minSize };
    this.drag = { start, index: selected.index, pointerId: event.pointerId, last: selected.operation };
    this.host.canvas.setPointerCapture(event.pointerId);
  };

  private readonly onMove = (event: PointerEvent): void => {
    if (!this.drag || event.pointerId !== this.drag.pointerId) return;
    this.drag.last = dragged(this.drag.start, this.rayInFile(event));
    this.host.onDrag(this.drag.index, this.drag.last, false);
  };

  private readonly onUp = (event: PointerEvent): void => {
    if (this.drag && event.pointerId === this.drag.pointerId) {
      const { index, last } = this.drag;
      this.drag = null;
      if (this.host.canvas.hasPointerCapture(event.pointerId)) this.host.canvas.releasePointerCapture(event.pointerId);
      this.host.onDrag(index, last, true);
      return;
    }
    const press = this.press;
    this.press = null;
    if (!press || !this.pick || event.type !== "pointerup") return;
    if (Math.hypot(event.clientX - press.x, event.clientY - press.y) > CLICK_SLOP_PX) return;
    const inFile = this.host.content.worldToLocal(this.host.surfaceAt(this.ndc(event)));
    this.pick([inFile.x, inFile.y, inFile.z]);
  };

  dispose(): void {
    this.target.removeEventListener("pointerdown", this.onDown, { capture: true });
    window.removeEventListener("pointermove", this.onMove);
    window.removeEventListener("pointerup", this.onUp);
    window.removeEventListener("pointercancel", this.onUp);
  }
}
