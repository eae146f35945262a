// Named starting points for the upload form. They only fill in the public API's fields (the server has no
// preset field), with budgets matching the server-side presets in vidscene/pipeline/config.py.

import type { OutputType, TrainingMode } from "./api";

export interface Preset {
  id: "preview" | "standard" | "quality";
  label: string;
  hint: string;
  trainingMode: TrainingMode;
  outputTypes: OutputType[];
  totalIterations: number;
  saveIterations: number[];
}

export const PRESETS: Preset[] = [
  {
    id: "preview",
    label: "Quick preview",
    hint: "A few minutes on a CPU; good to check the video works.",
    trainingMode: "gaussian",
    outputTypes: ["splat_cloud", "video"],
    totalIterations: 2000,
    saveIterations: [1000, 2000],
  },
  {
    id: "standard",
    label: "Standard",
    hint: "Sharper result; best with a GPU.",
    trainingMode: "gaussian",
    outputTypes: ["splat_cloud", "point_cloud", "video"],
    totalIterations: 7000,
    saveIterations: [2000, 7000],
  },
  {
    id: "quality",
    label: "High quality",
    hint: "The full training schedule; needs a GPU and time.",
    trainingMode: "gaussian",
    outputTypes: ["splat_cloud", "point_cloud", "video", "model"],
    totalIterations: 30000,
    saveIterations: [7000, 15000, 30000],
  },
];
