"""DownloadResponse at the ASGI level: what a client that goes away, or a file that changes, does to a body."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import anyio
import pytest
from starlette.datastructures import Headers
from starlette.types import Message

from tests.support.api_client import asgi_scope, call_asgi, run_async
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

    run_async(main)
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
    assert not response.preloaded
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


# ---------------------------------------------------------------------------------------------------------------
# RFC 9110 ranges: what parse_range makes of a header, for a 5000-byte file

SIZE = 5000


@pytest.mark.parametrize(("header", "spans"), [
    ("bytes=0-0", [(0, 1)]),
    ("bytes=100-199", [(100, 200)]),
    ("bytes=4990-", [(4990, SIZE)]),
    ("bytes=-10", [(SIZE - 10, SIZE)]),
    ("bytes=-99999", [(0, SIZE)]),                              # a suffix longer than the file: all of it
    ("bytes=4000-99999", [(4000, SIZE)]),                       # an end past the file is clamped
    ("bytes=0-" + "9" * 40, [(0, SIZE)]),                       # however far past
    ("Bytes=0-0", [(0, 1)]),                                    # the unit is case-insensitive
    ("bytes=0-0,999999-", [(0, 1)]),                            # unsatisfiable parts are dropped
    ("bytes=999999-,-0,10-19", [(10, 20)]),
    ("bytes=0-100, 50-200", [(0, 201)]),                        # overlapping: joined
    ("bytes=0-9,10-19", [(0, 20)]),                             # adjacent: joined
    ("bytes=100-199,400-499,150-450", [(100, 500)]),            # a join that reaches a later range
    ("bytes=0-4999,0-4999,0-4999", [(0, SIZE)]),                # the same bytes asked for again
    ("bytes=100-200, 0-50", [(100, 201), (0, 51)]),             # parts in the order asked for
    ("bytes=500-599,0-9,550-650", [(500, 651), (0, 10)]),       # a joined part sits where it was first asked
    ("bytes=0-1,,  ,5-6", [(0, 2), (5, 7)]),                    # empty list elements are allowed
    ("bytes= 0-1 ,\t5-6", [(0, 2), (5, 7)]),                    # and whitespace around elements
])
def test_satisfiable_ranges(header: str, spans: list[tuple[int, int]]) -> None:
    assert downloads.parse_range(header, SIZE) == spans


@pytest.mark.parametrize("header", [
    "items=0-9",                              # a unit the server does not understand (RFC 9110 section 14.2)
    "bytes =0-9",                             # not the bytes unit by the grammar either
    "bytes: 0-9",
    "bytes",
    "",
    "bytes=" + ",".join(["0-0"] * (downloads.MAX_RANGES + 1)),
])
def test_ignored_range_headers(header: str) -> None:
    assert downloads.parse_range(header, SIZE) is None


@pytest.mark.parametrize("header", [
    "bytes=5000-", "bytes=5000-5000", "bytes=6000-7000", "bytes=-0", "bytes=5000-,-0,99999-",
    "bytes=" + "9" * 5000 + "-",              # longer than Python parses into an int: still just past the end
])
def test_unsatisfiable_ranges_are_416(header: str) -> None:
    with pytest.raises(downloads.RangeError) as caught:
        downloads.parse_range(header, SIZE)
    assert caught.value.status_code == 416


@pytest.mark.parametrize("header", [
    "bytes=", "bytes=,", "bytes=-", "bytes=x-y", "bytes=50-10", "bytes=0-9,50-10", "bytes=0-9,x", "bytes=7",
    "bytes=0 - 9", "bytes=+1-2", "bytes=0-1-2", "bytes=\u0661-\u0662",  # Arabic-Indic digits are not DIGIT
])
def test_malformed_ranges_are_400(header: str) -> None:
    with pytest.raises(downloads.RangeError) as caught:
        downloads.parse_range(header, SIZE)
    assert caught.value.status_code == 400


def test_every_range_of_an_empty_file_is_unsatisfiable() -> None:
    for header in ("bytes=0-", "bytes=0-0", "bytes=-5"):
        with pytest.raises(downloads.RangeError):
            downloads.parse_range(header, 0)


# ---------------------------------------------------------------------------------------------------------------
# RFC 9110 ranges: the answers DownloadResponse sends


@pytest.fixture
def small_file(tmp_path: Path) -> tuple[Path, bytes]:
    data = os.urandom(SIZE)
    path = tmp_path / "small.splat"
    path.write_bytes(data)
    return path, data


def answer(path: Path, method: str = "GET", **request_headers: str) -> tuple[int, Headers, bytes]:
    headers = [(name.replace("_", "-").lower().encode(), value.encode()) for name, value in request_headers.items()]
    sent = serve(path, scope(method, headers))
    return sent[0]["status"], Headers(raw=sent[0]["headers"]), body_of(sent)


def multipart_parts(headers: Headers, body: bytes) -> list[tuple[dict[str, str], bytes]]:
    """The parts of a multipart/byteranges body, checked against RFC 2046's framing on the way."""
    kind, _, boundary = headers["content-type"].partition("; boundary=")
    assert kind == "multipart/byteranges" and boundary
    assert int(headers["content-length"]) == len(body)
    assert body.startswith(f"--{boundary}\r\n".encode()) and body.endswith(f"\r\n--{boundary}--\r\n".encode())
    parts = []
    for raw in body[len(boundary) + 4:-len(boundary) - 8].split(f"\r\n--{boundary}\r\n".encode()):
        head, _, content = raw.partition(b"\r\n\r\n")
        fields = dict(line.split(": ", 1) for line in head.decode("latin-1").split("\r\n"))
        parts.append((fields, content))
    return parts


