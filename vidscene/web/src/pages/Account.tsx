import type { JSX } from "preact";
import { useEffect, useState } from "preact/hooks";

import { TokensPanel } from "../account/TokensPanel";
import { UsagePanel } from "../account/UsagePanel";
import { deleteAccount, login, updatePassword, updateUsername } from "../api/accounts";
import { ApiError } from "../api/client";
import { session } from "../api/session";
import { limitsForChecks, useLimits } from "../catalogue";
import { ConfirmDialog, ErrorMessage, Notice, PageHeading, TextField, useFormError } from "../components";
import { navigate } from "../router";
import { passwordError, usernameError } from "../validate";

/**
 * After a change we log in again with the credentials just typed: a password change revokes every older
 * token on the server, so the one in the browser would stop working on the next request.
 */
async function relogin(username: string, password: string): Promise<void> {
  const token = await login(username, password);
  session.set(token, username);
}

function UsernameForm(): JSX.Element {
  const limits = useLimits();
  const [newUsername, setNewUsername] = useState("");
  const [password, setPassword] = useState("");
  const error = useFormError();
  const [notice, setNotice] = useState<string | null>(null);
  const [busy, setBusy] = useState(false);

  async function onSubmit(e: Event): Promise<void> {
    e.preventDefault();
    error.clear();
    setNotice(null);
    const name = newUsername.trim();
    const checks = await limitsForChecks();
    const problem =
      (checks ? usernameError(name, checks) : null) ?? (password ? null : "Enter your current password.");
    if (problem) {
      error.set(problem);
      return;
    }
    setBusy(true);
    try {
      await updateUsername(password, name);
      await relogin(name, password);
      setNewUsername("");
      setPassword("");
      setNotice(`Username changed to ${name}.`);
    } catch (err) {
      error.set(err);
    } finally {
      setBusy(false);
    }
  }

  return (
    <form class="card" onSubmit={onSubmit} noValidate aria-labelledby="username-heading">
      <h2 id="username-heading">Change username</h2>
      <TextField label="New username" name="new_username" value={newUsername} onInput={setNewUsername}
        autoComplete="username" maxLength={limits?.username_max} required />
      <TextField label="Current password" name="password" type="password" value={password} onInput={setPassword}
        autoComplete="current-password" maxLength={limits?.password_max} required />
      <ErrorMessage message={error.message} />
      <Notice message={notice} />
      <div class="actions">
        <button type="submit" disabled={busy || error.waiting}>{busy ? "Saving…" : "Change username"}</button>
      </div>
    </form>
  );
}

function PasswordForm(): JSX.Element {
  const limits = useLimits();
  const [oldPassword, setOldPassword] = useState("");
  const [newPassword, setNewPassword] = useState("");
  const [confirm, setConfirm] = useState("");
  const error = useFormError();
  const [notice, setNotice] = useState<string | null>(null);
  const [busy, setBusy] = useState(false);

  async function onSubmit(e: Event): Promise<void> {
    e.preventDefault();
    error.clear();
    setNotice(null);
    const checks = await limitsForChecks();
    const problem =
      (oldPassword ? null : "Enter your current password.") ??
      (checks ? passwordError(newPassword, checks) : null) ??
      (newPassword !== confirm ? "The new passwords do not match." : null);
    if (problem) {
      error.set(problem);
      return;
    }
    setBusy(true);
    try {
      await updatePassword(oldPassword, newPassword);
      const username = session.username;
      if (username) await relogin(username, newPassword);
      setOldPassword("");
      setNewPassword("");
      setConfirm("");
      setNotice("Password changed.");
    } catch (err) {
      error.set(err);
    } finally {
      setBusy(false);
    }
  }

  return (
    <form class="card" onSubmit={onSubmit} noValidate aria-labelledby="password-heading">
      <h2 id="password-heading">Change password</h2>
      <TextField label="Current password" name="old_password" type="password" value={oldPassword}
        onInput={setOldPassword} autoComplete="current-password" maxLength={limits?.password_max} required />
      <TextField label="New password" name="new_password" type="password" value={newPassword}
        onInput={setNewPassword} autoComplete="new-password" maxLength={limits?.password_max} required
        hint={limits ? `At least ${limits.password_min} characters.` : undefined} />
      <TextField label="Repeat new password" name="new_password2" type="password" value={confirm}
        onInput={setConfirm} autoComplete="new-password" maxLength={limits?.password_max} required />
      <ErrorMessage message={error.message} />
      <Notice message={notice} />
      <div class="actions">
        <button type="submit" disabled={busy || error.waiting}>{busy ? "Saving…" : "Change password"}</button>
      </div>
    </form>
  );
}

