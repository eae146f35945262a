// The scene's size and place, measured from its points so a few stray floaters do not count.

import * as THREE from "three";

import type { Bounds } from "./types";

function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.floor(sorted.length / 2)] ?? 0;
}

/**
 * Centre and size from the median and the 80th-percentile distance of the points: training leaves a few
 * far-away floaters, and a plain bounding box would put the camera so far out that the scene is a dot.
 */
export function robustBounds(points: Float32Array, count: number): Bounds {
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
  const center = new THREE.Vector3(median(xs), median(ys), median(zs));
  const dists = xs.map((x, i) => Math.hypot(x - center.x, (ys[i] ?? 0) - center.y, (zs[i] ?? 0) - center.z));
  dists.sort((a, b) => a - b);
  const radius = dists[Math.floor(dists.length * 0.8)] ?? 1;
  return { center, radius: radius > 1e-6 ? radius : 1 };
}

/** `local` (bounds in the file's own coordinates) in world space, after the transform `content` applies. */
export function worldBounds(local: Bounds, content: THREE.Object3D): Bounds {
  content.updateMatrixWorld(true);
  return { center: local.center.clone().applyMatrix4(content.matrixWorld), radius: local.radius };
}
