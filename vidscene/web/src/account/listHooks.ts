// What the account page's lists (API tokens, webhooks) share: loading once with the page, and removing an
// item after the user confirmed it in a dialog.

import type { Dispatch, StateUpdater } from "preact/hooks";
import { useEffect, useState } from "preact/hooks";

import { errorText, isAbort } from "../components";

/** The list ``load`` gives, null until it has answered; a failure goes to ``onError`` (an abort does not). */
export function useLoadedList<T>(load: (signal: AbortSignal) => Promise<T[]>,
  onError: (message: string) => void): [T[] | null, Dispatch<StateUpdater<T[] | null>>] {
  const [items, setItems] = useState<T[] | null>(null);
  useEffect(() => {
    const controller = new AbortController();
    load(controller.signal).then(setItems, (err: unknown) => {
      if (!isAbort(err)) onError(errorText(err));
    });
    return () => controller.abort();
  }, []);
  return [items, setItems];
}

export interface Removal<T> {
  /** The item the confirmation dialog asks about; null while none is open. */
  pending: T | null;
  ask: (item: T) => void;
  cancel: () => void;
  busy: boolean;
  confirm: () => Promise<void>;
}

/** Removing an item once confirmed: ``remove`` on the server, then ``removed`` (or ``onError``) here. */
export function useRemoval<T>(remove: (item: T) => Promise<void>, removed: (item: T) => void,
  onError: (message: string | null) => void): Removal<T> {
  const [pending, setPending] = useState<T | null>(null);
  const [busy, setBusy] = useState(false);

  async function confirm(): Promise<void> {
    if (pending === null) return;
    setBusy(true);
    onError(null);
    try {
      await remove(pending);
      removed(pending);
    } catch (err) {
      onError(errorText(err));
    } finally {
      setBusy(false);
      setPending(null);
    }
  }

  return { pending, ask: setPending, cancel: () => setPending(null), busy, confirm };
}
