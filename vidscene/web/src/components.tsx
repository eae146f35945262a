import type { ComponentChildren, JSX, TargetedInputEvent } from "preact";
import { useEffect, useId, useRef, useState } from "preact/hooks";

import { ApiError } from "./api/client";

/** Sets the tab title and moves focus to the page heading so screen readers announce the new page. */
export function usePageTitle(title: string): (el: HTMLHeadingElement | null) => void {
  useEffect(() => {
    document.title = `${title} · vidscene`;
  }, [title]);
  return (el) => {
    if (el && document.activeElement === document.body) el.focus({ preventScroll: true });
  };
}

export function PageHeading({ title, children }: { title: string; children?: ComponentChildren }): JSX.Element {
  const focusRef = usePageTitle(title);
  return (
    <div class="page-heading">
      <h1 tabIndex={-1} ref={focusRef}>
        {title}
      </h1>
      {children}
    </div>
  );
}

export function ErrorMessage({ message }: { message: ComponentChildren | null }): JSX.Element | null {
  if (!message) return null;
  return (
    <p class="error" role="alert">
      {message}
    </p>
  );
}

/** What a page shows instead of a part built from the server's options when they could not be loaded. */
export function OptionsUnavailable({ what, error, onRetry }: {
  what: string;
  error: string;
  onRetry: () => void;
}): JSX.Element {
  return (
    <div class="options-unavailable">
      <ErrorMessage message={`Could not load ${what} from the server: ${error}`} />
      <div class="actions">
        <button type="button" class="secondary" onClick={onRetry}>
          Try again
        </button>
      </div>
    </div>
  );
}

export function Notice({ message }: { message: string | null }): JSX.Element {
  return (
    <p class="notice" role="status" aria-live="polite">
      {message ?? ""}
    </p>
  );
}

export function ProgressBar({
  value,
  label,
  text,
  tone,
}: {
  value: number | null; // 0..100, null for indeterminate
  label: string;
  text?: string;
  tone?: "ok" | "bad" | "idle";
}): JSX.Element {
  const id = useId();
  return (
    <div class={`progress ${tone ? `progress-${tone}` : ""}`}>
      <progress id={id} max={100} value={value ?? undefined} aria-label={label}>
        {value === null ? "" : `${Math.round(value)}%`}
      </progress>
      {text !== undefined && (
        <span class="progress-text" aria-hidden="true">
          {text}
        </span>
      )}
    </div>
  );
}

export function TextField(props: {
  label: string;
  name: string;
  value: string;
  onInput: (value: string) => void;
  type?: "text" | "password";
  autoComplete?: string;
  required?: boolean;
  minLength?: number;
  maxLength?: number;
  pattern?: string;
  hint?: string;
  inputMode?: "numeric" | "text";
}): JSX.Element {
  const id = useId();
  const hintId = `${id}-hint`;
  const common = {
    id,
    name: props.name,
    value: props.value,
    autoComplete: props.autoComplete,
    required: props.required,
    minLength: props.minLength,
    maxLength: props.maxLength,
    "aria-describedby": props.hint ? hintId : undefined,
    onInput: (e: TargetedInputEvent<HTMLInputElement>) => props.onInput(e.currentTarget.value),
  };
  return (
    <div class="field">
      <label for={id}>{props.label}</label>
      {props.type === "password" ? (
        <input type="password" {...common} />
      ) : (
        <input type="text" {...common} inputMode={props.inputMode} pattern={props.pattern} />
      )}
      {props.hint && (
        <small id={hintId} class="hint">
          {props.hint}
        </small>
      )}
    </div>
  );
}

/** A modal confirmation built on <dialog>: focus is trapped and Escape cancels, with no custom key code. */
export function ConfirmDialog(props: {
  open: boolean;
  title: string;
  children: ComponentChildren;
  confirmLabel: string;
  busy?: boolean;
  onConfirm: () => void;
  onCancel: () => void;
}): JSX.Element {
  const ref = useRef<HTMLDialogElement>(null);
  const titleId = useId();
  useEffect(() => {
    const dialog = ref.current;
    if (!dialog) return;
    if (props.open && !dialog.open) dialog.showModal();
    if (!props.open && dialog.open) dialog.close();
  }, [props.open]);
  return (
    <dialog
      ref={ref}
      aria-labelledby={titleId}
      onCancel={(e) => {
        e.preventDefault();
        props.onCancel();
      }}
    >
      <h2 id={titleId}>{props.title}</h2>
      <div class="dialog-body">{props.children}</div>
      <div class="actions">
        <button type="button" class="secondary" onClick={props.onCancel} disabled={props.busy}>
          Cancel
        </button>
        <button type="button" class="danger" onClick={props.onConfirm} disabled={props.busy}>
          {props.busy ? "Working…" : props.confirmLabel}
        </button>
      </div>
    </dialog>
  );
}

interface FormErrorState {
  text: string;
  /** When a 429's wait is over (ms since the epoch), or null for any other error. */
  until: number | null;
}

function waitText(seconds: number): string {
  if (seconds < 120) return `${seconds} s`;
  const s = seconds % 60;
  return `${Math.floor(seconds / 60)} min${s ? ` ${s} s` : ""}`;
}

/**
 * A form's error message. A 429 (too many attempts) counts down from the server's `Retry-After` to the
 * moment another try can work, and `waiting` says whether it has not come yet (for disabling the button).
 */
export function useFormError(): {
  message: ComponentChildren | null;
  waiting: boolean;
  set: (error: unknown) => void;
  clear: () => void;
} {
  const [error, setError] = useState<FormErrorState | null>(null);
  const [now, setNow] = useState(() => Date.now());
  useEffect(() => {
    if (error?.until == null) return;
    const until = error.until;
    const timer = window.setInterval(() => {
      const t = Date.now();
      setNow(t);
      if (t >= until) window.clearInterval(timer);
    }, 250);
    return () => window.clearInterval(timer);
  }, [error]);
  const left = error?.until != null ? Math.max(0, Math.ceil((error.until - now) / 1000)) : 0;
  let message: ComponentChildren | null = error?.text ?? null;
  if (error?.until != null) {
    // The count changes every second: only its first reading is announced, not each tick.
    message =
      left > 0 ? (
        <>
          Too many attempts. Try again in <span aria-live="off">{waitText(left)}</span>.
        </>
      ) : (
        "Too many attempts earlier; you can try again now."
      );
  }
  return {
    message,
    waiting: left > 0,
    set(err: unknown): void {
      const retry = err instanceof ApiError && err.status === 429 ? err.retryAfter : null;
      // One clock reading for both: two could differ by a millisecond, and the first tick would then show
      // one second more than the server's Retry-After.
      const t = Date.now();
      setNow(t);
      setError({ text: typeof err === "string" ? err : errorText(err), until: retry === null ? null : t + retry * 1000 });
    },
    clear(): void {
      setError(null);
    },
  };
}

export function errorText(err: unknown): string {
  if (err instanceof Error) return err.message;
  return String(err);
}

export function isAbort(err: unknown): boolean {
  return err instanceof DOMException && err.name === "AbortError";
}
