import type { JSX } from "preact";
import { useRef, useState } from "preact/hooks";

import { ApiError } from "../api/client";
import type { Progress } from "../api/types";
import { isFinished, sceneHistory, sceneName, sceneProgress, stateOf } from "../api/scenes";
import { useSceneOptions } from "../catalogue";
import { ErrorMessage, PageHeading, ProgressBar, errorText, isAbort } from "../components";
import { STATE_LABELS, describeProgress, formatDate, formatDuration, processingTime, startEstimate } from "../format";
import { usePolling } from "../polling";
import { href } from "../router";
import { CardQuality } from "../scene/MetricsPanel";
import { StateBadge } from "../scene/StateBadge";
import { Thumbnail, thumbnailReady } from "../scene/Thumbnail";

const PROGRESS_POLL_MS = 2000;
const HISTORY_POLL_MS = 15000;

export interface SceneSummary {
  id: string;
  name?: string;
  progress?: Progress;
}

/**
 * The overall bar and one line saying where the scene is. A failed or cancelled scene has no bar: a full red
 * one reads as "100%", and its line says what went wrong instead.
 */
export function SceneProgress({ progress, startsIn = null }: {
  progress: Progress;
  /** Seconds until a queued scene should start, when that can be estimated. */
  startsIn?: number | null;
}): JSX.Element {
  const state = stateOf(progress);
  const pct = progress.percent;
  const stopped = state === "failed" || state === "cancelled";
  return (
    <div class="scene-progress" data-state={state}>
      {!stopped && (
        <ProgressBar
          value={pct}
          label={`Processing progress: ${STATE_LABELS[state]}`}
          text={state === "done" ? "100%" : `${Math.floor(pct)}%`}
          tone={state === "done" ? "ok" : undefined}
        />
      )}
      <p class={`progress-line ${state === "failed" ? "error-text" : "muted"}`}>
        {describeProgress(progress, startsIn)}
      </p>
    </div>
  );
}

/** "Quick preview · 3 Mar 2026 · took 14 min": the preset, and the dates when the server sends them. */
function SceneFacts({ progress }: { progress: Progress }): JSX.Element | null {
  const options = useSceneOptions();
  const facts: string[] = [];
  if (progress.preset) {
    const preset = options.status === "ready" ? options.options.presets.find((p) => p.name === progress.preset) : null;
    facts.push(preset?.label ?? progress.preset);
  }
  const date = formatDate(progress.created_at);
  if (date) facts.push(date);
  const took = stateOf(progress) === "done" ? processingTime(progress) : null;
  if (took !== null) facts.push(`took ${formatDuration(took)}`);
  if (facts.length === 0) return null;
  return <p class="scene-facts muted">{facts.join(" · ")}</p>;
}

function SceneCard({ scene, startsIn }: { scene: SceneSummary; startsIn: number | null }): JSX.Element {
  const name = scene.name ?? "…";
  const link = href({ name: "scene", id: scene.id });
  return (
    <li class="scene-card card" data-scene-id={scene.id}>
      <a class="thumb-link" href={link} tabIndex={-1} aria-hidden="true">
        <Thumbnail id={scene.id} ready={thumbnailReady(scene.progress)} alt="" />
      </a>
      <div class="scene-card-body">
        <div class="scene-card-title">
          <h2>
            <a href={link}>{name}</a>
          </h2>
          {scene.progress && <StateBadge state={stateOf(scene.progress)} />}
        </div>
        {scene.progress ? (
          <>
            <SceneProgress progress={scene.progress} startsIn={startsIn} />
            <SceneFacts progress={scene.progress} />
            <CardQuality id={scene.id} state={stateOf(scene.progress)} />
          </>
        ) : (
          <p class="muted">Loading…</p>
        )}
      </div>
    </li>
  );
}

/** What one poll learnt of a scene that still changes: its name and progress, or that it was deleted. */
type Detail = { id: string; gone: true } | { id: string; gone: false; name: string; progress: Progress };

/** The name (until known) and progress (until finished) of each scene in `pending`. */
function fetchDetails(pending: SceneSummary[], signal: AbortSignal): Promise<Detail[]> {
  return Promise.all(
    pending.map(async (s): Promise<Detail> => {
      try {
        const [name, progress] = await Promise.all([
          s.name ? Promise.resolve(s.name) : sceneName(s.id, signal),
          s.progress && isFinished(stateOf(s.progress)) ? Promise.resolve(s.progress) : sceneProgress(s.id, signal),
        ]);
        return { id: s.id, name, progress, gone: false };
      } catch (err) {
        if (err instanceof ApiError && err.status === 404) return { id: s.id, gone: true };
        throw err;
      }
    }),
  );
}

/** `scenes` with each detail applied: a deleted scene leaves the list, the others get their new figures. */
function withDetails(scenes: SceneSummary[], details: Detail[]): SceneSummary[] {
  const byId = new Map(details.map((r) => [r.id, r]));
  return scenes
    .filter((s) => !byId.get(s.id)?.gone)
    .map((s) => {
      const r = byId.get(s.id);
      return r && !r.gone ? { id: s.id, name: r.name, progress: r.progress } : s;
    });
}

/**
 * The user's scenes, newest first, polled: the history now and then (new and deleted scenes), and the
 * progress of every scene not finished yet at each poll.
 */
function useSceneList(): { scenes: SceneSummary[] | null; error: string | null } {
  const [scenes, setScenes] = useState<SceneSummary[] | null>(null);
  const [error, setError] = useState<string | null>(null);
  const scenesRef = useRef<SceneSummary[]>([]);
  const lastHistory = useRef(0);

  function update(next: SceneSummary[]): void {
    scenesRef.current = next;
    setScenes(next);
  }

  usePolling(
    async (signal) => {
      const now = Date.now();
      let current = scenesRef.current;
      try {
        if (lastHistory.current === 0 || now - lastHistory.current >= HISTORY_POLL_MS) {
          const ids = await sceneHistory(signal);
          lastHistory.current = now;
          const known = new Map(current.map((s) => [s.id, s]));
          // Newest first: the scene just uploaded is at the top.
          current = [...ids].reverse().map((id) => known.get(id) ?? { id });
          update(current);
        }
        const pending = current.filter((s) => !s.progress || !isFinished(stateOf(s.progress)) || !s.name);
        const details = await fetchDetails(pending, signal);
        update(withDetails(scenesRef.current, details));
        setError(null);
      } catch (err) {
        if (isAbort(err)) throw err;
        setError(errorText(err));
      }
      return true;
    },
    PROGRESS_POLL_MS,
    [],
  );
  return { scenes, error };
}

export function ScenesPage(): JSX.Element {
  const { scenes, error } = useSceneList();
  const known = (scenes ?? []).flatMap((s) => (s.progress ? [s.progress] : []));
  return (
    <section class="scenes">
      <PageHeading title="Your scenes">
        <a class="button" href="#/new">
          New scene
        </a>
      </PageHeading>
      <ErrorMessage message={error} />
      {scenes === null ? (
        <p class="muted" role="status">
          Loading your scenes…
        </p>
      ) : scenes.length === 0 ? (
        <div class="card empty">
          <p>No scenes yet.</p>
          <p>
            <a href="#/new">Upload a video</a> to make your first one.
          </p>
        </div>
      ) : (
        <ul class="scene-list" aria-label="Scenes">
          {scenes.map((s) => (
            <SceneCard scene={s} key={s.id} startsIn={s.progress ? startEstimate(s.progress, known) : null} />
          ))}
        </ul>
      )}
    </section>
  );
}
