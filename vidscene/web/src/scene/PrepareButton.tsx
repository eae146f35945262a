// The download cell of an output type the upload did not ask for: "Prepare" has the server make it from the
// trained model, the cell says "Preparing…" while it does (with a way to stop waiting), then the file
// downloads like any other; a failure shows the server's reason, and "Try again" asks it to try once more.

import type { JSX } from "preact";

import { ProgressBar } from "../components";
import type { OutputCache } from "../outputs";
import type { Preparation, PreparedOutput } from "./prepare";
import { usePreparation } from "./prepare";

function PreparationState({ state, label, onCancel }: {
  state: Preparation;
  label: string;
  onCancel: () => void;
}): JSX.Element | null {
  switch (state.phase) {
    case "idle":
      return state.note ? <span class="muted">{state.note}</span> : null;
    case "preparing":
      return (
        <>
          <span role="status" data-preparing={state.made ? "made" : "asked"}>
            Preparing…{" "}
            <span class="muted">
              {state.made ? "Being made from the trained model; it downloads when ready." : "Asking the server."}
            </span>
          </span>
          <button type="button" class="secondary small" onClick={onCancel} aria-label={`Stop waiting for ${label}`}>
            Cancel
          </button>
        </>
      );
    case "downloading":
      return <ProgressBar value={state.percent} label={`Download of ${label}`} text={`${Math.floor(state.percent)}%`} />;
    case "failed":
      return (
        <span class="error-text" role="alert">
          {state.error}
        </span>
      );
    case "done":
      return <ProgressBar value={100} label={`Download of ${label}`} text="100%" tone="ok" />;
  }
}

export function PrepareButton({ target, label: outputText, cache, onMade }: {
  target: PreparedOutput;
  /** The output's label with its extension, as the table shows it. */
  label: string;
  cache: OutputCache;
  /** The file is made and saved: the page reads the metadata again, which now lists it. */
  onMade: () => void;
}): JSX.Element {
  const { state, start, cancel } = usePreparation(target, cache, onMade);
  const label = `${outputText}, iteration ${target.iteration}`;
  const busy = state.phase === "preparing" || state.phase === "downloading";
  return (
    <div class="download">
      {!busy && state.phase !== "done" && (
        <button type="button" class="secondary small" onClick={start}
          aria-label={state.phase === "failed" ? `Try preparing ${label} again` : `Prepare ${label}`}
          data-output={target.type} data-iteration={target.iteration}>
          {state.phase === "failed" ? "Try again" : "Prepare"}
        </button>
      )}
      <PreparationState state={state} label={label} onCancel={cancel} />
    </div>
  );
}
