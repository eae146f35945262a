// The scene page's capture check: the verdict in words, each problem the server found (its own sentence,
// with its severity and the step that found it), and the frame timeline, on which a problem's frames stand
// out while the problem is hovered, focused or picked.

import type { JSX } from "preact";
import { useId, useState } from "preact/hooks";

import { isFinished } from "../api/scenes";
import type { CaptureProblem, CaptureReport, SceneState } from "../api/types";
import { STEPS } from "../format";
import type { CaptureState } from "./capture";
import { VERDICT_TEXT, stepOfProblem } from "./capture";
import { FrameTimeline } from "./FrameTimeline";

const SEVERITY_TEXT = { warning: "Warning", error: "Error" } as const;

function stepLabel(problem: CaptureProblem): string | null {
  const step = stepOfProblem(problem);
  return STEPS.find((s) => s.step === step)?.label ?? null;
}

function ProblemBody({ problem }: { problem: CaptureProblem }): JSX.Element {
  const step = stepLabel(problem);
  const n = problem.frames.length;
  return (
    <>
      <span class="problem-head">
        <span class={`severity severity-${problem.severity}`}>
          <span aria-hidden="true">{problem.severity === "error" ? "✕ " : "⚠ "}</span>
          {SEVERITY_TEXT[problem.severity]}
        </span>
        {step && <span class="problem-step muted"> · {step}</span>}
      </span>
      <span class="problem-message">{problem.message}</span>
      {n > 0 && (
        <span class="problem-frames muted">
          {n === 1 ? "1 frame" : `${n.toLocaleString("en")} frames`} · show on the timeline
        </span>
      )}
    </>
  );
}

/** One problem; one with frames is a toggle that highlights them on the timeline (hover or focus previews). */
function ProblemItem({ problem, picked, onPick, onPreview }: {
  problem: CaptureProblem;
  picked: boolean;
  onPick: () => void;
  onPreview: (on: boolean) => void;
}): JSX.Element {
  return (
    <li class="capture-problem" data-code={problem.code} data-severity={problem.severity}
      data-picked={picked ? "true" : undefined}>
      {problem.frames.length > 0 ? (
        <button type="button" class="problem-toggle" aria-pressed={picked} onClick={onPick}
          onMouseEnter={() => onPreview(true)} onMouseLeave={() => onPreview(false)}
          onFocus={() => onPreview(true)} onBlur={() => onPreview(false)}>
          <ProblemBody problem={problem} />
        </button>
      ) : (
        <div class="problem-static">
          <ProblemBody problem={problem} />
        </div>
      )}
    </li>
  );
}

/** Which step has run so far, while the report is still growing. */
function checkedSoFar(report: CaptureReport, finished: boolean): string | null {
  if (finished || report.stage === "train") return null;
  const label = STEPS.find((s) => s.step === report.stage)?.label;
  return label ? `Checked so far: up to ${label.toLowerCase()}. Later steps may add to this.` : null;
}

function CaptureReportView({ report, finished }: { report: CaptureReport; finished: boolean }): JSX.Element {
  const headingId = useId();
  // A problem is known by its code (the check raises each code once): the report grows while it is polled.
  const [picked, setPicked] = useState<string | null>(null);
  const [previewed, setPreviewed] = useState<string | null>(null);
  const shown = previewed ?? picked;
  const problem = report.problems.find((p) => p.code === shown);
  const highlighted = problem && problem.frames.length > 0 ? new Set(problem.frames) : null;
  const verdict = VERDICT_TEXT[report.verdict] ?? VERDICT_TEXT.usable;
  const soFar = checkedSoFar(report, finished);
  return (
    <section class="card capture-check" aria-labelledby={headingId} data-verdict={report.verdict}
      data-stage={report.stage}>
      <div class="section-head">
        <h2 id={headingId}>Capture check</h2>
        <span class={`verdict verdict-${report.verdict}`} data-testid="capture-verdict">{verdict.title}</span>
      </div>
      <p class="muted capture-detail">{verdict.detail}{soFar ? ` ${soFar}` : ""}</p>
      {report.problems.length > 0 && (
        <ul class="capture-problems" aria-label="Problems found">
          {report.problems.map((p) => (
            <ProblemItem key={p.code} problem={p} picked={picked === p.code}
              onPick={() => setPicked(picked === p.code ? null : p.code)}
              onPreview={(on) => setPreviewed((current) => (on ? p.code : current === p.code ? null : current))} />
          ))}
        </ul>
      )}
      <FrameTimeline frames={report.frames} highlighted={highlighted} />
    </section>
  );
}

/** The panel; while the scene is processing and its frames are not checked yet, a quiet line instead. */
export function CaptureCheck({ capture, state }: { capture: CaptureState; state: SceneState }): JSX.Element | null {
  if (capture.status === "ready") return <CaptureReportView report={capture.report} finished={isFinished(state)} />;
  if (state !== "processing") return null; // queued, or made before the check existed
  return (
    <p class="muted capture-waiting" role="status">
      The capture check runs once the frames are read…
    </p>
  );
}
