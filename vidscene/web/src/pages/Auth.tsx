import type { JSX } from "preact";
import { useState } from "preact/hooks";

import { login, register } from "../api/accounts";
import type { OptionLimits } from "../api/options";
import { session } from "../api/session";
import { limitsForChecks, useLimits } from "../catalogue";
import { ErrorMessage, PageHeading, TextField, useFormError } from "../components";
import { FilmingAdvice } from "../filming";
import { href } from "../router";
import { passwordError, usernameError } from "../validate";

type Mode = "login" | "register";

/** What the service does, for a visitor who has not logged in yet. */
function Intro(): JSX.Element {
  return (
    <section class="intro" aria-labelledby="intro-heading">
      <h2 id="intro-heading">Turn a phone video into a 3D scene</h2>
      <p>
        Film something by walking around it with your phone, and upload the video. vidscene works out where the
        camera stood for each frame and trains a 3D Gaussian Splatting scene from them.
      </p>
      <p>
        You look around the scene in your browser, share it with a link, and download it as a <code>.splat</code>,
        a <code>.ply</code> or an SPZ file, or as a video along the path you filmed.
      </p>
    </section>
  );
}

/** Why the typed account cannot be sent, or null: the server's limits when they can be had, else its word. */
async function inputProblem(mode: Mode, name: string, password: string, confirm: string): Promise<string | null> {
  if (mode === "login") return !name || !password ? "Enter your username and password." : null;
  const checks = await limitsForChecks();
  return (
    (checks ? (usernameError(name, checks) ?? passwordError(password, checks)) : null) ??
    (password !== confirm ? "The passwords do not match." : null)
  );
}

interface AuthInput {
  username: string;
  password: string;
  confirm: string;
}

function AuthFields({ mode, value, onChange, limits }: {
  mode: Mode;
  value: AuthInput;
  onChange: (next: AuthInput) => void;
  limits: OptionLimits | null;
}): JSX.Element {
  const isRegister = mode === "register";
  return (
    <>
      <TextField label="Username" name="username" value={value.username}
        onInput={(username) => onChange({ ...value, username })} autoComplete="username" required
        minLength={isRegister ? limits?.username_min : undefined} maxLength={limits?.username_max} />
      <TextField label="Password" name="password" type="password" value={value.password}
        onInput={(password) => onChange({ ...value, password })}
        autoComplete={isRegister ? "new-password" : "current-password"} required
        minLength={isRegister ? limits?.password_min : undefined} maxLength={limits?.password_max} />
      {isRegister && (
        <TextField label="Repeat password" name="password2" type="password" value={value.confirm}
          onInput={(confirm) => onChange({ ...value, confirm })} autoComplete="new-password" required />
      )}
    </>
  );
}

function SwitchLink({ mode, next }: { mode: Mode; next: string | undefined }): JSX.Element {
  return (
    <p class="switch">
      {mode === "register" ? (
        <>
          Already have an account? <a href={href({ name: "login", next })}>Log in</a>
        </>
      ) : (
        <>
          New here? <a href={href({ name: "register", next })}>Create an account</a>
        </>
      )}
    </p>
  );
}

/** The log-in or registration form; once the session is set the app opens `next`, or the scene list. */
function AuthCard({ mode, next }: { mode: Mode; next: string | undefined }): JSX.Element {
  const [input, setInput] = useState<AuthInput>({ username: "", password: "", confirm: "" });
  const error = useFormError();
  const [busy, setBusy] = useState(false);
  const [endReason] = useState(() => session.endReason);
  const isRegister = mode === "register";
  const limits = useLimits();

  async function onSubmit(e: Event): Promise<void> {
    e.preventDefault();
    error.clear();
    const name = input.username.trim();
    const problem = await inputProblem(mode, name, input.password, input.confirm);
    if (problem) return error.set(problem);
    setBusy(true);
    try {
      if (isRegister) await register(name, input.password);
      session.set(await login(name, input.password), name);
    } catch (err) {
      error.set(err);
    } finally {
      setBusy(false);
    }
  }

  return (
    <section class="auth card">
      <PageHeading title={isRegister ? "Create an account" : "Log in"} />
      {endReason && !isRegister && <p class="warning" role="alert">{endReason}</p>}
      <form onSubmit={onSubmit} noValidate aria-describedby="auth-intro">
        <p id="auth-intro" class="muted">
          {isRegister
            ? `Pick a username (letters, digits, '_', '.', '-') and a password${
                limits ? ` of at least ${limits.password_min} characters` : ""
              }.`
            : "Log in to upload videos and see your scenes."}
        </p>
        <AuthFields mode={mode} value={input} onChange={setInput} limits={limits} />
        <ErrorMessage message={error.message} />
        <div class="actions">
          <button type="submit" disabled={busy || error.waiting}>
            {busy ? "Please wait…" : isRegister ? "Create account" : "Log in"}
          </button>
        </div>
      </form>
      <SwitchLink mode={mode} next={next} />
    </section>
  );
}

/**
 * Log in or register, beside what vidscene does and how to film for it: the first page a visitor sees.
 * `next` is the page the user was sent here from (a shared link, or the page open when the session ended).
 */
export function AuthPage({ mode, next }: { mode: Mode; next?: string | undefined }): JSX.Element {
  return (
    <div class="landing">
      <Intro />
      <AuthCard mode={mode} next={next} />
      <div class="card landing-filming">
        <FilmingAdvice />
      </div>
    </div>
  );
}
