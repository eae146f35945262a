// The 3D viewer as a component holds it: the file downloaded (with its progress) while the renderer loads,
// the viewer built in a container element, and disposed when the file changes or the component goes.

import type { RefObject } from "preact";
import { useEffect, useRef, useState } from "preact/hooks";

import type { InitialView, ResourceInfo } from "../api/types";
import { errorText, isAbort } from "../components";
import type { CloudType, OutputCache } from "../outputs";
import { openCloudViewer } from "../outputs";
import type { ControlMode, ViewerHandle } from "../viewer/types";

export type ViewerStatus = "loading" | "ready" | "error";

export interface CloudViewer {
  /** The element the viewer's canvas goes in. */
  container: RefObject<HTMLDivElement | null>;
  handle: { readonly current: ViewerHandle | null };
  status: ViewerStatus;
  /** The download's percent, then null while the viewer is built. */
  loaded: number | null;
  error: string | null;
}

/** The file to show: which scene (or share token) it belongs to, the file, and its iteration. */
export interface CloudSource {
  key: string;
  cache: OutputCache;
  cloud: { type: CloudType; info: ResourceInfo } | null;
  iteration: string | null;
}

/**
 * Shows `source` in a viewer that opens in `start` (read when the viewer is built: a change of mode or view
 * later does not rebuild it). Nothing happens while there is no file.
 */
export function useCloudViewer(source: CloudSource, start: { mode: ControlMode; view: InitialView | null }): CloudViewer {
  const container = useRef<HTMLDivElement>(null);
  const handle = useRef<ViewerHandle | null>(null);
  const [status, setStatus] = useState<ViewerStatus>("loading");
  const [loaded, setLoaded] = useState<number | null>(0);
  const [error, setError] = useState<string | null>(null);
  const startRef = useRef(start);
  startRef.current = start;
  const { key, cache, cloud, iteration } = source;

  useEffect(() => {
    setStatus("loading");
    setError(null);
    setLoaded(0);
    if (!cloud || iteration === null) return;
    const controller = new AbortController();
    (async () => {
      const { mode, view } = startRef.current;
      const h = await openCloudViewer(container, cache, cloud, iteration, setLoaded, controller.signal, mode, view);
      if (!h) return;
      handle.current = h;
      setStatus("ready");
    })().catch((err: unknown) => {
      if (controller.signal.aborted || isAbort(err)) return;
      setStatus("error");
      setError(`Could not show the 3D view: ${errorText(err)}`);
    });
    return () => {
      controller.abort();
      handle.current?.dispose();
      handle.current = null;
    };
  }, [key, cloud?.type, iteration, cloud?.info.size]);

  return { container, handle, status, loaded, error };
}
