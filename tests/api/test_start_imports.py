"""What an API process holds before its first request: none of the pipeline's numeric stack.

Every module imported at start stays resident in every API process for its whole life, and the API's memory
has a budget (under 200 MB through a 1 GiB upload to ``s3://``, issue 22; bench/s3_upload.py). numpy and
Pillow came in through module-level imports of small shared modules (``vidscene.edits`` through the reaper
and the edit routes, ``vidscene.photos`` through the upload routes) and cost ~17 MiB before any request;
torch or pycolmap would cost hundreds. The check runs in a fresh interpreter, doing what ``vidscene serve``
does before it listens, because this test process has long imported all of them.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

# Needed only by workers (training, SfM, frames, exports) or by one rare request (an edit's preview count, a
# photo archive's first photo), where they are imported when used.
NOT_AT_START = ("torch", "pycolmap", "numpy", "scipy", "cv2", "PIL", "pillow_heif", "gsplat", "vidscene.pipeline")

# The imports and set-up of ``vidscene.cli.serve`` up to ``uvicorn.run``, the app built as it builds it.
START = """
import json, sys
import uvicorn
import vidscene.cli
from vidscene.api.app import create_app
from vidscene.config import Settings
from vidscene.db.migrate import upgrade
from vidscene.jobs import state
from vidscene.jobs.celery_app import make_celery
from vidscene.jobs.reaper import Reaper

settings = Settings()
settings.ensure_data_dir()
upgrade(settings.resolved_database_url)
make_celery(settings)
create_app(settings)
print(json.dumps(sorted(sys.modules)))
"""


def test_the_api_starts_without_the_numeric_stack(tmp_path: Path) -> None:
    env = {**os.environ, "VIDSCENE_DATA_DIR": str(tmp_path / "data"),
           "VIDSCENE_JWT_SECRET": "start-imports-" + "k" * 60}
    for name in ("VIDSCENE_STORAGE_URL", "VIDSCENE_DATABASE_URL"):
        env.pop(name, None)
    out = subprocess.run([sys.executable, "-c", START], env=env, capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr[-3000:]
    loaded = set(json.loads(out.stdout.splitlines()[-1]))
    assert {"fastapi", "vidscene.api.app", "vidscene.edits", "vidscene.photos"} <= loaded  # it did start
    found = sorted(name for name in loaded
                   if any(name == heavy or name.startswith(heavy + ".") for heavy in NOT_AT_START))
    assert found == [], f"imported at the API's start: {found[:20]}"
