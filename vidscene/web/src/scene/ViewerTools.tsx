// The 3D view's framing buttons: fit the whole scene in view, and fullscreen. (Where the view opens, the first
// capture camera, is the viewer's own business: see viewer.ts.)

import type { JSX } from "preact";
import { useEffect, useState } from "preact/hooks";

import type { ViewerHandle } from "../viewer/types";

export function ViewerTools({ handle, stage, ready }: {
  handle: { readonly current: ViewerHandle | null };
  /** The canvas's container; its viewer card goes fullscreen (the canvas follows the container's size). */
  stage: { readonly current: HTMLElement | null };
  ready: boolean;
}): JSX.Element {
  const [fullscreen, setFullscreen] = useState(false);
  useEffect(() => {
    const onChange = (): void => setFullscreen(document.fullscreenElement !== null);
    document.addEventListener("fullscreenchange", onChange);
    return () => document.removeEventListener("fullscreenchange", onChange);
  }, []);

  function toggleFullscreen(): void {
    if (document.fullscreenElement) {
      void document.exitFullscreen().catch(() => undefined);
      return;
    }
    // The whole viewer card, not only the canvas: these buttons must stay on screen to come back.
    // Refused without a user gesture or inside a frame that does not allow it: nothing else to do then.
    const target = stage.current?.closest<HTMLElement>(".viewer") ?? stage.current;
    void target?.requestFullscreen?.().catch(() => undefined);
  }

  return (
    <>
      <button type="button" class="secondary small" onClick={() => handle.current?.frameScene()} disabled={!ready}
        title="Fit the whole scene in view">
        Frame scene
      </button>
      {document.fullscreenEnabled && (
        <button type="button" class="secondary small" onClick={toggleFullscreen} disabled={!ready}
          aria-pressed={fullscreen}>
          {fullscreen ? "Exit fullscreen" : "Fullscreen"}
        </button>
      )}
    </>
  );
}
