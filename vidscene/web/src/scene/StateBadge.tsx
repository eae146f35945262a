// "Processing", "Done", "Failed"…: a scene's state as a coloured badge, on its card and on its page.

import type { JSX } from "preact";

import type { SceneState } from "../api/types";
import { STATE_LABELS } from "../format";

export function StateBadge({ state }: { state: SceneState }): JSX.Element {
  return <span class={`badge badge-${state}`}>{STATE_LABELS[state]}</span>;
}
