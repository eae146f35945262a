"""Scene, job and output rows (and their files) as the service leaves them, written straight into a test's
database and data dir, so a test can start from that state without driving the pipeline there."""

from __future__ import annotations

import json
import secrets
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sqlalchemy import select, update
from sqlalchemy.orm import Session, sessionmaker

from tests.support.outputs import make_jpeg
from vidscene.db.models import Job, Output, Scene, User, utcnow
from vidscene.db.session import make_engine, make_sessionmaker, write_session
from vidscene.storage import Storage

if TYPE_CHECKING:
    from tests.support.api_client import Api
    from tests.support.browser import WebServer


@contextmanager
def open_db(url: str) -> Iterator[Session]:
    """A separate connection to the test database, as a worker or an operator would have."""
    engine = make_engine(url)
    try:
        with make_sessionmaker(engine)() as session:
            yield session
    finally:
        engine.dispose()


def files_under(directory: Path) -> list[Path]:
    """Every regular file below ``directory`` (the database files excluded)."""
    if not directory.exists():
        return []
    return sorted(p for p in directory.rglob("*") if p.is_file() and not p.name.startswith(("vidscene.db",
                                                                                            "jwt-secret")))


def add_scene(factory: sessionmaker[Session], scene_id: str = "scene-1", *, username: str = "alice",
              total: int = 10, outputs: list[str] | None = None, mode: str = "gaussian") -> int:
    """Insert a user (if needed), a scene and its queued job; returns the job id."""
    with factory() as session:
        user = session.query(User).filter_by(username=username).one_or_none()
        if user is None:
            user = User(username=username, password_hash="x")
            session.add(user)
            session.flush()
        scene = Scene(id=scene_id, user_id=user.id, name="test", training_mode=mode,
                      output_types=outputs or ["splat_cloud"], save_iterations=[total], total_iterations=total,
                      preset="preview", video_filename="video.mp4", video_info={})
        session.add(scene)
        session.flush()
        job = Job(scene_id=scene.id)
        session.add(job)
        session.commit()
        return job.id


def set_job(db_url: str, scene_id: str, **values: Any) -> None:
    with open_db(db_url) as session:
        session.execute(update(Job).where(Job.scene_id == scene_id).values(**values))
        session.commit()


def add_output(api: Api, db_url: str, scene_id: str, output_type: str, iteration: int, data: bytes,
               *, write_file: bool = True) -> None:
    """What the worker does: publish the file, then record the row."""
    files = Storage(api.settings.data_dir).scene(scene_id)
    path = files.output_path(output_type, iteration)
    if write_file:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
    with open_db(db_url) as session:
        session.add(Output(scene_id=scene_id, output_type=output_type, iteration=iteration,
                           relpath=str(path.relative_to(files.root)), size=len(data)))
        session.commit()


def seed_scene(server: WebServer, username: str, *, name: str, mode: str = "gaussian",
               outputs: dict[str, dict[int, bytes]] | None = None, total_iterations: int = 1000,
               save_iterations: tuple[int, ...] = (500, 1000), state: str = "done", stage: str | None = "export",
               position: int = 0, size: int = 0, eta_seconds: int | None = None, message: str = "",
               thumbnail: bool = True, capture: dict[str, Any] | bool = True) -> str:
    """Insert a scene with its job and outputs the way the job engine leaves them, and write the files.

    ``capture``: the capture check's report (``capture.json``) as given; True writes a good one when the
    scene is past its frames stage, as the engine does; False writes none (a scene older than the check)."""
    outputs = outputs or {}
    storage = Storage(server.data_dir)
    scene_id = secrets.token_urlsafe(16)
    files = storage.scene(scene_id)
    files.create()
    if thumbnail:
        make_jpeg(files.thumbnail)
    past_frames = state == "done" or (state != "queued" and stage not in (None, "frames"))
    if capture is True and past_frames:
        capture = capture_report(sfm=stage != "frames")
    if isinstance(capture, dict):
        write_capture_report(server, scene_id, capture)
    rows: list[tuple[str, int, str, int]] = []
    for output_type, by_iteration in outputs.items():
        for iteration, data in by_iteration.items():
            path = files.output_path(output_type, iteration)
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(data)
            rows.append((output_type, iteration, str(path.relative_to(files.root)), len(data)))
    engine = make_engine(server.database_url)
    try:
        with write_session(make_sessionmaker(engine)) as session:
            user = session.scalars(select(User).where(User.username == username)).one()
            now = utcnow()
            session.add(Scene(id=scene_id, user_id=user.id, name=name, training_mode=mode,
                              output_types=list(outputs) or ["video"], save_iterations=list(save_iterations),
                              total_iterations=total_iterations, preset="preview",
                              video_filename="upload/video.mp4", video_info={}))
            session.flush()
            session.add(Job(scene_id=scene_id, state=state, stage=stage,
                            stage_done="export" if state == "done" else None, current_position=position,
                            current_size=size, eta_seconds=eta_seconds, message=message,
                            error_code=1 if state == "failed" else 0,
                            started_at=None if state == "queued" else now,
                            finished_at=now if state in ("done", "failed", "cancelled") else None))
            for output_type, iteration, relpath, nbytes in rows:
                session.add(Output(scene_id=scene_id, output_type=output_type, iteration=iteration,
                                   relpath=relpath, size=nbytes))
    finally:
        engine.dispose()
    return scene_id


def capture_report(frames: int = 48, fps: float = 8.0, *, sfm: bool = True, blurred: tuple[int, ...] = (),
                   unplaced: tuple[int, ...] = (), moving: dict[int, float] | None = None,
                   problems: list[dict[str, Any]] | None = None, stage: str | None = None) -> dict[str, Any]:
    """A capture check report as ``pipeline.capture_check`` writes it: ``frames`` kept frames every 3rd source
    frame at ``fps``; positions (0-based, in the kept frames) in ``blurred``/``unplaced``/``moving`` mark them."""
    moving = moving or {}
    problems = problems or []
    rows = [{"index": 3 * i, "time_s": round(i / fps, 3), "sharpness": 0.2 if i in blurred else 1.0 + 0.05 * (i % 3),
             "brightness": 120.0, "registered": (i not in unplaced) if sfm else None,
             "moving_fraction": moving.get(i, 0.0)} for i in range(frames)]
    errors = any(p["severity"] == "error" for p in problems)
    return {"verdict": "refused" if errors else "usable" if problems else "good",
            "stage": stage or ("sfm" if sfm else "frames"), "problems": problems, "frames": rows,
            "coverage": {"frames": frames, "duration_s": rows[-1]["time_s"] if rows else 0.0}}


def write_capture_report(server: WebServer, scene_id: str, report: dict[str, Any]) -> None:
    """Where the server reads it (``Storage.scene(id).capture_report``)."""
    Storage(server.data_dir).scene(scene_id).capture_report.write_text(json.dumps(report))


def set_job_progress(server: WebServer, scene_id: str, **values: Any) -> None:
    """Move a seeded job along, as a worker's heartbeat would."""
    engine = make_engine(server.database_url)
    try:
        with write_session(make_sessionmaker(engine)) as session:
            session.execute(update(Job).where(Job.scene_id == scene_id).values(**values))
    finally:
        engine.dispose()
