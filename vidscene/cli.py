"""Command line: ``serve``, ``worker``, ``run VIDEO``, ``migrate``, ``status``, and ``remote`` (``vidscene.client``)."""

from __future__ import annotations

import json
import logging
import os
import signal
import subprocess
import sys
import threading
import time
from datetime import datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, cast

import typer

from vidscene import catalogue
from vidscene.client.command import remote
from vidscene.config import Settings
from vidscene.logs import setup_logging
from vidscene.work_env import WORK_ENV, reexec_with_work_env

if TYPE_CHECKING:  # the pipeline and the database load only in the commands that use them
    from sqlalchemy.orm import Session

    from vidscene.pipeline.scene import SceneWork
    from vidscene.storage.local import SceneFiles

app = typer.Typer(add_completion=False, no_args_is_help=True, help="vidscene: turn a video into a 3D scene.")
app.add_typer(remote, name="remote")
log = logging.getLogger("vidscene.cli")

def _reexec_with_work_env() -> None:
    """Restart this command with ``WORK_ENV`` unless it is already set (see ``vidscene.work_env``)."""
    reexec_with_work_env(["-m", "vidscene", *sys.argv[1:]])


def _private_files() -> None:
    """Everything this process writes (frames, outputs, the broker's file) is its owner's alone."""
    os.umask(0o077)


def _parse_csv(value: str) -> list[str]:
    return [v.strip() for v in value.split(",") if v.strip()]


def _check_storage(settings: Settings) -> None:
    """Stop at start, with the reason, when the object store is down or refuses the credentials: better than
    a service that starts and then fails every upload and stage."""
    from vidscene.storage import StoreUnavailableError, open_storage

    try:
        open_storage(settings.data_dir, settings.storage_url).check()
    except (StoreUnavailableError, ValueError) as exc:
        log.error("cannot use the storage %s: %s", settings.storage_url, exc)
        typer.echo(f"vidscene: cannot use the storage {settings.storage_url}: {exc}", err=True)
        raise typer.Exit(2) from exc


@app.command()
def migrate() -> None:
    """Create or upgrade the database schema (also done by ``serve`` on start)."""
    from vidscene.db.migrate import upgrade

    _private_files()
    setup_logging()
    settings = Settings()
    settings.ensure_data_dir()
    upgrade(settings.resolved_database_url)
    typer.echo("database is up to date")


@app.command()
def serve(
    host: Annotated[str | None, typer.Option(help="bind address (VIDSCENE_HOST)")] = None,
    port: Annotated[int | None, typer.Option(help="port (VIDSCENE_PORT)")] = None,
    worker: Annotated[bool | None, typer.Option("--worker/--no-worker",
                                                help="start a local worker (VIDSCENE_EMBEDDED_WORKER)")] = None,
) -> None:
    """Serve the API and the web app; with the embedded defaults also run a local worker."""
    import uvicorn

    from vidscene.api.app import create_app
    from vidscene.db.migrate import upgrade
    from vidscene.db.session import make_engine, make_sessionmaker
    from vidscene.jobs import state
    from vidscene.jobs.celery_app import enqueue_derive, enqueue_stage, make_celery
    from vidscene.jobs.reaper import Reaper

    _private_files()
    setup_logging()
    settings = Settings()
    if host is not None:
        settings.host = host
    if port is not None:
        settings.port = port
    if worker is not None:
        settings.embedded_worker = worker
    settings.ensure_data_dir()
    _check_storage(settings)
    upgrade(settings.resolved_database_url)
    celery = make_celery(settings)
    engine = make_engine(settings.resolved_database_url)
    factory = make_sessionmaker(engine)
    reaper = Reaper(factory, settings, lambda job_id, stage: enqueue_stage(celery, job_id, stage),
                    enqueue_derive=lambda job_id: enqueue_derive(celery, job_id))
    reaper.start()
    embedded = EmbeddedWorker() if settings.embedded_worker else None
    if embedded is not None:
        embedded.start()
    # A new scene waits for its frames; a retried one may wait for training (its poses kept).
    api = create_app(settings, enqueue=lambda job_id: enqueue_stage(celery, job_id,
                                                                    state.pending_stage(factory, job_id)),
                     enqueue_derive=lambda job_id: enqueue_derive(celery, job_id))
    log.info("serving on http://%s:%d (data in %s)", settings.host, settings.port, settings.data_dir)
    try:
        uvicorn.run(api, host=settings.host, port=settings.port, log_config=None, proxy_headers=False)
    finally:
        reaper.stop()
        if embedded is not None:
            embedded.stop()
        engine.dispose()


