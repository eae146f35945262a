"""Resumable upload over the server's tus 1.0 routes (docs/api.md, "Resumable uploads").

The upload's URL is kept in a small JSON state file, so a second call for the same file (after a dropped
connection, a killed script or Ctrl-C) asks the server where it stands (``HEAD``) and sends only the rest.
The server's offset is the truth: the state file holds no offset of its own, so it can never be ahead.
"""

from __future__ import annotations

import base64
import json
import os
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx

from vidscene.client.errors import ApiError, raise_for_error

TUS = {"Tus-Resumable": "1.0.0"}
UPLOADS = "/user/scene/uploads"
DEFAULT_CHUNK_BYTES = 8 * 1024**2
# A dropped connection or a 423 (another request still appending) is retried after asking for the offset.
RETRIES = 5


def _fingerprint(video: Path, fields: dict[str, str], server: str) -> dict[str, Any]:
    """What must match for a saved upload to be this one: the server, the file (path, size, mtime) and form."""
    stat = video.stat()
    return {"server": server, "file": str(video.resolve()), "size": stat.st_size, "mtime_ns": stat.st_mtime_ns,
            "fields": fields}


def _read_state(state_file: Path, fingerprint: dict[str, Any]) -> dict[str, Any] | None:
    try:
        state = json.loads(state_file.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    if not isinstance(state, dict) or state.get("fingerprint") != fingerprint:
        return None  # another file, server or form: start over rather than append to the wrong upload
    return state


def _write_state(state_file: Path, state: dict[str, Any]) -> None:
    """Atomically, owner-only: the upload URL lets whoever has the token append to the upload."""
    state_file.parent.mkdir(parents=True, exist_ok=True)
    tmp = state_file.with_name(state_file.name + ".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as f:
        json.dump(state, f, indent=1)
    tmp.replace(state_file)


def _metadata(video: Path, fields: dict[str, str]) -> str:
    """tus ``Upload-Metadata``: ``key base64(value)`` pairs; an empty value is the key alone (tus 1.0)."""
    pairs = {"filename": video.name, **fields}
    return ",".join(f"{key} {base64.b64encode(value.encode()).decode()}" if value else key
                    for key, value in pairs.items())


def _create(http: httpx.Client, video: Path, fields: dict[str, str], size: int) -> str:
    answer = http.post(UPLOADS, headers={**TUS, "Upload-Length": str(size),
                                         "Upload-Metadata": _metadata(video, fields)})
    raise_for_error(answer)
    return answer.headers["Location"]


def _offset(http: httpx.Client, url: str) -> tuple[int, str | None] | None:
    """The server's offset and, once complete, the scene id; None when the upload is gone (expired, removed)."""
    answer = http.head(url, headers=TUS)
    if answer.status_code in (404, 410):
        return None
    raise_for_error(answer)
    return int(answer.headers["Upload-Offset"]), answer.headers.get("Upload-Scene-Id")


def _patch(http: httpx.Client, url: str, offset: int, chunk: bytes) -> tuple[int, str | None]:
    answer = http.patch(url, content=chunk, headers={**TUS, "Upload-Offset": str(offset),
                                                     "Content-Type": "application/offset+octet-stream"})
    raise_for_error(answer)
    return int(answer.headers["Upload-Offset"]), answer.headers.get("Upload-Scene-Id")


def _resume_point(http: httpx.Client, video: Path, fields: dict[str, str], state_file: Path,
                  fingerprint: dict[str, Any]) -> tuple[str, int, str | None]:
    """The upload URL, the server's offset and the scene id (once complete), resumed when the state allows."""
    state = _read_state(state_file, fingerprint)
    if state is not None:
        if state.get("scene_id"):
            return str(state["url"]), fingerprint["size"], str(state["scene_id"])
        where = _offset(http, state["url"])
        if where is not None:
            return str(state["url"]), where[0], where[1]
    url = _create(http, video, fields, fingerprint["size"])
    _write_state(state_file, {"fingerprint": fingerprint, "url": url, "scene_id": None})
    return url, 0, None


def upload(http: httpx.Client, video: Path, fields: dict[str, str], *, state_file: Path, chunk_bytes: int,
           on_progress: Callable[[int, int], None] | None = None) -> str:
    """Send ``video`` and return its scene id. ``on_progress(offset, size)`` is called after each chunk the
    server confirmed (and once at the start with the offset resumed from); an exception from it stops the
    upload, which a later call with the same ``state_file`` resumes."""
    fingerprint = _fingerprint(video, fields, str(http.base_url))
    size = int(fingerprint["size"])
    url, offset, scene_id = _resume_point(http, video, fields, state_file, fingerprint)
    if on_progress is not None:
        on_progress(offset, size)
    failures = 0
    with video.open("rb") as f:
        while scene_id is None:
            f.seek(offset)
            chunk = f.read(chunk_bytes)
            try:
                offset, scene_id = _patch(http, url, offset, chunk)
            except (httpx.TransportError, ApiError) as exc:
                failures += 1
                if failures > RETRIES or (isinstance(exc, ApiError) and exc.status not in (409, 423)):
                    raise
                time.sleep(min(2.0 ** failures, 30.0))
                where = _offset(http, url)
                if where is None:
                    raise ApiError(404, "The upload expired or was removed; run the command again to start "
                                        "over.") from exc
                offset, scene_id = where
                continue
            failures = 0
            if on_progress is not None:
                on_progress(offset, size)
    _write_state(state_file, {"fingerprint": fingerprint, "url": url, "scene_id": scene_id})
    return scene_id
