// Share links: the owner's management of them, and the metadata a token opens without login.

import { enc, sendJson } from "./client";
import type { Metadata } from "./types";

export interface ShareLink {
  token: string;
  /** The share page, relative to the server ("/s/<token>"). */
  url: string;
  /** ISO 8601. */
  created: string;
  expires: string | null;
}

export async function createShare(sceneId: string, expiresInDays: number | null): Promise<ShareLink> {
  return sendJson<ShareLink>("POST", `/user/scene/share/${enc(sceneId)}`,
    expiresInDays === null ? {} : { json: { expires_in_days: expiresInDays } });
}

export async function listShares(sceneId: string, signal?: AbortSignal): Promise<ShareLink[]> {
  const body = await sendJson<{ shares: ShareLink[] }>("GET", `/user/scene/shares/${enc(sceneId)}`, { signal });
  return body.shares;
}

export async function revokeShare(sceneId: string, token: string): Promise<void> {
  await sendJson("DELETE", `/user/scene/share/${enc(sceneId)}/${enc(token)}`);
}

/** A shared scene's metadata (the seed's shape, with its name); 404 for a dead link. Never sends the JWT. */
export async function sharedMetadata(token: string, signal?: AbortSignal): Promise<Metadata & { name: string }> {
  return sendJson<Metadata & { name: string }>("GET", `/public/${enc(token)}/metadata`, { signal, auth: false });
}
