"""Benchmark: what an edit costs the person who clicks "Save", and what a mesh asked for after the fact costs.

Starts a real ``vidscene serve --worker`` (the embedded defaults: SQLite, local files, the local broker, its
own worker), registers, uploads the clean synthetic capture of ``bench/capture_scenes.py`` (generated in the
work dir unless ``--video`` names one) asking for every gaussian output type but the mesh, and waits for it to
finish at the preset. Then, through the API only, as the web app does:

1. ``PUT`` a ``keep_inside`` box that keeps about half of the gaussians (the middle half along x of the
   ``.splat``'s positions), poll ``GET /user/scene/edits/:id`` until it reads ``ready``, and check that every
   download of every type at every iteration (but the ``model`` checkpoint, which an edit leaves alone) now
   has a different size than before: the seconds to ``ready`` and to all downloads checked;
2. ``DELETE`` it (revert) and check that every download has its original size again;
3. ask for ``mesh`` (``GET`` of the output route: 202 while a worker makes it, then 200): its seconds.

The derive job logs no time per type, but the export logs each file it writes: the seconds after ``Save`` (and
after the file before) come from those lines of the server's log. Prints one JSON object per measurement.

    python bench/edit_latency.py --work-dir /tmp/vidscene-edit-bench
    python bench/edit_latency.py --video /tmp/cap/clean_480x270_150_30_s0_v2.mp4 --preset preview
"""

from __future__ import annotations

import argparse
import json
import os
import re
import sys
import time
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import Any

import httpx
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.capture_scenes import X264_OPTIONS
from tests.support.cluster import Cluster
from tests.support.crowd import Filming, capture_cameras
from tests.support.videos import encode_frames
from vidscene import catalogue

# Every file type a gaussian scene makes at upload; ``mesh`` is asked for after the fact (step 3).
OUTPUTS = ("spz", "sog", "gltf", "splat_cloud", "point_cloud", "compressed_ply", "video", "model")
UNEDITED = {"model"}  # served as the original while an edit is (vidscene.edits.UNEDITED)
Sizes = dict[tuple[str, str], int]


def clean_capture(root: Path, width: int, height: int, frames: int) -> Path:
    """The clean capture of ``bench/capture_scenes.py`` (same name and bytes), made once in ``root``."""
    video = root / f"clean_{width}x{height}_{frames}_30_s0_v2.mp4"
    if not video.is_file():
        filming = Filming("clean", capture_cameras(frames, width, height), 30, 0)
        encode_frames(video, filming.frame, frames, width, height, fps=30, codec="libx264",
                      codec_options=X264_OPTIONS)
    return video


