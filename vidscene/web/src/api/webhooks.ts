// Webhooks: URLs the server POSTs a signed JSON event to when one of the user's scenes changes (sent by the
// workers). Only the login token may manage them (the server answers 403 to an API token on these routes).

import { enc, sendJson } from "./client";
import type { components } from "./schema";

type Schemas = components["schemas"];

/** Times are ISO 8601. */
export type Webhook = Schemas["WebhookOut"];
/** A webhook just made: the only time the server sends its signing secret (`whsec_...`). */
export type NewWebhook = Schemas["NewWebhookOut"];
/** One event sent (or being retried) to a webhook: `state` pending, delivered or failed after 24 h. */
export type Delivery = Schemas["DeliveryOut"];
export type WebhookEvent = Webhook["events"][number];

/** What each event means (the server's vidscene.catalogue.WEBHOOK_EVENTS), in the order the form shows them. */
export const EVENTS: readonly { event: WebhookEvent; label: string; hint: string }[] = [
  { event: "scene.done", label: "Scene done", hint: "every output is ready" },
  { event: "scene.failed", label: "Scene failed", hint: "processing stopped with a reason" },
  { event: "scene.cancelled", label: "Scene cancelled", hint: "an unfinished scene was deleted" },
  { event: "scene.stage", label: "Stage finished", hint: "frames, camera poses, training, export" },
];

/** The server's limits (vidscene/webhook_targets.py, docs/api.md); it refuses anything else with a message. */
export const WEBHOOK_URL_MAX = 2000;
export const WEBHOOKS_MAX = 10;

export async function listWebhooks(signal?: AbortSignal): Promise<Webhook[]> {
  const body = await sendJson<Schemas["WebhookList"]>("GET", "/user/webhooks", { signal });
  return body.webhooks;
}

export async function createWebhook(url: string, events: WebhookEvent[]): Promise<NewWebhook> {
  return sendJson<NewWebhook>("POST", "/user/webhooks", { json: { url, events } });
}

export async function deleteWebhook(id: string): Promise<void> {
  await sendJson("DELETE", `/user/webhooks/${enc(id)}`);
}

/** The last 100 deliveries, newest first. */
export async function webhookDeliveries(id: string, signal?: AbortSignal): Promise<Delivery[]> {
  const body = await sendJson<Schemas["DeliveryList"]>("GET", `/user/webhooks/${enc(id)}/deliveries`, { signal });
  return body.deliveries;
}
