"""Resumable (tus) uploads against the multipart route: the same video into the same ``vidscene serve``.

Each round, in turn: the multipart ``POST /user/scene/new`` (curl ``-F``), one tus PATCH of the whole file
(curl ``-T``), and tus PATCHes of ``--chunk-mib`` each (the web app's default is 64 MiB; the chunk files are cut
before the round). Every transfer follows a ``sync``. Reports MiB/s per round and the server's peak RSS growth.
The tus figures include the creation request and every PATCH's fsync; both routes probe the video at the end
and create a scene (deleted again), so the work compared is the same.

    python bench/tus_upload.py --big-mib 512 --rounds 3
"""

from __future__ import annotations

import argparse
import base64
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.api import PASSWORD, UPLOAD_FIELDS, load
from bench.api_support import MiB, PeakRss, curl, free_port, registered_token, stop, throughput, wait_for_port
from tests.support.videos import raw_noise_video


def _tus(base: str, auth: dict[str, str], size: int, pieces: list[Path]) -> tuple[float, str]:
    """Create a tus upload and PATCH ``pieces`` in order; seconds in total and the scene id."""
    meta = ",".join(f"{k} {base64.b64encode(v.encode()).decode()}"
                    for k, v in {"filename": "big.mkv", **UPLOAD_FIELDS}.items())
    started = time.perf_counter()
    created = httpx.post(f"{base}/user/scene/uploads", timeout=60,
                         headers={**auth, "Tus-Resumable": "1.0.0", "Upload-Length": str(size),
                                  "Upload-Metadata": meta})
    created.raise_for_status()
    url = base + created.headers["Location"]
    offset = 0
    scene_id = ""
    for piece in pieces:
        with tempfile.NamedTemporaryFile() as headers_out:
            status, _, body = curl(["-X", "PATCH", "-T", str(piece), "-D", headers_out.name,
                                    "-H", f"Authorization: {auth['Authorization']}", "-H", "Tus-Resumable: 1.0.0",
                                    "-H", "Content-Type: application/offset+octet-stream",
                                    "-H", f"Upload-Offset: {offset}", url])
            if status != 204:
                raise RuntimeError(f"PATCH answered {status}: {body[:300]}")
            for line in Path(headers_out.name).read_text().splitlines():
                if line.lower().startswith("upload-scene-id:"):
                    scene_id = line.split(":", 1)[1].strip()
        offset += piece.stat().st_size
    return time.perf_counter() - started, scene_id


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--big-mib", type=int, default=512)
    parser.add_argument("--chunk-mib", type=int, default=64)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    results: dict[str, list[dict[str, float]]] = {"multipart": [], "tus_one_patch": [], "tus_chunks": []}
    machine = {"cpus": os.cpu_count(), "load_average_start": load()}
    with tempfile.TemporaryDirectory(prefix="vidscene-bench-tus-") as tmp:
        tmp_path = Path(tmp)
        video = raw_noise_video(tmp_path / "big.mkv", args.big_mib * MiB)
        size = video.stat().st_size
        chunks_dir = tmp_path / "chunks"
        chunks_dir.mkdir()
        subprocess.run(["split", "-b", f"{args.chunk_mib}M", "-d", "-a", "4", str(video), f"{chunks_dir}/c"],
                       check=True)
        chunks = sorted(chunks_dir.iterdir())
        port = free_port()
        env = {**os.environ, "VIDSCENE_DATA_DIR": str(tmp_path / "data"), "VIDSCENE_JWT_SECRET": "bench-" + "k" * 64,
               "VIDSCENE_MAX_UPLOAD_BYTES": str(size + MiB)}
        with (tmp_path / "server.log").open("wb") as log:
            proc = subprocess.Popen([sys.executable, "-m", "vidscene", "serve", "--no-worker", "--port", str(port)],
                                    env=env, stdout=log, stderr=subprocess.STDOUT)
        try:
            wait_for_port(port, proc, "vidscene serve")
            base = f"http://127.0.0.1:{port}"
            token = registered_token(base, PASSWORD)
            auth = {"Authorization": f"Bearer {token}"}
            fields = [arg for name, value in UPLOAD_FIELDS.items() for arg in ("-F", f"{name}={value}")]
            for _ in range(args.rounds):
                os.sync()
                with PeakRss(proc.pid) as rss:
                    status, seconds, body = curl([*fields, "-F", f"file=@{video};type=video/x-matroska",
                                                  "-H", f"Authorization: {auth['Authorization']}",
                                                  f"{base}/user/scene/new"])
                if status != 202:
                    raise RuntimeError(f"multipart answered {status}: {body[:300]}")
                results["multipart"].append({**throughput(size, seconds), **rss.summary()})
                httpx.delete(f"{base}/user/scene/delete/{json.loads(body)['id']}", headers=auth).raise_for_status()
                for name, pieces in (("tus_one_patch", [video]), ("tus_chunks", chunks)):
                    os.sync()
                    with PeakRss(proc.pid) as rss:
                        seconds, scene_id = _tus(base, auth, size, pieces)
                    if not scene_id:
                        raise RuntimeError(f"{name}: no scene named")
                    results[name].append({**throughput(size, seconds), **rss.summary()})
                    httpx.delete(f"{base}/user/scene/delete/{scene_id}", headers=auth).raise_for_status()
        finally:
            stop(proc)
    machine["load_average_end"] = load()
    print(json.dumps({"machine": machine, "video_mib": round(size / MiB, 1), "chunk_mib": args.chunk_mib,
                      "results": results}, indent=1))


if __name__ == "__main__":
    main()
