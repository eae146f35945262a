// The rendered fly-through video of one iteration, played from the downloaded file.

import type { JSX } from "preact";
import { useEffect, useState } from "preact/hooks";

import type { ResourceInfo } from "../api/types";
import { ErrorMessage, ProgressBar, errorText, isAbort } from "../components";
import type { OutputCache } from "../outputs";

export function VideoPlayer({ sceneId, iteration, info, cache }: {
  sceneId: string;
  iteration: string;
  info: ResourceInfo;
  cache: OutputCache;
}): JSX.Element {
  const [url, setUrl] = useState<string | null>(null);
  const [loaded, setLoaded] = useState(0);
  const [error, setError] = useState<string | null>(null);

  useEffect(() => {
    const controller = new AbortController();
    let objectUrl: string | null = null;
    setUrl(null);
    setError(null);
    cache.fetch("video", iteration, info, (r, t) => setLoaded(t ? (100 * r) / t : 0), controller.signal)
      .then(({ blob }) => {
        if (controller.signal.aborted) return;
        objectUrl = URL.createObjectURL(blob);
        setUrl(objectUrl);
      })
      .catch((err: unknown) => {
        if (!isAbort(err)) setError(errorText(err));
      });
    return () => {
      controller.abort();
      if (objectUrl) URL.revokeObjectURL(objectUrl);
    };
  }, [sceneId, iteration, info.size]);

  return (
    <section class="video card" aria-labelledby="video-heading">
      <h2 id="video-heading">Rendered video</h2>
      {url ? (
        <video src={url} controls loop playsInline muted preload="auto" aria-label={`Rendered video at iteration ${iteration}`} />
      ) : (
        !error && <ProgressBar value={loaded} label="Loading the video" text={`Loading ${Math.floor(loaded)}%`} />
      )}
      <ErrorMessage message={error} />
    </section>
  );
}
