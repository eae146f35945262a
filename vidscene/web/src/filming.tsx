// How to film a video that makes a good scene, in the capture check's own terms (vidscene/pipeline/
// capture_check.py): what it refuses and what it warns about. Shown to visitors on the landing page and
// beside the upload form.

import type { JSX } from "preact";
import { useId } from "preact/hooks";

interface Tip {
  /** The capture check's problem codes this tip avoids (for tests and for whoever changes the check). */
  codes: string;
  title: string;
  why: string;
}

const TIPS: readonly Tip[] = [
  {
    codes: "static_camera object_moved little_coverage",
    title: "Walk slowly around the subject.",
    why: "Don't stand still or only turn on the spot: a tripod or fixed camera is refused, since a 3D scene needs views from many positions.",
  },
  {
    codes: "blur partial_registration",
    title: "Hold the phone steady.",
    why: "Blurred frames make the scene soft, and training longer cannot sharpen them.",
  },
  {
    codes: "moving_content",
    title: "Keep people and pets out of the shot.",
    why: "They are left out of the scene, but what they hid may stay blurred.",
  },
  {
    codes: "dark exposure_changes few_points",
    title: "Film in even light and lock the exposure.",
    why: "Press and hold on the subject to lock it; dark frames or a changing exposure give few details and uneven colours.",
  },
  {
    codes: "cuts",
    title: "Film one continuous take.",
    why: "An edited video with cuts cannot be placed in one scene.",
  },
];

/** The filming advice as a short numbered list under its own heading. */
export function FilmingAdvice({ title = "How to film" }: { title?: string }): JSX.Element {
  const headingId = useId();
  return (
    <section class="filming" aria-labelledby={headingId} data-testid="filming-advice">
      <h2 id={headingId}>{title}</h2>
      <ol class="filming-tips">
        {TIPS.map((tip) => (
          <li key={tip.title} data-codes={tip.codes}>
            <strong>{tip.title}</strong> {tip.why}
          </li>
        ))}
      </ol>
      <p class="muted filming-note">
        After the upload, the capture check shows what it found in the video, frame by frame. When no scene
        can be made from it, processing stops right after the frames are read and says why.
      </p>
    </section>
  );
}
