// Draw on demand: while the camera moves and for a short while after (Spark sorts splats in a worker and needs
// a few more frames to show the new order), then stop, so an idle view costs no CPU or battery. The canvas's
// data attributes say what the picture shows, for tests and anything else that watches.

import * as THREE from "three";

import type { CameraControls } from "./controls";
import type { Stage } from "./stage";
import type { Bounds } from "./types";

const SETTLE_MS = 2000; // keep drawing this long after the last camera change
const SLOW_FRAME_MS = 60;

/** Until when to draw; anything that moves the camera wakes it. */
export class DrawOnDemand {
  private activeUntil = 0;

  readonly wake = (): void => {
    this.activeUntil = performance.now() + SETTLE_MS;
  };

  activeAt(now: number): boolean {
    return now < this.activeUntil;
  }
}

/** Wakes the drawing on the user's input and on orbit's own changes. Returns what stops it. */
export function wakeOnInput(canvas: HTMLCanvasElement, controls: CameraControls, wake: () => void): () => void {
  // Orbit reports its own changes (with a threshold, so damping's endless tiny steps do not keep us busy);
  // fly mode is watched by the drawing loop with a similar threshold relative to the scene size.
  controls.orbit.addEventListener("change", wake);
  canvas.addEventListener("pointerdown", wake);
  canvas.addEventListener("wheel", wake, { passive: true });
  canvas.addEventListener("keydown", wake);
  return () => {
    controls.orbit.removeEventListener("change", wake);
    canvas.removeEventListener("pointerdown", wake);
    canvas.removeEventListener("wheel", wake);
    canvas.removeEventListener("keydown", wake);
  };
}

/** Sets a data attribute only when it changes (observers watching the canvas see real changes only). */
function setData(canvas: HTMLCanvasElement, key: string, value: string): void {
  if (canvas.dataset[key] !== value) canvas.dataset[key] = value;
}

/** The camera's distance in scene radii, and its place and direction in the splat file's own coordinates. */
function reportCamera(stage: Stage, bounds: Bounds, toFile: THREE.Matrix4): void {
  const { camera, canvas, content } = stage;
  setData(canvas, "cameraDistance", (camera.position.distanceTo(bounds.center) / bounds.radius).toFixed(2));
  // The camera in the splat file's own coordinates (those of the metadata's initial_view).
  const inFile = camera.position.clone().applyMatrix4(toFile);
  const looking = new THREE.Vector3();
  camera.getWorldDirection(looking);
  looking.applyQuaternion(content.quaternion.clone().invert());
  setData(canvas, "camera", [...inFile.toArray(), ...looking.toArray()].map((v) => v.toFixed(4)).join(","));
}

/** Whether the flying camera moved since the last frame, by more than a hair (relative to the scene's size). */
function flyWatcher(camera: THREE.Camera, bounds: Bounds): () => boolean {
  const lastPosition = camera.position.clone();
  const lastQuaternion = camera.quaternion.clone();
  const minMove = bounds.radius * 1e-5;
  return () => {
    if (
      camera.position.distanceTo(lastPosition) <= minMove &&
      1 - Math.abs(camera.quaternion.dot(lastQuaternion)) <= 1e-9
    ) {
      return false;
    }
    lastPosition.copy(camera.position);
    lastQuaternion.copy(camera.quaternion);
    return true;
  };
}

/** Runs the animation loop: moves the camera every frame, draws while awake. Returns what stops it. */
export function startDrawing(stage: Stage, controls: CameraControls, bounds: Bounds, demand: DrawOnDemand): () => void {
  const { renderer, scene, camera, canvas } = stage;
  const toFile = stage.content.matrixWorld.clone().invert();
  const flyMoved = flyWatcher(camera, bounds);
  let frameMs = 0;
  let lastFrameAt = 0;
  renderer.setAnimationLoop(() => {
    controls.update();
    if (controls.mode === "fly" && flyMoved()) demand.wake();
    const now = performance.now();
    const active = demand.activeAt(now);
    if (active) {
      // The GPU work of a frame shows up as the time until the next animation frame, not inside render().
      // Damping glides for dozens of frames; on a device that draws a frame per second (software GL) that
      // is a long drift after every drag, so slow devices get direct, undamped controls.
      if (lastFrameAt > 0) frameMs = 0.7 * frameMs + 0.3 * Math.min(now - lastFrameAt, 2000);
      controls.setDamping(frameMs < SLOW_FRAME_MS);
      renderer.render(scene, camera);
      lastFrameAt = now;
      reportCamera(stage, bounds, toFile);
    } else {
      lastFrameAt = 0;
    }
    // Lets tests (and anything else watching) know when the picture has settled.
    setData(canvas, "idle", active ? "false" : "true");
  });
  return () => renderer.setAnimationLoop(null);
}
