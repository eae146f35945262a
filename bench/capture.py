"""Benchmark: how the pipeline copes with a capture filmed the way people really film.

The same 5 s walk-around of the synthetic textured room (``bench/capture_scenes.py``) is filmed twice: **clean**,
and **disturbed** by what phone videos have: people walking through (in front of the subject and behind it,
covering 10-25% of the frame in about half the frames), auto-exposure and white-balance drift, motion blur on
10% of the frames and sensor noise. Each capture goes through the real pipeline (``vidscene run``, the four
stages in one child process, the mode's default outputs), and the results are compared with the truth:

- **SfM**: the share of kept frames placed; camera position error after the best similarity alignment of the
  centres to the true ones, in % of the path's radius; mean rotation error; focal length error in %;
- **novel views**: ``NOVEL_VIEWS`` clean renders of the room at true poses 11-18 degrees off the path, at the
  frames' working size, against the trained gaussians drawn through SfM's lens from those poses carried into
  the SfM frame. Two alignments: the one similarity fitted to all the camera centres (the one the camera
  errors use), and a local one per view, fitted to the 12 capture cameras nearest it (centres and
  orientations), which SfM's slow drift along the path does not affect (at the capture's own poses the local
  alignment gives the same PSNR as SfM's poses; the global one was 4-7 dB lower). Each render first gets
  the affine colour (3x3 + bias, least squares) that best matches the truth, so that a model's overall
  exposure or white balance does not count, only what it got wrong in space (ghosts, holes, blur);
- **opacity left in the people's path**: the summed (activated) opacity of the gaussians whose centres lie in
  the volume the people swept (carried into the SfM frame by the global similarity; from 30 cm above the
  floor up, so that the floor's own splats are not counted): what the model keeps of the people. Nobody
  walked through the clean capture, so its figure is the noise floor;
- what the product itself reports: the held-out PSNR/SSIM the export stage writes (``metrics/<it>.json``),
  measured on the capture's own held-out frames: the disturbed capture's have the people and the drift in them;
- training time, end-to-end time, stage times, gaussian count, and the child process's peak RSS.

Captures are cached in the work dir (same seed, same videos); runs start from scratch unless ``--reuse-runs``.
The clean capture is the ceiling: engineers' fixes should move the disturbed column towards it.

    python bench/capture.py --work-dir /tmp/capture --json /tmp/capture.json
    python bench/capture.py --work-dir /tmp/capture --size 320x180 --preset preview --preset standard
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import time
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from capture_scenes import (
    Capture,
    NovelView,
    describe,
    make_captures,
    novel_views,
    render_views,
)

from tests.support.crowd import swept_opacity as swept_measure
from tests.support.synthetic import camera_errors
from vidscene.pipeline.cameras import Camera, SceneData
from vidscene.pipeline.poses import Similarity, umeyama
from vidscene.storage.local import SceneFiles
from vidscene.work_env import reexec_with_work_env

REPO = Path(__file__).resolve().parents[1]
F64 = NDArray[np.float64]
U8 = NDArray[np.uint8]

OUTPUTS = ("spz", "splat_cloud", "video")  # the gaussian mode's default outputs (what the web form ticks)
IMAGE_VIEWS = (1, 2, 4, 7)  # novel views saved as pictures: below, above-farther, above, below-nearer
STAGE_LINE = re.compile(r"^(frames|sfm|train|export): ([0-9.]+) s$", re.MULTILINE)
DONE_LINE = re.compile(r"^done in ([0-9.]+) s", re.MULTILINE)
FAILED_LINE = re.compile(r"failed at (\w+): (.+)", re.DOTALL)


@dataclass
class Run:
    """One ``vidscene run`` of a capture at a preset, as the child process reported it."""

    capture: str
    preset: str
    out: str
    exit_code: int
    wall_s: float
    peak_rss_mb: float
    stages: dict[str, float]
    end_to_end_s: float | None
    failure: str | None


def run_pipeline(capture: Capture, preset: str, root: Path, reuse: bool, iterations: int | None) -> Run:
    """``vidscene run`` on the capture in a child process (its own peak RSS), from scratch unless ``reuse``."""
    out = root / f"{capture.name}-{preset}"
    record = root / f"{capture.name}-{preset}.run.json"
    if reuse and record.is_file():
        return Run(**json.loads(record.read_text()))
    shutil.rmtree(out, ignore_errors=True)
    cmd = [sys.executable, "-m", "vidscene", "run", str(capture.video), "--out", str(out), "--preset", preset,
           "--device", "cpu", "--outputs", ",".join(OUTPUTS)] + ([f"--iterations={iterations}"] if iterations else [])
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(p for p in (str(REPO), os.environ.get("PYTHONPATH")) if p)}
    stdout, stderr = root / f"{capture.name}-{preset}.out", root / f"{capture.name}-{preset}.err"
    started = time.monotonic()
    with stdout.open("wb") as so, stderr.open("wb") as se:
        proc = subprocess.Popen(cmd, stdout=so, stderr=se, env=env)
        _, status, usage = os.wait4(proc.pid, 0)
    proc.returncode = os.waitstatus_to_exitcode(status)
    wall = time.monotonic() - started
    text, errors = stdout.read_text(), stderr.read_text(errors="replace")
    done = DONE_LINE.search(text)
    failed = FAILED_LINE.search(errors)
    run = Run(capture=capture.name, preset=preset, out=str(out), exit_code=proc.returncode, wall_s=round(wall, 1),
              peak_rss_mb=round(usage.ru_maxrss / 1024), stages={m[1]: float(m[2]) for m in STAGE_LINE.finditer(text)},
              end_to_end_s=float(done[1]) if done else None,
              failure=f"{failed[1]}: {failed[2].strip()[:300]}" if failed else None)
    if proc.returncode and run.failure is None:
        run.failure = f"exit code {proc.returncode}: {errors.strip()[-300:]}"
    record.write_text(json.dumps(asdict(run), indent=1))
    return run


def frame_truth_names(files: SceneFiles) -> dict[str, str]:
    """Kept frame file name -> the true camera's name (the source frame index), from the capture report."""
    report = files.read_capture_report()
    if report is None or not files.frames_dir.is_dir():
        return {}
    names = sorted(p.name for p in files.frames_dir.iterdir() if p.suffix == ".png")
    return {n: f"{f['index']:05d}" for n, f in zip(names, report["frames"], strict=True)}


