// Output types made after the fact, asked for from the downloads: the output route has a worker make the file
// and answers 202 with Retry-After meanwhile; this waits as long as the route says (up to a cap, cancellable),
// then downloads the file in chunks like any other. What is being prepared is remembered per scene in
// localStorage, so a reload picks the wait up again: asking the route again starts no second job.

import { useEffect, useRef, useState } from "preact/hooks";

import { ApiError } from "../api/client";
import type { OutputAnswer } from "../api/downloads";
import { askForOutput } from "../api/downloads";
import { sceneMetadata } from "../api/scenes";
import { errorText, isAbort } from "../components";
import type { OutputCache } from "../outputs";
import { saveFile } from "./saveFile";

/** How long one preparation is waited for: a mesh or a video of a large scene takes minutes, not hours. */
export const MAX_WAIT_MS = 20 * 60_000;
const DEFAULT_WAIT_S = 5;
const LONGEST_WAIT_S = 60;

const storageKey = (sceneId: string): string => `vidscene.preparing.${sceneId}`;

/** The `type/iteration`s of the scene being prepared when the page was last open. */
function pendingOf(sceneId: string): string[] {
  try {
    const parsed: unknown = JSON.parse(window.localStorage.getItem(storageKey(sceneId)) ?? "[]");
    return Array.isArray(parsed) ? parsed.filter((k): k is string => typeof k === "string") : [];
  } catch {
    return []; // storage disabled or garbled: a reload then only forgets the wait
  }
}

function remember(sceneId: string, key: string, waiting: boolean): void {
  const keys = new Set(pendingOf(sceneId));
  if (waiting) keys.add(key);
  else keys.delete(key);
  try {
    if (keys.size) window.localStorage.setItem(storageKey(sceneId), JSON.stringify([...keys]));
    else window.localStorage.removeItem(storageKey(sceneId));
  } catch {
    /* storage disabled: nothing to remember across a reload */
  }
}

function sleep(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    const onAbort = (): void => {
      window.clearTimeout(timer);
      reject(new DOMException("Stopped waiting", "AbortError"));
    };
    const timer = window.setTimeout(() => {
      signal.removeEventListener("abort", onAbort);
      resolve();
    }, ms);
    signal.addEventListener("abort", onAbort, { once: true });
  });
}

/**
 * Asks until the route says the file is there, waiting the route's Retry-After (1 to 60 s) between asks;
 * `onWaiting` gets each 202's message (words for an API client: "ask again in a few seconds"). Throws past
 * `maxWaitMs`, and the route's error (a failure is a 409).
 */
export async function waitUntilMade(
  ask: (retry: boolean) => Promise<OutputAnswer>,
  retry: boolean,
  onWaiting: (message: string) => void,
  signal: AbortSignal,
  maxWaitMs: number = MAX_WAIT_MS,
): Promise<void> {
  const deadline = Date.now() + maxWaitMs;
  let answer = await ask(retry);
  while (!answer.ready) {
    onWaiting(answer.message);
    const seconds = Math.min(Math.max(answer.retryAfterSeconds ?? DEFAULT_WAIT_S, 1), LONGEST_WAIT_S);
    if (Date.now() + seconds * 1000 > deadline) {
      throw new Error(`Still being made after ${Math.round(maxWaitMs / 60_000)} minutes: ask again later.`);
    }
    await sleep(seconds * 1000, signal);
    answer = await ask(false);
  }
}

export type Preparation =
  | { phase: "idle"; note: string | null }
  /** `made`: the route said the worker makes it (a 202); false while the first ask is under way. */
  | { phase: "preparing"; made: boolean }
  | { phase: "downloading"; percent: number }
  | { phase: "failed"; error: string; retry: boolean }
  | { phase: "done" };

export interface PreparedOutput {
  sceneId: string;
  type: string;
  iteration: string;
  /** For the file name when the server sends none. */
  extension: string;
}

async function prepareAndSave(target: PreparedOutput, cache: OutputCache, retry: boolean,
  show: (state: Preparation) => void, signal: AbortSignal): Promise<void> {
  const { sceneId, type, iteration } = target;
  await waitUntilMade((again) => askForOutput(sceneId, type, iteration, again, signal), retry,
    () => show({ phase: "preparing", made: true }), signal);
  // Its size and chunks, as every download has them: from the metadata, which lists the type once made.
  const info = (await sceneMetadata(sceneId, signal)).resources[type]?.[iteration];
  if (!info?.exists) throw new Error(`The file was made, but the server lists none for iteration ${iteration}.`);
  show({ phase: "downloading", percent: 0 });
  const { blob, fileName } = await cache.fetch(type, iteration, info,
    (r, t) => show({ phase: "downloading", percent: t ? (100 * r) / t : 100 }), signal);
  saveFile(blob, fileName ?? `${sceneId}-${type}-${iteration}${target.extension}`);
  show({ phase: "done" });
}

export interface PreparationControl {
  state: Preparation;
  /** Ask (again): after a failure the route answered, with `retry` so the server tries once more. */
  start(): void;
  cancel(): void;
}

/**
 * A failed making's reason as the page shows it: the route tells API clients to ask again with
 * `retry=true`, which on this page is the "Try again" button beside the reason.
 */
function forThePage(reason: string): string {
  const hint = /\s*Ask again with retry=true[^.]*\.\s*$/;
  return hint.test(reason) ? `${reason.replace(hint, "")} "Try again" asks the server to make it once more.` : reason;
}

/** One output to prepare: resumed on mount when a wait for it was under way before a reload. */
export function usePreparation(target: PreparedOutput, cache: OutputCache, onMade: () => void): PreparationControl {
  const [state, setState] = useState<Preparation>({ phase: "idle", note: null });
  const controller = useRef<AbortController | null>(null);
  const made = useRef(onMade);
  made.current = onMade;
  const key = `${target.type}/${target.iteration}`;

  const run = (retry: boolean): void => {
    controller.current?.abort();
    const current = new AbortController();
    controller.current = current;
    remember(target.sceneId, key, true);
    setState({ phase: "preparing", made: false });
    prepareAndSave(target, cache, retry, setState, current.signal).then(() => {
      remember(target.sceneId, key, false);
      made.current();
    }, (err: unknown) => {
      if (isAbort(err)) return; // cancelled, or the page went away: a reload resumes the latter
      remember(target.sceneId, key, false);
      const failed = err instanceof ApiError && err.status === 409;
      setState({ phase: "failed", error: failed ? forThePage(errorText(err)) : errorText(err), retry: failed });
    });
  };

  useEffect(() => {
    if (pendingOf(target.sceneId).includes(key)) run(false);
    return () => controller.current?.abort();
  }, [target.sceneId, key]); // on mount and per output only: `run` reads the newest props itself

  return {
    state,
    start: () => run(state.phase === "failed" && state.retry),
    cancel: () => {
      controller.current?.abort();
      remember(target.sceneId, key, false);
      setState({ phase: "idle", note: "Stopped waiting: the server may still make it, ask again later." });
    },
  };
}