class EmbeddedWorker(threading.Thread):
    """The local worker of the embedded default, kept alive by ``serve``.

    If the worker process dies (killed, out of memory), it is started again after a short back-off; the
    reaper re-delivers the stage it was running once that stage's lease expires, so the scene resumes.
    """

    RESTART_BACKOFF_S = (1.0, 2.0, 5.0, 10.0, 30.0)

    def __init__(self) -> None:
        super().__init__(name="embedded-worker", daemon=True)
        self.proc: subprocess.Popen[bytes] | None = None
        self._stopping = threading.Event()

    def _spawn(self) -> subprocess.Popen[bytes]:
        cmd = [sys.executable, "-m", "vidscene", "worker", "--parent-pid", str(os.getpid())]
        return subprocess.Popen(cmd, start_new_session=True, env={**WORK_ENV, **os.environ})

    def run(self) -> None:
        failures = 0
        while not self._stopping.is_set():
            log.info("starting embedded worker")
            started = time.monotonic()
            self.proc = self._spawn()
            code = self.proc.wait()
            if self._stopping.is_set():
                return
            # A worker that ran for a while before dying gets restarted at once; one that keeps dying backs off.
            failures = 0 if time.monotonic() - started > 60 else failures + 1
            delay = self.RESTART_BACKOFF_S[min(failures, len(self.RESTART_BACKOFF_S) - 1)]
            log.warning("embedded worker exited with %s; restarting in %.0f s", code, delay)
            if self._stopping.wait(delay):
                return

    def stop(self) -> None:
        self._stopping.set()
        if self.proc is not None:
            _stop_process(self.proc)
        self.join(timeout=5)


def _stop_process(proc: subprocess.Popen[bytes], grace: float = 15.0) -> None:
    """Warm shutdown first (a stage may finish within ``grace``), then the process group is killed; a
    killed stage's lease expires and the reaper re-delivers it."""
    if proc.poll() is not None:
        return
    proc.send_signal(signal.SIGTERM)
    try:
        proc.wait(timeout=grace)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()


@app.command()
def worker(
    queues: Annotated[str, typer.Option("-Q", "--queues", help="queues to consume, comma separated")] = "",
    concurrency: Annotated[int, typer.Option("-c", "--concurrency", help="stages run in parallel")] = 0,
    parent_pid: Annotated[int, typer.Option(hidden=True)] = 0,
) -> None:
    """Run a Celery worker that processes scene stages (and re-delivers jobs of dead workers, sends webhooks)."""
    import socket

    _reexec_with_work_env()

    from vidscene.db.migrate import upgrade
    from vidscene.db.session import make_engine, make_sessionmaker
    from vidscene.jobs.celery_app import enqueue_derive, enqueue_stage, make_celery
    from vidscene.jobs.reaper import Reaper
    from vidscene.jobs.webhooks import WebhookSender

    _private_files()
    setup_logging()
    settings = Settings()
    settings.ensure_data_dir()
    _check_storage(settings)
    if settings.storage_url.startswith("s3:"):  # what workers killed on this machine left (storage.scratch)
        from vidscene.storage.scratch import sweep

        sweep(settings.resolved_scratch_dir)
    if parent_pid == 0:
        upgrade(settings.resolved_database_url)
    qs = _parse_csv(queues) or settings.worker_queues
    celery = make_celery(settings)
    engine = make_engine(settings.resolved_database_url)
    reaper = Reaper(make_sessionmaker(engine), settings, lambda job_id, stage: enqueue_stage(celery, job_id, stage),
                    worker_queues=qs, enqueue_derive=lambda job_id: enqueue_derive(celery, job_id))
    reaper.start()
    webhooks = WebhookSender(make_sessionmaker(engine), settings)  # workers send webhooks; the API never does
    webhooks.start()
    if parent_pid:
        _exit_with_parent(parent_pid)
    if "gpu" in qs and settings.device != "cuda":
        _warm_cpu_kernels()
    argv = ["worker", "-Q", ",".join(qs), "-c", str(concurrency or settings.worker_concurrency),
            "--loglevel", "INFO", "-n", f"vidscene-{os.getpid()}@{socket.gethostname()}"]
    if settings.is_embedded_broker:
        argv += ["--without-gossip", "--without-mingle", "--without-heartbeat"]
    try:
        celery.worker_main(argv)
    finally:
        reaper.stop()
        webhooks.stop()
        engine.dispose()


def _warm_cpu_kernels() -> None:
    """Compile the CPU rasterizer's numba kernels into their on-disk cache before taking work.

    Done in a throw-away process: compiling here would start numba's thread pool in the Celery parent,
    which is not safe to fork, while each forked stage process then loads the cached kernels in a second
    or two instead of compiling for 20-40 s inside a user's job.
    """
    code = "from vidscene.pipeline.gaussian.render import precompile_cpu; print(f'{precompile_cpu():.1f}')"
    try:
        done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=900, check=True)
        log.info("CPU rasterizer kernels ready in %s s", done.stdout.strip())
    except (subprocess.SubprocessError, OSError) as exc:
        log.warning("could not precompile the CPU rasterizer (training will compile it): %s", exc)