LOCAL_CAMERAS = 12  # capture cameras a novel view's local alignment is fitted to


def pose_similarity(pairs: list[tuple[Camera, Camera]]) -> Similarity:
    """The similarity true -> SfM that best maps the true cameras of ``pairs`` (true, SfM) onto SfM's: rotation
    from the orientations (chordal mean), then scale and translation from the centres."""
    U, _, Vt = np.linalg.svd(sum(e.R.T @ t.R for t, e in pairs))
    R = U @ np.diag([1.0, 1.0, float(np.sign(np.linalg.det(U @ Vt)))]) @ Vt
    src, dst = np.array([t.center for t, _ in pairs]), np.array([e.center for _, e in pairs])
    xs, xd = (src - src.mean(axis=0)) @ R.T, dst - dst.mean(axis=0)
    scale = float((xs * xd).sum() / max((xs * xs).sum(), 1e-12))
    return Similarity(scale=scale, R=R, t=dst.mean(axis=0) - scale * (R @ src.mean(axis=0)))


@dataclass
class Alignment:
    """SfM's cameras against the truth: matched (true, SfM) pairs, and the similarity true -> SfM fitted to all
    the centres (Umeyama, as ``camera_errors`` aligns them)."""

    pairs: list[tuple[Camera, Camera]]
    sim: Similarity

    def local(self, centre: F64) -> Similarity:
        """Fitted to the ``LOCAL_CAMERAS`` capture cameras nearest ``centre`` (true frame), orientations too:
        SfM's slow drift along the path (a focal error bends the whole model) then costs a novel view nothing."""
        dist = [float(np.linalg.norm(t.center - centre)) for t, _ in self.pairs]
        return pose_similarity([self.pairs[i] for i in np.argsort(dist)[:LOCAL_CAMERAS]])


