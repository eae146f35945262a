// The scene page's account of where processing is: the four steps with the current one marked, the step's
// counter in its units, the time left or the place in the queue; for a failed scene, what went wrong and a
// way to try again with other settings.

import type { JSX } from "preact";
import { useId, useRef, useState } from "preact/hooks";

import type { SceneOptions } from "../api/options";
import type { CaptureProblem, Metadata, Progress } from "../api/types";
import { isFinished, retryScene, sceneHistory, sceneProgress, stateOf } from "../api/scenes";
import { useSceneOptions } from "../catalogue";
import { ErrorMessage, OptionsUnavailable, ProgressBar, errorText, isAbort } from "../components";
import { formatRemaining, shownEta } from "../eta";
import { STEPS, describeProgress, startEstimate, stepCounter, stepIndex } from "../format";
import type { SettingsDraft } from "../settings";
import { TrainingSettings, checkSettings, settingsOfScene } from "../settings";
import { usePolling } from "../polling";
import { Thumbnail, thumbnailReady } from "./Thumbnail";

const QUEUE_POLL_MS = 10_000;

type StepState = "done" | "current" | "stopped" | "pending";

const STEP_STATE_TEXT: Record<StepState, string> = {
  done: " (done)",
  current: " (in progress)",
  stopped: " (stopped here)",
  pending: "",
};

/** The mark of a step: its number, a tick when done, "!" where it stopped, a warning sign where the capture
 * check found a problem in what the step read or made (the scene goes on: a warning is not a failure). */
function StepMark({ state, n, problems }: { state: StepState; n: number; problems: readonly CaptureProblem[] }): JSX.Element {
  const warned = problems.length > 0 && (state === "done" || state === "current");
  const mark = state === "stopped" ? "!" : warned ? "⚠" : state === "done" ? "✓" : String(n);
  return (
    <span class="step-mark" aria-hidden="true" data-warning={warned ? "true" : undefined}
      title={warned ? problems.map((p) => p.message).join("\n\n") : undefined}>
      {mark}
    </span>
  );
}

export function StepIndicator({ progress, problems }: {
  progress: Progress;
  /** The capture check's problems by step (capture.problemsByStep); none before it ran. */
  problems?: ReadonlyMap<string, readonly CaptureProblem[]>;
}): JSX.Element {
  const state = stateOf(progress);
  const at = stepIndex(progress);
  const stateOfStep = (i: number): StepState => {
    if (state === "done") return "done";
    if (state === "queued" || at < 0) return "pending";
    if (i < at) return "done";
    if (i > at) return "pending";
    return state === "processing" ? "current" : "stopped";
  };
  return (
    <ol class="steps" aria-label="Processing steps">
      {STEPS.map((step, i) => {
        const s = stateOfStep(i);
        const found = problems?.get(step.step) ?? [];
        const warned = found.length > 0 && (s === "done" || s === "current");
        return (
          <li key={step.step} data-step={step.step} data-step-state={s} data-step-warning={warned ? "true" : undefined}
            aria-current={s === "current" ? "step" : undefined}>
            <StepMark state={s} n={i + 1} problems={found} />
            <span class="step-label">{step.label}</span>
            <span class="visually-hidden">
              {STEP_STATE_TEXT[s]}
              {warned ? ` (the capture check warns: ${found.map((p) => p.message).join(" ")})` : ""}
            </span>
          </li>
        );
      })}
    </ol>
  );
}

/**
 * The user's other unfinished scenes, read every few seconds while `active` (this scene is queued): when all
 * the scenes ahead are theirs and processing, their estimates say when this one starts.
 */
function useQueueNeighbours(active: boolean, selfId: string): Progress[] {
  const [others, setOthers] = useState<Progress[]>([]);
  const finished = useRef(new Set<string>());
  usePolling(
    async (signal) => {
      if (!active) return false;
      const ids = (await sceneHistory(signal)).filter((i) => i !== selfId && !finished.current.has(i));
      const found = await Promise.all(
        ids.map((i) =>
          sceneProgress(i, signal).catch((err: unknown) => {
            if (isAbort(err)) throw err;
            return null; // deleted meanwhile: only an estimate depends on it
          }),
        ),
      );
      const live = found.filter((p): p is Progress => p !== null && !isFinished(stateOf(p)));
      found.forEach((p) => p && isFinished(stateOf(p)) && finished.current.add(p.uuid));
      setOthers(live);
      return true;
    },
    QUEUE_POLL_MS,
    [active, selfId],
  );
  return active ? others : [];
}

type StepProblems = ReadonlyMap<string, readonly CaptureProblem[]>;

/** The status card of a scene that is not done: thumbnail, steps, and what is happening or went wrong. */
export function SceneStatus({ id, name, progress, meta, problems, onRetried }: {
  id: string;
  name: string | null;
  progress: Progress;
  meta: Metadata | null;
  /** The capture check's problems by step, which mark their steps with a warning. */
  problems?: StepProblems;
  /** Called once the server accepted a retry: the page starts following the new run. */
  onRetried: () => void;
}): JSX.Element {
  const state = stateOf(progress);
  const thumbnail = <Thumbnail id={id} ready={thumbnailReady(progress)} alt={`First frame of ${name ?? "the scene"}`} />;
  if (state === "failed" || state === "cancelled") {
    return <FailureCard id={id} progress={progress} meta={meta} problems={problems} thumbnail={thumbnail}
      onRetried={onRetried} />;
  }
  return <ProgressCard id={id} progress={progress} problems={problems} thumbnail={thumbnail} />;
}

