import type { JSX } from "preact";
import { useState } from "preact/hooks";

import { login, register } from "../api/accounts";
import { session } from "../api/session";
import { limitsForChecks, useLimits } from "../catalogue";
import { ErrorMessage, PageHeading, TextField, useFormError } from "../components";
import { href } from "../router";
import { passwordError, usernameError } from "../validate";

/**
 * Log in or register. `next` is the page the user was sent here from (a shared link, or the page open when the
 * session ended); the app opens it once the session is set.
 */
export function AuthPage({ mode, next }: { mode: "login" | "register"; next?: string | undefined }): JSX.Element {
  const [username, setUsername] = useState("");
  const [password, setPassword] = useState("");
  const [confirm, setConfirm] = useState("");
  const error = useFormError();
  const [busy, setBusy] = useState(false);
  const [endReason] = useState(() => session.endReason);
  const isRegister = mode === "register";
  const limits = useLimits();

  async function onSubmit(e: Event): Promise<void> {
    e.preventDefault();
    error.clear();
    const name = username.trim();
    if (isRegister) {
      const checks = await limitsForChecks();
      const problem =
        (checks ? (usernameError(name, checks) ?? passwordError(password, checks)) : null) ??
        (password !== confirm ? "The passwords do not match." : null);
      if (problem) {
        error.set(problem);
        return;
      }
    } else if (!name || !password) {
      error.set("Enter your username and password.");
      return;
    }
    setBusy(true);
    try {
      if (isRegister) await register(name, password);
      const token = await login(name, password);
      session.set(token, name); // the app then opens `next`, or the scene list
    } catch (err) {
      error.set(err);
    } finally {
      setBusy(false);
    }
  }

  return (
    <section class="auth card narrow">
      <PageHeading title={isRegister ? "Create an account" : "Log in"} />
      {endReason && !isRegister && (
        <p class="warning" role="alert">
          {endReason}
        </p>
      )}
      <form onSubmit={onSubmit} noValidate aria-describedby="auth-intro">
        <p id="auth-intro" class="muted">
          {isRegister
            ? `Pick a username (letters, digits, '_', '.', '-') and a password${
                limits ? ` of at least ${limits.password_min} characters` : ""
              }.`
            : "Log in to upload videos and see your scenes."}
        </p>
        <TextField
          label="Username"
          name="username"
          value={username}
          onInput={setUsername}
          autoComplete="username"
          required
          minLength={isRegister ? limits?.username_min : undefined}
          maxLength={limits?.username_max}
        />
        <TextField
          label="Password"
          name="password"
          type="password"
          value={password}
          onInput={setPassword}
          autoComplete={isRegister ? "new-password" : "current-password"}
          required
          minLength={isRegister ? limits?.password_min : undefined}
          maxLength={limits?.password_max}
        />
        {isRegister && (
          <TextField
            label="Repeat password"
            name="password2"
            type="password"
            value={confirm}
            onInput={setConfirm}
            autoComplete="new-password"
            required
          />
        )}
        <ErrorMessage message={error.message} />
        <div class="actions">
          <button type="submit" disabled={busy || error.waiting}>
            {busy ? "Please wait…" : isRegister ? "Create account" : "Log in"}
          </button>
        </div>
      </form>
      <p class="switch">
        {isRegister ? (
          <>
            Already have an account? <a href={href({ name: "login", next })}>Log in</a>
          </>
        ) : (
          <>
            New here? <a href={href({ name: "register", next })}>Create an account</a>
          </>
        )}
      </p>
    </section>
  );
}
