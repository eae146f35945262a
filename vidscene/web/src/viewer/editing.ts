// The crop editor in the view (ViewerEditor): the edit list's shapes with handles (editGizmo.ts), dragged
// with the pointer (editPointer.ts, editDrag.ts), and the live preview of what the list keeps
// (editPreview.ts). The page owns the list; the view shows it and reports the user's drags back.

import * as THREE from "three";

import type { EditOperation, Vec3 } from "../api/edits";
import { EditGizmo } from "./editGizmo";
import { minSizeFor } from "./editDrag";
import { PointerTools } from "./editPointer";
import { EditPreview, keptCount } from "./editPreview";
import type { LoadedContent } from "./loading";
import type { Stage } from "./stage";
import type { Bounds, HandleDrag, ViewerEditor } from "./types";

const HANDLE_RADII = 0.035; // a handle's size in scene radii
const COUNT_DELAY_MS = 120; // counting a large scene takes a while: at most this often while dragging

function vec3(v: THREE.Vector3): Vec3 {
  return [v.x, v.y, v.z];
}

export class SceneEditor implements ViewerEditor {
  readonly sceneCenter: Vec3;
  readonly sceneRadius: number;
  private operations: EditOperation[] = [];
  private selected: number | null = null;
  private dragListener: ((drag: HandleDrag) => void) | null = null;
  private readonly preview: EditPreview;
  private readonly gizmo: EditGizmo;
  private readonly pointer: PointerTools;
  private readonly raycaster = new THREE.Raycaster();
  private counted = -1;
  private countTimer: number | null = null;

  /** `target` is the point the camera orbits (world space); `wake` asks for frames to be drawn. */
  constructor(private readonly stage: Stage, private readonly loaded: LoadedContent, bounds: Bounds,
    private readonly target: THREE.Vector3, private readonly wake: () => void) {
    stage.content.updateMatrixWorld(true);
    this.sceneCenter = vec3(stage.content.worldToLocal(bounds.center.clone()));
    this.sceneRadius = bounds.radius;
    this.preview = new EditPreview(stage.content);
    this.gizmo = new EditGizmo(stage.content, bounds.radius * HANDLE_RADII, (handles) => {
      const value = JSON.stringify(handles);
      if (stage.canvas.dataset.handles !== value) stage.canvas.dataset.handles = value;
    });
    this.pointer = new PointerTools({
      canvas: stage.canvas,
      camera: stage.camera,
      content: stage.content,
      handles: () => this.gizmo.handles,
      selected: () => this.selectedOperation(),
      minSize: minSizeFor(bounds.radius),
      onDrag: (index, operation, done) => this.dragListener?.({ index, operation, done }),
      surfaceAt: (ndc) => this.surfaceAt(ndc) ?? this.atTargetDepth(ndc),
    });
    this.setCount(loaded.count);
  }

  get visibleCount(): number {
    return this.counted;
  }

  show(operations: EditOperation[], selected: number | null): void {
    this.operations = operations;
    this.selected = selected !== null && selected < operations.length ? selected : null;
    this.preview.show(operations);
    this.gizmo.show(operations, this.selected);
    this.scheduleCount();
    this.wake();
  }

  onDrag(listener: ((drag: HandleDrag) => void) | null): void {
    this.dragListener = listener;
  }

  onPick(listener: ((point: Vec3) => void) | null): void {
    this.pointer.setPickListener(listener);
  }

  pointAtViewCentre(): Vec3 {
    const hit = this.surfaceAt(new THREE.Vector2(0, 0)) ?? this.target.clone();
    return vec3(this.stage.content.worldToLocal(hit));
  }

  private selectedOperation(): { index: number; operation: EditOperation } | null {
    const operation = this.selected === null ? undefined : this.operations[this.selected];
    return operation && this.selected !== null ? { index: this.selected, operation } : null;
  }

  /** The nearest splat (or point) under `ndc`, in world space. */
  private surfaceAt(ndc: THREE.Vector2): THREE.Vector3 | null {
    this.raycaster.setFromCamera(ndc, this.stage.camera);
    this.raycaster.params.Points.threshold = this.sceneRadius / 100;
    const hit = this.raycaster.intersectObject(this.loaded.pickTarget, false)[0];
    return hit ? hit.point.clone() : null;
  }

  /** The point under `ndc` as deep as the orbit's target: where nothing is hit (a gap between splats). */
  private atTargetDepth(ndc: THREE.Vector2): THREE.Vector3 {
    this.raycaster.setFromCamera(ndc, this.stage.camera);
    const forward = this.stage.camera.getWorldDirection(new THREE.Vector3());
    const depth = this.target.clone().sub(this.raycaster.ray.origin).dot(forward);
    const along = depth / Math.max(this.raycaster.ray.direction.dot(forward), 1e-3);
    return this.raycaster.ray.at(Math.max(along, 0), new THREE.Vector3());
  }

  private scheduleCount(): void {
    if (this.countTimer !== null) return;
    this.countTimer = window.setTimeout(() => {
      this.countTimer = null;
      this.setCount(keptCount(this.loaded.points, this.loaded.count, this.operations));
    }, COUNT_DELAY_MS);
  }

  /** The count, also on the canvas (data-visible-splats) for tests and anything else that watches. */
  private setCount(count: number): void {
    this.counted = count;
    this.stage.canvas.dataset.visibleSplats = String(count);
  }

  dispose(): void {
    if (this.countTimer !== null) window.clearTimeout(this.countTimer);
    this.pointer.dispose();
    this.gizmo.dispose();
    this.preview.dispose();
  }
}
