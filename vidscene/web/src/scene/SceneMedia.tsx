// What a scene shows at one iteration: the 3D view and the rendered video, whichever it has.

import type { JSX } from "preact";

import type { InitialView, Metadata } from "../api/types";
import type { OutputCache } from "../outputs";
import { cloudAt, existing } from "../outputs";
import type { EditBridge } from "./editBridge";
import { VideoPlayer } from "./VideoPlayer";
import { Viewer } from "./Viewer";

export function SceneMedia({ sceneId, meta, iteration, cache, initialView = null, sayWhenEmpty = false, editing }: {
  /** The scene's id, or the share token it is seen through. */
  sceneId: string;
  meta: Metadata | null;
  iteration: string | null;
  cache: OutputCache;
  /** Where the 3D view opens (the metadata's initial_view). */
  initialView?: InitialView | null;
  /** Say so when there is neither a 3D file nor a video at this iteration. */
  sayWhenEmpty?: boolean;
  /** The crop panel's edit list, shown in the 3D view (the owner's page only). */
  editing?: EditBridge;
}): JSX.Element {
  const cloud = cloudAt(meta, iteration);
  const video = existing(meta, "video").find(([it]) => it === iteration);
  return (
    <div class="scene-media">
      {cloud && iteration && (
        <Viewer sceneId={sceneId} type={cloud.type} iteration={iteration} info={cloud.info} cache={cache}
          initialView={initialView} editing={editing} />
      )}
      {video && iteration && <VideoPlayer sceneId={sceneId} iteration={iteration} info={video[1]} cache={cache} />}
      {meta && !cloud && !video && sayWhenEmpty && (
        <p class="card muted">This scene has no 3D or video output to show at this iteration.</p>
      )}
    </div>
  );
}
