import type { JSX } from "preact";
import { useState } from "preact/hooks";

import type { Delivery, Webhook } from "../api/webhooks";
import { webhookDeliveries } from "../api/webhooks";
import { ErrorMessage } from "../components";
import { useLoadedList } from "./listHooks";

/** Date and time to the second: deliveries are retried minutes apart, so the day alone says too little. */
function when(iso: string | null): string {
  if (!iso) return "—";
  const t = Date.parse(iso);
  return Number.isNaN(t) ? "—" : new Date(t).toLocaleString();
}

/** What happened to a delivery, in words: the receiver's answer or why there was none. */
function outcome(d: Delivery): string {
  const answer = d.status_code === null ? (d.last_error ?? "no answer yet") : `HTTP ${d.status_code}`;
  if (d.state === "delivered") return `Delivered (${answer})`;
  if (d.state === "failed") return `Gave up (${answer})`;
  return d.attempts === 0 ? "Pending" : `Retrying (${answer})`;
}

function DeliveryRow({ delivery }: { delivery: Delivery }): JSX.Element {
  return (
    <tr data-delivery-id={delivery.id} data-state={delivery.state}>
      <td data-label="Event">{delivery.event}</td>
      <td data-label="Status">{outcome(delivery)}</td>
      <td data-label="Attempts">{delivery.attempts}</td>
      <td data-label="Time">{when(delivery.delivered_at ?? delivery.created_at)}</td>
    </tr>
  );
}

/** A webhook's latest deliveries (the server keeps the last 100, newest first). */
export function DeliveriesView({ hook }: { hook: Webhook }): JSX.Element {
  const [error, setError] = useState<string | null>(null);
  const [deliveries] = useLoadedList((signal) => webhookDeliveries(hook.id, signal), setError);
  return (
    <div class="webhook-deliveries" role="region" aria-label={`Deliveries of ${hook.url}`}>
      <h3>Latest deliveries</h3>
      <ErrorMessage message={error} />
      {deliveries === null ? (!error && <p class="muted" role="status">Loading…</p>)
        : deliveries.length === 0 ? <p class="muted">No deliveries yet: one is sent when a scene event happens.</p>
        : (
          <table class="share-links deliveries">
            <thead>
              <tr>
                <th scope="col">Event</th>
                <th scope="col">Status</th>
                <th scope="col">Attempts</th>
                <th scope="col">Time</th>
              </tr>
            </thead>
            <tbody>{deliveries.map((d) => <DeliveryRow key={d.id} delivery={d} />)}</tbody>
          </table>
        )}
    </div>
  );
}
