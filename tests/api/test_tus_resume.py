"""Resumable uploads against a real ``vidscene serve`` process, driven by an independent tus client
(``tuspy``) and by a raw socket that drops the connection half-way through a PATCH, on SQLite and PostgreSQL."""

from __future__ import annotations

import base64
import contextlib
import socket
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from tusclient import client as tus_client

from tests.support.api_client import PASSWORD
from tests.support.cluster import Cluster
from tests.support.scenes import files_under
from tests.support.videos import encode_video

FIELDS = {"training_mode": "gaussian", "output_types": "splat_cloud,video", "save_iterations": "100",
          "total_iterations": "200"}
TUS = {"Tus-Resumable": "1.0.0"}


@pytest.fixture
def served(tmp_path: Path, db_url: str) -> Iterator[tuple[str, dict[str, str], Cluster]]:
    """``vidscene serve`` (no worker) on this test's database, and a logged-in user's headers."""
    cluster = Cluster.create(tmp_path, database_url=db_url)
    cluster.serve(embedded_worker=False)
    try:
        base = cluster.base_url
        assert httpx.post(f"{base}/user/account/register", json={"username": "resumer", "password": PASSWORD},
                          timeout=30).status_code == 201
        token = httpx.post(f"{base}/user/account/login", json={"username": "resumer", "password": PASSWORD},
                           timeout=30).json()["jwtToken"]
        yield base, {"Authorization": f"Bearer {token}"}, cluster
    finally:
        cluster.stop()


@pytest.fixture(scope="module")
def video(tmp_path_factory: pytest.TempPathFactory) -> bytes:
    path = tmp_path_factory.mktemp("resume-media") / "walk.mp4"
    return encode_video(path, frames=20, size=(160, 120)).read_bytes()


def _history(base: str, auth: dict[str, str]) -> list[str]:
    ids: list[str] = httpx.get(f"{base}/user/scene/history", headers=auth, timeout=30).json()["resources"]
    return ids


def test_a_connection_cut_mid_patch_resumes_and_makes_one_scene(served: tuple[str, dict[str, str], Cluster],
                                                                video: bytes, tmp_path: Path) -> None:
    base, auth, cluster = served
    meta = ",".join(f"{k} {base64.b64encode(v.encode()).decode()}"
                    for k, v in {"filename": "walk.mp4", **FIELDS}.items())
    created = httpx.post(f"{base}/user/scene/uploads", timeout=30,
                         headers={**auth, **TUS, "Upload-Length": str(len(video)), "Upload-Metadata": meta})
    assert created.status_code == 201, created.text
    url = url_cut = created.headers["Location"]

    # Half the body of a PATCH that announces all of it, then the connection goes away.
    half = len(video) // 2
    head = (f"PATCH {url} HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: {auth['Authorization']}\r\n"
            f"Tus-Resumable: 1.0.0\r\nUpload-Offset: 0\r\nContent-Type: application/offset+octet-stream\r\n"
            f"Content-Length: {len(video)}\r\n\r\n").encode()
    with socket.create_connection(("127.0.0.1", cluster.port), timeout=10) as sock:
        sock.sendall(head + video[:half])
        time.sleep(0.3)  # let the server read what was sent before the FIN

    # The server keeps (and counts) what arrived; a HEAD says where to go on, once the cut PATCH ended.
    deadline = time.monotonic() + 20
    offset = 0
    while time.monotonic() < deadline:
        r = httpx.head(f"{base}{url}", headers={**auth, **TUS}, timeout=30)
        assert r.status_code == 200
        offset = int(r.headers["Upload-Offset"])
        if offset:
            break
        time.sleep(0.1)
    assert offset == half
    assert _history(base, auth) == []

    # A PATCH from the wrong place is refused; tuspy, given the upload's URL, asks the server where it
    # stands (HEAD) and sends the rest from there, in chunks.
    wrong = httpx.patch(f"{base}{url}", content=video, timeout=30,
                        headers={**auth, **TUS, "Upload-Offset": "0",
                                 "Content-Type": "application/offset+octet-stream"})
    assert wrong.status_code == 409
    path = tmp_path / "walk.mp4"
    path.write_bytes(video)
    tus = tus_client.TusClient(f"{base}/user/scene/uploads", headers=auth)
    resumed = tus.uploader(str(path), url=f"{base}{url}", chunk_size=len(video) // 5 + 1)
    assert resumed.offset == half
    resumed.upload()
    assert resumed.offset == len(video)
    (scene_id,) = _history(base, auth)
    assert httpx.get(f"{base}{url}", headers=auth, timeout=30).json()["id"] == scene_id
    stored = cluster.data_dir / "scenes" / scene_id / "upload" / "video.mp4"
    assert stored.read_bytes() == video
    assert files_under(cluster.data_dir / "tmp") == []
    # The end sent again (a lost answer): the same scene, still one.
    again = httpx.patch(f"{base}{url}", content=b"", timeout=30,
                        headers={**auth, **TUS, "Upload-Offset": str(len(video)),
                                 "Content-Type": "application/offset+octet-stream"})
    assert again.status_code == 204 and again.headers["Upload-Scene-Id"] == scene_id
    assert _history(base, auth) == [scene_id]

    # A whole upload by tuspy, created by it with the form's fields as metadata.
    fresh = tus.uploader(str(path), chunk_size=len(video) // 3 + 1,
                         metadata={"filename": "walk.mp4", "scene_name": "By tuspy", **FIELDS})
    fresh.upload()
    second = httpx.get(str(fresh.url), headers=auth, timeout=30).json()["id"]
    assert _history(base, auth) == [scene_id, second]
    assert httpx.get(f"{base}/user/scene/name/{second}", headers=auth, timeout=30).json()["name"] == "By tuspy"

    # Two PATCHes at once on one upload: one appends, the other is refused (423 while the first holds the
    # upload, 409 if it came after), and the stored video is exactly the file.
    created = httpx.post(f"{base}/user/scene/uploads", timeout=30,
                         headers={**auth, **TUS, "Upload-Length": str(len(video)), "Upload-Metadata": meta})
    url = created.headers["Location"]
    first_head = head.replace(f"PATCH {url_cut}".encode(), f"PATCH {url}".encode())
    with socket.create_connection(("127.0.0.1", cluster.port), timeout=30) as sock:
        sock.sendall(first_head + video[:half])
        time.sleep(0.5)
        rival = httpx.patch(f"{base}{url}", content=video, timeout=60,
                            headers={**auth, **TUS, "Upload-Offset": "0",
                                     "Content-Type": "application/offset+octet-stream"})
        with contextlib.suppress(OSError):  # the rival won and the server answered this one early
            sock.sendall(video[half:])
        answer = sock.recv(65536).decode("latin-1")
    statuses = sorted([rival.status_code, int(answer.split(" ", 2)[1])])
    assert statuses in ([204, 409], [204, 423]), (statuses, rival.text, answer[:300])
    third = httpx.get(f"{base}{url}", headers=auth, timeout=30).json()["id"]
    assert (cluster.data_dir / "scenes" / third / "upload" / "video.mp4").read_bytes() == video
    assert _history(base, auth) == [scene_id, second, third]