ORPHAN_GRACE_S = 3.0


def _exit_with_parent(parent_pid: int) -> None:
    """The embedded worker follows ``serve``: when serve dies (even by SIGKILL) the worker stops at once.

    Not a warm shutdown, which lets the running stage finish: for a training stage that is minutes of work
    for a server that is gone. A cold shutdown (SIGQUIT) first; a pool child busy in native code may not
    notice it, so after a short grace the worker's whole process group (its own session, see
    ``EmbeddedWorker``) is killed. The stage's lease then expires and the next ``serve`` re-delivers it;
    training resumes from its last checkpoint.
    """

    def watch() -> None:
        while True:
            time.sleep(1.0)
            if os.getppid() != parent_pid:
                log.warning("serve process %d is gone; stopping the embedded worker now", parent_pid)
                os.kill(os.getpid(), signal.SIGQUIT)
                time.sleep(ORPHAN_GRACE_S)
                os.killpg(os.getpgrp(), signal.SIGKILL)
                return

    threading.Thread(target=watch, name="parent-watch", daemon=True).start()


@app.command()
def run(
    video: Annotated[Path, typer.Argument(exists=True, dir_okay=False, help="input video")],
    out: Annotated[Path, typer.Option("--out", help="output directory")],
    iterations: Annotated[int | None, typer.Option(help="total training iterations (default: preset's)")] = None,
    save: Annotated[str, typer.Option(help="iterations to save, comma separated")] = "",
    outputs: Annotated[str, typer.Option(help="output types, comma separated (default: all the mode makes)")] = "",
    mode: Annotated[str, typer.Option(help=" or ".join(catalogue.TRAINING_MODES))] = "gaussian",
    preset: Annotated[str, typer.Option(help=", ".join(catalogue.PRESETS))] = catalogue.DEFAULT_PRESET,
    device: Annotated[str, typer.Option(help="auto, cpu or cuda")] = "auto",
) -> None:
    """Run the whole pipeline on one video locally (no server, no database), with a progress bar per stage."""
    _reexec_with_work_env()
    _private_files()
    setup_logging("WARNING")
    work = _scene_work(video, out, iterations=iterations, save=save, outputs=outputs, mode=mode, preset=preset,
                       device=device)
    work.files.create()
    started = time.monotonic()
    written = _run_stages(work)
    typer.echo(f"done in {time.monotonic() - started:.1f} s; outputs:")
    for path in sorted(set(written)):
        typer.echo(f"  {path}  ({path.stat().st_size} bytes)")
    _echo_quality(work.files)


def _scene_work(video: Path, out: Path, *, iterations: int | None, save: str, outputs: str, mode: str, preset: str,
                device: str) -> SceneWork:
    """The scene ``vidscene run`` makes of its options; ``typer.BadParameter`` naming the one that is wrong."""
    from vidscene.pipeline.config import Device
    from vidscene.pipeline.presets import preset_config
    from vidscene.pipeline.scene import SceneWork
    from vidscene.storage.local import SceneFiles

    if mode not in catalogue.TRAINING_MODES:
        raise typer.BadParameter(f"must be one of {', '.join(catalogue.TRAINING_MODES)}", param_hint="--mode")
    if preset not in catalogue.PRESETS:
        raise typer.BadParameter(f"must be one of {', '.join(catalogue.PRESETS)}", param_hint="--preset")
    if device not in ("auto", "cpu", "cuda"):
        raise typer.BadParameter("must be auto, cpu or cuda", param_hint="--device")
    config = preset_config(preset, device=cast(Device, device))
    try:
        return SceneWork.create(scene_id=out.name, video=video.resolve(), files=SceneFiles(out.resolve()),
                                training_mode=mode,
                                output_types=_parse_csv(outputs) or catalogue.TRAINING_MODES[mode].outputs,
                                save_iterations=[int(s) for s in _parse_csv(save)],
                                total_iterations=iterations or config.training(mode).iterations, config=config)
    except ValueError as exc:
        raise typer.BadParameter(str(exc)) from exc


