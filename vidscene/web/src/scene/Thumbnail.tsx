// A scene's first frame, as the scene list's cards and the scene page's status card show it.

import type { JSX } from "preact";
import { useEffect, useState } from "preact/hooks";

import { sceneThumbnail, stateOf } from "../api/scenes";
import type { Progress } from "../api/types";

/** Whether the thumbnail exists yet: it is written when frames are extracted, and 404s before that. */
export function thumbnailReady(p: Progress | undefined): boolean {
  if (!p) return false;
  const state = stateOf(p);
  if (state === "done") return true;
  if (state === "queued") return false;
  if (p.step) return p.step !== "frames";
  return p.stage === "nerf_list";
}

export function Thumbnail({ id, ready, alt }: { id: string; ready: boolean; alt: string }): JSX.Element {
  const [url, setUrl] = useState<string | null>(null);
  useEffect(() => {
    if (!ready || url) return;
    const controller = new AbortController();
    let objectUrl: string | null = null;
    sceneThumbnail(id, controller.signal)
      .then((blob) => {
        objectUrl = URL.createObjectURL(blob);
        setUrl(objectUrl);
      })
      .catch(() => {
        /* keep the placeholder */
      });
    return () => controller.abort();
  }, [id, ready]);
  useEffect(() => () => void (url && URL.revokeObjectURL(url)), [url]);
  return url ? (
    <img class="thumb" src={url} alt={alt} loading="lazy" />
  ) : (
    <div class="thumb thumb-empty" aria-hidden="true">
      <span>{ready ? "…" : "No preview yet"}</span>
    </div>
  );
}
