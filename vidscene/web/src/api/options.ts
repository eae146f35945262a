// The server's catalogue (GET /user/scene/options): training modes, output types, presets and limits.

import { send } from "./client";

export interface TrainingModeOption {
  name: string;
  label: string;
  description: string;
  /** Names of the output types this mode can produce, in catalogue order. */
  outputs: string[];
  default_outputs: string[];
}

export interface OutputTypeOption {
  name: string;
  label: string;
  description: string;
  media_type: string;
  /** Training mode name -> file extension (with its dot), for the modes that produce this output only. */
  extensions: Record<string, string>;
}

export interface PresetOption {
  name: string;
  label: string;
  description: string;
  /** Each keyed by training mode name: the form's total_iterations, save_iterations and ticked outputs. */
  iterations: Record<string, number>;
  save_iterations: Record<string, number[]>;
  outputs: Record<string, string[]>;
  /** Training mode -> what the preset's default run costs on this server (servers that measure it). */
  estimates?: Record<string, PresetEstimate> | undefined;
}

export interface PresetEstimate {
  seconds_per_iteration: number | null;
  estimated_seconds: number | null;
  /** "server": measured on this server's scenes; "reference": on the reference CPU; null: never measured. */
  source: string | null;
  scenes: number;
  basis: string;
}

export interface OptionLimits {
  max_total_iterations: number;
  max_scene_name: number;
  default_scene_name: string;
  chunk_bytes: number;
  username_pattern: string;
  username_min: number;
  username_max: number;
  password_min: number;
  password_max: number;
  /** Only when the server caps the size of an upload. */
  max_upload_bytes?: number | undefined;
  /** The size of each PATCH of a resumable upload (the server's proxy may cap request bodies). */
  upload_chunk_bytes?: number | undefined;
}

/** The body of GET /user/scene/options: what the server accepts, and so what the app offers. */
export interface SceneOptions {
  training_modes: TrainingModeOption[];
  output_types: OutputTypeOption[];
  presets: PresetOption[];
  default_preset: string;
  limits: OptionLimits;
}

// The options drive the whole upload form, so their shape is checked once here rather than trusted by a cast:
// a server that answers something else gets one clear message instead of a form that breaks field by field.
type Check<T> = (value: unknown, where: string) => T;

function malformed(where: string): never {
  throw new Error(`The server's scene options are malformed (${where}).`);
}

function objectAt(value: unknown, where: string): Record<string, unknown> {
  if (value === null || typeof value !== "object" || Array.isArray(value)) malformed(where);
  return value as Record<string, unknown>;
}

const text: Check<string> = (v, w) => (typeof v === "string" ? v : malformed(w));
const whole: Check<number> = (v, w) => (typeof v === "number" && Number.isInteger(v) ? v : malformed(w));

const number: Check<number> = (v, w) => (typeof v === "number" && Number.isFinite(v) ? v : malformed(w));

function nullable<T>(item: Check<T>): Check<T | null> {
  return (v, w) => (v === null ? null : item(v, w));
}

function optional<T>(item: Check<T>): Check<T | undefined> {
  return (v, w) => (v === undefined ? undefined : item(v, w));
}

function listOf<T>(item: Check<T>, { nonEmpty = false } = {}): Check<T[]> {
  return (v, w) => {
    if (!Array.isArray(v) || (nonEmpty && v.length === 0)) malformed(w);
    return v.map((x, i) => item(x, `${w}[${i}]`));
  };
}

function byName<T>(item: Check<T>): Check<Record<string, T>> {
  return (v, w) => Object.fromEntries(Object.entries(objectAt(v, w)).map(([k, x]) => [k, item(x, `${w}.${k}`)]));
}

function shape<T>(fields: { [K in keyof T]-?: Check<T[K]> }): Check<T> {
  return (v, w) => {
    const o = objectAt(v, w);
    const out = {} as T;
    for (const key in fields) out[key] = fields[key](o[key], `${w}.${key}`);
    return out;
  };
}

const checkOptions: Check<SceneOptions> = shape<SceneOptions>({
  training_modes: listOf(
    shape<TrainingModeOption>({
      name: text, label: text, description: text, outputs: listOf(text), default_outputs: listOf(text),
    }),
    { nonEmpty: true },
  ),
  output_types: listOf(
    shape<OutputTypeOption>({ name: text, label: text, description: text, media_type: text, extensions: byName(text) }),
    { nonEmpty: true },
  ),
  presets: listOf(
    shape<PresetOption>({
      name: text, label: text, description: text, iterations: byName(whole), save_iterations: byName(listOf(whole)),
      outputs: byName(listOf(text)),
      estimates: optional(byName(shape<PresetEstimate>({
        seconds_per_iteration: nullable(number), estimated_seconds: nullable(whole), source: nullable(text),
        scenes: whole, basis: text,
      }))),
    }),
  ),
  default_preset: text,
  limits: shape<OptionLimits>({
    max_total_iterations: whole, max_scene_name: whole, default_scene_name: text, chunk_bytes: whole,
    username_pattern: text, username_min: whole, username_max: whole, password_min: whole, password_max: whole,
    max_upload_bytes: optional(whole), upload_chunk_bytes: optional(whole),
  }),
});

let optionsRequest: Promise<SceneOptions> | null = null;

/**
 * GET /user/scene/options (no login needed), asked once per page load and shared by every page; a failed
 * request is forgotten, so calling again (a "Try again" button) asks the server again.
 */
export function sceneOptions(): Promise<SceneOptions> {
  if (optionsRequest) return optionsRequest;
  const request = send("GET", "/user/scene/options", { auth: false })
    .then((res) => res.json() as Promise<unknown>)
    .then((body) => checkOptions(body, "body"), (err: unknown) => {
      if (err instanceof SyntaxError) throw new Error("The server's scene options are not JSON.");
      throw err;
    });
  optionsRequest = request;
  request.catch(() => {
    if (optionsRequest === request) optionsRequest = null;
  });
  return request;
}
