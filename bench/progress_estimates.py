"""What the time estimates cost the progress route (issue 14.1 / 12.4): wall time per request through the app
and CPU time of ``service.progress`` alone, for a scene being trained and for a queued scene with 50 ahead.

Runs in-process on SQLite (``TestClient``), on whichever checkout it is started from, so the same command in
two checkouts compares before and after (main has no estimates: its ``starts_in`` reads None):

    .venv/bin/python bench/progress_estimates.py [--requests 300] [--calls 2000]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from sqlalchemy import update

from tests.support.api_client import Api, TestClient, make_settings
from tests.support.scenes import open_db
from tests.support.videos import encode_video
from vidscene.api import create_app
from vidscene.api.scenes import service
from vidscene.db.migrate import upgrade
from vidscene.db.models import Job, WorkerBeat, utcnow
from vidscene.db.session import read_connection

QUEUED_AHEAD = 50


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=300, help="HTTP requests per case")
    parser.add_argument("--calls", type=int, default=2000, help="direct service.progress calls per case")
    args = parser.parse_args()

    tmp = Path(tempfile.mkdtemp(prefix="vidscene-bench-progress-"))
    url = f"sqlite:///{tmp / 'db.sqlite'}"
    upgrade(url)
    settings = make_settings(tmp / "data", url)
    app = create_app(settings, enqueue=lambda job_id: None)
    with TestClient(app) as client:
        api = Api(client=client, app=app, settings=settings)
        _, auth = api.user()
        video = encode_video(tmp / "clip.mp4").read_bytes()
        ids = [api.scene_id(auth, video) for _ in range(QUEUED_AHEAD + 1)]
        with open_db(url) as session:  # the oldest is training on the one live worker
            session.execute(update(Job).where(Job.scene_id == ids[0]).values(
                state="processing", stage="train", stage_done="sfm", lease_owner="w", current_position=10,
                current_size=1500, eta_seconds=30, started_at=utcnow(), stage_started_at=utcnow()))
            session.add(WorkerBeat(worker_id="w", hostname="h", pid=1, queues="cpu,gpu", seen_at=utcnow()))
            session.commit()
        cases = (("training (first in queue)", ids[0]), (f"queued, {QUEUED_AHEAD} ahead", ids[-1]))
        for label, scene_id in cases:
            for _ in range(30):
                client.get(f"/user/scene/progress/{scene_id}", headers=auth)
            times = []
            for _ in range(args.requests):
                start = time.perf_counter()
                resp = client.get(f"/user/scene/progress/{scene_id}", headers=auth)
                times.append((time.perf_counter() - start) * 1000)
                assert resp.status_code == 200
            times.sort()
            body = resp.json()
            print(f"{label}: HTTP median {statistics.median(times):.2f} ms, p99 {times[int(0.99 * len(times))]:.2f}"
                  f" ms (eta_seconds={body.get('eta_seconds')}, starts_in_seconds={body.get('starts_in_seconds')})")

        context = app.state.context
        claims = context.tokens.decode(auth["Authorization"].split()[1])
        for label, scene_id in cases:
            with read_connection(context.engine) as conn:
                for _ in range(50):
                    service.progress(conn, claims, scene_id)
                start_cpu = time.process_time()
                for _ in range(args.calls):
                    conn.rollback()
                    service.progress(conn, claims, scene_id)
                cpu_ms = (time.process_time() - start_cpu) / args.calls * 1000
            print(f"{label}: service.progress {cpu_ms:.3f} ms CPU per call")


if __name__ == "__main__":
    main()
