"""DownloadResponse at the ASGI level: what a client that goes away, or a file that changes, does to a body."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import anyio
import pytest
from starlette.datastructures import Headers
from starlette.types import Message

from tests.api.api_helpers import asgi_scope, call_asgi
from vidscene.api import downloads
from vidscene.api.downloads import DownloadResponse, read_at

MiB = 1024 * 1024


def scope(method: str = "GET", headers: list[tuple[bytes, bytes]] | None = None) -> dict[str, Any]:
    return asgi_scope(method, headers=headers)


@pytest.fixture
def data_file(tmp_path: Path) -> tuple[Path, bytes]:
    data = os.urandom(5 * MiB + 123)
    path = tmp_path / "out.bin"
    path.write_bytes(data)
    return path, data


def serve(path: Path, request: dict[str, Any], *, disconnect_after: int | None = None,
          preload: bool = False) -> list[Message]:
    """Run one response; the client disconnects once it has received ``disconnect_after`` body messages."""
    sent: list[Message] = []
    response = DownloadResponse(path, media_type="application/octet-stream", stat_result=os.stat(path))
    if preload:
        response.preload(Headers(scope=request))

    async def main() -> None:
        bodies = anyio.Event()
        requested = False

        async def receive() -> Message:
            nonlocal requested
            if not requested:
                requested = True
                return {"type": "http.request", "body": b"", "more_body": False}
            await bodies.wait()
            return {"type": "http.disconnect"}

        async def send(message: Message) -> None:
            sent.append(message)
            count = sum(1 for m in sent if m["type"] == "http.response.body")
            if disconnect_after is not None and count >= disconnect_after:
                bodies.set()
            await anyio.sleep(0)  # a real transport yields to the loop here

        with anyio.fail_after(10):
            await response(request, receive, send)

    anyio.run(main)
    return sent


def body_of(messages: list[Message]) -> bytes:
    return b"".join(m.get("body", b"") for m in messages if m["type"] == "http.response.body")


def test_whole_file_in_one_mib_reads(data_file: tuple[Path, bytes]) -> None:
    path, data = data_file
    sent = serve(path, scope())
    assert sent[0]["status"] == 200
    bodies = [m for m in sent if m["type"] == "http.response.body"]
    assert len(bodies) == 6 and all(len(m["body"]) == MiB for m in bodies[:5])
    assert [m["more_body"] for m in bodies] == [True] * 5 + [False]
    assert body_of(sent) == data


def test_single_chunk_range(data_file: tuple[Path, bytes]) -> None:
    path, data = data_file
    sent = serve(path, scope(headers=[(b"range", b"bytes=1048576-2097151")]))
    assert sent[0]["status"] == 206
    assert dict(sent[0]["headers"])[b"content-range"] == f"bytes 1048576-2097151/{len(data)}".encode()
    assert body_of(sent) == data[MiB:2 * MiB]


def test_long_range_stops_when_the_client_disconnects(data_file: tuple[Path, bytes]) -> None:
    path, data = data_file
    sent = serve(path, scope(headers=[(b"range", b"bytes=10-")]), disconnect_after=2)
    bodies = [m for m in sent if m["type"] == "http.response.body"]
    assert 2 <= len(bodies) < 6  # the remaining reads were not done
    assert body_of(sent) == data[10:10 + len(body_of(sent))]


def test_whole_file_stops_when_the_client_disconnects(data_file: tuple[Path, bytes]) -> None:
    path, _ = data_file
    sent = serve(path, scope(), disconnect_after=1)
    assert len([m for m in sent if m["type"] == "http.response.body"]) < 6


def test_head_sends_no_body(data_file: tuple[Path, bytes]) -> None:
    path, data = data_file
    sent = serve(path, scope("HEAD"))
    assert dict(sent[0]["headers"])[b"content-length"] == str(len(data)).encode()
    assert body_of(sent) == b""


def test_a_file_that_shrank_aborts_instead_of_sending_short(data_file: tuple[Path, bytes]) -> None:
    path, _ = data_file
    with pytest.raises(RuntimeError, match="shorter than expected"):
        read_at(path, 5 * MiB, MiB)


def test_a_preloaded_chunk_is_sent_without_another_read(data_file: tuple[Path, bytes],
                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    path, data = data_file
    request = scope(headers=[(b"range", b"bytes=-1000")])
    response = DownloadResponse(path, media_type="application/octet-stream", stat_result=os.stat(path))
    response.preload(Headers(scope=request))

    def no_more_reads(*_args: object) -> bytes:
        raise AssertionError("read again")

    monkeypatch.setattr(downloads, "read_at", no_more_reads)
    sent = call_asgi(response, request)
    assert sent[0]["status"] == 206
    assert body_of(sent) == data[-1000:]


@pytest.mark.parametrize("headers", [
    [(b"range", b"bytes=0-0,10-20")],                       # several ranges: multipart/byteranges
    [(b"range", b"bytes=0-2097151")],                       # longer than one read
    [(b"range", b"bytes=0-10"), (b"if-range", b'"other"')],  # If-Range decides later
    [(b"range", b"items=0-10")],                            # a unit the server ignores
    [(b"range", b"bytes =0-10")],                           # not quite "bytes=": ignored as well
    [(b"range", b"bytes=99999999-")],                       # unsatisfiable: 416
])
def test_preload_leaves_everything_else_to_the_response(data_file: tuple[Path, bytes],
                                                         headers: list[tuple[bytes, bytes]]) -> None:
    path, _ = data_file
    request = scope(headers=headers)
    response = DownloadResponse(path, media_type="application/octet-stream", stat_result=os.stat(path))
    response.preload(Headers(scope=request))
    assert response._preloaded is None
    plain = serve(path, request)
    assert serve(path, request, preload=True)[0]["status"] == plain[0]["status"]


@pytest.mark.parametrize("range_header", [b"bytes=0-0", b"bytes=1048576-2097151", b"bytes=-1000", b"bytes=5242880-"])
def test_a_preloaded_chunk_answers_exactly_like_the_plain_response(data_file: tuple[Path, bytes],
                                                                    range_header: bytes) -> None:
    path, _ = data_file
    request = scope(headers=[(b"range", range_header)])
    plain, preloaded = serve(path, request), serve(path, request, preload=True)
    assert preloaded[0]["status"] == plain[0]["status"] == 206
    assert sorted(preloaded[0]["headers"]) == sorted(plain[0]["headers"])
    assert body_of(preloaded) == body_of(plain)


def test_preload_of_a_file_removed_since_its_stat_leaves_the_answer_to_the_response(
        data_file: tuple[Path, bytes]) -> None:
    path, _ = data_file
    response = DownloadResponse(path, media_type="application/octet-stream", stat_result=os.stat(path))
    path.unlink()
    response.preload(Headers(scope=scope(headers=[(b"range", b"bytes=0-9")])))
    assert not response.preloaded