/** A failed or cancelled scene: the server's reason, where it stopped, and a retry with other settings. */
function FailureCard({ id, progress, meta, problems, thumbnail, onRetried }: {
  id: string;
  progress: Progress;
  meta: Metadata | null;
  problems: StepProblems | undefined;
  thumbnail: JSX.Element;
  onRetried: () => void;
}): JSX.Element {
  const headingId = useId();
  const [retrying, setRetrying] = useState(false);
  const at = stepIndex(progress);
  return (
    <section class="card status-card failure" aria-labelledby={headingId}>
      {thumbnail}
      <div class="status-body">
        <h2 id={headingId}>{stateOf(progress) === "failed" ? "Processing failed" : "Processing was cancelled"}</h2>
        <StepIndicator progress={progress} problems={problems} />
        <p class="failure-reason">{describeProgress(progress)}</p>
        {at >= 0 && <p class="muted">Stopped at: {STEPS[at]!.label}</p>}
        {retrying ? (
          <RetryPanel id={id} meta={meta} onCancel={() => setRetrying(false)} onRetried={onRetried} />
        ) : (
          <div class="actions">
            <button type="button" onClick={() => setRetrying(true)} disabled={!meta}>
              Try again with other settings
            </button>
          </div>
        )}
      </div>
    </section>
  );
}

/** A queued or processing scene: the steps, the step's counter or the place in the queue, the time left. */
function ProgressCard({ id, progress, problems, thumbnail }: {
  id: string;
  progress: Progress;
  problems: StepProblems | undefined;
  thumbnail: JSX.Element;
}): JSX.Element {
  const state = stateOf(progress);
  const headingId = useId();
  // The user's other scenes are only read for a guess when the server gives no estimate of its own.
  const neighbours = useQueueNeighbours(state === "queued" && typeof progress.starts_in_seconds !== "number", id);
  const pct = progress.percent;
  const at = stepIndex(progress);
  const counter = stepCounter(progress);
  const eta = state === "processing" ? shownEta(progress) : null;
  return (
    <section class="card status-card" aria-labelledby={headingId}>
      {thumbnail}
      <div class="status-body">
        <h2 id={headingId} class="visually-hidden">
          Progress
        </h2>
        <StepIndicator progress={progress} problems={problems} />
        <p class="status-line">
          {state === "queued"
            ? describeProgress(progress, startEstimate(progress, neighbours))
            : at >= 0
              ? `${STEPS[at]!.label}${counter ? `: ${counter}` : "…"}`
              : describeProgress(progress)}
        </p>
        <ProgressBar value={pct} label="Processing progress, overall" text={`${Math.floor(pct)}% overall`} />
        {eta !== null && (
          <p class="muted status-eta" data-testid="eta" data-eta-seconds={Math.round(eta)}>
            About {formatRemaining(eta)} left in all
          </p>
        )}
      </div>
    </section>
  );
}

function RetryPanel(props: { id: string; meta: Metadata | null; onCancel: () => void; onRetried: () => void }): JSX.Element {
  const options = useSceneOptions();
  if (options.status === "ready" && props.meta) return <RetryForm {...props} meta={props.meta} options={options.options} />;
  if (options.status === "error") {
    return <OptionsUnavailable what="the training options" error={options.error} onRetry={options.retry} />;
  }
  return (
    <p class="muted" role="status">
      Loading the training options…
    </p>
  );
}

/** The upload's settings again, prefilled from the scene, sent to POST /user/scene/retry (no new upload). */
function RetryForm({ id, meta, options, onCancel, onRetried }: {
  id: string;
  meta: Metadata;
  options: SceneOptions;
  onCancel: () => void;
  onRetried: () => void;
}): JSX.Element {
  const headingId = useId();
  const [settings, setSettings] = useState<SettingsDraft>(() => settingsOfScene(options, meta));
  const [error, setError] = useState<string | null>(null);
  const [busy, setBusy] = useState(false);

  async function onSubmit(e: Event): Promise<void> {
    e.preventDefault();
    setError(null);
    const checked = checkSettings(options, settings);
    if ("error" in checked) {
      setError(checked.error);
      return;
    }
    setBusy(true);
    try {
      await retryScene(id, checked.value);
      onRetried();
    } catch (err) {
      setError(errorText(err));
    } finally {
      setBusy(false);
    }
  }

  return (
    <form class="retry" onSubmit={onSubmit} noValidate aria-labelledby={headingId}>
      <h3 id={headingId}>Try again with other settings</h3>
      <p class="muted">
        The video you uploaded is processed again; nothing needs uploading. With the same preset the camera
        poses already found are reused.
      </p>
      {/* Open: changing them is the point of this form. */}
      <TrainingSettings options={options} value={settings} onChange={setSettings} disabled={busy} initiallyOpen />
      <ErrorMessage message={error} />
      <div class="actions">
        <button type="submit" disabled={busy}>
          {busy ? "Starting…" : "Start again"}
        </button>
        <button type="button" class="secondary" onClick={onCancel} disabled={busy}>
          Cancel
        </button>
      </div>
    </form>
  );
}
