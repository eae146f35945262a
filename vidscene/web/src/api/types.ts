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
