// What the edit list looks like in the view: each shape as a wireframe (the crop box yellow, erasers red),
// and the selected one with handles to drag: its centre (move), the box's faces (resize), a corner of its
// middle (turn about the vertical) or a sphere's rim (radius). Everything sits in the stage's content, in
// the exported files' coordinates, drawn over the splats so a handle inside the scene stays reachable.

import * as THREE from "three";

import type { EditOperation } from "../api/edits";
import { rotationOf } from "./editPreview";

export type HandleKind = "move" | "face" | "turn" | "radius";

/** What a handle does, kept in its mesh's userData. */
export interface Handle {
  kind: HandleKind;
  axis: 0 | 1 | 2;
  sign: 1 | -1;
}

const COLOURS = { keep: 0xffd166, erase: 0xef476f, move: 0xffffff, face: 0x4cc9f0, turn: 0x80ed99, radius: 0x4cc9f0 };
const OVERLAY = 1000; // render order: after the splats
const AXES = [0, 1, 2] as const;

function overlay<T extends THREE.Object3D>(object: T): T {
  object.renderOrder = OVERLAY;
  return object;
}

function lineMaterial(colour: number, selected: boolean): THREE.LineBasicMaterial {
  return new THREE.LineBasicMaterial({ color: colour, depthTest: false, transparent: true, opacity: selected ? 1 : 0.55 });
}

/** A circle of radius 1 in the plane spanned by axes `a` and `b`. */
function circle(a: 0 | 1 | 2, b: 0 | 1 | 2, material: THREE.LineBasicMaterial): THREE.LineLoop {
  const points: THREE.Vector3[] = [];
  for (let i = 0; i < 64; i += 1) {
    const angle = (i / 64) * Math.PI * 2;
    const p = [0, 0, 0];
    p[a] = Math.cos(angle);
    p[b] = Math.sin(angle);
    points.push(new THREE.Vector3(p[0], p[1], p[2]));
  }
  return overlay(new THREE.LineLoop(new THREE.BufferGeometry().setFromPoints(points), material));
}

/** The shape's outline, sized (the box by its half sizes, the sphere by its radius) in its own frame. */
function wireframe(operation: EditOperation, selected: boolean): THREE.Object3D {
  const material = lineMaterial(operation.op === "keep_inside" ? COLOURS.keep : COLOURS.erase, selected);
  if (operation.shape === "box") {
    const edges = new THREE.EdgesGeometry(new THREE.BoxGeometry(2, 2, 2));
    const box = overlay(new THREE.LineSegments(edges, material));
    box.scale.set(...(operation.half_size ?? [1, 1, 1]));
    return box;
  }
  const sphere = new THREE.Group();
  sphere.add(circle(0, 1, material), circle(1, 2, material), circle(0, 2, material));
  sphere.scale.setScalar(operation.radius ?? 1);
  return sphere;
}

function handleMesh(handle: Handle, position: THREE.Vector3, size: number): THREE.Mesh {
  const material = new THREE.MeshBasicMaterial({ color: COLOURS[handle.kind], depthTest: false, transparent: true });
  const mesh = overlay(new THREE.Mesh(new THREE.SphereGeometry(1, 12, 8), material));
  mesh.position.copy(position);
  mesh.scale.setScalar(handle.kind === "move" ? size * 1.3 : size);
  mesh.userData.handle = handle;
  return mesh;
}

/** The handles of one shape, in its own (unscaled) frame. */
function handlesOf(operation: EditOperation, size: number): THREE.Mesh[] {
  const handles = [handleMesh({ kind: "move", axis: 0, sign: 1 }, new THREE.Vector3(), size)];
  if (operation.shape === "sphere") {
    handles.push(handleMesh({ kind: "radius", axis: 0, sign: 1 }, new THREE.Vector3(operation.radius ?? 1, 0, 0), size));
    return handles;
  }
  const half = operation.half_size ?? [1, 1, 1];
  for (const axis of AXES) {
    for (const sign of [1, -1] as const) {
      const at = new THREE.Vector3();
      at.setComponent(axis, sign * half[axis]);
      handles.push(handleMesh({ kind: "face", axis, sign }, at, size));
    }
  }
  handles.push(handleMesh({ kind: "turn", axis: 1, sign: 1 }, new THREE.Vector3(half[0], 0, half[2]), size));
  return handles;
}

function disposeTree(root: THREE.Object3D): void {
  root.traverse((node) => {
    if (node instanceof THREE.Mesh || node instanceof THREE.Line) {
      node.geometry.dispose();
      (node.material as THREE.Material).dispose();
    }
  });
}

/** Where a handle was drawn, in CSS pixels from the canvas's top left corner. */
export interface HandleOnScreen extends Handle {
  x: number;
  y: number;
}

/** The handles' places on the canvas as `camera` sees them. */
function onScreen(handles: THREE.Mesh[], camera: THREE.Camera, canvas: HTMLCanvasElement): HandleOnScreen[] {
  return handles.map((mesh) => {
    const ndc = mesh.getWorldPosition(new THREE.Vector3()).project(camera);
    const x = ((ndc.x + 1) / 2) * canvas.clientWidth;
    const y = ((1 - ndc.y) / 2) * canvas.clientHeight;
    return { ...(mesh.userData.handle as Handle), x: Math.round(x * 10) / 10, y: Math.round(y * 10) / 10 };
  });
}

/** The shapes and the selected one's handles, rebuilt whenever the list or the selection changes. */
export class EditGizmo {
  private readonly group = new THREE.Group();
  /** The selected shape's handles (what a pointer can grab). */
  handles: THREE.Mesh[] = [];

  /** `report` hears where the handles were drawn, each time they are (for tests, and anything watching). */
  constructor(parent: THREE.Object3D, private readonly handleSize: number,
    private readonly report: (handles: HandleOnScreen[]) => void) {
    this.group.name = "edit-gizmo";
    parent.add(this.group);
  }

  show(operations: EditOperation[], selected: number | null): void {
    disposeTree(this.group);
    this.group.clear();
    this.handles = [];
    operations.forEach((operation, index) => {
      const frame = new THREE.Group();
      frame.position.set(...operation.center);
      frame.quaternion.copy(rotationOf(operation));
      frame.add(wireframe(operation, index === selected));
      if (index === selected) {
        this.handles = handlesOf(operation, this.handleSize);
        frame.add(...this.handles);
        const handles = this.handles;
        const first = handles[0];
        if (first) {
          first.onBeforeRender = (renderer, _scene, camera) => {
            this.report(onScreen(handles, camera, renderer.domElement));
          };
        }
      }
      this.group.add(frame);
    });
    this.group.updateMatrixWorld(true);
    if (this.handles.length === 0) this.report([]);
  }

  dispose(): void {
    disposeTree(this.group);
    this.group.removeFromParent();
  }
}
