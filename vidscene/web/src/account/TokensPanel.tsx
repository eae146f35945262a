import type { JSX } from "preact";
import { useId, useState } from "preact/hooks";

import type { ApiToken, NewApiToken, Scope } from "../api/tokens";
import { SCOPES, TOKEN_DAYS_MAX, TOKEN_NAME_MAX, createToken, listTokens, revokeToken } from "../api/tokens";
import { ConfirmDialog, ErrorMessage, Notice, errorText } from "../components";
import { formatDate } from "../format";
import { Choices } from "./Choices";
import { useLoadedList, useRemoval } from "./listHooks";
import { OneTimeSecret } from "./OneTimeSecret";

const SCOPE_LABELS: Record<string, string> = Object.fromEntries(SCOPES.map((s) => [s.scope, s.label]));

/** What the form asks for, checked here with the server's own limits before anything is sent. */
function formProblem(name: string, scopes: Scope[], days: string): string | null {
  if (!name) return "Name: say what the token is for.";
  if (name.length > TOKEN_NAME_MAX) return `Name: at most ${TOKEN_NAME_MAX} characters.`;
  if (scopes.length === 0) return "Access: choose at least one.";
  const n = days === "" ? null : Number(days);
  if (n !== null && (!Number.isInteger(n) || n < 1 || n > TOKEN_DAYS_MAX)) {
    return `Expiry: a whole number of days from 1 to ${TOKEN_DAYS_MAX}, or empty for a token that lasts.`;
  }
  return null;
}

/** The token just made: the server sends its secret this once and keeps only a hash. */
function NewTokenSecret({ token, onDone }: { token: NewApiToken; onDone: () => void }): JSX.Element {
  return (
    <OneTimeSecret label="New API token" what="token" secret={token.token} testId="new-token" onDone={onDone}>
      Copy the token for <strong>{token.name}</strong> now: it is shown only this once. Anyone who has it can use
      your scenes as its access allows, until you revoke it.
    </OneTimeSecret>
  );
}

function TokenRow({ token, onRevoke }: { token: ApiToken; onRevoke: (token: ApiToken) => void }): JSX.Element {
  return (
    <tr data-token-id={token.id}>
      <td data-label="Name" class="token-name">{token.name}</td>
      <td data-label="Access">{token.scopes.map((s) => SCOPE_LABELS[s] ?? s).join(", ")}</td>
      <td data-label="Created">{formatDate(token.created_at) ?? "—"}</td>
      <td data-label="Expires">{token.expires_at ? formatDate(token.expires_at) : "Never"}</td>
      <td data-label="Last used">{token.last_used_at ? formatDate(token.last_used_at) : "Never"}</td>
      <td class="share-actions">
        <button type="button" class="danger small" onClick={() => onRevoke(token)}
          aria-label={`Revoke token ${token.name}`}>
          Revoke
        </button>
      </td>
    </tr>
  );
}

function TokenTable({ tokens, onRevoke }: { tokens: ApiToken[]; onRevoke: (t: ApiToken) => void }): JSX.Element {
  if (tokens.length === 0) return <p class="muted">No API tokens yet.</p>;
  return (
    <table class="share-links api-tokens">
      <thead>
        <tr>
          <th scope="col">Name</th>
          <th scope="col">Access</th>
          <th scope="col">Created</th>
          <th scope="col">Expires</th>
          <th scope="col">Last used</th>
          <th scope="col"><span class="visually-hidden">Actions</span></th>
        </tr>
      </thead>
      <tbody>
        {tokens.map((t) => <TokenRow key={t.id} token={t} onRevoke={onRevoke} />)}
      </tbody>
    </table>
  );
}

const SCOPE_CHOICES = SCOPES.map((s) => ({ value: s.scope, label: s.label, hint: s.hint }));

function TokenForm({ onCreated }: { onCreated: (token: NewApiToken) => void }): JSX.Element {
  const [name, setName] = useState("");
  const [scopes, setScopes] = useState<Scope[]>(["scenes:read"]);
  const [days, setDays] = useState("");
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<string | null>(null);
  const nameId = useId();
  const daysId = useId();

  async function onSubmit(e: Event): Promise<void> {
    e.preventDefault();
    setError(null);
    const problem = formProblem(name.trim(), scopes, days.trim());
    if (problem) {
      setError(problem);
      return;
    }
    setBusy(true);
    try {
      onCreated(await createToken(name.trim(), scopes, days.trim() === "" ? null : Number(days.trim())));
      setName("");
      setDays("");
    } catch (err) {
      setError(errorText(err));
    } finally {
      setBusy(false);
    }
  }

  return (
    <form class="token-form" onSubmit={(e) => void onSubmit(e)} noValidate>
      <div class="field">
        <label for={nameId}>Token name</label>
        <input id={nameId} type="text" value={name} maxLength={TOKEN_NAME_MAX} placeholder="e.g. nightly backup"
          onInput={(e) => setName(e.currentTarget.value)} disabled={busy} />
      </div>
      <Choices legend="Access" choices={SCOPE_CHOICES} chosen={scopes} disabled={busy} onChange={setScopes} />
      <div class="field">
        <label for={daysId}>Expires after (days, optional)</label>
        <input id={daysId} type="number" inputMode="numeric" min={1} max={TOKEN_DAYS_MAX} step={1} value={days}
          onInput={(e) => setDays(e.currentTarget.value)} disabled={busy} />
      </div>
      <ErrorMessage message={error} />
      <div class="actions">
        <button type="submit" disabled={busy}>{busy ? "Creating…" : "Create token"}</button>
      </div>
    </form>
  );
}

/**
 * Personal API tokens: make one for a script (its secret shown once), see when each was last used, revoke one.
 * A token reaches scenes only (never this page's other settings), as far as its access allows.
 */
export function TokensPanel(): JSX.Element {
  const [created, setCreated] = useState<NewApiToken | null>(null);
  const [error, setError] = useState<string | null>(null);
  const [notice, setNotice] = useState<string | null>(null);
  const [tokens, setTokens] = useLoadedList(listTokens, setError);
  const revoking = useRemoval<ApiToken>((t) => revokeToken(t.id), (revoked) => {
    setTokens((current) => (current ?? []).filter((t) => t.id !== revoked.id));
    if (created?.id === revoked.id) setCreated(null);
    setNotice(`Token “${revoked.name}” revoked: it no longer works.`);
  }, setError);

  function onCreated(token: NewApiToken): void {
    const { token: _secret, ...listed } = token;
    setTokens((current) => [...(current ?? []), listed]);
    setCreated(token);
    setNotice(null);
  }

  return (
    <section class="card tokens" aria-labelledby="tokens-heading">
      <h2 id="tokens-heading">API tokens</h2>
      <p class="hint">
        For scripts and other programs: send a token as <code>Authorization: Bearer vst_…</code>. It can read or
        change your scenes as its access allows, never your account, tokens or webhooks.
      </p>
      {created && <NewTokenSecret token={created} onDone={() => setCreated(null)} />}
      <TokenForm onCreated={onCreated} />
      <ErrorMessage message={error} />
      <Notice message={notice} />
      {tokens === null ? (!error && <p class="muted" role="status">Loading…</p>)
        : <TokenTable tokens={tokens} onRevoke={revoking.ask} />}
      <ConfirmDialog open={revoking.pending !== null} title="Revoke this token?" confirmLabel="Revoke token"
        busy={revoking.busy} onConfirm={() => void revoking.confirm()} onCancel={revoking.cancel}>
        <p>Programs using “{revoking.pending?.name}” will be refused from now on.</p>
      </ConfirmDialog>
    </section>
  );
}
