// A scene's page: where processing is (or what went wrong), the 3D view and the video at a chosen iteration,
// the quality numbers, the downloads and the share links; renaming and deleting the scene.

import type { JSX } from "preact";
import { useMemo } from "preact/hooks";

import { isFinished, stateOf } from "../api/scenes";
import type { SceneState } from "../api/types";
import { useSceneOptions } from "../catalogue";
import { ConfirmDialog, ErrorMessage, PageHeading } from "../components";
import { problemsByStep, useCaptureReport } from "../scene/capture";
import { CaptureCheck } from "../scene/CaptureCheck";
import { CropPanel } from "../scene/CropPanel";
import { EditBridge } from "../scene/editBridge";
import { Downloads } from "../scene/Downloads";
import { IterationPicker } from "../scene/IterationPicker";
import { MetricsPanel } from "../scene/MetricsPanel";
import type { SceneDeletion } from "../scene/pageState";
import { useFollowedScene, useSceneDeletion } from "../scene/pageState";
import { RenameButton } from "../scene/RenameButton";
import { SceneMedia } from "../scene/SceneMedia";
import { SceneStatus } from "../scene/SceneStatus";
import { SharePanel } from "../scene/SharePanel";
import { StateBadge } from "../scene/StateBadge";

function SceneNotFound(): JSX.Element {
  return (
    <section class="card narrow">
      <PageHeading title="Scene not found" />
      <p>This scene does not exist or was deleted.</p>
      <p>
        <a href="#/">Back to your scenes</a>
      </p>
    </section>
  );
}

function SceneHeading({ id, name, state, onRenamed, onDelete }: {
  id: string;
  name: string | null;
  state: SceneState | null;
  onRenamed: (name: string) => void;
  onDelete: () => void;
}): JSX.Element {
  return (
    <PageHeading title={name ?? "Scene"}>
      <div class="heading-tools">
        {state && <StateBadge state={state} />}
        {name !== null && <RenameButton id={id} name={name} onRenamed={onRenamed} />}
        <button type="button" class="danger small" onClick={onDelete}>
          Delete scene…
        </button>
      </div>
    </PageHeading>
  );
}

function DeleteDialog({ deletion, label, state }: {
  deletion: SceneDeletion;
  label: string;
  state: SceneState | null;
}): JSX.Element {
  return (
    <ConfirmDialog open={deletion.confirming} title="Delete this scene?" confirmLabel="Delete scene"
      busy={deletion.deleting} onConfirm={deletion.confirm} onCancel={deletion.cancel}>
      <p>
        “{label}” and all its files will be deleted for good.
        {state && !isFinished(state) ? " Processing will be stopped." : ""}
      </p>
    </ConfirmDialog>
  );
}

export function ScenePage({ id }: { id: string }): JSX.Element {
  const scene = useFollowedScene(id);
  const deletion = useSceneDeletion(id);
  const options = useSceneOptions();
  const { name, progress, meta, cache } = scene;
  const state = progress ? stateOf(progress) : null;
  const capture = useCaptureReport(id, scene.missing ? null : progress, scene.run);
  // The crop panel and the 3D view share the edit list being worked on.
  const editing = useMemo(() => new EditBridge(), [id]);
  if (scene.missing) return <SceneNotFound />;

  const report = capture.status === "ready" ? capture.report : null;
  // While the scene is made, or when it failed, the capture check says why; on a finished scene it follows
  // the results.
  const captureCheck = state && <CaptureCheck capture={capture} state={state} />;
  return (
    <section class="scene" data-scene-id={id}>
      <p class="crumbs">
        <a href="#/">← All scenes</a>
      </p>
      <SceneHeading id={id} name={name} state={state} onRenamed={scene.renamed} onDelete={deletion.ask} />
      <ErrorMessage message={scene.error} />
      <ErrorMessage message={deletion.error} />
      {progress && state !== "done" && (
        <SceneStatus id={id} name={name} progress={progress} meta={meta} problems={problemsByStep(report)}
          onRetried={scene.followNewRun} />
      )}
      {state !== "done" && captureCheck}
      <IterationPicker iterations={scene.iterations} chosen={scene.chosen} onPick={scene.pick} />
      <SceneMedia sceneId={id} meta={meta} iteration={scene.chosen} cache={cache}
        initialView={meta?.initial_view ?? null} sayWhenEmpty={state === "done"} editing={editing} />
      <MetricsPanel id={id} state={state} />
      {state === "done" && captureCheck}
      {state === "done" && meta?.training_mode === "gaussian" && (
        <CropPanel sceneId={id} onServedChange={scene.followNewRun} editing={editing} />
      )}
      {meta && <Downloads sceneId={id} meta={meta} options={options} cache={cache} state={state}
        onPrepared={scene.refresh} />}
      {meta && <SharePanel sceneId={id} sceneName={name ?? "Scene"} />}
      <DeleteDialog deletion={deletion} label={name ?? id} state={state} />
    </section>
  );
}
