// Dragging the edit shapes' handles. Everything is worked out in the exported files' coordinates (the stage's
// content): the pointer's ray is brought into them, and the operation changes as the handle follows the
// pointer: the centre moves in the plane facing the camera, a face slides along its axis with the opposite
// face kept in place, the turn handle turns the box about the vertical, the rim handle sets a sphere's radius.

import * as THREE from "three";

import type { EditOperation, Vec3 } from "../api/edits";
import type { Handle } from "./editGizmo";
import { rotationOf } from "./editPreview";

/** The smallest half size or radius a drag leaves, in scene radii (the API refuses 0). */
const MIN_SIZE_RADII = 0.005;
// The file's vertical axis: the stage turns the file's y onto three.js's (upside down), so turning about it
// is turning about the view's vertical.
const VERTICAL = new THREE.Vector3(0, 1, 0);

/** What a drag started from: the operation, the handle and the pointer's ray then. */
export interface DragStart {
  operation: EditOperation;
  handle: Handle;
  ray: THREE.Ray;
  /** The camera's viewing direction in the files' coordinates. */
  facing: THREE.Vector3;
  minSize: number;
}

function vec3(v: THREE.Vector3): Vec3 {
  return [v.x, v.y, v.z];
}

function centreOf(operation: EditOperation): THREE.Vector3 {
  return new THREE.Vector3(...operation.center);
}

/** Where the ray meets the plane through `point` with `normal`, or null when it runs along it. */
function onPlane(ray: THREE.Ray, point: THREE.Vector3, normal: THREE.Vector3): THREE.Vector3 | null {
  return ray.intersectPlane(new THREE.Plane().setFromNormalAndCoplanarPoint(normal, point), new THREE.Vector3());
}

/** How far along the line (`origin`, unit `direction`) the point nearest the ray is; null when parallel. */
function alongLine(ray: THREE.Ray, origin: THREE.Vector3, direction: THREE.Vector3): number | null {
  const b = direction.dot(ray.direction);
  const denom = 1 - b * b;
  if (denom < 1e-4) return null; // looking along the axis: the pointer says nothing about it
  const w = origin.clone().sub(ray.origin);
  return (b * ray.direction.dot(w) - direction.dot(w)) / denom;
}

function moved(start: DragStart, ray: THREE.Ray): EditOperation {
  const centre = centreOf(start.operation);
  const from = onPlane(start.ray, centre, start.facing);
  const to = onPlane(ray, centre, start.facing);
  if (!from || !to) return start.operation;
  return { ...start.operation, center: vec3(centre.add(to.sub(from))) };
}

function resized(start: DragStart, ray: THREE.Ray): EditOperation {
  const { operation, handle } = start;
  const half = operation.half_size ?? [1, 1, 1];
  const axis = new THREE.Vector3().setComponent(handle.axis, handle.sign).applyQuaternion(rotationOf(operation));
  const face = centreOf(operation).addScaledVector(axis, half[handle.axis]);
  const from = alongLine(start.ray, face, axis);
  const to = alongLine(ray, face, axis);
  if (from === null || to === null) return operation;
  const size = Math.max(start.minSize, half[handle.axis] + (to - from) / 2);
  const grown = size - half[handle.axis];
  const nextHalf = [...half] as Vec3;
  nextHalf[handle.axis] = size;
  return { ...operation, center: vec3(centreOf(operation).addScaledVector(axis, grown)), half_size: nextHalf };
}

function turned(start: DragStart, ray: THREE.Ray): EditOperation {
  const centre = centreOf(start.operation);
  const from = onPlane(start.ray, centre, VERTICAL);
  const to = onPlane(ray, centre, VERTICAL);
  if (!from || !to) return start.operation;
  const angle = (p: THREE.Vector3): number => Math.atan2(p.x - centre.x, p.z - centre.z);
  const turn = new THREE.Quaternion().setFromAxisAngle(VERTICAL, angle(to) - angle(from));
  const q = turn.multiply(rotationOf(start.operation));
  return { ...start.operation, rotation: [q.w, q.x, q.y, q.z] };
}

function rimmed(start: DragStart, ray: THREE.Ray): EditOperation {
  const radius = start.operation.radius ?? 1;
  const axis = new THREE.Vector3(1, 0, 0).applyQuaternion(rotationOf(start.operation));
  const rim = centreOf(start.operation).addScaledVector(axis, radius);
  const from = alongLine(start.ray, rim, axis);
  const to = alongLine(ray, rim, axis);
  if (from === null || to === null) return start.operation;
  return { ...start.operation, radius: Math.max(start.minSize, radius + to - from) };
}

/** The operation once its handle follows the pointer from `start` to the ray `ray`. */
export function dragged(start: DragStart, ray: THREE.Ray): EditOperation {
  switch (start.handle.kind) {
    case "move": return moved(start, ray);
    case "face": return resized(start, ray);
    case "turn": return turned(start, ray);
    case "radius": return rimmed(start, ray);
  }
}

export function minSizeFor(sceneRadius: number): number {
  return sceneRadius * MIN_SIZE_RADII;
}
