"""`vidscene status`: queue order, workers seen by heartbeat, stuck and failed jobs, from the database."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import select, update
from typer.testing import CliRunner

from tests.support.scenes import add_scene
from vidscene.cli import app
from vidscene.db.migrate import upgrade
from vidscene.db.models import Job, Stage, User, Webhook, utcnow
from vidscene.db.session import make_engine, make_sessionmaker
from vidscene.jobs import state


def test_status_reports_queue_workers_stuck_and_failed(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    url = f"sqlite:///{tmp_path / 'status.db'}"
    monkeypatch.setenv("VIDSCENE_DATA_DIR", str(tmp_path))
    monkeypatch.setenv("VIDSCENE_DATABASE_URL", url)
    upgrade(url)
    engine = make_engine(url)
    factory = make_sessionmaker(engine)
    running = add_scene(factory, "running-scene")
    add_scene(factory, "queued-scene")
    broken = add_scene(factory, "broken-scene")
    assert state.claim(factory, running, Stage.frames, "host:11", 60, max_attempts=3)
    assert state.claim(factory, broken, Stage.frames, "host:12", 60, max_attempts=3)
    with factory() as session:  # told about failures: the failure below leaves a delivery to send
        owner = session.scalars(select(User.id).where(User.username == "alice")).one()
        session.add(Webhook(id="hook-1", user_id=owner, url="https://1.1.1.1/hook", events=["scene.failed"],
                            secret="whsec_test"))
        session.commit()
    assert state.fail(factory, broken, "host:12", message="The video is too dark.", code=2)
    state.beat_worker(factory, "host:11", "host", 11, ["cpu", "gpu"])
    with factory() as session:  # the worker of "running-scene" died a while ago
        session.execute(update(Job).where(Job.id == running)
                        .values(lease_expires_at=utcnow() - timedelta(seconds=30)))
        session.commit()
    engine.dispose()

    result = CliRunner().invoke(app, ["status"])
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    assert lines[0] == "queue: 2 unfinished job(s)"
    assert "scene=running-scene" in lines[1] and "STUCK" in lines[1]
    assert "scene=queued-scene" in lines[2] and "STUCK" not in lines[2]
    assert "workers: 1 alive" in result.output and "host:11 queues=cpu,gpu alive" in result.output
    assert "scene=broken-scene stage=frames reason=The video is too dark." in result.output
    assert lines[-1].startswith("webhook deliveries: 1 pending, oldest ") and lines[-1].endswith(" s old")
