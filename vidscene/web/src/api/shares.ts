// Share links: the owner's management of them, and the metadata a token opens without login.

import { enc, sendJson } from "./client";
import type { components } from "./schema";
import type { Metadata } from "./types";

/** `url` is the share page relative to the server ("/s/<token>"); times are ISO 8601. */
export type ShareLink = components["schemas"]["ShareOut"];

export async function createShare(sceneId: string, expiresInDays: number | null): Promise<ShareLink> {
  return sendJson<ShareLink>("POST", `/user/scene/share/${enc(sceneId)}`,
    expiresInDays === null ? {} : { json: { expires_in_days: expiresInDays } });
}

export async function listShares(sceneId: string, signal?: AbortSignal): Promise<ShareLink[]> {
  const body = await sendJson<components["schemas"]["ShareList"]>("GET", `/user/scene/shares/${enc(sceneId)}`, { signal });
  return body.shares;
}

export async function revokeShare(sceneId: string, token: string): Promise<void> {
  await sendJson("DELETE", `/user/scene/share/${enc(sceneId)}/${enc(token)}`);
}

/** A shared scene's metadata (the seed's shape, with its name); 404 for a dead link. Never sends the JWT. */
export async function sharedMetadata(token: string, signal?: AbortSignal): Promise<Metadata> {
  return sendJson<Metadata>("GET", `/public/${enc(token)}/metadata`, { signal, auth: false });
}
