import type { JSX } from "preact";
import { useEffect, useRef, useState } from "preact/hooks";

import { ApiError } from "../api/client";
import { sharedMetadata } from "../api/shares";
import type { Metadata } from "../api/types";
import { useSceneOptions } from "../catalogue";
import { ErrorMessage, PageHeading, errorText, isAbort } from "../components";
import type { OutputCache } from "../outputs";
import { cloudAt, sharedOutputs, viewableIterations } from "../outputs";
import { Downloads } from "../scene/Downloads";
import { SceneMedia } from "../scene/SceneMedia";
import { useCloudViewer } from "../scene/useCloudViewer";
import { ViewerLoading } from "../scene/Viewer";

type SharedScene = Metadata & { name: string };

type Loaded =
  | { status: "loading" }
  | { status: "ready"; meta: SharedScene }
  | { status: "missing" }
  | { status: "error"; error: string; retry: () => void };

/** The shared scene's metadata through the token: "missing" for an unknown, revoked or expired link. */
function useSharedScene(token: string): Loaded {
  const [attempt, setAttempt] = useState(0);
  const [state, setState] = useState<Loaded>({ status: "loading" });
  useEffect(() => {
    const controller = new AbortController();
    setState({ status: "loading" });
    sharedMetadata(token, controller.signal).then(
      (meta) => setState({ status: "ready", meta }),
      (err: unknown) => {
        if (isAbort(err)) return;
        if (err instanceof ApiError && err.status === 404) setState({ status: "missing" });
        else setState({ status: "error", error: errorText(err), retry: () => setAttempt((n) => n + 1) });
      },
    );
    return () => controller.abort();
  }, [token, attempt]);
  return state;
}

function Brand(): JSX.Element {
  return (
    <header class="topbar">
      <a class="brand" href="/">
        <img src="/favicon.svg" alt="" width={28} height={28} />
        <span>vidscene</span>
      </a>
    </header>
  );
}

function DeadLink({ embed }: { embed: boolean }): JSX.Element {
  const body = (
    <section class="card narrow share-missing">
      <PageHeading title="This link does not exist or was revoked" />
      <p>
        The scene behind it may have been deleted, the link may have expired, or its owner stopped sharing it.
        Ask them for a new link.
      </p>
    </section>
  );
  if (embed) return <div class="embed-message">{body}</div>;
  return (
    <>
      <Brand />
      <main id="main" tabIndex={-1}>{body}</main>
    </>
  );
}

/** Only the 3D view, filling the frame another site puts it in, with a way to the full share page. */
function EmbedView({ token, meta, cache }: { token: string; meta: SharedScene; cache: OutputCache }): JSX.Element {
  const iteration = viewableIterations(meta).at(-1) ?? null;
  const cloud = cloudAt(meta, iteration);
  // The owner's first camera.
  const viewer = useCloudViewer({ key: token, cache, cloud, iteration }, { mode: "orbit", view: meta.initial_view ?? null });
  useEffect(() => {
    document.title = `${meta.name} · vidscene`;
  }, [meta.name]);

  const page = new URL(`/s/${encodeURIComponent(token)}`, window.location.origin).href;
  return (
    <div class="embed">
      <div class="viewer-stage" ref={viewer.container} data-status={cloud ? viewer.status : "empty"} data-testid="viewer">
        {cloud && viewer.status === "loading" && <ViewerLoading loaded={viewer.loaded} />}
        {!cloud && <div class="viewer-overlay"><p>This scene has no 3D view yet.</p></div>}
        {viewer.error && <div class="viewer-overlay"><p role="alert">{viewer.error}</p></div>}
      </div>
      <a class="embed-open" href={page} target="_blank" rel="noopener">
        {meta.name} · open in vidscene
      </a>
    </div>
  );
}

function ShareView({ token, meta, cache }: { token: string; meta: SharedScene; cache: OutputCache }): JSX.Element {
  const options = useSceneOptions();
  const iteration = viewableIterations(meta).at(-1) ?? null;
  return (
    <section class="scene share" data-share-token={token}>
      <PageHeading title={meta.name} />
      <p class="muted">Shared with you through a link: you can look around and download it, no account needed.</p>
      <SceneMedia sceneId={token} meta={meta} iteration={iteration} cache={cache}
        initialView={meta.initial_view ?? null} />
      {iteration === null ? (
        <p class="card muted">Nothing to show yet: this scene is still being made. Try the link again later.</p>
      ) : (
        <Downloads sceneId={token} meta={meta} options={options} cache={cache} state="done" />
      )}
    </section>
  );
}

/** What `/s/<token>` shows: no login and no account controls, only the shared scene (or, with `?embed=1`,
 * its viewer alone, for another site's iframe). */
export function SharePage({ token, embed }: { token: string; embed: boolean }): JSX.Element {
  const loaded = useSharedScene(token);
  const cache = useRef<OutputCache>(sharedOutputs(token));

  if (loaded.status === "missing") return <DeadLink embed={embed} />;
  if (loaded.status === "ready" && embed) return <EmbedView token={token} meta={loaded.meta} cache={cache.current} />;
  const content =
    loaded.status === "ready" ? (
      <ShareView token={token} meta={loaded.meta} cache={cache.current} />
    ) : loaded.status === "error" ? (
      <section class="card narrow">
        <ErrorMessage message={`Could not load this shared scene: ${loaded.error}`} />
        <button type="button" class="secondary" onClick={loaded.retry}>Try again</button>
      </section>
    ) : (
      <p class="muted" role="status">Loading…</p>
    );
  if (embed) return <div class="embed-message">{content}</div>;
  return (
    <>
      <Brand />
      <main id="main" tabIndex={-1}>{content}</main>
    </>
  );
}

/** The share token when the page is a share page (`/s/<token>`), else null. */
export function shareTokenOf(path: string): string | null {
  const m = /^\/s\/([^/]+)\/?$/.exec(path);
  if (!m?.[1]) return null;
  try {
    return decodeURIComponent(m[1]);
  } catch {
    return null;
  }
}
