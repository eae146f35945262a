"""HTTP API benchmark (run by hand) against a real uvicorn server on loopback, SQLite embedded default:
streamed upload throughput and server memory, login cost (production Argon2id), polling latency of
progress/metadata, and ranged 1 MiB chunk download throughput.

    .venv/bin/python bench/api.py --upload-mib 256 --download-mib 32 --polls 200
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from fractions import Fraction
from pathlib import Path

import av
import httpx
import numpy as np
import psutil

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from vidscene.db.migrate import upgrade
from vidscene.db.models import Output
from vidscene.db.session import make_engine, make_sessionmaker
from vidscene.storage import Storage

MiB = 1024 * 1024
SERVER = (
    "import uvicorn\n"
    "from vidscene.api import create_app\n"
    "from vidscene.config import Settings\n"
    "uvicorn.run(create_app(Settings()), host='127.0.0.1', port={port}, log_level='warning')\n"
)
PASSWORD = "benchmark password"


def raw_video(path: Path, mib: int) -> Path:
    """Uncompressed yuv420p noise in Matroska: as many bytes as asked, written at disk speed."""
    width, height = 640, 480
    frame_bytes = width * height * 3 // 2
    base = np.random.default_rng(0).integers(0, 255, (height * 3 // 2, width * 2), dtype=np.uint8)
    with av.open(str(path), mode="w", format="matroska") as container:
        stream = container.add_stream("rawvideo", rate=25)
        assert isinstance(stream, av.VideoStream)
        stream.width, stream.height, stream.pix_fmt = width, height, "yuv420p"
        for index in range(mib * MiB // frame_bytes + 1):
            shift = (index * 7) % width
            frame = av.VideoFrame.from_ndarray(np.ascontiguousarray(base[:, shift:shift + width]), format="yuv420p")
            frame.pts, frame.time_base = index, Fraction(1, 25)
            for packet in stream.encode(frame):
                container.mux(packet)
        for packet in stream.encode(None):
            container.mux(packet)
    return path


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def multipart(video: Path, boundary: str, fields: dict[str, str]) -> tuple[Iterator[bytes], int]:
    head = b"".join(f'--{boundary}\r\nContent-Disposition: form-data; name="{k}"\r\n\r\n{v}\r\n'.encode()
                    for k, v in fields.items())
    head += f'--{boundary}\r\nContent-Disposition: form-data; name="file"; filename="v.mkv"\r\n\r\n'.encode()
    tail = f"\r\n--{boundary}--\r\n".encode()

    def body() -> Iterator[bytes]:
        yield head
        with video.open("rb") as handle:
            while chunk := handle.read(MiB):
                yield chunk
        yield tail

    return body(), len(head) + video.stat().st_size + len(tail)


def percentiles(samples: list[float]) -> dict[str, float]:
    ordered = sorted(samples)
    return {"p50_ms": round(statistics.median(ordered) * 1000, 2),
            "p95_ms": round(ordered[int(0.95 * (len(ordered) - 1))] * 1000, 2)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--upload-mib", type=int, default=256)
    parser.add_argument("--download-mib", type=int, default=32)
    parser.add_argument("--polls", type=int, default=200)
    parser.add_argument("--logins", type=int, default=10)
    args = parser.parse_args()

    with tempfile.TemporaryDirectory(prefix="vidscene-bench-api-") as tmp:
        tmp_path = Path(tmp)
        data_dir = tmp_path / "data"
        db_url = f"sqlite:///{tmp_path / 'vidscene.db'}"
        upgrade(db_url)
        port = free_port()
        env = {**os.environ, "VIDSCENE_DATA_DIR": str(data_dir), "VIDSCENE_DATABASE_URL": db_url,
               "VIDSCENE_JWT_SECRET": "bench-" + "k" * 64, "VIDSCENE_LOGIN_RATE_LIMIT": "100000/minute"}
        proc = subprocess.Popen([sys.executable, "-c", SERVER.format(port=port)], env=env)
        results: dict[str, object] = {}
        try:
            base = f"http://127.0.0.1:{port}"
            for _ in range(300):
                try:
                    if httpx.get(f"{base}/health", timeout=1).status_code == 200:
                        break
                except httpx.TransportError:
                    time.sleep(0.2)
            server = psutil.Process(proc.pid)
            video = raw_video(tmp_path / "big.mkv", args.upload_mib)
            with httpx.Client(base_url=base, timeout=600) as client:
                client.post("/user/account/register", json={"username": "bench", "password": PASSWORD})
                login_times = []
                for _ in range(args.logins):
                    started = time.perf_counter()
                    token = client.post("/user/account/login",
                                        json={"username": "bench", "password": PASSWORD}).json()["jwtToken"]
                    login_times.append(time.perf_counter() - started)
                results["login"] = percentiles(login_times)
                client.headers["Authorization"] = f"Bearer {token}"

                fields = {"training_mode": "gaussian", "output_types": "splat_cloud", "save_iterations": "100",
                          "total_iterations": "100"}
                rss_before = server.memory_info().rss
                peak = rss_before
                done = threading.Event()

                def sample() -> None:
                    nonlocal peak
                    while not done.is_set():
                        peak = max(peak, server.memory_info().rss)
                        time.sleep(0.02)

                sampler = threading.Thread(target=sample)
                sampler.start()
                body, length = multipart(video, "benchboundary", fields)
                started = time.perf_counter()
                resp = client.post("/user/scene/new", content=body, headers={
                    "Content-Type": "multipart/form-data; boundary=benchboundary", "Content-Length": str(length)})
                upload_s = time.perf_counter() - started
                done.set()
                sampler.join()
                resp.raise_for_status()
                scene_id = resp.json()["id"]
                results["upload"] = {"mib": round(video.stat().st_size / MiB, 1), "seconds": round(upload_s, 2),
                                     "mib_per_s": round(video.stat().st_size / MiB / upload_s, 1),
                                     "server_rss_growth_mib": round((peak - rss_before) / MiB, 1)}

                for route in ("progress", "metadata"):
                    times = []
                    for _ in range(args.polls):
                        started = time.perf_counter()
                        client.get(f"/user/scene/{route}/{scene_id}").raise_for_status()
                        times.append(time.perf_counter() - started)
                    results[route] = percentiles(times)

                files = Storage(data_dir).scene(scene_id)
                out = files.output_path("splat_cloud", 100)
                out.parent.mkdir(parents=True, exist_ok=True)
                out.write_bytes(os.urandom(args.download_mib * MiB))
                engine = make_engine(db_url)
                with make_sessionmaker(engine)() as session:
                    session.add(Output(scene_id=scene_id, output_type="splat_cloud", iteration=100,
                                       relpath=str(out.relative_to(files.root)), size=out.stat().st_size))
                    session.commit()
                engine.dispose()
                chunks = client.get(f"/user/scene/metadata/{scene_id}").json()["resources"]["splat_cloud"]["100"]
                started = time.perf_counter()
                received = 0
                for index in range(chunks["chunks"]):
                    resp = client.get(f"/user/scene/output/splat_cloud/{scene_id}",
                                      headers={"Range": f"bytes={index * MiB}-{(index + 1) * MiB - 1}"})
                    received += len(resp.content)
                download_s = time.perf_counter() - started
                assert received == args.download_mib * MiB
                results["ranged_download"] = {"mib": args.download_mib, "seconds": round(download_s, 2),
                                              "mib_per_s": round(args.download_mib / download_s, 1)}
        finally:
            proc.terminate()
            proc.wait(timeout=10)
        results["load_average"] = [round(x, 2) for x in os.getloadavg()]
        print(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
