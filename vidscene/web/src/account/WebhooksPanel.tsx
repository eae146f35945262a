import type { JSX } from "preact";
import { useId, useState } from "preact/hooks";

import type { NewWebhook, Webhook, WebhookEvent } from "../api/webhooks";
import { EVENTS, WEBHOOK_URL_MAX, createWebhook, deleteWebhook, listWebhooks } from "../api/webhooks";
import { ConfirmDialog, ErrorMessage, Notice, errorText } from "../components";
import { formatDate } from "../format";
import { Choices } from "./Choices";
import { DeliveriesView } from "./DeliveriesView";
import { useLoadedList, useRemoval } from "./listHooks";
import { OneTimeSecret } from "./OneTimeSecret";

const EVENT_LABELS: Record<string, string> = Object.fromEntries(EVENTS.map((e) => [e.event, e.label]));

/** What the form asks for, checked here with the server's own rules before anything is sent. */
function formProblem(url: string, events: WebhookEvent[]): string | null {
  if (!/^https?:\/\/[^\s/]+/i.test(url)) return "URL: an http:// or https:// address.";
  if (url.length > WEBHOOK_URL_MAX) return `URL: at most ${WEBHOOK_URL_MAX} characters.`;
  if (events.length === 0) return "Events: choose at least one.";
  return null;
}

const EVENT_CHOICES = EVENTS.map((e) => ({ value: e.event, label: e.label, hint: e.hint }));

function WebhookForm({ onCreated }: { onCreated: (hook: NewWebhook) => void }): JSX.Element {
  const [url, setUrl] = useState("");
  const [events, setEvents] = useState<WebhookEvent[]>(["scene.done", "scene.failed"]);
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<string | null>(null);
  const urlId = useId();

  async function onSubmit(e: Event): Promise<void> {
    e.preventDefault();
    setError(null);
    const problem = formProblem(url.trim(), events);
    if (problem) return setError(problem);
    setBusy(true);
    try {
      onCreated(await createWebhook(url.trim(), events));
      setUrl("");
    } catch (err) {
      setError(errorText(err));
    } finally {
      setBusy(false);
    }
  }

  return (
    <form class="token-form webhook-form" onSubmit={(e) => void onSubmit(e)} noValidate>
      <div class="field">
        <label for={urlId}>Webhook URL</label>
        <input id={urlId} type="text" inputMode="url" value={url} maxLength={WEBHOOK_URL_MAX}
          placeholder="https://example.com/hooks"
          onInput={(e) => setUrl(e.currentTarget.value)} disabled={busy} />
      </div>
      <Choices legend="Events" choices={EVENT_CHOICES} chosen={events} disabled={busy} onChange={setEvents} />
      <ErrorMessage message={error} />
      <div class="actions">
        <button type="submit" disabled={busy}>{busy ? "Adding…" : "Add webhook"}</button>
      </div>
    </form>
  );
}

interface RowProps {
  hook: Webhook;
  open: boolean;
  onToggle: (hook: Webhook) => void;
  onDelete: (hook: Webhook) => void;
}

function WebhookRow({ hook, open, onToggle, onDelete }: RowProps): JSX.Element {
  return (
    <tr data-webhook-id={hook.id}>
      <td data-label="URL" class="token-name webhook-url">{hook.url}</td>
      <td data-label="Events">{hook.events.map((e) => EVENT_LABELS[e] ?? e).join(", ")}</td>
      <td data-label="Created">{formatDate(hook.created_at) ?? "—"}</td>
      <td class="share-actions">
        <button type="button" class="secondary small" aria-expanded={open} onClick={() => onToggle(hook)}
          aria-label={`Deliveries of ${hook.url}`}>
          Deliveries
        </button>
        <button type="button" class="danger small" onClick={() => onDelete(hook)}
          aria-label={`Delete webhook ${hook.url}`}>
          Delete
        </button>
      </td>
    </tr>
  );
}

function WebhookTable(props: { hooks: Webhook[]; onDelete: (hook: Webhook) => void }): JSX.Element {
  const [shown, setShown] = useState<Webhook | null>(null);
  const { hooks, onDelete } = props;
  if (hooks.length === 0) return <p class="muted">No webhooks yet.</p>;
  const open = shown && hooks.some((h) => h.id === shown.id) ? shown : null;
  return (
    <>
      <table class="share-links webhooks">
        <thead>
          <tr>
            <th scope="col">URL</th>
            <th scope="col">Events</th>
            <th scope="col">Created</th>
            <th scope="col"><span class="visually-hidden">Actions</span></th>
          </tr>
        </thead>
        <tbody>
          {hooks.map((h) => (
            <WebhookRow key={h.id} hook={h} open={open?.id === h.id} onDelete={onDelete}
              onToggle={(hook) => setShown(open?.id === hook.id ? null : hook)} />
          ))}
        </tbody>
      </table>
      {open && <DeliveriesView key={open.id} hook={open} />}
    </>
  );
}

/**
 * Webhooks: URLs the server POSTs a signed event to when a scene is done, fails, is cancelled or finishes a
 * stage. Adding one shows its signing secret once; each lists its latest deliveries; deleting one stops them.
 */
export function WebhooksPanel(): JSX.Element {
  const [created, setCreated] = useState<NewWebhook | null>(null);
  const [error, setError] = useState<string | null>(null);
  const [notice, setNotice] = useState<string | null>(null);
  const [hooks, setHooks] = useLoadedList(listWebhooks, setError);
  const deleting = useRemoval<Webhook>((h) => deleteWebhook(h.id), (deleted) => {
    setHooks((current) => (current ?? []).filter((h) => h.id !== deleted.id));
    if (created?.id === deleted.id) setCreated(null);
    setNotice(`Webhook ${deleted.url} deleted: nothing more is sent to it.`);
  }, setError);

  function onCreated(hook: NewWebhook): void {
    const { secret: _secret, ...listed } = hook;
    setHooks((current) => [...(current ?? []), listed]);
    setCreated(hook);
    setNotice(null);
  }

  return (
    <section class="card tokens webhooks-panel" aria-labelledby="webhooks-heading">
      <h2 id="webhooks-heading">Webhooks</h2>
      <p class="hint">
        The server POSTs JSON to each URL when a scene changes, signed in the <code>Vidscene-Signature</code> header
        with the webhook's secret (the README shows how to check it).
      </p>
      {created && (
        <OneTimeSecret label="New webhook secret" what="signing secret" secret={created.secret}
          testId="new-webhook-secret" onDone={() => setCreated(null)}>
          Copy the signing secret for <strong>{created.url}</strong> now: it is shown only this once. Your receiver
          uses it to check that a request came from this server.
        </OneTimeSecret>
      )}
      <WebhookForm onCreated={onCreated} />
      <ErrorMessage message={error} />
      <Notice message={notice} />
      {hooks === null ? (!error && <p class="muted" role="status">Loading…</p>)
        : <WebhookTable hooks={hooks} onDelete={deleting.ask} />}
      <ConfirmDialog open={deleting.pending !== null} title="Delete this webhook?" confirmLabel="Delete webhook"
        busy={deleting.busy} onConfirm={() => void deleting.confirm()} onCancel={deleting.cancel}>
        <p>Nothing more will be sent to {deleting.pending?.url}, and its pending deliveries are dropped.</p>
      </ConfirmDialog>
    </section>
  );
}