def test_whole_file_headers(small_file: tuple[Path, bytes]) -> None:
    path, data = small_file
    response = DownloadResponse(path, media_type="application/octet-stream", stat_result=os.stat(path),
                                filename="scene-splat_cloud-100.splat")
    sent = call_asgi(response, scope())
    headers = Headers(raw=sent[0]["headers"])
    assert sent[0]["status"] == 200
    assert headers["accept-ranges"] == "bytes"
    assert headers["content-length"] == str(SIZE)
    assert headers["content-type"] == "application/octet-stream"
    assert headers["content-disposition"] == 'attachment; filename="scene-splat_cloud-100.splat"'
    assert headers["etag"].startswith('"') and headers["etag"].endswith('"')
    assert headers["last-modified"].endswith(" GMT")
    assert body_of(sent) == data


def test_a_multi_range_with_one_satisfiable_part_is_a_plain_206(small_file: tuple[Path, bytes]) -> None:
    path, data = small_file
    status, headers, body = answer(path, range="bytes=0-0,999999-")
    assert (status, headers["content-range"], headers["content-length"], body) == (206, "bytes 0-0/5000", "1",
                                                                                   data[:1])


def test_multipart_byteranges(small_file: tuple[Path, bytes]) -> None:
    path, data = small_file
    status, headers, body = answer(path, range="bytes=4000-4009, 0-0, 100-199, 150-250, 999999-")
    assert status == 206
    assert "content-range" not in headers
    parts = multipart_parts(headers, body)
    assert [fields["Content-Range"] for fields, _ in parts] == [
        "bytes 4000-4009/5000", "bytes 0-0/5000", "bytes 100-250/5000"]
    assert [content for _, content in parts] == [data[4000:4010], data[:1], data[100:251]]
    assert all(fields["Content-Type"] == "application/octet-stream" for fields, _ in parts)


def test_multipart_parts_longer_than_one_read(data_file: tuple[Path, bytes]) -> None:
    path, data = data_file
    status, headers, body = answer(path, range=f"bytes=-10,0-{2 * MiB + 5}")
    assert status == 206
    assert [content for _, content in multipart_parts(headers, body)] == [data[-10:], data[:2 * MiB + 6]]


def test_a_multipart_body_stops_when_the_client_disconnects(data_file: tuple[Path, bytes]) -> None:
    path, _ = data_file
    sent = serve(path, scope(headers=[(b"range", b"bytes=0-0,10-")]), disconnect_after=2)
    assert 2 <= len([m for m in sent if m["type"] == "http.response.body"]) < 7


@pytest.mark.parametrize(("header", "content_range"), [
    ("bytes=5000-", "bytes */5000"), ("bytes=-0", "bytes */5000"), ("bytes=7000-8000,9000-", "bytes */5000")])
def test_unsatisfiable_is_a_json_416(small_file: tuple[Path, bytes], header: str, content_range: str) -> None:
    path, _ = small_file
    status, headers, body = answer(path, range=header)
    assert (status, headers["content-range"], headers["content-type"]) == (416, content_range, "application/json")
    assert headers["content-length"] == str(len(body))
    assert set(json.loads(body)) == {"error"}


