// The viewer's stage: the WebGL canvas in the page, the three.js scene with the content turned the right way
// up, and the camera, with the canvas kept the size of its container.

import * as THREE from "three";

import { canvasLabel, isTouchPointer } from "./hints";

export interface Stage {
  renderer: THREE.WebGLRenderer;
  canvas: HTMLCanvasElement;
  scene: THREE.Scene;
  camera: THREE.PerspectiveCamera;
  /** What the file holds goes in here: the group turns it from the pipeline's world to three.js's. */
  content: THREE.Group;
}


function createCanvasRenderer(container: HTMLElement): THREE.WebGLRenderer {
  const renderer = new THREE.WebGLRenderer({ antialias: false, powerPreference: "high-performance" });
  renderer.setPixelRatio(Math.min(window.devicePixelRatio, 2));
  renderer.setClearColor(0x10131a, 1);
  const canvas = renderer.domElement;
  canvas.tabIndex = 0; // keyboard users focus the canvas to move the camera with the keys
  canvas.className = "viewer-canvas";
  canvas.setAttribute("role", "img");
  canvas.setAttribute("aria-label", canvasLabel(isTouchPointer()));
  container.appendChild(canvas);
  return renderer;
}

export function createStage(container: HTMLElement): Stage {
  const renderer = createCanvasRenderer(container);
  const scene = new THREE.Scene();
  const camera = new THREE.PerspectiveCamera(60, 1, 0.01, 1000);
  // The pipeline's world has -y up (OpenCV camera convention); three.js draws +y up. Turning the content
  // half a turn about x puts the scene the right way up without touching the data.
  const content = new THREE.Group();
  content.quaternion.set(1, 0, 0, 0);
  scene.add(content);
  return { renderer, canvas: renderer.domElement, scene, camera, content };
}

/**
 * Keeps the canvas and the camera's aspect the size of `container`, now and whenever it changes;
 * `onResize` runs before the projection is updated. Returns what stops it.
 */
export function followContainerSize(container: HTMLElement, stage: Stage, onResize: () => void): () => void {
  const resize = (): void => {
    const w = Math.max(1, container.clientWidth);
    const h = Math.max(1, container.clientHeight);
    stage.renderer.setSize(w, h, false);
    stage.camera.aspect = w / h;
    onResize();
    stage.camera.updateProjectionMatrix();
  };
  const observer = new ResizeObserver(resize);
  observer.observe(container);
  resize();
  return () => observer.disconnect();
}

/** Lets the GPU go and takes the canvas out of the page. */
export function disposeStage(stage: Stage): void {
  stage.renderer.dispose();
  stage.renderer.forceContextLoss();
  stage.canvas.remove();
}
