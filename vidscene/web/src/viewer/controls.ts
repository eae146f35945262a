// The camera's controls: orbit (three.js's OrbitControls) and fly (Spark's first-person controls), the switch
// between them, the keys, and the bound that keeps the camera within reach of the scene.

import * as THREE from "three";
import { OrbitControls } from "three/examples/jsm/controls/OrbitControls.js";
import { SparkControls } from "@sparkjsdev/spark";

import type { FirstCamera } from "./camera";
import { aimAtWholeScene, aimFromFirstCamera, aimWithoutFirstCamera, firstCameraFov, fitClipPlanes } from "./camera";
import type { Stage } from "./stage";
import type { Bounds, ControlMode } from "./types";

// How far from the scene's centre the camera (and orbit's target) may go, in scene radii: flying or zooming
// further only loses the scene in the dark, and there is nothing out there to see.
const MAX_DISTANCE_RADII = 5;
// In fly mode the arrow and page keys move the camera; keep them from also scrolling the page.
const FLY_KEYS = new Set(["ArrowUp", "ArrowDown", "ArrowLeft", "ArrowRight", "PageUp", "PageDown", "Home", "End"]);

export class CameraControls {
  readonly orbit: OrbitControls;
  private readonly fly: SparkControls;
  private readonly camera: THREE.PerspectiveCamera;
  private readonly canvas: HTMLCanvasElement;
  private readonly maxDistance: number;
  private current: ControlMode;
  private fromStart: boolean; // the field of view follows the capture camera until the user reframes

  /** `wake` asks for frames to be drawn: the camera moved, or is about to. */
  constructor(stage: Stage, private readonly bounds: Bounds, private readonly first: FirstCamera | null,
    mode: ControlMode, private readonly wake: () => void) {
    this.camera = stage.camera;
    this.canvas = stage.canvas;
    this.current = mode;
    this.fromStart = first !== null;
    const startDistance = first ? first.position.distanceTo(bounds.center) : 0;
    fitClipPlanes(this.camera, bounds, startDistance);
    // Never so tight that the first capture camera itself would be pulled in towards the scene.
    this.maxDistance = Math.max(bounds.radius * MAX_DISTANCE_RADII, startDistance * 1.5);
    this.orbit = new OrbitControls(this.camera, this.canvas);
    this.orbit.maxDistance = this.maxDistance;
    this.orbit.enableDamping = true;
    this.orbit.dampingFactor = 0.12;
    this.orbit.keyPanSpeed = 12;
    this.orbit.listenToKeyEvents(this.canvas);
    this.fly = new SparkControls({ canvas: this.canvas });
    this.fly.fpsMovement.moveSpeed = bounds.radius * 0.6;
    this.canvas.addEventListener("keydown", this.onKeyDown);
    this.canvas.addEventListener("focus", this.onFocusChange);
    this.canvas.addEventListener("blur", this.onFocusChange);
  }

  get mode(): ControlMode {
    return this.current;
  }

  private readonly onKeyDown = (event: KeyboardEvent): void => {
    if (this.current === "fly" && FLY_KEYS.has(event.code)) event.preventDefault();
  };

  private readonly onFocusChange = (): void => this.applyMode();

  /** Back to where the view opened: the first capture camera when the scene has one. */
  resetView(): void {
    this.wake();
    if (this.first) {
      this.fromStart = true;
      aimFromFirstCamera(this.camera, this.orbit.target, this.first, this.bounds);
    } else {
      aimWithoutFirstCamera(this.camera, this.orbit.target, this.bounds);
    }
    this.orbit.update();
  }

  frameScene(): void {
    this.wake();
    this.fromStart = false;
    aimAtWholeScene(this.camera, this.orbit.target, this.bounds, this.maxDistance);
    this.orbit.update();
  }

  /** After a resize: the first camera's field of view fits the new shape (until the user reframes). */
  fitFov(): void {
    if (this.first && this.fromStart) this.camera.fov = firstCameraFov(this.first, this.camera);
  }

  setMode(next: ControlMode): void {
    if (next === this.current) return;
    if (next === "orbit") {
      // Orbit around the point the flying camera was looking at, at the distance of the scene centre.
      const dist = Math.max(this.camera.position.distanceTo(this.bounds.center), this.bounds.radius * 0.2);
      const forward = new THREE.Vector3();
      this.camera.getWorldDirection(forward);
      this.orbit.target.copy(this.camera.position).addScaledVector(forward, dist);
      this.camera.up.set(0, 1, 0);
      this.orbit.update();
    }
    // Spark measures each move from its last update: after a while in orbit mode, a held key would otherwise
    // jump the camera by the whole time spent there.
    this.fly.lastTime = 0;
    this.current = next;
    this.applyMode();
    this.wake();
  }

  applyMode(): void {
    this.orbit.enabled = this.current === "orbit";
    this.fly.pointerControls.enable = this.current === "fly";
    // Spark listens to keys on the whole document; only fly while the canvas has focus so typing elsewhere
    // on the page never moves the camera.
    this.fly.fpsMovement.enable = this.current === "fly" && document.activeElement === this.canvas;
  }

  /** Damping glides for dozens of frames: fine where frames are quick, a long drift where they are slow. */
  setDamping(on: boolean): void {
    this.orbit.enableDamping = on;
  }

  /** One frame's move of the camera (orbit's damping, or the keys held in fly mode), kept near the scene. */
  update(): void {
    if (this.current === "orbit") {
      this.clampToScene(this.orbit.target); // panned away: orbit.update() then follows with the camera
      this.orbit.update();
    } else {
      this.fly.update(this.camera);
      this.clampToScene(this.camera.position);
    }
  }

  /** Keeps `point` within reach of the scene (MAX_DISTANCE_RADII), moving it straight back towards it. */
  private clampToScene(point: THREE.Vector3): void {
    const offset = point.clone().sub(this.bounds.center);
    if (offset.length() <= this.maxDistance) return;
    point.copy(this.bounds.center).addScaledVector(offset.normalize(), this.maxDistance);
  }

  dispose(): void {
    this.canvas.removeEventListener("keydown", this.onKeyDown);
    this.canvas.removeEventListener("focus", this.onFocusChange);
    this.canvas.removeEventListener("blur", this.onFocusChange);
    this.orbit.dispose();
    this.fly.pointerControls.enable = false;
    this.fly.fpsMovement.enable = false;
  }
}
