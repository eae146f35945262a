// Interactive 3D viewer: Spark (three.js gaussian splat renderer) for .spz, .splat and 3DGS .ply files, and a
// plain three.js point cloud for PLY files without gaussian attributes (TensoRF density points). Loaded
// lazily by the scene page, so the ~3 MB renderer is only downloaded when a scene is opened.
//
// This is the composition; its parts: the stage (canvas, scene, camera: stage.ts), what the file holds
// (loading.ts, measured by bounds.ts), where the camera goes and how it is steered (camera.ts, controls.ts),
// the drawing on demand (drawing.ts), and the crop editor's shapes, handles and preview (editing.ts).

import type { InitialView } from "../api/types";
import { robustBounds, worldBounds } from "./bounds";
import { firstCameraOf } from "./camera";
import { CameraControls } from "./controls";
import { DrawOnDemand, startDrawing, wakeOnInput } from "./drawing";
import { SceneEditor } from "./editing";
import { loadContent } from "./loading";
import { createStage, disposeStage, followContainerSize } from "./stage";
import type { ControlMode, ViewerFormat, ViewerHandle } from "./types";

export async function createViewer(
  container: HTMLElement,
  bytes: Uint8Array,
  format: ViewerFormat,
  initialMode: ControlMode = "orbit",
  initialView: InitialView | null = null,
): Promise<ViewerHandle> {
  const stage = createStage(container);
  const loaded = await loadContent(bytes, format, stage);
  // Bounds in world space (after the flip applied by the stage's content).
  const bounds = worldBounds(robustBounds(loaded.points, loaded.count), stage.content);
  const demand = new DrawOnDemand();
  const controls = new CameraControls(stage, bounds, firstCameraOf(initialView, stage.content), initialMode,
    demand.wake);
  const stopFollowing = followContainerSize(container, stage, () => {
    demand.wake();
    controls.fitFov();
  });
  controls.resetView();
  controls.applyMode();
  const stopWaking = wakeOnInput(stage.canvas, controls, demand.wake);
  const stopDrawing = startDrawing(stage, controls, bounds, demand);
  const editor = new SceneEditor(stage, loaded, bounds, controls.orbit.target, demand.wake);

  let disposed = false;
  return {
    setMode: (mode) => controls.setMode(mode),
    resetView: () => controls.resetView(),
    frameScene: () => controls.frameScene(),
    pointCount: loaded.count,
    editor,
    dispose(): void {
      if (disposed) return;
      disposed = true;
      stopDrawing();
      stopFollowing();
      stopWaking();
      editor.dispose();
      controls.dispose();
      loaded.dispose();
      disposeStage(stage);
    },
  };
}