/**
 * The password is checked before the confirmation dialog, with a call that changes nothing: logging in again
 * with it (the token that comes back is dropped). The delete call checks it too, but only after "Delete
 * account" is confirmed, so a typo would surface after the user had already said yes to losing everything.
 * (Renaming the account to its own name also checks the password, but with a stale username, renamed on
 * another device, it would rename the account back; a login with a stale name only fails.)
 */
async function passwordIsRight(password: string): Promise<boolean> {
  const username = session.username;
  if (!username) return false;
  try {
    await login(username, password);
    return true;
  } catch (err) {
    if (err instanceof ApiError && err.status === 401) return false;
    throw err;
  }
}

function DeleteForm(): JSX.Element {
  const limits = useLimits();
  const [password, setPassword] = useState("");
  const error = useFormError();
  const [confirming, setConfirming] = useState(false);
  const [checking, setChecking] = useState(false);
  const [busy, setBusy] = useState(false);

  async function onSubmit(e: Event): Promise<void> {
    e.preventDefault();
    error.clear();
    if (!password) {
      error.set("Enter your password to delete the account.");
      return;
    }
    setChecking(true);
    try {
      if (await passwordIsRight(password)) setConfirming(true);
      else error.set("That is not the password of this account; nothing was deleted.");
    } catch (err) {
      error.set(err);
    } finally {
      setChecking(false);
    }
  }

  async function onConfirm(): Promise<void> {
    setBusy(true);
    try {
      await deleteAccount(password);
      setConfirming(false);
      session.clear();
      navigate({ name: "accountDeleted" }, true);
    } catch (err) {
      setConfirming(false);
      error.set(err);
    } finally {
      setBusy(false);
    }
  }

  return (
    <form class="card danger-zone" onSubmit={onSubmit} noValidate aria-labelledby="delete-heading">
      <h2 id="delete-heading">Delete account</h2>
      <p class="muted">This deletes your account and every scene, video and output in it. It cannot be undone.</p>
      <TextField label="Password" name="delete_password" type="password" value={password} onInput={setPassword}
        autoComplete="current-password" maxLength={limits?.password_max} required />
      <ErrorMessage message={error.message} />
      <div class="actions">
        <button type="submit" class="danger" disabled={checking || error.waiting}>
          {checking ? "Checking the password…" : "Delete account…"}
        </button>
      </div>
      <ConfirmDialog
        open={confirming}
        title="Delete your account?"
        confirmLabel="Delete account"
        busy={busy}
        onConfirm={() => void onConfirm()}
        onCancel={() => setConfirming(false)}
      >
        <p>All your scenes and files will be deleted for good.</p>
      </ConfirmDialog>
    </form>
  );
}

/** Where a deleted account lands: says what happened, and offers a fresh start. */
export function AccountDeletedPage(): JSX.Element {
  return (
    <section class="card narrow auth">
      <PageHeading title="Account deleted" />
      <p role="status">Your account and all its scenes, videos and outputs were deleted.</p>
      <p>
        <a href="#/register">Create a new account</a> or <a href="#/login">log in</a> with another one.
      </p>
    </section>
  );
}

function useUsername(): string | null {
  const [username, setUsername] = useState(session.username);
  useEffect(() => session.subscribe(() => setUsername(session.username)), []);
  return username;
}

export function AccountPage(): JSX.Element {
  const username = useUsername();
  return (
    <section class="account">
      <PageHeading title="Account">
        <p class="muted">
          Logged in as <strong data-testid="current-username">{username ?? "?"}</strong>
        </p>
      </PageHeading>
      <UsagePanel />
      <div class="grid-2">
        <UsernameForm />
        <PasswordForm />
      </div>
      <TokensPanel />
      <DeleteForm />
    </section>
  );
}
