// Interactive 3D viewer: Spark (three.js gaussian splat renderer) for .spz, .splat and 3DGS .ply files, and a plain
// three.js point cloud for PLY files without gaussian attributes (TensoRF density points). Loaded lazily by
// the scene page, so the ~3 MB renderer is only downloaded when a scene is opened.

import * as THREE from "three";
import { OrbitControls } from "three/examples/jsm/controls/OrbitControls.js";
import { PLYLoader } from "three/examples/jsm/loaders/PLYLoader.js";
import { SparkControls, SparkRenderer, SplatFileType, SplatMesh } from "@sparkjsdev/spark";

export type ControlMode = "orbit" | "fly";

const SETTLE_MS = 2000; // keep drawing this long after the last camera change
const SLOW_FRAME_MS = 60;
const SURROUNDINGS_RADIUS = 1.5; // in the pipeline's normalised units, where the cameras lie within ~1
// How far from the scene's centre the camera (and orbit's target) may go, in scene radii: flying or zooming
// further only loses the scene in the dark, and there is nothing out there to see.
const MAX_DISTANCE_RADII = 5;
export type ViewerFormat = "spz" | "splat" | "ply";
// Spark's file type for each (SPZ: the version 3 gzip files the pipeline writes, which Spark 2.2 reads).
const SPARK_TYPES: Record<ViewerFormat, SplatFileType> = {
  spz: SplatFileType.SPZ,
  splat: SplatFileType.SPLAT,
  ply: SplatFileType.PLY,
};

/**
 * The first capture camera, as the server's metadata gives it (`initial_view`), in the coordinates of the
 * exported splats (the pipeline's world: OpenCV axes, -y up); `forward` and `up` are unit vectors.
 */
export interface InitialView {
  position: number[];
  forward: number[];
  up: number[];
  fov_y_degrees: number;
  aspect: number;
}

export interface ViewerHandle {
  setMode(mode: ControlMode): void;
  /** Back to where the view opened: the first capture camera when the scene has one. */
  resetView(): void;
  /** Keep the viewing direction, level the horizon and move so the scene's robust bounds fill the view. */
  frameScene(): void;
  dispose(): void;
  readonly pointCount: number;
}

interface Bounds {
  center: THREE.Vector3;
  radius: number;
}

/** True when a PLY header carries 3DGS gaussian attributes (scales and SH colours), not just points. */
export function isGaussianPly(bytes: Uint8Array): boolean {
  const head = new TextDecoder("latin1").decode(bytes.subarray(0, Math.min(bytes.length, 16384)));
  const end = head.indexOf("end_header");
  const header = end >= 0 ? head.slice(0, end) : head;
  return /property\s+\w+\s+scale_0/.test(header) && /property\s+\w+\s+(f_dc_0|red)/.test(header);
}

/**
 * Centre and size from the median and the 80th-percentile distance of the points: training leaves a few
 * far-away floaters, and a plain bounding box would put the camera so far out that the scene is a dot.
 */
function robustBounds(points: Float32Array, count: number): Bounds {
  if (count === 0) return { center: new THREE.Vector3(), radius: 1 };
  const step = Math.max(1, Math.floor(count / 20000));
  const xs: number[] = [];
  const ys: number[] = [];
  const zs: number[] = [];
  for (let i = 0; i < count; i += step) {
    xs.push(points[3 * i] ?? 0);
    ys.push(points[3 * i + 1] ?? 0);
    zs.push(points[3 * i + 2] ?? 0);
  }
  const median = (v: number[]): number => {
    const s = [...v].sort((a, b) => a - b);
    return s[Math.floor(s.length / 2)] ?? 0;
  };
  const center = new THREE.Vector3(median(xs), median(ys), median(zs));
  const dists = xs.map((x, i) => Math.hypot(x - center.x, (ys[i] ?? 0) - center.y, (zs[i] ?? 0) - center.z));
  dists.sort((a, b) => a - b);
  const radius = dists[Math.floor(dists.length * 0.8)] ?? 1;
  return { center, radius: radius > 1e-6 ? radius : 1 };
}

function splatCenters(mesh: SplatMesh): { points: Float32Array; count: number } {
  const count = mesh.packedSplats?.numSplats ?? 0;
  const points = new Float32Array(count * 3);
  let n = 0;
  mesh.forEachSplat((index, center) => {
    points[3 * index] = center.x;
    points[3 * index + 1] = center.y;
    points[3 * index + 2] = center.z;
    n = Math.max(n, index + 1);
  });
  return { points, count: n };
}

