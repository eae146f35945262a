"""Uploads as clients send them: a multipart body streamed to the app one chunk at a time (recording how much
the app had read when it answered), and the tus calls of a resumable upload."""

from __future__ import annotations

import base64
import json
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from sqlalchemy import func, select

from tests.support.api_client import Api, asgi_scope, run_async
from tests.support.scenes import open_db
from vidscene.db.models import Scene

BOUNDARY = "vidsceneboundary7"


def form_part(name: str, value: bytes = b"", filename: str | None = None, *, header_only: bool = False) -> bytes:
    disposition = f'form-data; name="{name}"' + (f'; filename="{filename}"' if filename else "")
    head = f"--{BOUNDARY}\r\nContent-Disposition: {disposition}\r\n\r\n".encode()
    return head if header_only else head + value + b"\r\n"


@dataclass
class Streamed:
    status: int
    body: bytes
    read_before_answer: int  # body bytes the app had asked for when it sent its answer's status
    total: int  # the whole body's length

    @property
    def error(self) -> str:
        message: str = json.loads(self.body)["error"]
        return message


def stream_upload(api: Api, auth: dict[str, str], path: str, chunks: list[bytes] | Iterator[bytes], total: int,
                  content_type: str = f"multipart/form-data; boundary={BOUNDARY}",
                  headers: dict[str, str] | None = None) -> Streamed:
    """Send a body to the app chunk by chunk, each only when the app asks for it (ASGI ``receive``), and
    record how much of it the app had read when it answered."""
    sent: dict[str, Any] = {"read": 0, "answered": None, "status": 0, "body": b""}
    pieces = iter(chunks)
    scope = asgi_scope("PATCH" if "uploads/" in path else "POST", path, headers=[
        (key.lower().encode(), value.encode()) for key, value in
        {**auth, "Content-Type": content_type, "Content-Length": str(total), **(headers or {})}.items()])

    async def receive() -> dict[str, Any]:
        chunk = next(pieces, None)
        if chunk is None:
            return {"type": "http.request", "body": b"", "more_body": False}
        sent["read"] += len(chunk)
        return {"type": "http.request", "body": chunk, "more_body": True}

    async def send(message: dict[str, Any]) -> None:
        if message["type"] == "http.response.start":
            sent["status"], sent["answered"] = message["status"], sent["read"]
        elif message["type"] == "http.response.body":
            sent["body"] += message.get("body", b"")

    run_async(api.app, scope, receive, send)
    return Streamed(sent["status"], sent["body"], sent["answered"], total)


def big_file_then_fields(before: dict[str, str], after: dict[str, str], file_bytes: int,
                         first_bytes: bytes = b"") -> tuple[Iterator[bytes], int]:
    """A multipart body: ``before`` fields, a file of ``file_bytes`` (``first_bytes`` then zeros, generated
    as it is read), ``after`` fields; and its length."""
    chunk = 64 * 1024
    head = b"".join(form_part(k, v.encode()) for k, v in before.items())
    head += form_part("file", filename="big.mp4", header_only=True)
    tail = b"\r\n" + b"".join(form_part(k, v.encode()) for k, v in after.items()) + f"--{BOUNDARY}--\r\n".encode()

    def body() -> Iterator[bytes]:
        yield head + first_bytes
        left = file_bytes - len(first_bytes)
        while left > 0:
            yield bytes(min(chunk, left))
            left -= chunk
        yield tail

    return body(), len(head) + file_bytes + len(tail)


TUS = {"Tus-Resumable": "1.0.0"}
FIELDS = {"training_mode": "gaussian", "output_types": "splat_cloud,video", "save_iterations": "100",
          "total_iterations": "200", "scene_name": "Garden walk"}
OFFSET_BODY = {"Content-Type": "application/offset+octet-stream"}


def metadata(**pairs: str) -> str:
    return ",".join(f"{key} {base64.b64encode(value.encode()).decode()}" for key, value in pairs.items())


def create(api: Api, auth: dict[str, str], length: int, **fields: str) -> Any:
    pairs = {"filename": "garden.mp4", **FIELDS, **fields}
    return api.client.post("/user/scene/uploads", headers={**auth, **TUS, "Upload-Length": str(length),
                                                           "Upload-Metadata": metadata(**pairs)})


def patch(api: Api, auth: dict[str, str], url: str, offset: int, body: bytes, **headers: str) -> Any:
    return api.client.patch(url, content=body, headers={**auth, **TUS, **OFFSET_BODY,
                                                         "Upload-Offset": str(offset), **headers})


def scene_count(api: Api) -> int:
    with open_db(api.settings.resolved_database_url) as session:
        return int(session.scalar(select(func.count()).select_from(Scene)) or 0)
