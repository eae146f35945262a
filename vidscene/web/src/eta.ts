// The time left as the app shows it. The server's `eta_seconds` is re-estimated at every heartbeat and can
// swing by an order of magnitude early in a step ("1 h 53 min", then "11 min"); what is shown follows it
// smoothly instead: it counts down with the wall clock between polls, moves towards each new estimate
// (in proportion, on a log scale) by a share that grows with the time since the last one, and never changes
// faster than twofold per half minute beyond the countdown. Proportions are taken of the time left plus a
// minute, so that near the end a countdown that ran ahead of the estimate ("5 s") can still catch up with
// it ("2 min") quickly. Shown in coarse units, so it does not flicker.

import type { Progress } from "./api/types";

export interface EtaTrack {
  /** Seconds left as shown at `at` (ms since the epoch). */
  value: number;
  at: number;
  /** The step the estimate was for, and since when (ms) the scene has been in it. */
  step: string;
  stepSince: number;
}

/** Within this many seconds of a step's start the estimate is least sure: follow it more slowly. */
const SETTLING_S = 30;
/** Time constants (s) of the move towards a new estimate, while settling and after. */
const TAU_SETTLING_S = 20;
const TAU_S = 10;
/** What is shown changes by at most 2x per this many seconds (beyond counting down). */
const DOUBLING_S = 30;
const DOUBLING_SETTLED_S = 12;
/** Proportions are of (seconds left + this). */
const OFFSET_S = 60;
/** An older track (a hidden tab, another run) is not followed: the next estimate is shown as it is. */
const STALE_S = 600;

/** The value of `track` at `now`: counted down with the wall clock, never below one second. */
export function etaAt(track: EtaTrack, now: number): number {
  return Math.max(1, track.value - Math.max(0, now - track.at) / 1000);
}

/** The track after a new estimate `raw` (seconds) for `step`, read at `now` (ms). */
export function smoothEta(prev: EtaTrack | null, raw: number, step: string, now: number): EtaTrack {
  const estimate = Math.max(1, raw);
  const dt = prev ? (now - prev.at) / 1000 : -1;
  if (!prev || dt < 0 || dt > STALE_S) return { value: estimate, at: now, step, stepSince: now };
  const predicted = Math.log(etaAt(prev, now) + OFFSET_S);
  const stepSince = step === prev.step ? prev.stepSince : now;
  const settling = (now - stepSince) / 1000 < SETTLING_S;
  const alpha = 1 - Math.exp(-dt / (settling ? TAU_SETTLING_S : TAU_S));
  const moved = predicted + alpha * (Math.log(estimate + OFFSET_S) - predicted);
  const limit = (dt / (settling ? DOUBLING_S : DOUBLING_SETTLED_S)) * Math.LN2;
  const value = Math.exp(Math.min(predicted + limit, Math.max(predicted - limit, moved))) - OFFSET_S;
  return { value: Math.max(1, value), at: now, step, stepSince };
}

/** "40 s", "3 min", "25 min", "1 h 50 min": coarser the further away. */
export function formatRemaining(seconds: number): string {
  const s = Math.max(0, seconds);
  if (s < 57.5) return `${Math.max(5, Math.round(s / 5) * 5)} s`;
  if (s < 570) return `${Math.max(1, Math.round(s / 60))} min`;
  if (s < 3450) return `${Math.round(s / 300) * 5} min`;
  const tens = Math.round(s / 600) * 10; // minutes, in tens
  const h = Math.floor(tens / 60);
  const m = tens % 60;
  return m ? `${h} h ${m} min` : `${h} h`;
}

// One track per scene run, shared by the scene list and the scene page, fed once per progress answer.
const tracks = new Map<string, { track: EtaTrack; from: Progress; run: string }>();

/**
 * The smoothed seconds left of a processing scene (null when the server gives no estimate). Each progress
 * answer moves the scene's track once, however often it is rendered; renders in between count down.
 */
export function shownEta(p: Progress, now: number = Date.now()): number | null {
  const raw = p.eta_seconds;
  if (typeof raw !== "number" || !(raw > 0)) return null;
  const run = p.started_at ?? "";
  const known = tracks.get(p.uuid);
  if (known?.from === p) return etaAt(known.track, now);
  const track = smoothEta(known?.run === run ? known.track : null, raw, p.step ?? p.stage, now);
  tracks.set(p.uuid, { track, from: p, run });
  return track.value;
}