def sfm_measures(files: SceneFiles, capture: Capture) -> tuple[dict[str, Any], SceneData | None, Alignment | None]:
    """SfM's placement and errors, the scene, and its alignment to the truth."""
    names = frame_truth_names(files)
    blurred = {f"{i:05d}" for i in capture.blurred}
    out: dict[str, Any] = {"frames_kept": len(names), "blurred_kept": sum(n in blurred for n in names.values())}
    report = files.read_capture_report() or {}
    out["capture_check"] = sorted({p["code"] for p in report.get("problems", [])})
    if not SceneData.exists(files.sfm_dir):
        return {**out, "placed": 0}, None, None
    scene = SceneData.load(files.sfm_dir)
    truth = {c.image_name: c for c in capture.cameras}
    errors = camera_errors(scene.cameras, capture.cameras, name_of=lambda c: names.get(c.image_name, ""))
    pairs = [(truth[names[c.image_name]], c) for c in scene.cameras if names.get(c.image_name) in truth]
    sim = umeyama(np.array([t.center for t, _ in pairs]), np.array([e.center for _, e in pairs]))
    out.update(placed=len(scene.cameras), placed_share=len(scene.cameras) / max(1, len(names)),
               position_err_pct=100.0 * errors.position_rel_mean, rotation_err_deg=errors.rotation_deg_mean,
               focal_err_pct=100.0 * errors.focal_rel, sfm_points=len(scene.points),
               working_size=[scene.cameras[0].width, scene.cameras[0].height])
    return out, scene, Alignment(pairs, sim)


@dataclass
class Model:
    """The final checkpoint's gaussians, activated, ready to render."""

    iteration: int
    means: Any
    quats: Any
    scales: Any
    opacities: Any
    sh: Any
    degree: int

    @classmethod
    def load(cls, files: SceneFiles) -> Model | None:
        from vidscene.pipeline.gaussian.checkpoint_files import CHECKPOINTS
        from vidscene.pipeline.gaussian.model import Gaussians

        saved = CHECKPOINTS.saved(files.train_dir)
        if not saved:
            return None
        iteration = max(saved)
        ckpt = CHECKPOINTS.load(saved[iteration])
        gaussians = Gaussians.from_state(ckpt["params"], "cpu")
        degree = min(int(ckpt.get("active_sh_degree", gaussians.max_sh_degree)), gaussians.max_sh_degree)
        means, quats, scales, opacities, sh = gaussians.activated()
        return cls(iteration, means, quats, scales, opacities, sh, degree)

    def draw(self, camera: Camera) -> F64:
        """The render (H, W, 3) in 0..1, drawn as ``gaussian.method.evaluate`` draws (black background)."""
        import torch

        from vidscene.pipeline.gaussian.render import render

        with torch.no_grad():
            image = render(self.means, self.quats, self.scales, self.opacities, self.sh, camera,
                           sh_degree=self.degree, background=torch.zeros(3)).image
        return np.asarray(image.clamp(0.0, 1.0).cpu().numpy(), dtype=np.float64)


def colour_fit(render: F64, truth: F64) -> F64:
    """``render`` through the affine colour map (3x3 + bias) that best matches ``truth`` in least squares."""
    x = np.concatenate([render.reshape(-1, 3), np.ones((render.shape[0] * render.shape[1], 1))], axis=1)
    m, *_ = np.linalg.lstsq(x, truth.reshape(-1, 3), rcond=None)
    return np.asarray(np.clip(x @ m, 0.0, 1.0).reshape(render.shape), dtype=np.float64)