function vector(values: number[] | undefined): THREE.Vector3 | null {
  if (!values || values.length !== 3 || !values.every(Number.isFinite)) return null;
  return new THREE.Vector3(values[0], values[1], values[2]);
}

export async function createViewer(
  container: HTMLElement,
  bytes: Uint8Array,
  format: ViewerFormat,
  initialMode: ControlMode = "orbit",
  initialView: InitialView | null = null,
): Promise<ViewerHandle> {
  const renderer = new THREE.WebGLRenderer({ antialias: false, powerPreference: "high-performance" });
  renderer.setPixelRatio(Math.min(window.devicePixelRatio, 2));
  renderer.setClearColor(0x10131a, 1);
  const canvas = renderer.domElement;
  canvas.tabIndex = 0; // keyboard users focus the canvas to move the camera with the keys
  canvas.className = "viewer-canvas";
  canvas.setAttribute("role", "img");
  canvas.setAttribute(
    "aria-label",
    "3D view of the scene. Orbit: drag to rotate, right-drag or arrow keys to pan, scroll to zoom. " +
      "Fly: W A S D or arrow keys to move, E and Q to rise and sink, drag to look around.",
  );
  container.appendChild(canvas);

  const scene = new THREE.Scene();
  const camera = new THREE.PerspectiveCamera(60, 1, 0.01, 1000);
  // The pipeline's world has -y up (OpenCV camera convention); three.js draws +y up. Turning the content
  // half a turn about x puts the scene the right way up without touching the data.
  const content = new THREE.Group();
  content.quaternion.set(1, 0, 0, 0);
  scene.add(content);

  let disposeContent: () => void;
  let points: Float32Array;
  let count: number;
  if (format === "ply" && !isGaussianPly(bytes)) {
    const geometry = new PLYLoader().parse(bytes.slice().buffer);
    const position = geometry.getAttribute("position");
    const hasColor = geometry.hasAttribute("color");
    points = position.array instanceof Float32Array ? position.array : Float32Array.from(position.array);
    count = position.count;
    const bounds = robustBounds(points, count);
    const material = new THREE.PointsMaterial({
      size: bounds.radius / 150,
      vertexColors: hasColor,
      color: hasColor ? 0xffffff : 0x9ec5ff,
    });
    content.add(new THREE.Points(geometry, material));
    disposeContent = () => {
      geometry.dispose();
      material.dispose();
    };
  } else {
    const spark = new SparkRenderer({ renderer });
    scene.add(spark);
    const mesh = new SplatMesh({
      fileBytes: bytes,
      fileType: SPARK_TYPES[format],
    });
    await mesh.initialized;
    content.add(mesh);
    ({ points, count } = splatCenters(mesh));
    disposeContent = () => {
      mesh.dispose();
      scene.remove(spark);
    };
  }

  // Bounds in world space (after the flip applied by `content`).
  const local = robustBounds(points, count);
  content.updateMatrixWorld(true);
  const bounds: Bounds = { center: local.center.clone().applyMatrix4(content.matrixWorld), radius: local.radius };
  // The first capture camera in three.js's world: the same half turn as the splats (content).
  const start = (() => {
    const position = vector(initialView?.position);
    const forward = vector(initialView?.forward);
    const up = vector(initialView?.up);
    if (!initialView || !position || !forward || !up || !(initialView.fov_y_degrees > 0)) return null;
    return {
      position: position.applyMatrix4(content.matrixWorld),
      forward: forward.applyQuaternion(content.quaternion).normalize(),
      up: up.applyQuaternion(content.quaternion).normalize(),
      fovY: initialView.fov_y_degrees,
      aspect: initialView.aspect > 0 ? initialView.aspect : 4 / 3,
    };
  })();
  const startDistance = start ? start.position.distanceTo(bounds.center) : 0;
  camera.near = Math.max(Math.min(bounds.radius, startDistance || bounds.radius) / 1000, 1e-4);
  camera.far = Math.max(bounds.radius, startDistance) * 1000;
  camera.updateProjectionMatrix();

  const orbit = new OrbitControls(camera, canvas);
  // Never so tight that the first capture camera itself would be pulled in towards the scene.
  const maxDistance = Math.max(bounds.radius * MAX_DISTANCE_RADII, startDistance * 1.5);
  orbit.maxDistance = maxDistance;
  orbit.enableDamping = true;
  orbit.dampingFactor = 0.12;
  orbit.keyPanSpeed = 12;
  orbit.listenToKeyEvents(canvas);
  const fly = new SparkControls({ canvas });
  fly.fpsMovement.moveSpeed = bounds.radius * 0.6;

  let mode: ControlMode = initialMode;
  let activeUntil = 0;
  const wake = (): void => {
    activeUntil = performance.now() + SETTLE_MS;
  };

  /**
   * The vertical field of view that shows what the capture camera saw: its own, widened when the view is
   * narrower than the photo so the sides are not cut off.
   */
  function startFov(): number {
    if (!start) return 60;
    const halfY = Math.tan(THREE.MathUtils.degToRad(start.fovY) / 2);
    const needed = (halfY * start.aspect) / Math.max(camera.aspect, 1e-3);
    return THREE.MathUtils.radToDeg(2 * Math.atan(Math.max(halfY, needed)));
  }
  let fromStart = start !== null; // the field of view follows the capture camera until the user reframes

  function resetView(): void {
    wake();
    if (start) {
      fromStart = true;
      camera.fov = startFov();
      camera.updateProjectionMatrix();
      camera.up.copy(start.up);
      camera.position.copy(start.position);
      // Orbit about the point straight ahead at the depth of the scene's centre.
      const depth = Math.max(bounds.center.clone().sub(start.position).dot(start.forward), bounds.radius * 0.25);
      orbit.target.copy(start.position).addScaledVector(start.forward, depth);
      camera.lookAt(orbit.target);
      orbit.update();
      return;
    }
    camera.up.set(0, 1, 0);
    if (bounds.radius > SURROUNDINGS_RADIUS) {
      // A capture with its surroundings (walls, background) reaching well past the cameras: framing the
      // whole cloud would show it from outside. The pipeline centres the world on the cameras and scales
      // them to radius ~1 (vidscene/pipeline/cameras.py), so start where the cameras were, looking in.
      const start = new THREE.Vector3(0, 0.35, 1).normalize();
      camera.position.copy(start);
      orbit.target.set(0, 0, 0);
    } else {
      const { center, radius } = bounds;
      camera.position.set(center.x, center.y + radius * 0.5, center.z + radius * 2.2);
      orbit.target.copy(center);
    }
    camera.lookAt(orbit.target);
    orbit.update();
  }

  function frameScene(): void {
    wake();
    fromStart = false;
    camera.fov = 60;
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
    orbit.target.copy(bounds.center);
    camera.position.copy(bounds.center).addScaledVector(direction, -distance);
    camera.lookAt(orbit.target);
    orbit.update();
  }

  function setMode(next: ControlMode): void {
    if (next === mode) return;
    if (next === "orbit") {
      // Orbit around the point the flying camera was looking at, at the distance of the scene centre.
      const dist = Math.max(camera.position.distanceTo(bounds.center), bounds.radius * 0.2);
      const forward = new THREE.Vector3();
      camera.getWorldDirection(forward);
      orbit.target.copy(camera.position).addScaledVector(forward, dist);
      camera.up.set(0, 1, 0);
      orbit.update();
    }
    // Spark measures each move from its last update: after a while in orbit mode, a held key would otherwise
    // jump the camera by the whole time spent there.
    fly.lastTime = 0;
    mode = next;
    applyMode();
    wake();
  }

  /** Keeps `point` within reach of the scene (MAX_DISTANCE_RADII), moving it straight back towards it. */
  function clampToScene(point: THREE.Vector3): boolean {
    const offset = point.clone().sub(bounds.center);
    if (offset.length() <= maxDistance) return false;
    point.copy(bounds.center).addScaledVector(offset.normalize(), maxDistance);
    return true;
  }

  function applyMode(): void {
    orbit.enabled = mode === "orbit";
    fly.pointerControls.enable = mode === "fly";
    // Spark listens to keys on the whole document; only fly while the canvas has focus so typing elsewhere
    // on the page never moves the camera.
    fly.fpsMovement.enable = mode === "fly" && document.activeElement === canvas;
  }

  // In fly mode the arrow and page keys move the camera; keep them from also scrolling the page.
  const flyKeys = new Set(["ArrowUp", "ArrowDown", "ArrowLeft", "ArrowRight", "PageUp", "PageDown", "Home", "End"]);
  const onKeyDown = (event: KeyboardEvent): void => {
    if (mode === "fly" && flyKeys.has(event.code)) event.preventDefault();
  };
  canvas.addEventListener("keydown", onKeyDown);
  const onFocusChange = (): void => applyMode();
  canvas.addEventListener("focus", onFocusChange);
  canvas.addEventListener("blur", onFocusChange);

  const resize = (): void => {
    wake();
    const w = Math.max(1, container.clientWidth);
    const h = Math.max(1, container.clientHeight);
    renderer.setSize(w, h, false);
    camera.aspect = w / h;
    if (fromStart) camera.fov = startFov();
    camera.updateProjectionMatrix();
  };
  const observer = new ResizeObserver(resize);
  observer.observe(container);
  resize();
  resetView();
  applyMode();

  // Draw on demand: while the camera moves and for a short while after (Spark sorts splats in a worker and
  // needs a few more frames to show the new order), then stop, so an idle view costs no CPU or battery.
  orbit.addEventListener("change", wake);
  canvas.addEventListener("pointerdown", wake);
  canvas.addEventListener("wheel", wake, { passive: true });
  canvas.addEventListener("keydown", wake);
  // Orbit reports its own changes (with a threshold, so damping's endless tiny steps do not keep us busy);
  // fly mode is watched here with a similar threshold relative to the scene size.
  const toFile = content.matrixWorld.clone().invert();
  const lastPosition = camera.position.clone();
  const lastQuaternion = camera.quaternion.clone();
  const minMove = bounds.radius * 1e-5;
  let frameMs = 0;
  let lastFrameAt = 0;
  renderer.setAnimationLoop(() => {
    if (mode === "orbit") {
      clampToScene(orbit.target); // panned away: orbit.update() then follows with the camera
      orbit.update();
    } else {
      fly.update(camera);
      clampToScene(camera.position);
      if (
        camera.position.distanceTo(lastPosition) > minMove ||
        1 - Math.abs(camera.quaternion.dot(lastQuaternion)) > 1e-9
      ) {
        lastPosition.copy(camera.position);
        lastQuaternion.copy(camera.quaternion);
        wake();
      }
    }
    const now = performance.now();
    const active = now < activeUntil;
    if (active) {
      // The GPU work of a frame shows up as the time until the next animation frame, not inside render().
      // Damping glides for dozens of frames; on a device that draws a frame per second (software GL) that
      // is a long drift after every drag, so slow devices get direct, undamped controls.
      if (lastFrameAt > 0) frameMs = 0.7 * frameMs + 0.3 * Math.min(now - lastFrameAt, 2000);
      orbit.enableDamping = frameMs < SLOW_FRAME_MS;
      renderer.render(scene, camera);
      lastFrameAt = now;
      // In scene radii, for tests and anything else that wants to know how far out the camera is.
      const distance = (camera.position.distanceTo(bounds.center) / bounds.radius).toFixed(2);
      if (canvas.dataset.cameraDistance !== distance) canvas.dataset.cameraDistance = distance;
      // The camera in the splat file's own coordinates (those of the metadata's initial_view).
      const inFile = camera.position.clone().applyMatrix4(toFile);
      const looking = new THREE.Vector3();
      camera.getWorldDirection(looking);
      looking.applyQuaternion(content.quaternion.clone().invert());
      const where = [...inFile.toArray(), ...looking.toArray()].map((v) => v.toFixed(4)).join(",");
      if (canvas.dataset.camera !== where) canvas.dataset.camera = where;
    } else {
      lastFrameAt = 0;
    }
    // Lets tests (and anything else watching) know when the picture has settled.
    const idle = active ? "false" : "true";
    if (canvas.dataset.idle !== idle) canvas.dataset.idle = idle;
  });

  let disposed = false;
  return {
    setMode,
    resetView,
    frameScene,
    pointCount: count,
    dispose(): void {
      if (disposed) return;
      disposed = true;
      renderer.setAnimationLoop(null);
      observer.disconnect();
      orbit.removeEventListener("change", wake);
      canvas.removeEventListener("pointerdown", wake);
      canvas.removeEventListener("wheel", wake);
      canvas.removeEventListener("keydown", wake);
      canvas.removeEventListener("keydown", onKeyDown);
      canvas.removeEventListener("focus", onFocusChange);
      canvas.removeEventListener("blur", onFocusChange);
      orbit.dispose();
      fly.pointerControls.enable = false;
      fly.fpsMovement.enable = false;
      disposeContent();
      renderer.dispose();
      renderer.forceContextLoss();
      canvas.remove();
    },
  };
}
