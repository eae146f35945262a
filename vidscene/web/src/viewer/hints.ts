// How to move the camera, in words, for the pointer the device has. The gestures are those the controls
// implement (controls.ts): orbit is three.js's OrbitControls (one finger rotates, two fingers pan and pinch
// zooms), fly is Spark's pointer controls (one finger looks around, two fingers dragged together move,
// pinched move forward and back). A touch screen gets no "right-drag" or arrow keys it does not have.

import { useEffect, useState } from "preact/hooks";

import type { ControlMode } from "./types";

/** A touch screen (the primary pointer is a finger): the media query, not the user agent, so a laptop
 * with a touch screen and a mouse gets the mouse's hints. */
const COARSE = "(pointer: coarse)";

export function isTouchPointer(): boolean {
  return typeof window.matchMedia === "function" && window.matchMedia(COARSE).matches;
}

/** Whether the primary pointer is a finger, following a change (a tablet's keyboard cover attached). */
export function useTouchPointer(): boolean {
  const [touch, setTouch] = useState(isTouchPointer);
  useEffect(() => {
    if (typeof window.matchMedia !== "function") return;
    const query = window.matchMedia(COARSE);
    const onChange = (): void => setTouch(query.matches);
    query.addEventListener("change", onChange);
    return () => query.removeEventListener("change", onChange);
  }, []);
  return touch;
}

const HINTS: Record<ControlMode, { mouse: string; touch: string }> = {
  orbit: {
    mouse: "Drag to orbit, right-drag to pan, scroll to zoom. With the view focused, arrow keys pan.",
    touch: "One finger to orbit; two fingers to pan, pinch to zoom.",
  },
  fly: {
    mouse: "Click the view, then W A S D or the arrow keys to move, E and Q to rise and sink; drag to look around.",
    touch: "One finger to look around; two fingers together to move sideways, pinch to move forward and back.",
  },
};

export function controlHint(mode: ControlMode, touch: boolean): string {
  return touch ? HINTS[mode].touch : HINTS[mode].mouse;
}

/** The canvas's accessible name: both modes, for the device's pointer. */
export function canvasLabel(touch: boolean): string {
  return `3D view of the scene. Orbit: ${controlHint("orbit", touch)} Fly: ${controlHint("fly", touch)}`;
}