def image_scores(render: F64, truth: F64) -> tuple[float, float]:
    import torch

    from vidscene.pipeline.images import psnr, ssim

    a, b = torch.from_numpy(render).float(), torch.from_numpy(truth).float()
    return psnr(a, b), ssim(a, b)


def novel_view_measures(model: Model, align: Alignment, views: list[NovelView], truths: list[U8],
                        lens: Camera) -> tuple[dict[str, Any], list[U8]]:
    """Mean PSNR/SSIM after the colour fit over the novel views, with each view's local alignment and with the
    one global similarity (and the raw PSNR, locally aligned); the locally aligned raw renders as 8-bit.

    The views are drawn with SfM's intrinsics (``lens``, the one camera all frames share) at the true poses
    carried into the SfM frame: the model was fitted through that lens, and its focal error is reported apart.
    """
    per_view, renders = [], []
    for view, truth8 in zip(views, truths, strict=True):
        truth = truth8.astype(np.float64) / 255.0
        scores: dict[str, Any] = {"kind": view.kind, "off_path_deg": round(view.off_path_deg, 1)}
        for tag, sim in (("", align.local(view.camera.center)), ("_global", align.sim)):
            pose = sim.apply_camera(view.camera)
            raw = model.draw(replace(lens, R=pose.R, t=pose.t, image_name=view.camera.image_name))
            p, s = image_scores(colour_fit(raw, truth), truth)
            scores.update({f"psnr{tag}": round(p, 2), f"ssim{tag}": round(s, 4),
                           f"psnr_raw{tag}": round(image_scores(raw, truth)[0], 2)})
            if not tag:
                renders.append(np.asarray(np.clip(raw * 255.0 + 0.5, 0, 255), dtype=np.uint8))
        per_view.append(scores)
    keys = ("psnr", "ssim", "psnr_raw", "psnr_global", "ssim_global")
    return {**{f"novel_{k}": float(np.mean([v[k] for v in per_view])) for k in keys},
            "novel_views": per_view}, renders


def swept_opacity(model: Model, sim: Similarity) -> dict[str, Any]:
    """``tests.support.crowd.swept_opacity`` of the model, the true frame carried into SfM's by ``sim``."""
    swept = swept_measure(model.means.detach().cpu().numpy(), model.opacities.detach().cpu().numpy(), sim)
    return {"swept_opacity": swept.opacity, "swept_gaussians": swept.gaussians,
            "swept_opacity_by_walker": swept.by_walker}


def measure_run(run: Run, capture: Capture, views: list[NovelView], seed: int) -> tuple[dict[str, Any], Any]:
    """Everything measured on one finished (or failed) run, and the data the pictures need."""
    files = SceneFiles(Path(run.out))
    row: dict[str, Any] = {**asdict(run)}
    sfm, scene, align = sfm_measures(files, capture)
    row.update(sfm)
    metrics = files.read_metrics()
    if metrics:
        last = metrics[max(metrics)]
        row.update(product_psnr=last["psnr"], product_ssim=last["ssim"], gaussians=last.get("gaussians"),
                   train_s=last["seconds"], iteration=max(metrics))
    model = Model.load(files)
    if scene is None or align is None or model is None:
        return row, None
    width, height = scene.cameras[0].width, scene.cameras[0].height
    truths = render_views(views, width, height, seed)
    novel, renders = novel_view_measures(model, align, views, truths, scene.cameras[0])
    row.update(novel)
    row.update(swept_opacity(model, align.sim))
    return row, (truths, renders)


def fmt(value: Any, spec: str = ".2f", missing: str = "n/a") -> str:
    return missing if value is None else format(value, spec)


