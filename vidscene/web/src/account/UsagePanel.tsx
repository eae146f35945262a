import type { JSX } from "preact";
import { useEffect, useState } from "preact/hooks";

import { sendJson } from "../api/client";
import { errorText, isAbort } from "../components";
import { formatBytes } from "../format";

/** `GET /user/account/usage`: the user's scenes in the queue and bytes kept, against the server's limits (null: none). */
interface Usage {
  queued: number;
  max_queued: number | null;
  bytes: number;
  quota_bytes: number | null;
}

function usageLine(u: Usage): string {
  const queued = u.max_queued === null ? `${u.queued}` : `${u.queued} of ${u.max_queued}`;
  const stored = u.quota_bytes === null ? formatBytes(u.bytes) : `${formatBytes(u.bytes)} of ${formatBytes(u.quota_bytes)}`;
  return `Scenes waiting or processing: ${queued}. Storage used: ${stored}.`;
}

/** Where the account stands against the per-user limits, so a refused upload (429, 413) is no surprise. */
export function UsagePanel(): JSX.Element {
  const [line, setLine] = useState<string>("Loading usage…");
  useEffect(() => {
    const abort = new AbortController();
    sendJson<Usage>("GET", "/user/account/usage", { signal: abort.signal })
      .then((u) => setLine(usageLine(u)))
      .catch((err: unknown) => {
        if (!isAbort(err)) setLine(`Usage unavailable: ${errorText(err)}`);
      });
    return () => abort.abort();
  }, []);
  return (
    <p class="muted" data-testid="account-usage">
      {line}
    </p>
  );
}
