// The server's catalogue (GET /user/scene/options) as the pages use it: the upload form, its checks and the
// download table are built from the server's answer, so the app has no list of modes, outputs or presets of
// its own and cannot drift from what the server accepts.

import { useEffect, useState } from "preact/hooks";

import type { OptionLimits, OutputTypeOption, PresetOption, SceneOptions, TrainingModeOption } from "./api/options";
import { sceneOptions } from "./api/options";
import { errorText } from "./components";

export type OptionsState =
  | { status: "loading" }
  | { status: "ready"; options: SceneOptions }
  | { status: "error"; error: string; retry: () => void };

// Kept once loaded, so a page opened later renders its form at once instead of flashing a loading state.
let loaded: SceneOptions | null = null;

/** The options for a component; on failure the state carries the reason and a retry that asks again. */
export function useSceneOptions(): OptionsState {
  const [attempt, setAttempt] = useState(0);
  const [state, setState] = useState<OptionsState>(
    loaded ? { status: "ready", options: loaded } : { status: "loading" },
  );
  useEffect(() => {
    const known = loaded; // another page may have loaded them since this one failed
    if (known) {
      setState((current) => (current.status === "ready" ? current : { status: "ready", options: known }));
      return;
    }
    let live = true;
    setState((current) => (current.status === "loading" ? current : { status: "loading" }));
    sceneOptions().then(
      (options) => {
        loaded = options;
        if (live) setState({ status: "ready", options });
      },
      (err: unknown) => {
        if (live) setState({ status: "error", error: errorText(err), retry: () => setAttempt((n) => n + 1) });
      },
    );
    return () => {
      live = false;
    };
  }, [attempt]);
  return state;
}

/** The limits for a check on submit, or null when the options cannot be loaded (the server checks anyway). */
export async function limitsForChecks(): Promise<OptionLimits | null> {
  try {
    loaded = await sceneOptions();
    return loaded.limits;
  } catch {
    return null;
  }
}

/** The limits once loaded, for attributes such as maxLength; null while loading or when they failed. */
export function useLimits(): OptionLimits | null {
  const options = useSceneOptions();
  return options.status === "ready" ? options.options.limits : null;
}

export function modeNamed(options: SceneOptions, name: string): TrainingModeOption | undefined {
  return options.training_modes.find((m) => m.name === name);
}

export function outputNamed(options: SceneOptions, name: string): OutputTypeOption | undefined {
  return options.output_types.find((o) => o.name === name);
}

/** The output's extensions in the given modes; all of its extensions when none of those modes makes it. */
function extensionsIn(output: OutputTypeOption, modes: readonly string[]): string[] {
  const inModes = modes.filter((m) => m in output.extensions).map((m) => output.extensions[m]);
  return [...new Set(inModes.length ? inModes : Object.values(output.extensions))];
}

/** "Checkpoint (.ckpt)": the label with the extension the output has in `modes` ("(.ckpt or .th)" if unsure). */
export function outputLabel(output: OutputTypeOption, modes: readonly string[]): string {
  const extensions = extensionsIn(output, modes);
  return extensions.length ? `${output.label} (${extensions.join(" or ")})` : output.label;
}

/** The extension a file of this output most likely has in `modes` (for a name when the server sends none). */
export function outputExtension(output: OutputTypeOption, modes: readonly string[]): string {
  return extensionsIn(output, modes)[0] ?? "";
}

/**
 * The modes that could have made a scene which asked for these output types. The metadata route does not
 * name a scene's mode, so this is how the download table picks extensions: a scene with a splat cloud is
 * gaussian; one with only a video could be either.
 */
export function modesMaking(options: SceneOptions, types: readonly string[]): string[] {
  return options.training_modes.filter((m) => types.every((t) => m.outputs.includes(t))).map((m) => m.name);
}

export interface PresetValues {
  totalIterations: number;
  saveIterations: number[];
  outputs: string[];
}

/** What a preset fills in for a training mode, or null when the preset has no budget for that mode. */
export function presetValues(preset: PresetOption, mode: string): PresetValues | null {
  const total = preset.iterations[mode];
  if (total === undefined) return null;
  return {
    totalIterations: total,
    saveIterations: preset.save_iterations[mode] ?? [total],
    outputs: preset.outputs[mode] ?? [],
  };
}