TABLE_ROWS: list[tuple[str, Any]] = [
    ("frames placed by SfM", lambda r: f"{r.get('placed', 0)}/{r['frames_kept']} "
                                       f"({fmt(100 * r.get('placed_share', 0), '.0f')}%)"),
    ("camera position error, % of path radius", lambda r: fmt(r.get("position_err_pct"))),
    ("camera rotation error, degrees (mean)", lambda r: fmt(r.get("rotation_err_deg"))),
    ("focal length error, %", lambda r: fmt(r.get("focal_err_pct"))),
    ("novel views PSNR, dB (colour-fitted, local alignment)", lambda r: fmt(r.get("novel_psnr"))),
    ("novel views SSIM (colour-fitted, local alignment)", lambda r: fmt(r.get("novel_ssim"), ".3f")),
    ("novel views PSNR, dB (colour-fitted, one global similarity)", lambda r: fmt(r.get("novel_psnr_global"))),
    ("novel views PSNR, dB (raw colours, local alignment)", lambda r: fmt(r.get("novel_psnr_raw"))),
    ("opacity in the people's swept volume", lambda r: _swept_cell(r)),
    ("product's held-out PSNR, dB", lambda r: fmt(r.get("product_psnr"))),
    ("product's held-out SSIM", lambda r: fmt(r.get("product_ssim"), ".3f")),
    ("training, s", lambda r: fmt(r.get("train_s"), ".0f")),
    ("end to end, s", lambda r: fmt(r.get("end_to_end_s"), ".0f")),
    ("stages frames/sfm/train (with the final export)/export, s",
     lambda r: "/".join(fmt(r["stages"].get(s), ".0f", "-") for s in ("frames", "sfm", "train", "export"))),
    ("gaussians", lambda r: fmt(r.get("gaussians"), ",", "n/a")),
    ("peak RSS (child), MB", lambda r: fmt(r.get("peak_rss_mb"), ".0f")),
    ("blurred frames kept by the frames stage", lambda r: str(r.get("blurred_kept", 0))),
    ("capture check", lambda r: ", ".join(r.get("capture_check", [])) or "ok"),
    ("failure", lambda r: r.get("failure") or "-"),
]


def _swept_cell(row: dict[str, Any]) -> str:
    if row.get("swept_opacity") is None:
        return "n/a"
    cell = f"{row['swept_opacity']:.1f} ({row['swept_gaussians']} gaussians)"
    if row.get("swept_ratio") is not None:
        cell += f", {row['swept_ratio']:.1f}x clean"
    return cell


def table(rows: list[dict[str, Any]]) -> str:
    """A markdown table: one column per capture and preset."""
    head = "| measure | " + " | ".join(f"{r['capture']}, {r['preset']}" for r in rows) + " |"
    lines = [head, "| --- |" + " --- |" * len(rows)]
    lines += [f"| {label} | " + " | ".join(cell(r) for r in rows) + " |" for label, cell in TABLE_ROWS]
    return "\n".join(lines)


def capture_summary(captures: list[Capture]) -> dict[str, Any]:
    disturbed = next(c for c in captures if c.name == "disturbed")
    share = np.array(disturbed.occluded_share)
    return {"frames": len(share), "people_10_25pct_share": float(np.mean((share >= 0.10) & (share <= 0.25))),
            "people_visible_share": float(np.mean(share > 0)), "people_max_share": float(share.max()),
            "people_mean_share": float(share.mean()), "blurred_frames": len(disturbed.blurred)}


