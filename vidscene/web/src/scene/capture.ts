// The capture check as the scene page uses it: the report polled while the scene is processing, which step
// each problem belongs to (for the step marks), and the verdict in words.

import { useEffect, useState } from "preact/hooks";

import { ApiError } from "../api/client";
import { isFinished, sceneCapture, stateOf } from "../api/scenes";
import type { CaptureProblem, CaptureReport, CaptureVerdict, Progress } from "../api/types";
import { isAbort } from "../components";
import { usePolling } from "../polling";

const CAPTURE_POLL_MS = 5000;

export type CaptureState =
  /** No report yet: the frames stage has not run (404), or the scene is older than the check. */
  | { status: "waiting" }
  | { status: "ready"; report: CaptureReport };

/** The step (as progress `step` and format.STEPS name it) whose check raises each problem code. */
const STEP_OF_CODE: Record<string, string> = {
  static_camera: "frames",
  cuts: "frames",
  object_moved: "frames",
  blur: "frames",
  dark: "frames",
  exposure_changes: "frames",
  partial_registration: "sfm",
  few_points: "sfm",
  little_coverage: "sfm",
  moving_content: "train",
};

/** The step a problem belongs to, or null for a code this app does not know yet. */
export function stepOfProblem(problem: CaptureProblem): string | null {
  return STEP_OF_CODE[problem.code] ?? null;
}

/** The report's problems by step, for the step marks; empty when there is no report. */
export function problemsByStep(report: CaptureReport | null): Map<string, CaptureProblem[]> {
  const byStep = new Map<string, CaptureProblem[]>();
  for (const problem of report?.problems ?? []) {
    const step = stepOfProblem(problem);
    if (step) byStep.set(step, [...(byStep.get(step) ?? []), problem]);
  }
  return byStep;
}

export const VERDICT_TEXT: Record<CaptureVerdict, { title: string; detail: string }> = {
  good: {
    title: "Good capture",
    detail: "Nothing in how the video was filmed stands in the way of a good scene.",
  },
  usable: {
    title: "Usable, with problems",
    detail: "The scene can be made, but what is listed below will show in it.",
  },
  refused: {
    title: "Refused",
    detail: "No scene can be made from this video. Film it again as said below.",
  },
};

/**
 * Whether the capture check has had something to say: the frames stage writes the report as it ends. A
 * queued scene or one still reading its frames would only be answered 404 (which browsers log as errors).
 */
export function captureChecked(p: Progress): boolean {
  const state = stateOf(p);
  if (state === "queued") return false;
  if (state !== "processing") return true; // finished, failed or cancelled: asked once
  if (p.step) return p.step !== "frames";
  return p.stage === "nerf_list";
}

/**
 * The scene's capture report: read every few seconds while it is processing, once more when it finishes
 * (training adds to it last), and once for a finished scene. A 404 means there is none (yet, or a scene
 * made before the check existed); any other failure keeps what was shown, the panel not being essential.
 */
export function useCaptureReport(id: string, progress: Progress | null, run: number): CaptureState {
  const [state, setState] = useState<CaptureState>({ status: "waiting" });
  const ready = progress !== null && captureChecked(progress);
  const finished = progress !== null && isFinished(stateOf(progress));
  useEffect(() => setState({ status: "waiting" }), [id, run]);
  usePolling(
    async (signal) => {
      if (!ready) return false; // asked again once `ready` changes
      try {
        const report = await sceneCapture(id, signal);
        setState({ status: "ready", report });
      } catch (err) {
        if (isAbort(err)) throw err;
        if (err instanceof ApiError && err.status === 404) setState({ status: "waiting" });
      }
      return !finished;
    },
    CAPTURE_POLL_MS,
    [id, ready, finished, run],
  );
  return state;
}