def test_malformed_is_a_json_400_naming_the_range(small_file: tuple[Path, bytes]) -> None:
    path, _ = small_file
    status, headers, body = answer(path, range="bytes=0-9,50-10")
    assert (status, headers["content-type"]) == (400, "application/json")
    assert "50-10" in json.loads(body)["error"]


@pytest.mark.parametrize("header", ["items=0-9", "bytes=" + ",".join(["0-0"] * 101)])
def test_ignored_range_headers_get_the_whole_file(small_file: tuple[Path, bytes], header: str) -> None:
    path, data = small_file
    status, headers, body = answer(path, range=header)
    assert (status, headers["content-length"], body) == (200, str(SIZE), data)


def test_if_range_with_the_current_validators_gets_the_range(small_file: tuple[Path, bytes]) -> None:
    path, data = small_file
    _, validators, _ = answer(path)
    for if_range in (validators["etag"], validators["last-modified"]):
        status, _, body = answer(path, range="bytes=10-19", if_range=if_range)
        assert (status, body) == (206, data[10:20]), if_range


@pytest.mark.parametrize("stale", ['"0123"', "W/{etag}", "{etag}x", "Thu, 01 Jan 1970 00:00:00 GMT", "garbage"])
def test_if_range_with_a_stale_or_weak_validator_gets_the_whole_file(small_file: tuple[Path, bytes],
                                                                     stale: str) -> None:
    path, data = small_file
    _, validators, _ = answer(path)
    status, _, body = answer(path, range="bytes=10-19", if_range=stale.format(etag=validators["etag"]))
    assert (status, body) == (200, data)
    # a stale client copy is replaced whole even when its Range would have been refused
    assert answer(path, range="bytes=x-y", if_range=stale.format(etag=validators["etag"]))[0] == 200


def test_if_range_without_range_is_ignored(small_file: tuple[Path, bytes]) -> None:
    path, data = small_file
    assert answer(path, if_range='"0123"')[::2] == (200, data)


def test_head_has_the_headers_of_get_and_no_body(small_file: tuple[Path, bytes]) -> None:
    path, _ = small_file
    get_status, get_headers, _ = answer(path)
    for request_headers in ({}, {"range": "bytes=0-9"}, {"range": "bytes=x-y"}, {"range": "bytes=9999-"}):
        # GET is the only method with range handling (RFC 9110 section 14.2): HEAD describes the whole file
        status, headers, body = answer(path, "HEAD", **request_headers)
        assert (status, sorted(headers.items()), body) == (get_status, sorted(get_headers.items()), b""), \
            request_headers


def test_an_empty_file(tmp_path: Path) -> None:
    path = tmp_path / "empty.bin"
    path.write_bytes(b"")
    assert answer(path)[::2] == (200, b"")
    assert answer(path)[1]["content-length"] == "0"
    status, headers, _ = answer(path, range="bytes=0-")
    assert (status, headers["content-range"]) == (416, "bytes */0")


def test_a_small_whole_file_is_preloaded(small_file: tuple[Path, bytes], monkeypatch: pytest.MonkeyPatch) -> None:
    path, data = small_file
    request = scope()
    response = DownloadResponse(path, media_type="application/octet-stream", stat_result=os.stat(path))
    response.preload(Headers(scope=request))
    assert response.preloaded
    monkeypatch.setattr(downloads, "read_at", None)  # any further read would fail
    sent = call_asgi(response, request)
    assert (sent[0]["status"], body_of(sent)) == (200, data)


def test_a_preloaded_body_is_not_sent_to_head(small_file: tuple[Path, bytes]) -> None:
    path, _ = small_file
    response = DownloadResponse(path, media_type="application/octet-stream", stat_result=os.stat(path))
    response.preload(Headers(scope=scope()))
    sent = call_asgi(response, scope("HEAD"))
    assert (sent[0]["status"], body_of(sent)) == (200, b"")


def test_ranges_apply_only_to_a_200_answer(small_file: tuple[Path, bytes]) -> None:
    path, data = small_file
    response = DownloadResponse(path, 203, media_type="application/octet-stream", stat_result=os.stat(path))
    sent = call_asgi(response, scope(headers=[(b"range", b"bytes=0-9")]))
    assert (sent[0]["status"], body_of(sent)) == (203, data)
