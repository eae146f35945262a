// Builds what the viewer draws from the file's bytes: Spark's splat mesh for .spz, .splat and 3DGS .ply
// files, and a plain three.js point cloud for PLY files without gaussian attributes (TensoRF density points).

import * as THREE from "three";
import { PLYLoader } from "three/examples/jsm/loaders/PLYLoader.js";
import { SparkRenderer, SplatFileType, SplatMesh } from "@sparkjsdev/spark";

import { robustBounds } from "./bounds";
import type { Stage } from "./stage";
import type { ViewerFormat } from "./types";

// Spark's file type for each (SPZ: the version 3 gzip files the pipeline writes, which Spark 2.2 reads).
const SPARK_TYPES: Record<ViewerFormat, SplatFileType> = {
  spz: SplatFileType.SPZ,
  splat: SplatFileType.SPLAT,
  ply: SplatFileType.PLY,
};

/** What was added to the stage: its points (in the file's coordinates), and how to take it away again. */
export interface LoadedContent {
  points: Float32Array;
  count: number;
  /** What a ray from the camera can hit (the splats, or the points), for picking a place in the scene. */
  pickTarget: THREE.Object3D;
  dispose(): void;
}

/** True when a PLY header carries 3DGS gaussian attributes (scales and SH colours), not just points. */
export function isGaussianPly(bytes: Uint8Array): boolean {
  const head = new TextDecoder("latin1").decode(bytes.subarray(0, Math.min(bytes.length, 16384)));
  const end = head.indexOf("end_header");
  const header = end >= 0 ? head.slice(0, end) : head;
  return /property\s+\w+\s+scale_0/.test(header) && /property\s+\w+\s+(f_dc_0|red)/.test(header);
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

/** A PLY of plain points, drawn as dots sized to the scene. */
function loadPointCloud(bytes: Uint8Array, content: THREE.Group): LoadedContent {
  const geometry = new PLYLoader().parse(bytes.slice().buffer);
  const position = geometry.getAttribute("position");
  const hasColor = geometry.hasAttribute("color");
  const points = position.array instanceof Float32Array ? position.array : Float32Array.from(position.array);
  const count = position.count;
  const bounds = robustBounds(points, count);
  const material = new THREE.PointsMaterial({
    size: bounds.radius / 150,
    vertexColors: hasColor,
    color: hasColor ? 0xffffff : 0x9ec5ff,
  });
  const cloud = new THREE.Points(geometry, material);
  content.add(cloud);
  return {
    points,
    count,
    pickTarget: cloud,
    dispose: () => {
      geometry.dispose();
      material.dispose();
    },
  };
}

/** Gaussian splats, drawn (and sorted, in a worker) by Spark. */
async function loadSplats(bytes: Uint8Array, format: ViewerFormat, stage: Stage): Promise<LoadedContent> {
  const spark = new SparkRenderer({ renderer: stage.renderer });
  stage.scene.add(spark);
  const mesh = new SplatMesh({
    fileBytes: bytes,
    fileType: SPARK_TYPES[format],
  });
  await mesh.initialized;
  stage.content.add(mesh);
  return {
    ...splatCenters(mesh),
    pickTarget: mesh,
    dispose: () => {
      mesh.dispose();
      stage.scene.remove(spark);
    },
  };
}

/** Reads `bytes` and adds what they hold to the stage's content. */
export async function loadContent(bytes: Uint8Array, format: ViewerFormat, stage: Stage): Promise<LoadedContent> {
  if (format === "ply" && !isGaussianPly(bytes)) return loadPointCloud(bytes, stage.content);
  return loadSplats(bytes, format, stage);
}