def poll(check: Callable[[], Any], what: str, timeout: float, interval: float = 0.25) -> Any:
    """Call ``check`` until it answers something true (the web app polls at about this pace)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = check()
        if found:
            return found
        time.sleep(interval)
    raise RuntimeError(f"{what}: not after {timeout:.0f} s")


def upload(http: httpx.Client, video: Path, preset: str) -> str:
    chosen = catalogue.PRESETS[preset]
    total, save = chosen.iterations["gaussian"], chosen.save_iterations("gaussian")
    with video.open("rb") as f:
        r = http.post("/user/scene/new", files={"file": (video.name, f, "video/mp4")},
                      data={"training_mode": "gaussian", "output_types": ",".join(OUTPUTS), "preset": preset,
                            "total_iterations": str(total), "save_iterations": ",".join(map(str, save)),
                            "scene_name": f"edit bench {preset}"})
    if r.status_code != 202:
        raise RuntimeError(f"upload answered {r.status_code}: {r.text}")
    return str(r.json()["id"])


def served_sizes(http: httpx.Client, scene: str, types: set[str] | None = None) -> Sizes:
    """The size each download serves now, from the ``Content-Range`` of a one-byte range request (what a
    client reassembling chunks relies on), for every type and iteration the metadata lists."""
    resources = http.get(f"/user/scene/metadata/{scene}").json()["resources"]
    sizes: Sizes = {}
    for output_type, iterations in resources.items():
        if types is not None and output_type not in types:
            continue
        for iteration, entry in iterations.items():
            if not entry["exists"]:
                continue
            r = http.get(f"/user/scene/output/{output_type}/{scene}", params={"iteration": iteration},
                         headers={"Range": "bytes=0-0"})
            if r.status_code != 206:
                raise RuntimeError(f"{output_type}@{iteration} answered {r.status_code}: {r.text[:200]}")
            sizes[(output_type, iteration)] = int(r.headers["content-range"].rsplit("/", 1)[1])
    return sizes


def half_box(http: httpx.Client, scene: str) -> dict[str, Any]:
    """A box keeping the middle half of the gaussians along x and everything along y and z."""
    raw = http.get(f"/user/scene/output/splat_cloud/{scene}").content
    xyz = np.frombuffer(raw, dtype=np.float32).reshape(-1, 8)[:, :3].astype(np.float64)
    low, high = np.quantile(xyz[:, 0], [0.25, 0.75])
    span = xyz.max(axis=0) - xyz.min(axis=0)
    centre = [float((low + high) / 2), *map(float, (xyz.max(axis=0) + xyz.min(axis=0))[1:] / 2)]
    half = [float((high - low) / 2), *map(float, span[1:] / 2 + 1.0)]
    return {"op": "keep_inside", "shape": "box", "center": centre, "half_size": half}


WROTE = re.compile(r"^(\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3}) INFO vidscene\.pipeline\.gaussian\.outputs: "
                   r"wrote output \[.*checkpoint=(\d+)\.ckpt .*output=(\w+) ")


def files_written(log: Path, since: float) -> list[dict[str, Any]]:
    """Each output file the worker wrote after ``since`` (wall clock), from its ``wrote output`` log lines
    (the server logs in local time): seconds after ``since`` and after the previous file. The export writes
    one iteration's types one after the other, so the gap before a file is about what that type cost (the
    first of an iteration also pays for loading and filtering its checkpoint)."""
    rows: list[dict[str, Any]] = []
    previous = since
    for line in log.read_text(errors="replace").splitlines():
        match = WROTE.match(line)
        if match is None:
            continue
        at = datetime.strptime(match[1], "%Y-%m-%d %H:%M:%S,%f").timestamp()
        if at < since:
            continue
        rows.append({"file": f"{match[3]}@{match[2]}", "s_after": round(at - since, 1),
                     "s_since_previous": round(at - previous, 1)})
        previous = at
    return rows


def edit(http: httpx.Client, scene: str, log: Path, before: Sizes, timeout: float) -> dict[str, Any]:
    """PUT the half box; seconds until the edit reads ready and until every download serves a new size."""
    box = half_box(http, scene)
    wall, started = time.time(), time.monotonic()
    put = http.put(f"/user/scene/edits/{scene}", json={"operations": [box]})
    if put.status_code != 202:
        raise RuntimeError(f"PUT answered {put.status_code}: {put.text}")
    answered = time.monotonic() - started

    def ready() -> dict[str, Any] | None:
        body: dict[str, Any] = http.get(f"/user/scene/edits/{scene}").json()
        if body["state"] == "failed":
            raise RuntimeError(f"the edit failed: {body['message']}")
        return body if body["state"] == "ready" else None

    state = poll(ready, "edit ready", timeout)
    ready_s = time.monotonic() - started
    edited = (set(before) - {k for k in before if k[0] in UNEDITED})
    after = served_sizes(http, scene)
    unchanged = sorted(f"{t}@{i}" for t, i in edited if after.get((t, i)) == before[(t, i)])
    if unchanged:
        raise RuntimeError(f"still the original size after the edit read ready: {unchanged}")
    return {"step": "edit (PUT)", "put_answered_s": round(answered, 2), "ready_s": round(ready_s, 1),
            "downloads_checked_s": round(time.monotonic() - started, 1), "kept": state["kept"],
            "total": state["total"], "downloads": len(edited),
            "bytes_before_after": {f"{t}@{i}": [before[(t, i)], after[(t, i)]] for t, i in sorted(edited)},
            "files_written": files_written(log, wall)}


def revert(http: httpx.Client, scene: str, before: Sizes) -> dict[str, Any]:
    """DELETE the edit; seconds until every download serves its original size again."""
    started = time.monotonic()
    r = http.delete(f"/user/scene/edits/{scene}")
    if r.status_code != 200:
        raise RuntimeError(f"DELETE answered {r.status_code}: {r.text}")
    answered = time.monotonic() - started
    after = poll(lambda: (s := served_sizes(http, scene)) == before and s, "revert served", 120)
    return {"step": "revert (DELETE)", "delete_answered_s": round(answered, 2),
            "downloads_checked_s": round(time.monotonic() - started, 1), "downloads": len(after)}


def mesh(http: httpx.Client, scene: str, log: Path, timeout: float) -> dict[str, Any]:
    """Ask for the mesh after the fact: 202 until a worker made it at every kept iteration, then 200."""
    wall, started = time.time(), time.monotonic()
    first = http.get(f"/user/scene/output/mesh/{scene}")
    if first.status_code != 202:
        raise RuntimeError(f"the first mesh GET answered {first.status_code}: {first.text[:200]}")

    def served() -> httpx.Response | None:
        r = http.get(f"/user/scene/output/mesh/{scene}", headers={"Range": "bytes=0-0"})
        if r.status_code not in (202, 206):
            raise RuntimeError(f"mesh answered {r.status_code}: {r.text[:200]}")
        return r if r.status_code == 206 else None

    poll(served, "mesh", timeout, interval=1.0)
    seconds = time.monotonic() - started
    sizes = served_sizes(http, scene, {"mesh"})
    return {"step": "mesh after the fact", "seconds": round(seconds, 1),
            "bytes": {f"{t}@{i}": size for (t, i), size in sorted(sizes.items())},
            "files_written": files_written(log, wall)}


def run(args: argparse.Namespace) -> list[dict[str, Any]]:
    work = args.work_dir
    work.mkdir(parents=True, exist_ok=True)
    video = args.video or clean_capture(work, 480, 270, 150)
    cluster = Cluster.create(work / "run", extra_env={"VIDSCENE_LEASE_SECONDS": "60",
                                                      "VIDSCENE_HEARTBEAT_SECONDS": "10"})
    cluster.data_dir.parent.mkdir(parents=True, exist_ok=True)
    rows: list[dict[str, Any]] = []
    try:
        log = cluster.serve(embedded_worker=True).log_path
        http = httpx.Client(base_url=cluster.base_url, timeout=120)
        http.post("/user/account/register", json={"username": "editbench", "password": "bench-password-1"})
        login = http.post("/user/account/login", json={"username": "editbench", "password": "bench-password-1"})
        http.headers["Authorization"] = f"Bearer {login.json()['jwtToken']}"
        started = time.monotonic()
        scene = upload(http, video, args.preset)
        done = poll(lambda: (p := http.get(f"/user/scene/progress/{scene}").json())["state"]
                    in ("done", "failed", "cancelled") and p, "processing", args.timeout, interval=1.0)
        if done["state"] != "done":
            raise RuntimeError(f"the scene ended {done['state']}: {done}")
        rows.append({"step": f"upload to done ({args.preset})", "seconds": round(time.monotonic() - started, 1),
                     "video": str(video)})
        before = served_sizes(http, scene)
        rows.append(edit(http, scene, log, before, args.timeout))
        rows.append(revert(http, scene, before))
        rows.append(mesh(http, scene, log, args.timeout))
    except Exception:
        print(cluster.logs()[-6000:], file=sys.stderr)
        raise
    finally:
        cluster.stop()
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--work-dir", type=Path, default=Path("/tmp/vidscene-edit-bench"))
    parser.add_argument("--video", type=Path, help="default: the clean 480x270 capture, made in the work dir")
    parser.add_argument("--preset", default="preview", choices=["preview", "standard", "quality"])
    parser.add_argument("--timeout", type=float, default=3600, help="seconds allowed for each wait")
    args = parser.parse_args()
    load = [round(x, 2) for x in os.getloadavg()]
    rows = run(args)
    for row in rows:
        print(json.dumps(row))
    print(json.dumps({"loadavg_start": load, "loadavg_end": [round(x, 2) for x in os.getloadavg()],
                      "cpus": os.cpu_count()}))


if __name__ == "__main__":
    main()
