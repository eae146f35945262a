// Client-side checks against the server's own rules (the limits and modes of GET /user/scene/options), so most
// mistakes are caught before a multi-gigabyte upload starts. The server stays the authority: whatever it
// refuses, its message is shown.

import type { OptionLimits, SceneOptions } from "./api/options";
import { modeNamed, outputNamed } from "./catalogue";
import { formatBytes } from "./format";

const VIDEO_EXTENSIONS = [".mp4", ".mov", ".m4v", ".webm", ".mkv", ".avi", ".3gp", ".mpg", ".mpeg", ".ts"];

/** The server's pattern as a JS RegExp, or null if it uses syntax JS lacks (then only the server checks). */
function usernamePattern(limits: OptionLimits): RegExp | null {
  try {
    return new RegExp(limits.username_pattern);
  } catch {
    return null;
  }
}

export function usernameError(username: string, limits: OptionLimits): string | null {
  const { username_min: min, username_max: max } = limits;
  if (username.length < min || username.length > max) return `Username must be ${min} to ${max} characters long.`;
  // The wording describes the server's pattern as it is today; the check itself uses the pattern it sends.
  if (usernamePattern(limits)?.test(username) === false) {
    return "Username may only use letters, digits, '_', '.' and '-'.";
  }
  return null;
}

export function passwordError(password: string, limits: OptionLimits): string | null {
  if (password.length < limits.password_min) {
    return `Password must be at least ${limits.password_min} characters long.`;
  }
  if (password.length > limits.password_max) {
    return `Password must be at most ${limits.password_max} characters long.`;
  }
  return null;
}

/** Only refuses files that clearly are not videos (or are over the server's size limit); the server decides
 * by probing the content. */
export function videoFileError(file: File | null, limits: OptionLimits): string | null {
  if (!file) return "Choose a video file to upload.";
  if (file.size === 0) return "The chosen file is empty.";
  if (limits.max_upload_bytes !== undefined && file.size > limits.max_upload_bytes) {
    return `"${file.name}" is ${formatBytes(file.size)}; the server accepts at most ${formatBytes(limits.max_upload_bytes)}.`;
  }
  const name = file.name.toLowerCase();
  const looksLikeVideo = file.type.startsWith("video/") || VIDEO_EXTENSIONS.some((ext) => name.endsWith(ext));
  if (!looksLikeVideo && file.type !== "" && file.type !== "application/octet-stream") {
    return `"${file.name}" does not look like a video (${file.type}).`;
  }
  return null;
}

export function sceneNameError(name: string, limits: OptionLimits): string | null {
  const max = limits.max_scene_name;
  return name.length > max ? `Scene name must be at most ${max} characters.` : null;
}

export function parseTotalIterations(text: string, limits: OptionLimits): { value: number } | { error: string } {
  const t = text.trim();
  if (!/^\d+$/.test(t)) return { error: "Total iterations must be a whole number." };
  const value = Number(t);
  const max = limits.max_total_iterations;
  if (value < 1 || value > max) return { error: `Total iterations must be between 1 and ${max}.` };
  return { value };
}

/** Comma-separated, whitespace trimmed, duplicates dropped, sorted; the total is always saved too. */
export function parseSaveIterations(text: string, total: number): { value: number[] } | { error: string } {
  const items = text
    .split(",")
    .map((s) => s.trim())
    .filter((s) => s !== "");
  const values = new Set<number>();
  for (const item of items) {
    if (!/^\d+$/.test(item)) return { error: `Save iterations: "${item}" is not a whole number.` };
    const n = Number(item);
    if (n < 1 || n > total) return { error: `Save iterations: ${n} is not between 1 and the total (${total}).` };
    values.add(n);
  }
  values.add(total);
  return { value: [...values].sort((a, b) => a - b) };
}

/** The mode must be one the server offers, and every output one that mode makes. */
export function outputTypesError(options: SceneOptions, mode: string, types: readonly string[]): string | null {
  const training = modeNamed(options, mode);
  if (!training) return `The server does not offer the training mode "${mode}".`;
  if (types.length === 0) return "Pick at least one output.";
  const bad = types.find((t) => !training.outputs.includes(t));
  if (bad === undefined) return null;
  return `${outputNamed(options, bad)?.label ?? bad} is not available with ${training.label} training.`;
}
