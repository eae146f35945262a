// The poll loop every page that follows a scene uses (progress, metrics, the scene list).

import { useEffect } from "preact/hooks";

import { isAbort } from "./components";

/** Runs `tick` now and then every `ms` while the tab is visible; the next tick waits for the last one. */
export function usePolling(tick: (signal: AbortSignal) => Promise<boolean>, ms: number, deps: unknown[]): void {
  useEffect(() => {
    const controller = new AbortController();
    let timer: number | undefined;
    let stopped = false;
    const run = async (): Promise<void> => {
      if (stopped) return;
      if (document.visibilityState === "visible") {
        let keepGoing = true;
        try {
          keepGoing = await tick(controller.signal);
        } catch (err) {
          if (isAbort(err)) return;
        }
        if (!keepGoing || stopped) return;
      }
      timer = window.setTimeout(() => void run(), ms);
    };
    const onVisible = (): void => {
      if (document.visibilityState === "visible" && !stopped) {
        window.clearTimeout(timer);
        void run();
      }
    };
    document.addEventListener("visibilitychange", onVisible);
    void run();
    return () => {
      stopped = true;
      controller.abort();
      window.clearTimeout(timer);
      document.removeEventListener("visibilitychange", onVisible);
    };
  }, deps);
}
