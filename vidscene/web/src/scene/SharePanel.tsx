import type { JSX } from "preact";
import { useEffect, useId, useState } from "preact/hooks";

import type { ShareLink } from "../api/shares";
import { createShare, listShares, revokeShare } from "../api/shares";
import { ConfirmDialog, ErrorMessage, Notice, errorText, isAbort } from "../components";
import { formatDate } from "../format";
import { copyText } from "../clipboard";

// The server's own limit (vidscene/api/shares/schemas.py); it refuses anything else with a message anyway.
const MAX_EXPIRY_DAYS = 3650;

/** The share page's address as a person pastes it: absolute, on this server's origin. */
export function shareUrl(link: ShareLink): string {
  return new URL(link.url, window.location.origin).href;
}

function attribute(value: string): string {
  return value.replace(/&/g, "&amp;").replace(/"/g, "&quot;").replace(/</g, "&lt;");
}

/** The snippet that embeds the share page, viewer only, in another site's page. */
export function embedSnippet(link: ShareLink, sceneName: string): string {
  const src = `${shareUrl(link)}?embed=1`;
  return `<iframe src="${attribute(src)}" title="${attribute(`${sceneName} (3D scene)`)}" width="960" ` +
    'height="540" style="border:0" allow="fullscreen" loading="lazy"></iframe>';
}

/** "Revoke", which asks first: a revoked link cannot be brought back, and pages embedding it go blank. */
function RevokeButton({ url, busy, onConfirm }: { url: string; busy: boolean; onConfirm: () => Promise<void> }): JSX.Element {
  const [confirming, setConfirming] = useState(false);
  return (
    <>
      <button type="button" class="danger small" onClick={() => setConfirming(true)} disabled={busy}
        aria-label={`Revoke link ${url}`}>
        {busy ? "Revoking…" : "Revoke"}
      </button>
      <ConfirmDialog open={confirming} title="Revoke this link?" confirmLabel="Revoke link" busy={busy}
        onConfirm={() => void onConfirm().finally(() => setConfirming(false))} onCancel={() => setConfirming(false)}>
        <p>Anyone who has it, and every page that embeds it, will no longer see the scene.</p>
      </ConfirmDialog>
    </>
  );
}

function LinkRow({ link, sceneName, onRevoke, onCopied }: {
  link: ShareLink;
  sceneName: string;
  onRevoke: (link: ShareLink) => Promise<void>;
  onCopied: (what: string) => void;
}): JSX.Element {
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<string | null>(null);
  const url = shareUrl(link);

  async function copy(what: string, text: string): Promise<void> {
    setError(null);
    try {
      await copyText(text);
      onCopied(what);
    } catch (err) {
      setError(errorText(err));
    }
  }

  async function revoke(): Promise<void> {
    setBusy(true);
    setError(null);
    try {
      await onRevoke(link);
    } catch (err) {
      setError(errorText(err));
      setBusy(false);
    }
  }

  return (
    <tr data-token={link.token}>
      <td data-label="Link">
        <a href={url} target="_blank" rel="noopener" class="share-url">{url}</a>
      </td>
      <td data-label="Created">{formatDate(link.created) ?? "—"}</td>
      <td data-label="Expires">{link.expires ? formatDate(link.expires) : "Never"}</td>
      <td class="share-actions">
        <button type="button" class="secondary small" onClick={() => void copy("The link", url)}
          aria-label={`Copy link ${url}`}>
          Copy link
        </button>
        <button type="button" class="secondary small" onClick={() => void copy("The embed code",
          embedSnippet(link, sceneName))} aria-label={`Copy embed code for ${url}`}>
          Copy embed code
        </button>
        <RevokeButton url={url} busy={busy} onConfirm={revoke} />
        {error && <span class="error-text" role="alert">{error}</span>}
      </td>
    </tr>
  );
}

/**
 * The owner's share links: make one (optionally expiring), copy its address or an embed snippet, revoke it.
 * Anyone with a link sees the viewer, the video and the public downloads without an account; never the
 * checkpoint, and nothing else of the owner's.
 */
export function SharePanel({ sceneId, sceneName }: { sceneId: string; sceneName: string }): JSX.Element {
  const [links, setLinks] = useState<ShareLink[] | null>(null);
  const [error, setError] = useState<string | null>(null);
  const [notice, setNotice] = useState<string | null>(null);

  useEffect(() => {
    const controller = new AbortController();
    setLinks(null);
    listShares(sceneId, controller.signal).then(setLinks, (err: unknown) => {
      if (!isAbort(err)) setError(errorText(err));
    });
    return () => controller.abort();
  }, [sceneId]);

  function onCreated(link: ShareLink): void {
    setLinks((current) => [...(current ?? []), link]);
    setNotice("Link created. Anyone with it can view this scene.");
  }

  async function onRevoke(link: ShareLink): Promise<void> {
    setNotice(null);
    await revokeShare(sceneId, link.token);
    setLinks((current) => (current ?? []).filter((l) => l.token !== link.token));
    setNotice("Link revoked: it no longer opens this scene.");
  }

  return (
    <section class="shares card" aria-labelledby="shares-heading">
      <h2 id="shares-heading">Share</h2>
      <p class="hint">
        A link opens the 3D view, the video and the downloads (never the checkpoint) to anyone who has it,
        without an account, until you revoke it.
      </p>
      <ShareForm sceneId={sceneId} onCreated={onCreated} setError={setError} setNotice={setNotice} />
      <ErrorMessage message={error} />
      <Notice message={notice} />
      {links === null ? (
        !error && <p class="muted" role="status">Loading…</p>
      ) : links.length === 0 ? (
        <p class="muted">No links yet: only you can see this scene.</p>
      ) : (
        <LinkTable links={links} sceneName={sceneName} onRevoke={onRevoke}
          onCopied={(what) => setNotice(`${what} is copied to the clipboard.`)} />
      )}
    </section>
  );
}

/** Makes a link, lasting or expiring after a number of days; says what went wrong through `setError`. */
function ShareForm({ sceneId, onCreated, setError, setNotice }: {
  sceneId: string;
  onCreated: (link: ShareLink) => void;
  setError: (error: string | null) => void;
  setNotice: (notice: string | null) => void;
}): JSX.Element {
  const [days, setDays] = useState("");
  const [creating, setCreating] = useState(false);
  const daysId = useId();
  const hintId = useId();

  async function onCreate(e: Event): Promise<void> {
    e.preventDefault();
    setError(null);
    setNotice(null);
    const text = days.trim();
    const expiresIn = text === "" ? null : Number(text);
    if (expiresIn !== null && (!Number.isInteger(expiresIn) || expiresIn < 1 || expiresIn > MAX_EXPIRY_DAYS)) {
      setError(`Expiry: a whole number of days from 1 to ${MAX_EXPIRY_DAYS}, or empty for a link that lasts.`);
      return;
    }
    setCreating(true);
    try {
      const link = await createShare(sceneId, expiresIn);
      onCreated(link);
      setDays("");
    } catch (err) {
      setError(errorText(err));
    } finally {
      setCreating(false);
    }
  }

  return (
    <form class="share-form" onSubmit={(e) => void onCreate(e)} noValidate>
      <label for={daysId}>Expires after (days, optional)</label>
      <input id={daysId} type="number" inputMode="numeric" min={1} max={MAX_EXPIRY_DAYS} step={1} value={days}
        aria-describedby={hintId} onInput={(e) => setDays(e.currentTarget.value)} disabled={creating} />
      <button type="submit" class="small" disabled={creating}>{creating ? "Creating…" : "Create link"}</button>
      <span id={hintId} class="hint">Empty: the link lasts until revoked.</span>
    </form>
  );
}

function LinkTable({ links, sceneName, onRevoke, onCopied }: {
  links: ShareLink[];
  sceneName: string;
  onRevoke: (link: ShareLink) => Promise<void>;
  onCopied: (what: string) => void;
}): JSX.Element {
  return (
    <table class="share-links">
      <thead>
        <tr>
          <th scope="col">Link</th>
          <th scope="col">Created</th>
          <th scope="col">Expires</th>
          <th scope="col"><span class="visually-hidden">Actions</span></th>
        </tr>
      </thead>
      <tbody>
        {links.map((link) => (
          <LinkRow key={link.token} link={link} sceneName={sceneName} onRevoke={onRevoke} onCopied={onCopied} />
        ))}
      </tbody>
    </table>
  );
}
