// Where the camera goes: the first capture camera (where the view opens when the scene has one), the view
// from outside or from where the cameras were when it has none, and the framing of the whole scene.

import * as THREE from "three";

import type { InitialView } from "../api/types";
import type { Bounds } from "./types";

export const DEFAULT_FOV = 60;
const SURROUNDINGS_RADIUS = 1.5; // in the pipeline's normalised units, where the cameras lie within ~1

/** The first capture camera in three.js's world: the same half turn as the splats (the stage's content). */
export interface FirstCamera {
  position: THREE.Vector3;
  forward: THREE.Vector3;
  up: THREE.Vector3;
  fovY: number;
  aspect: number;
}

function vector(values: number[] | undefined): THREE.Vector3 | null {
  if (!values || values.length !== 3 || !values.every(Number.isFinite)) return null;
  return new THREE.Vector3(values[0], values[1], values[2]);
}

/** The metadata's `initial_view` turned as `content` turns the splats; null when there is none (or it is bad). */
export function firstCameraOf(view: InitialView | null, content: THREE.Object3D): FirstCamera | null {
  const position = vector(view?.position);
  const forward = vector(view?.forward);
  const up = vector(view?.up);
  if (!view || !position || !forward || !up || !(view.fov_y_degrees > 0)) return null;
  return {
    position: position.applyMatrix4(content.matrixWorld),
    forward: forward.applyQuaternion(content.quaternion).normalize(),
    up: up.applyQuaternion(content.quaternion).normalize(),
    fovY: view.fov_y_degrees,
    aspect: view.aspect > 0 ? view.aspect : 4 / 3,
  };
}

/** Near and far planes that hold the scene seen from its first camera, or from its own size. */
export function fitClipPlanes(camera: THREE.PerspectiveCamera, bounds: Bounds, startDistance: number): void {
  camera.near = Math.max(Math.min(bounds.radius, startDistance || bounds.radius) / 1000, 1e-4);
  camera.far = Math.max(bounds.radius, startDistance) * 1000;
  camera.updateProjectionMatrix();
}

/**
 * The vertical field of view that shows what the capture camera saw: its own, widened when the view is
 * narrower than the photo so the sides are not cut off.
 */
export function firstCameraFov(first: FirstCamera, camera: THREE.PerspectiveCamera): number {
  const halfY = Math.tan(THREE.MathUtils.degToRad(first.fovY) / 2);
  const needed = (halfY * first.aspect) / Math.max(camera.aspect, 1e-3);
  return THREE.MathUtils.radToDeg(2 * Math.atan(Math.max(halfY, needed)));
}

/** Puts the camera where the first capture camera was, orbiting about the point it looks at. */
export function aimFromFirstCamera(camera: THREE.PerspectiveCamera, target: THREE.Vector3, first: FirstCamera,
  bounds: Bounds): void {
  camera.fov = firstCameraFov(first, camera);
  camera.updateProjectionMatrix();
  // Orbit about the vertical: the pipeline levels every scene (its floor or table horizontal, y up here), so
  // this is the first camera's view without its roll, and dragging turns about the true vertical. A camera
  // looking straight down or up has no horizon to level: it keeps its own up.
  if (Math.abs(first.forward.y) < 0.98) camera.up.set(0, 1, 0);
  else camera.up.copy(first.up);
  camera.position.copy(first.position);
  // Orbit about the point straight ahead at the depth of the scene's centre.
  const depth = Math.max(bounds.center.clone().sub(first.position).dot(first.forward), bounds.radius * 0.25);
  target.copy(first.position).addScaledVector(first.forward, depth);
  camera.lookAt(target);
}

/** Where the view opens when the scene has no first camera: in among its cameras, or a little out from it. */
export function aimWithoutFirstCamera(camera: THREE.PerspectiveCamera, target: THREE.Vector3, bounds: Bounds): void {
  camera.up.set(0, 1, 0);
  if (bounds.radius > SURROUNDINGS_RADIUS) {
    // A capture with its surroundings (walls, background) reaching well past the cameras: framing the
    // whole cloud would show it from outside. The pipeline centres the world on the cameras and scales
    // them to radius ~1 (vidscene/pipeline/cameras.py), so start where the cameras were, looking in.
    camera.position.copy(new THREE.Vector3(0, 0.35, 1).normalize());
    target.set(0, 0, 0);
  } else {
    const { center, radius } = bounds;
    camera.position.set(center.x, center.y + radius * 0.5, center.z + radius * 2.2);
    target.copy(center);
  }
  camera.lookAt(target);
}

/**
 * Keeps the viewing direction (levelled, unless looking straight down or up) and moves back until the
 * scene's bounds fill the view, never beyond `maxDistance`.
 */
export function aimAtWholeScene(camera: THREE.PerspectiveCamera, target: THREE.Vector3, bounds: Bounds,
  maxDistance: number): void {
  camera.fov = DEFAULT_FOV;
  camera.updateProjectionMatrix();
  const direction = new THREE.Vector3();
  camera.getWorldDirection(direction);
  // Level the horizon, but keep looking the way the user looks (straight down or up: keep the scene's side).
  direction.y = THREE.MathUtils.clamp(direction.y, -0.9, 0.9);
  direction.normalize();
  const halfY = THREE.MathUtils.degToRad(camera.fov) / 2;
  const half = Math.min(halfY, Math.atan(Math.tan(halfY) * camera.aspect));
  const distance = Math.min(bounds.radius / Math.sin(half), maxDistance * 0.95);
  camera.up.set(0, 1, 0);
  target.copy(bounds.center);
  camera.position.copy(bounds.center).addScaledVector(direction, -distance);
  camera.lookAt(target);
}
