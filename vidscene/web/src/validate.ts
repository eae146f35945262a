// Client-side checks that mirror the server's rules (API-NOTES.md), so most mistakes are caught before a
// multi-gigabyte upload starts. The server stays the authority: whatever it refuses, its message is shown.

import type { OutputType, TrainingMode } from "./api";

export const USERNAME_RE = /^[A-Za-z0-9_.-]{3,64}$/;
export const PASSWORD_MIN = 8;
export const PASSWORD_MAX = 1024;
export const SCENE_NAME_MAX = 200;
export const ITERATIONS_MAX = 30000;

export const OUTPUTS_BY_MODE: Record<TrainingMode, OutputType[]> = {
  gaussian: ["splat_cloud", "point_cloud", "video", "model"],
  tensorf: ["video", "model", "point_cloud"],
};

export const OUTPUT_LABELS: Record<OutputType, string> = {
  splat_cloud: "Splat cloud (.splat)",
  point_cloud: "Point cloud (.ply)",
  video: "Rendered video (.mp4)",
  model: "Checkpoint (.ckpt)",
};

const VIDEO_EXTENSIONS = [".mp4", ".mov", ".m4v", ".webm", ".mkv", ".avi", ".3gp", ".mpg", ".mpeg", ".ts"];

export function usernameError(username: string): string | null {
  if (username.length < 3 || username.length > 64) return "Username must be 3 to 64 characters long.";
  if (!USERNAME_RE.test(username)) return "Username may only use letters, digits, '_', '.' and '-'.";
  return null;
}

export function passwordError(password: string): string | null {
  if (password.length < PASSWORD_MIN) return `Password must be at least ${PASSWORD_MIN} characters long.`;
  if (password.length > PASSWORD_MAX) return `Password must be at most ${PASSWORD_MAX} characters long.`;
  return null;
}

/** Only refuses files that clearly are not videos; the server decides by probing the content. */
export function videoFileError(file: File | null): string | null {
  if (!file) return "Choose a video file to upload.";
  if (file.size === 0) return "The chosen file is empty.";
  const name = file.name.toLowerCase();
  const looksLikeVideo = file.type.startsWith("video/") || VIDEO_EXTENSIONS.some((ext) => name.endsWith(ext));
  if (!looksLikeVideo && file.type !== "" && file.type !== "application/octet-stream") {
    return `"${file.name}" does not look like a video (${file.type}).`;
  }
  return null;
}

export function sceneNameError(name: string): string | null {
  return name.length > SCENE_NAME_MAX ? `Scene name must be at most ${SCENE_NAME_MAX} characters.` : null;
}

export function parseTotalIterations(text: string): { value: number } | { error: string } {
  const t = text.trim();
  if (!/^\d+$/.test(t)) return { error: "Total iterations must be a whole number." };
  const value = Number(t);
  if (value < 1 || value > ITERATIONS_MAX) return { error: `Total iterations must be between 1 and ${ITERATIONS_MAX}.` };
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

export function outputTypesError(mode: TrainingMode, types: OutputType[]): string | null {
  if (types.length === 0) return "Pick at least one output.";
  const bad = types.find((t) => !OUTPUTS_BY_MODE[mode].includes(t));
  return bad ? `${OUTPUT_LABELS[bad]} is not available with ${mode} training.` : null;
}
