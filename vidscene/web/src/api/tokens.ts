// Personal API tokens: long-lived bearer tokens for scripts, limited to scopes. Only the login token may make,
// list or revoke them (the server answers 403 to an API token on these routes).

import { enc, sendJson } from "./client";
import type { components } from "./schema";

/** What a token may do (the server's vidscene.catalogue.API_SCOPES). */
export const SCOPES = [
  { scope: "scenes:read", label: "Read scenes", hint: "progress, metadata, downloads, history, share links" },
  { scope: "scenes:write", label: "Change scenes", hint: "upload, rename, retry, delete, share" },
] as const;

export type Scope = (typeof SCOPES)[number]["scope"];

/** The server's limits (vidscene/catalogue.py); it refuses anything else with a message naming the field. */
export const TOKEN_NAME_MAX = 100;
export const TOKEN_DAYS_MAX = 3650;

/** Times are ISO 8601; `last_used_at` is right within a minute, null until first used. */
export type ApiToken = components["schemas"]["ApiTokenOut"];
/** A token just made: the only time the server sends its secret. */
export type NewApiToken = components["schemas"]["NewTokenOut"];
type TokenList = components["schemas"]["TokenList"];

export async function listTokens(signal?: AbortSignal): Promise<ApiToken[]> {
  const body = await sendJson<TokenList>("GET", "/user/tokens", { signal });
  return body.tokens;
}

export async function createToken(name: string, scopes: Scope[], expiresInDays: number | null): Promise<NewApiToken> {
  return sendJson<NewApiToken>("POST", "/user/tokens", {
    json: { name, scopes, expires_in_days: expiresInDays },
  });
}

export async function revokeToken(id: string): Promise<void> {
  await sendJson("DELETE", `/user/tokens/${enc(id)}`);
}