def _run_stages(work: SceneWork) -> list[Path]:
    """Every stage with a progress bar, the capture check's findings as they come; the outputs written.
    Exits with status 2 and the failure's sentence when a stage refuses the video."""
    from tqdm import tqdm

    from vidscene.pipeline.errors import PipelineError
    from vidscene.pipeline.scene import STAGES

    written: list[Path] = []
    for name, stage in STAGES.items():
        t0 = time.monotonic()
        with tqdm(desc=f"{name:>6}", unit="step", dynamic_ncols=True) as bar:
            def progress(position: int, total: int, message: str = "", _bar: tqdm = bar) -> None:
                _bar.total = total
                _bar.n = position
                _bar.set_postfix_str(message[:60], refresh=False)
                _bar.refresh()

            try:
                stage(work, progress, lambda _t, _i, path: written.append(path))
            except PipelineError as exc:
                _echo_capture_check(work.files.read_capture_report(), name)
                typer.echo(f"\nfailed at {name}: {exc}", err=True)
                raise typer.Exit(2) from exc
        typer.echo(f"{name}: {time.monotonic() - t0:.1f} s")
        if name in ("sfm", "train"):  # before training starts, then what training left out
            _echo_capture_check(work.files.read_capture_report(), name, only=("moving_content",) if name == "train"
                                else None)
    return written


def _echo_quality(files: SceneFiles) -> None:
    """Each saved iteration's held-out quality, also written as ``metrics.json`` beside the outputs."""
    quality = files.read_metrics()
    (files.root / "metrics.json").write_text(json.dumps({str(k): v for k, v in quality.items()}, indent=1))
    typer.echo("quality (held-out frames at working resolution):")
    for iteration, q in quality.items():
        count = f", {q['gaussians']} gaussians" if q.get("gaussians") else ""
        typer.echo(f"  iteration {iteration}: PSNR {q['psnr']:.2f} dB, SSIM {q['ssim']:.3f}{count}, "
                   f"{q['seconds']:.0f} s of training, {q['eval_views']} views at "
                   f"{q['resolution'][0]}x{q['resolution'][1]}")


def _echo_capture_check(report: dict[str, Any] | None, stage: str, only: tuple[str, ...] | None = None) -> None:
    """The capture check's verdict and problems (``capture.json`` beside the outputs has the frame timeline);
    ``only`` these codes when the others were printed already."""
    if report is None:
        return
    problems = [p for p in report["problems"] if only is None or p["code"] in only]
    if only is None or problems:
        typer.echo(f"capture check after {stage}: {report['verdict']}")
    for problem in problems:
        typer.echo(f"  {problem['severity']} {problem['code']}: {problem['message']}")


@app.command()
def status() -> None:
    """Print the queue, the workers seen recently, and stuck or failed jobs."""
    from sqlalchemy import select

    from vidscene.db.models import Job, JobState, WorkerBeat, utcnow
    from vidscene.db.session import make_engine, make_sessionmaker

    settings = Settings()
    engine = make_engine(settings.resolved_database_url)
    now = utcnow()
    with make_sessionmaker(engine)() as session:
        active = session.scalars(select(Job).where(Job.state.in_(["queued", "processing"]))
                                 .order_by(Job.created_at, Job.id)).all()
        typer.echo(f"queue: {len(active)} unfinished job(s)")
        for pos, job in enumerate(active):
            stuck = job.lease_owner is not None and job.lease_expires_at is not None and job.lease_expires_at < now
            typer.echo(f"  {pos:3d} scene={job.scene_id} state={job.state} stage={job.stage or '-'} "
                       f"step={job.current_position}/{job.current_size} worker={job.lease_owner or '-'}"
                       + ("  STUCK (lease expired)" if stuck else ""))
        recent = now - timedelta(seconds=3 * settings.reaper_interval_seconds)
        workers = session.scalars(select(WorkerBeat).order_by(WorkerBeat.seen_at.desc())).all()
        typer.echo(f"workers: {sum(w.seen_at >= recent for w in workers)} alive")
        for w in workers:
            alive = "alive" if w.seen_at >= recent else f"last seen {int((now - w.seen_at).total_seconds())} s ago"
            typer.echo(f"  {w.worker_id} queues={w.queues} {alive}")
        failed = session.scalars(select(Job).where(Job.state == JobState.failed.value)
                                 .order_by(Job.finished_at.desc()).limit(20)).all()
        typer.echo(f"failed (latest {len(failed)}):")
        for job in failed:
            typer.echo(f"  scene={job.scene_id} stage={job.stage} reason={job.message}")
        _echo_webhook_backlog(session, now)
    engine.dispose()


def _echo_webhook_backlog(session: Session, now: datetime) -> None:
    """Deliveries still to send: a growing count or an old oldest one means no worker is sending them, or a
    receiver keeps failing (each is retried for 24 h)."""
    from sqlalchemy import func, select

    from vidscene.db.models import DeliveryState, WebhookDelivery

    count, oldest = session.execute(select(func.count(), func.min(WebhookDelivery.created_at))
                                    .where(WebhookDelivery.state == DeliveryState.pending.value)).one()
    age = f", oldest {int((now - oldest).total_seconds())} s old" if count and oldest is not None else ""
    typer.echo(f"webhook deliveries: {count} pending{age}")


def main() -> None:
    app()


if __name__ == "__main__":
    main()
