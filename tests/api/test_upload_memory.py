"""A 200+ MB upload to a real uvicorn server over loopback leaves the server's memory flat."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import psutil
import pytest

from tests.support.api_client import PASSWORD
from tests.support.server import free_port, wait_healthy
from tests.support.videos import raw_noise_video

MiB = 1024 * 1024
VIDEO_BYTES_MIN = 200 * 1000 * 1000
MAX_GROWTH = 64 * MiB
SERVER = (
    "import uvicorn\n"
    "from vidscene.api import create_app\n"
    "from vidscene.config import Settings\n"
    "uvicorn.run(create_app(Settings()), host='127.0.0.1', port={port}, log_level='warning')\n"
)


def _big_video(path: Path) -> Path:
    """Uncompressed noise frames in Matroska: writes at disk speed and decodes like any upload."""
    raw_noise_video(path, VIDEO_BYTES_MIN, seed=1)
    assert path.stat().st_size >= VIDEO_BYTES_MIN
    return path


@pytest.fixture
def server(tmp_path: Path, sqlite_url: str) -> Iterator[tuple[str, psutil.Process, Path]]:
    port = free_port()
    data_dir = tmp_path / "data"
    env = {**os.environ, "VIDSCENE_DATA_DIR": str(data_dir), "VIDSCENE_DATABASE_URL": sqlite_url,
           "VIDSCENE_JWT_SECRET": "memory-test-" + "z" * 60}
    proc = subprocess.Popen([sys.executable, "-c", SERVER.format(port=port)], env=env)
    base = f"http://127.0.0.1:{port}"
    try:
        wait_healthy(base, proc)
        yield base, psutil.Process(proc.pid), data_dir
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def _multipart(video: Path, boundary: str, fields: dict[str, str]) -> tuple[Iterator[bytes], int]:
    head = b"".join(
        f'--{boundary}\r\nContent-Disposition: form-data; name="{name}"\r\n\r\n{value}\r\n'.encode()
        for name, value in fields.items()
    ) + (f'--{boundary}\r\nContent-Disposition: form-data; name="file"; filename="{video.name}"\r\n'
         "Content-Type: video/x-matroska\r\n\r\n").encode()
    tail = f"\r\n--{boundary}--\r\n".encode()

    def body() -> Iterator[bytes]:
        yield head
        with video.open("rb") as handle:
            while chunk := handle.read(MiB):
                yield chunk
        yield tail

    return body(), len(head) + video.stat().st_size + len(tail)


def test_large_upload_keeps_server_memory_flat(server: tuple[str, psutil.Process, Path], tmp_path: Path,
                                               mp4_bytes: bytes) -> None:
    base, process, data_dir = server
    video = _big_video(tmp_path / "big.mkv")
    with httpx.Client(base_url=base, timeout=120) as client:
        assert client.post("/user/account/register",
                           json={"username": "heavy", "password": PASSWORD}).status_code == 201
        token = client.post("/user/account/login", json={"username": "heavy", "password": PASSWORD}).json()[
            "jwtToken"]
        auth = {"Authorization": f"Bearer {token}"}
        fields = {"training_mode": "gaussian", "output_types": "splat_cloud", "save_iterations": "10",
                  "total_iterations": "10"}
        # warm-up: the first upload imports and initialises everything an upload touches
        warm = client.post("/user/scene/new", headers=auth, data=fields,
                           files={"file": ("w.mp4", mp4_bytes, "video/mp4")})
        assert warm.status_code == 202

        baseline = process.memory_info().rss
        peak = baseline
        done = threading.Event()

        def sample() -> None:
            nonlocal peak
            while not done.is_set():
                peak = max(peak, process.memory_info().rss)
                time.sleep(0.02)

        sampler = threading.Thread(target=sample)
        sampler.start()
        boundary = "memtestboundary0123456789"
        body, length = _multipart(video, boundary, fields)
        started = time.monotonic()
        try:
            resp = client.post("/user/scene/new", content=body, headers={
                **auth, "Content-Type": f"multipart/form-data; boundary={boundary}",
                "Content-Length": str(length)})
        finally:
            done.set()
            sampler.join()
        elapsed = time.monotonic() - started
        after = process.memory_info().rss

    assert resp.status_code == 202, resp.text
    growth = peak - baseline
    print(f"upload {video.stat().st_size / MiB:.0f} MiB in {elapsed:.1f} s; server RSS baseline "
          f"{baseline / MiB:.0f} MiB, peak {peak / MiB:.0f} MiB (+{growth / MiB:.1f}), after {after / MiB:.0f} MiB; "
          f"load {os.getloadavg()}")
    assert growth < MAX_GROWTH
    stored = list((data_dir / "scenes" / resp.json()["id"] / "upload").iterdir())
    assert [p.stat().st_size for p in stored] == [video.stat().st_size]
    assert list((data_dir / "tmp").iterdir()) == []
