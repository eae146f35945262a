// The shapes of a scene as the server's routes answer them, shared by the modules that ask for them.

export type SceneState = "queued" | "processing" | "done" | "failed" | "cancelled";

export interface Progress {
  uuid: string;
  status: number;
  error: number;
  message: string;
  processing: boolean;
  overall_position: number;
  overall_size: number;
  stage: string;
  current_position: number;
  current_size: number;
  /**
   * The whole job's completion, 0..100, as the server estimates it (from its measured stage times, or the
   * reference CPU's): the app shows this number and makes up none of its own.
   */
  percent: number;
  // Extras the server may add (docs/api.md): used when present.
  state?: SceneState;
  step?: string;
  /** Work left for the whole scene (the current step and those after it; while queued, all of it). */
  eta_seconds?: number | null;
  /** While queued: the server's estimate of when a worker starts on it. */
  starts_in_seconds?: number | null;
  /** The preset the scene is processed with (a name from the options). */
  preset?: string;
  // ISO 8601 times, shown on the scene cards when the server sends them.
  created_at?: string | null;
  started_at?: string | null;
  finished_at?: string | null;
}

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

export interface ResourceInfo {
  exists: boolean;
  size: number;
  chunks: number;
  last_chunk_size: number;
}

/** Output type name (one of the options' `output_types`) -> iteration (as a string) -> file. */
export type Resources = Record<string, Record<string, ResourceInfo>>;

export interface Metadata {
  uuid: string;
  resources: Resources;
  /** The scene's training mode and preset (names from the options), on servers that report them. */
  training_mode?: string;
  preset?: string;
  /** The first capture camera, where the 3D view opens (null before export and for older scenes). */
  initial_view?: InitialView | null;
}

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

export type CaptureVerdict = "good" | "usable" | "refused";

export interface CaptureProblem {
  /** static_camera, cuts, object_moved, blur, dark, exposure_changes (frames); partial_registration,
   * few_points, little_coverage (camera poses); moving_content (training). Other codes may come later. */
  code: string;
  /** error: no scene can be made (the job failed with this message). */
  severity: "warning" | "error";
  /** A complete sentence for the user, saying whether training longer can help. */
  message: string;
  /** The source frame indices concerned (the video's own numbering, as `CaptureFrame.index`). */
  frames: number[];
}

export interface CaptureFrame {
  index: number;
  time_s: number;
  /** Relative to the clip's median sharpness: 1 typical, under 0.35 blurred. */
  sharpness: number;
  /** Mean grey level, 0-255. */
  brightness: number;
  /** Placed in 3D by structure from motion; null before it ran. */
  registered: boolean | null;
  /** Share of the frame left out as moving (0..1). */
  moving_fraction: number;
}

export interface CaptureReport {
  uuid: string;
  verdict: CaptureVerdict;
  /** The last stage that updated the report: frames, sfm or train. */
  stage: string;
  problems: CaptureProblem[];
  /** Each frame kept for the scene, in time order. */
  frames: CaptureFrame[];
  coverage: Record<string, unknown>;
}
