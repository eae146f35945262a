"""What ``bench/api.py`` measures with besides vidscene: Debian's nginx as the ceiling (serving the same files
on its own loopback port), curl transfers, a peak-RSS sampler, and the small process helpers."""

from __future__ import annotations

import contextlib
import grp
import os
import pwd
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from types import TracebackType

import psutil

MiB = 1024 * 1024

NGINX_CONF = """
daemon off;
master_process on;
worker_processes 1;
user {user} {group};
pid {prefix}/nginx.pid;
error_log {prefix}/error.log warn;
events {{ worker_connections 1024; }}
http {{
    access_log {prefix}/access.log;
    sendfile on;
    tcp_nopush on;
    default_type application/octet-stream;
    client_body_temp_path {prefix}/body;
    proxy_temp_path {prefix}/proxy;
    fastcgi_temp_path {prefix}/fastcgi;
    uwsgi_temp_path {prefix}/uwsgi;
    scgi_temp_path {prefix}/scgi;
    server {{
        listen 127.0.0.1:{port};
        location / {{
            root {root};
            dav_methods PUT;
            create_full_put_path on;
            client_max_body_size 0;
        }}
    }}
}}
"""


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def wait_for_port(port: int, proc: subprocess.Popen[bytes], what: str, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while True:
        if proc.poll() is not None:
            raise RuntimeError(f"{what} exited with status {proc.returncode} before listening")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1):
                return
        except OSError:
            if time.monotonic() > deadline:
                raise RuntimeError(f"{what} did not listen on port {port} within {timeout:.0f} s") from None
            time.sleep(0.2)


def registered_token(base: str, password: str) -> str:
    """Register the ``bench`` account on the server at ``base`` (already there is fine) and log it in."""
    import httpx

    httpx.post(f"{base}/user/account/register", json={"username": "bench", "password": password})
    login = httpx.post(f"{base}/user/account/login", json={"username": "bench", "password": password})
    token: str = login.json()["jwtToken"]
    return token


def stop(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


# ----------------------------------------------------------------------------------------------------------------
# nginx ceiling


class Nginx:
    """Debian's nginx on its own loopback port, serving (and accepting ``PUT`` of) files next to ``video``."""

    def __init__(self, tmp: Path, video: Path) -> None:
        binary = shutil.which("nginx") or ("/usr/sbin/nginx" if Path("/usr/sbin/nginx").exists() else None)
        if binary is None:
            raise RuntimeError("nginx not found (Debian: apt-get install nginx), or pass --skip-nginx")
        self.prefix, self.root = tmp / "nginx", tmp / "www"
        for folder in (self.prefix, self.root / "put"):
            folder.mkdir(parents=True)
        os.link(video, self.root / video.name)  # the very file vidscene serves, on the same disk
        self.video = video
        port = free_port()
        account = pwd.getpwuid(os.getuid())
        conf = self.prefix / "nginx.conf"
        conf.write_text(NGINX_CONF.format(user=account.pw_name, group=grp.getgrgid(account.pw_gid).gr_name,
                                          prefix=self.prefix, port=port, root=self.root))
        self.proc = subprocess.Popen([binary, "-c", str(conf), "-p", str(self.prefix),
                                      "-e", str(self.prefix / "error.log")])
        self.base = f"http://127.0.0.1:{port}"
        self.url = f"{self.base}/{video.name}"
        wait_for_port(port, self.proc, "nginx")

    def upload(self, size: int) -> tuple[dict[str, float], dict[str, float]]:
        """One ``PUT`` of the video: (throughput, throughput including an fsync like vidscene's)."""
        target = self.root / "put" / self.video.name
        with PeakRss(self.proc.pid) as rss:
            status, seconds, body = curl(["-T", str(self.video), f"{self.base}/put/{self.video.name}"])
        if status not in (201, 204) or target.stat().st_size != size:
            raise RuntimeError(f"nginx PUT answered {status}: {body[:200]}")
        started = time.perf_counter()
        with target.open("rb") as handle:
            os.fsync(handle.fileno())
        synced = seconds + time.perf_counter() - started
        target.unlink()
        return {**throughput(size, seconds), "nginx_rss_mib": round(rss.peak / MiB, 1)}, throughput(size, synced)

    def close(self, failed: bool) -> None:
        log = self.prefix / "error.log"
        if failed and log.exists():
            print(log.read_text()[-3000:], file=sys.stderr)
        stop(self.proc)


class PeakRss:
    """Samples the resident set of a process and its children every 20 ms while the block runs."""

    def __init__(self, pid: int) -> None:
        self.process = psutil.Process(pid)
        self.baseline = self.peak = self.rss()
        self._done = threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True)

    def rss(self) -> int:
        total = 0
        for proc in [self.process, *self.process.children(recursive=True)]:
            with contextlib.suppress(psutil.NoSuchProcess):
                total += proc.memory_info().rss
        return total

    def _sample(self) -> None:
        while not self._done.wait(0.02):
            self.peak = max(self.peak, self.rss())

    def __enter__(self) -> PeakRss:
        self.baseline = self.peak = self.rss()
        self._thread.start()
        return self

    def __exit__(self, kind: type[BaseException] | None, value: BaseException | None,
                 tb: TracebackType | None) -> None:
        self._done.set()
        self._thread.join()
        self.peak = max(self.peak, self.rss())

    def summary(self) -> dict[str, float]:
        return {"server_rss_mib": round(self.baseline / MiB, 1), "server_peak_rss_mib": round(self.peak / MiB, 1),
                "server_rss_growth_mib": round((self.peak - self.baseline) / MiB, 1)}


def curl(args: list[str]) -> tuple[int, float, str]:
    """Runs curl (a separate, fast client process) and returns HTTP status, seconds in total and the body."""
    with tempfile.NamedTemporaryFile(prefix="vidscene-bench-curl-") as body:
        out = subprocess.run(["curl", "-sS", "-o", body.name, "-w", "%{http_code} %{time_total}", "-H", "Expect:",
                              *args], check=True, capture_output=True, text=True).stdout.split()
        return int(out[0]), float(out[1]), Path(body.name).read_text(errors="replace")


def throughput(nbytes: int, seconds: float) -> dict[str, float]:
    return {"mib": round(nbytes / MiB, 1), "seconds": round(seconds, 3), "mib_per_s": round(nbytes / MiB / seconds, 1)}
