import type { ComponentChildren, JSX } from "preact";
import { useState } from "preact/hooks";

import { copyText } from "../clipboard";
import { ErrorMessage, Notice, errorText } from "../components";

interface Props {
  /** The region's accessible name, e.g. "New API token". */
  label: string;
  /** What is copied: "token", "signing secret". */
  what: string;
  secret: string;
  testId: string;
  onDone: () => void;
  /** The warning: why it is shown only once and what it allows. */
  children: ComponentChildren;
}

/**
 * A secret the server sends once and keeps only a hash or a key of (an API token, a webhook's signing secret):
 * shown with a copy button and a warning until the user dismisses it, and never again.
 */
export function OneTimeSecret({ label, what, secret, testId, onDone, children }: Props): JSX.Element {
  const [copied, setCopied] = useState<string | null>(null);
  const [error, setError] = useState<string | null>(null);

  async function copy(): Promise<void> {
    setError(null);
    try {
      await copyText(secret);
      setCopied(`The ${what} is copied to the clipboard.`);
    } catch (err) {
      setError(errorText(err));
    }
  }

  return (
    <div class="token-secret" role="region" aria-label={label}>
      <p class="warning">{children}</p>
      <code class="token-value" data-testid={testId}>{secret}</code>
      <div class="actions">
        <button type="button" class="secondary small" onClick={() => void copy()}>Copy {what}</button>
        <button type="button" class="small" onClick={onDone}>I have copied it</button>
      </div>
      <ErrorMessage message={error} />
      <Notice message={copied} />
    </div>
  );
}
