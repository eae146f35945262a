"""One big upload through the API to ``s3://`` (moto's server on loopback), with the API's peak resident
memory: the multipart route streams into an S3 multipart upload, so memory must not grow with the file.

    .venv/bin/python bench/s3_upload.py --mib 1024
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from api import PASSWORD, UPLOAD_FIELDS, _start_server, load
from api_support import MiB, PeakRss, curl, free_port, registered_token, stop, throughput, wait_for_port

from tests.support.s3 import running_s3_server
from tests.support.videos import raw_noise_video


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--mib", type=int, default=1024)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="vidscene-bench-s3-") as tmp:
        tmp_path = Path(tmp)
        video = raw_noise_video(tmp_path / "big.mkv", args.mib * MiB)
        with running_s3_server(tmp_path / "moto.log") as s3:
            os.environ.update({**s3.env, "VIDSCENE_STORAGE_URL": f"s3://{s3.new_bucket()}/bench"})
            port = free_port()
            proc = _start_server(tmp_path / "data", port, tmp_path / "server.log")
            try:
                wait_for_port(port, proc, "vidscene serve")
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
                print(json.dumps({"status": status, "body": body[:200], **throughput(video.stat().st_size, seconds),
                                  **rss.summary(), "api_data_dir_bytes_besides_db": disk, "load": load()}, indent=2))
            finally:
                stop(proc)


if __name__ == "__main__":
    main()
