// The 3D view's card: the viewer with its controls (orbit or fly, back to the first camera, framing,
// fullscreen) and a hint on how to move. Shown on the scene page and the share page.

import type { JSX } from "preact";
import { useEffect, useId, useState } from "preact/hooks";

import type { InitialView, ResourceInfo } from "../api/types";
import { ErrorMessage, ProgressBar } from "../components";
import type { CloudType, OutputCache } from "../outputs";
import { controlHint, useTouchPointer } from "../viewer/hints";
import type { ControlMode } from "../viewer/types";
import type { EditBridge } from "./editBridge";
import { useCloudViewer } from "./useCloudViewer";
import { ViewerTools } from "./ViewerTools";

const MODES: ControlMode[] = ["orbit", "fly"];

/** The overlay over the viewer while its file downloads and the viewer is built. */
export function ViewerLoading({ loaded }: { loaded: number | null }): JSX.Element {
  return (
    <div class="viewer-overlay">
      <ProgressBar value={loaded} label="Loading the 3D scene"
        text={loaded === null ? "Preparing…" : `Loading ${Math.floor(loaded)}%`} />
    </div>
  );
}

function ModePicker({ mode, onPick }: { mode: ControlMode; onPick: (mode: ControlMode) => void }): JSX.Element {
  const modeName = useId();
  return (
    <fieldset class="segmented">
      <legend class="visually-hidden">Camera controls</legend>
      {MODES.map((m) => (
        <label key={m}>
          <input type="radio" name={modeName} value={m} checked={mode === m} onChange={() => onPick(m)} />
          <span>{m === "orbit" ? "Orbit" : "Fly"}</span>
        </label>
      ))}
    </fieldset>
  );
}

export function Viewer({ sceneId, type, iteration, info, cache, initialView = null, editing }: {
  sceneId: string;
  type: CloudType;
  iteration: string;
  info: ResourceInfo;
  cache: OutputCache;
  /** The first capture camera (metadata's initial_view): where the view opens. */
  initialView?: InitialView | null;
  /** The crop panel's edit list, shown (and dragged) in the view. */
  editing?: EditBridge;
}): JSX.Element {
  const [mode, setMode] = useState<ControlMode>("orbit");
  const touch = useTouchPointer();
  const viewer = useCloudViewer({ key: sceneId, cache, cloud: { type, info }, iteration }, { mode, view: initialView });
  const ready = viewer.status === "ready";
  useEffect(() => {
    if (!editing || !ready) return;
    editing.attach(viewer.handle.current?.editor ?? null);
    return () => editing.attach(null);
  }, [editing, ready]);

  function pickMode(next: ControlMode): void {
    setMode(next);
    viewer.handle.current?.setMode(next);
  }

  return (
    <section class="viewer card" aria-labelledby="viewer-heading">
      <div class="section-head">
        <h2 id="viewer-heading">3D view</h2>
        <div class="viewer-tools">
          <ModePicker mode={mode} onPick={pickMode} />
          <button type="button" class="secondary small" onClick={() => viewer.handle.current?.resetView()}
            disabled={!ready}>
            {initialView ? "First camera" : "Reset view"}
          </button>
          <ViewerTools handle={viewer.handle} stage={viewer.container} ready={ready} />
        </div>
      </div>
      <div class="viewer-stage" ref={viewer.container} data-status={viewer.status} data-testid="viewer">
        {viewer.status === "loading" && <ViewerLoading loaded={viewer.loaded} />}
      </div>
      <ErrorMessage message={viewer.error} />
      <p class="hint" data-testid="viewer-hint" data-pointer={touch ? "touch" : "mouse"}>
        {controlHint(mode, touch)}
      </p>
    </section>
  );
}
