// Accounts: register, log in, and the changes a logged-in user makes to their own account.

import { ApiError, sendJson } from "./client";
import type { components } from "./schema";

export async function register(username: string, password: string): Promise<void> {
  await sendJson("POST", "/user/account/register", { json: { username, password }, auth: false });
}

export async function login(username: string, password: string): Promise<string> {
  const body = await sendJson<components["schemas"]["TokenOut"]>("POST", "/user/account/login", {
    json: { username, password },
    auth: false,
  });
  if (!body.jwtToken) throw new ApiError(500, "The server did not return a token.");
  return body.jwtToken;
}

export async function updateUsername(password: string, newUsername: string): Promise<void> {
  await sendJson("PATCH", "/user/account/update/username", {
    json: { password, new_username: newUsername },
    passwordChecked: true,
  });
}

export async function updatePassword(oldPassword: string, newPassword: string): Promise<void> {
  await sendJson("PATCH", "/user/account/update/password", {
    json: { old_password: oldPassword, new_password: newPassword },
    passwordChecked: true,
  });
}

export async function deleteAccount(password: string): Promise<void> {
  await sendJson("DELETE", "/user/account/delete", { json: { password }, passwordChecked: true });
}
