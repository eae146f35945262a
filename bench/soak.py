"""Soak benchmark for the job engine (run by hand): N scenes from U users queued at once on the embedded
default (`vidscene serve` with its local worker); reports lost or stuck jobs and throughput.

    .venv/bin/python bench/soak.py --scenes 20 --users 5 --iterations 30 [--keep-logs DIR]

With ``--keep-logs`` the server's log (its embedded worker's output included), the job table and the broker's
message table are copied into DIR after the run, for correlating job ids, stages and times across them.
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tests.support.api_client import ApiClient
from tests.support.cluster import Cluster
from tests.support.videos import make_orbit_video


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--scenes", type=int, default=20)
    parser.add_argument("--users", type=int, default=5)
    parser.add_argument("--iterations", type=int, default=30)
    parser.add_argument("--timeout", type=float, default=3600)
    parser.add_argument("--keep-logs", type=Path, default=None,
                        help="copy the logs and databases here after the run (the temporary dir is removed)")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory(prefix="vidscene-soak-") as tmp:
        tmp_path = Path(tmp)
        video = make_orbit_video(tmp_path / "orbit.mp4", width=160, height=120, n_frames=36, fps=12, seed=3)
        cluster = Cluster.create(tmp_path, extra_env={"VIDSCENE_LEASE_SECONDS": "60",
                                                      "VIDSCENE_HEARTBEAT_SECONDS": "10"})
        try:
            cluster.serve(embedded_worker=True)
            clients = [ApiClient(cluster.base_url, f"soak{u}") for u in range(args.users)]
            started = time.monotonic()
            scenes = [(clients[i % args.users], clients[i % args.users].upload(
                video.path, outputs="splat_cloud,point_cloud", total=args.iterations, name=f"soak {i}"))
                for i in range(args.scenes)]
            upload_s = time.monotonic() - started
            states: dict[str, int] = {}
            finish_times = []
            for client, scene_id in scenes:
                final = client.wait(scene_id, timeout=max(1.0, args.timeout - (time.monotonic() - started)),
                                    cluster=cluster)
                states[final["state"]] = states.get(final["state"], 0) + 1
                finish_times.append(time.monotonic() - started)
            total = time.monotonic() - started
            lost = sum(1 for c, s in scenes if c.http.get(f"/user/scene/progress/{s}").status_code != 200)
            print(f"scenes={args.scenes} users={args.users} iterations={args.iterations}")
            print(f"upload all: {upload_s:.1f} s; all finished after {total:.1f} s "
                  f"({total / args.scenes:.1f} s per scene)")
            print(f"final states: {states}; lost={lost}; stuck={args.scenes - sum(states.values())}")
            # Observed in upload order, so a scene's time is when it and every older scene were done.
            print(f"scenes done (upload order) after: first {finish_times[0]:.1f} s, "
                  f"median {statistics.median(finish_times):.1f} s, last {finish_times[-1]:.1f} s")
        finally:
            cluster.stop()
            if args.keep_logs is not None:
                keep(tmp_path, args.keep_logs)


def keep(tmp: Path, dest: Path) -> None:
    """Copy the process logs and the two SQLite files (jobs, broker messages) for a post-mortem."""
    dest.mkdir(parents=True, exist_ok=True)
    for path in [*tmp.glob("*.log"), *(tmp / "data").glob("*.db*")]:
        shutil.copy2(path, dest / path.name)
    print(f"logs and databases kept in {dest}")


if __name__ == "__main__":
    main()
