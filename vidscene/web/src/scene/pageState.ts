// The scene page's state in two hooks: the scene as the server last described it (name, progress, metadata,
// polled until processing ends) with the iteration the user picked, and the deletion of the scene.

import { useEffect, useMemo, useReducer, useRef, useState } from "preact/hooks";

import { ApiError } from "../api/client";
import { deleteScene, isFinished, sceneMetadata, sceneName, sceneProgress, stateOf } from "../api/scenes";
import type { Metadata, Progress } from "../api/types";
import { errorText, isAbort } from "../components";
import type { OutputCache } from "../outputs";
import { ownerOutputs, viewableIterations } from "../outputs";
import { usePolling } from "../polling";
import { navigate } from "../router";

const POLL_MS = 2500;

export interface SceneView {
  name: string | null;
  progress: Progress | null;
  meta: Metadata | null;
  /** Why the last poll failed (it is tried again), or null. */
  error: string | null;
  /** The server does not know the scene (deleted, or never there). */
  missing: boolean;
  /** The iteration the user picked, or null to follow the newest. */
  picked: string | null;
  /** Bumped when a retry starts a new run: the polling (stopped once the last run finished) starts again. */
  run: number;
}

type SceneAction =
  | { type: "opened" } // another scene: forget what was shown of the last one
  | { type: "newRun" } // the old run's files are gone
  | { type: "polled"; name: string; progress: Progress; meta: Metadata }
  | { type: "pollFailed"; error: string }
  | { type: "missing" }
  | { type: "renamed"; name: string }
  | { type: "picked"; iteration: string };

const NOTHING_YET: SceneView = {
  name: null, progress: null, meta: null, error: null, missing: false, picked: null, run: 0,
};

function sceneReducer(view: SceneView, action: SceneAction): SceneView {
  switch (action.type) {
    case "opened":
      return { ...view, name: null, progress: null, meta: null, picked: null, missing: false };
    case "newRun":
      return { ...view, progress: null, meta: null, picked: null, run: view.run + 1 };
    case "polled":
      return { ...view, name: action.name, progress: action.progress, meta: action.meta, error: null };
    case "pollFailed":
      return { ...view, error: action.error };
    case "missing":
      return { ...view, missing: true };
    case "renamed":
      return { ...view, name: action.name };
    case "picked":
      return { ...view, picked: action.iteration };
  }
}

/** One poll of the scene: its name (once), progress and metadata. Says whether to poll again. */
async function pollScene(id: string, knownName: { current: string | null }, dispatch: (a: SceneAction) => void,
  signal: AbortSignal): Promise<boolean> {
  try {
    const [name, progress, meta] = await Promise.all([
      knownName.current === null ? sceneName(id, signal) : Promise.resolve(knownName.current),
      sceneProgress(id, signal),
      sceneMetadata(id, signal),
    ]);
    knownName.current = name;
    dispatch({ type: "polled", name, progress, meta });
    return !isFinished(stateOf(progress));
  } catch (err) {
    if (isAbort(err)) throw err;
    if (err instanceof ApiError && err.status === 404) {
      dispatch({ type: "missing" });
      return false;
    }
    dispatch({ type: "pollFailed", error: errorText(err) });
    return true;
  }
}

export interface FollowedScene extends SceneView {
  /** The scene's files, fetched once whoever asks (viewer, video, downloads). */
  cache: OutputCache;
  /** Every iteration with something to show, and the one shown: the picked one, else the newest. */
  iterations: string[];
  chosen: string | null;
  pick(iteration: string): void;
  renamed(name: string): void;
  /** A retry started a new run: forget the old one's files and follow the new one. */
  followNewRun(): void;
  /** Read the scene once more (a finished one is not polled): a file made after the fact is listed then. */
  refresh(): void;
}

/** The scene `id`, polled every few seconds until it is finished (again after a retry). */
export function useFollowedScene(id: string): FollowedScene {
  const [view, dispatch] = useReducer(sceneReducer, NOTHING_YET);
  const cache = useRef<OutputCache>(ownerOutputs(id));
  const knownName = useRef<string | null>(null);

  useEffect(() => {
    cache.current = ownerOutputs(id);
    knownName.current = null;
    dispatch({ type: "opened" });
  }, [id]);

  usePolling((signal) => pollScene(id, knownName, dispatch, signal), POLL_MS, [id, view.run]);

  const iterations = useMemo(() => viewableIterations(view.meta), [view.meta]);
  // Follow the newest iteration until the user picks one.
  const chosen = view.picked !== null && iterations.includes(view.picked) ? view.picked : (iterations.at(-1) ?? null);
  return {
    ...view,
    cache: cache.current,
    iterations,
    chosen,
    pick: (iteration) => dispatch({ type: "picked", iteration }),
    renamed: (name) => {
      knownName.current = name;
      dispatch({ type: "renamed", name });
    },
    followNewRun: () => {
      cache.current = ownerOutputs(id);
      dispatch({ type: "newRun" });
    },
    refresh: () => void pollScene(id, knownName, dispatch, new AbortController().signal),
  };
}

export interface SceneDeletion {
  confirming: boolean;
  deleting: boolean;
  error: string | null;
  ask(): void;
  cancel(): void;
  confirm(): void;
}

/** "Delete scene…": asks first; once deleted, back to the scene list. */
export function useSceneDeletion(id: string): SceneDeletion {
  const [confirming, setConfirming] = useState(false);
  const [deleting, setDeleting] = useState(false);
  const [error, setError] = useState<string | null>(null);

  async function remove(): Promise<void> {
    setDeleting(true);
    setError(null);
    try {
      await deleteScene(id);
      setConfirming(false);
      navigate({ name: "scenes" }, true);
    } catch (err) {
      setConfirming(false);
      setError(errorText(err));
    } finally {
      setDeleting(false);
    }
  }

  return {
    confirming,
    deleting,
    error,
    ask: () => setConfirming(true),
    cancel: () => setConfirming(false),
    confirm: () => void remove(),
  };
}
