// The shapes of a scene as the server's routes answer them, shared by the modules that ask for them. They are
// taken from schema.d.ts, which scripts/web_api_types.py generates from the server's OpenAPI document, so they
// cannot drift from what the server sends (tests/api/test_web_api_types.py fails when schema.d.ts is stale).

import type { components } from "./schema";

type Schemas = components["schemas"];

/** GET /user/scene/progress/{id}: `percent` is the server's estimate of the whole job (0..100); the app
 * shows this number and makes up none of its own. */
export type Progress = Schemas["SceneProgress"];
export type SceneState = Progress["state"];

/**
 * The first capture camera, as the server's metadata gives it (`initial_view`), in the coordinates of the
 * exported splats (the pipeline's world: OpenCV axes, -y up); `forward` and `up` are unit vectors.
 */
export type InitialView = Schemas["InitialView"];
export type ResourceInfo = Schemas["ResourceInfo"];
/** Output type name (one of the options' `output_types`) -> iteration (as a string) -> file. */
export type Resources = Schemas["SceneMetadata"]["resources"];
/** GET /user/scene/metadata/{id} (and a share link's metadata): the files, the name, mode and preset. */
export type Metadata = Schemas["SceneMetadata"];

/** The training fields of an upload, as POST /user/scene/new and /retry take them. */
export interface TrainingFields {
  /** Names from the options' `training_modes` and `output_types`; validate.ts checks them against it. */
  trainingMode: string;
  outputTypes: string[];
  saveIterations: number[];
  totalIterations: number;
  /** A preset name from the options; null (Custom) leaves the field out, so the server uses its default. */
  preset: string | null;
}

// ---- the capture check (GET /user/scene/capture/{id}): what is wrong with how the video was filmed ----

export type CaptureReport = Schemas["SceneCapture"];
export type CaptureVerdict = CaptureReport["verdict"];
/** `code`: static_camera, cuts, object_moved, blur, dark, exposure_changes (frames); partial_registration,
 * few_points, little_coverage (camera poses); moving_content (training). Other codes may come later. */
export type CaptureProblem = Schemas["CaptureProblem"];
/** One frame kept for the scene; `sharpness` is relative to the clip's median (1 typical, under 0.35 blurred). */
export type CaptureFrame = Schemas["CaptureFrame"];