def save_pictures(directory: Path, preset: str, views: list[NovelView], pictures: dict[str, Any]) -> list[Path]:
    """One PNG per view in ``IMAGE_VIEWS``: the disturbed model's render, the clean one's, the truth."""
    from PIL import Image, ImageDraw

    if pictures.get("disturbed") is None or pictures.get("clean") is None:
        return []
    directory.mkdir(parents=True, exist_ok=True)
    saved = []
    for k in IMAGE_VIEWS:
        truth = pictures["clean"][0][k]
        panels = [pictures["disturbed"][1][k], pictures["clean"][1][k], truth]
        h, w = truth.shape[:2]
        canvas = Image.new("RGB", (3 * w, h + 16), "white")
        draw = ImageDraw.Draw(canvas)
        for i, (panel, label) in enumerate(zip(panels, ("disturbed capture", "clean capture", "ground truth"),
                                                strict=True)):
            canvas.paste(Image.fromarray(panel), (i * w, 16))
            draw.text((i * w + 4, 2), label, fill="black")
        path = directory / f"{preset}_view{k}.png"
        canvas.save(path, optimize=True)
        saved.append(path)
    return saved


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--preset", action="append", choices=["preview", "standard", "quality"],
                        help="repeatable; default preview")
    parser.add_argument("--size", default="480x270", help="capture size WxH (default 480x270)")
    parser.add_argument("--frames", type=int, default=150, help="frames at 30 fps (default 150: 5 s)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--work-dir", type=Path, default=Path("/tmp/vidscene-capture-bench"))
    parser.add_argument("--json", type=Path, help="write the report here")
    parser.add_argument("--images", type=Path,
                        help="where the side-by-side novel views go (first preset only; default: the work dir's "
                             "images/, so that a run never overwrites the pictures bench/results/ keeps)")
    parser.add_argument("--iterations", type=int, help="training length (default: the preset's); quick checks only")
    parser.add_argument("--reuse-runs", action="store_true", help="measure the last runs again, do not rerun")
    parser.add_argument("--only", choices=["clean", "disturbed"],
                        help="rerun this capture only; the other's last run in the work dir is measured again")
    args = parser.parse_args()
    reexec_with_work_env(sys.argv)
    width, height = (int(v) for v in args.size.lower().split("x"))
    args.work_dir.mkdir(parents=True, exist_ok=True)
    started, load_start = time.monotonic(), [round(x, 2) for x in os.getloadavg()]
    captures = make_captures(args.work_dir, width, height, args.frames, 30, args.seed)
    summary = capture_summary(captures)
    print(f"captures ready in {time.monotonic() - started:.0f} s: {json.dumps(summary)}", flush=True)
    views = novel_views(captures[0].cameras)
    rows, images = [], []
    for n, preset in enumerate(args.preset or ["preview"]):
        pictures: dict[str, Any] = {}
        for capture in captures:
            reuse = args.reuse_runs or (args.only is not None and capture.name != args.only)
            run = run_pipeline(capture, preset, args.work_dir, reuse, args.iterations)
            row, pictures[capture.name] = measure_run(run, capture, views, args.seed)
            row["loadavg_after"] = [round(x, 2) for x in os.getloadavg()]
            rows.append(row)
            print(f"{capture.name} {preset}: {run.end_to_end_s} s, exit {run.exit_code}", flush=True)
        _add_ratio(rows[-len(captures):])
        if n == 0:
            images = save_pictures(args.images or args.work_dir / "images", preset, views, pictures)
    print(table(rows))
    report = {"machine": {"cpus": os.cpu_count(), "loadavg_start": load_start,
                          "loadavg_end": [round(x, 2) for x in os.getloadavg()]},
              "command": " ".join(sys.argv), "capture": summary, "settings": describe(),
              "views": [{"kind": v.kind, "off_path_deg": round(v.off_path_deg, 1)} for v in views],
              "runs": rows, "images": [str(p) for p in images]}
    if args.json:
        args.json.write_text(json.dumps(report, indent=1, default=str))


def _add_ratio(rows: list[dict[str, Any]]) -> None:
    """The disturbed run's swept opacity over the clean one's, at one preset."""
    by = {r["capture"]: r for r in rows}
    clean, disturbed = by.get("clean", {}).get("swept_opacity"), by.get("disturbed", {})
    if clean and disturbed.get("swept_opacity") is not None:
        disturbed["swept_ratio"] = disturbed["swept_opacity"] / clean


if __name__ == "__main__":
    main()
