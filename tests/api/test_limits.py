"""Per-user limits (``VIDSCENE_USER_MAX_QUEUED``, ``VIDSCENE_USER_QUOTA_BYTES``): refused before a job exists,
and before the body is read when the request announces its size; ``GET /user/account/usage`` shows them."""

from __future__ import annotations

from typing import Any

from tests.support.api_client import Api, ApiFactory
from tests.support.scenes import add_output, set_job
from tests.support.uploads import FIELDS, big_file_then_fields, create, scene_count, stream_upload

MiB = 1024 * 1024


def usage(api: Api, auth: dict[str, str]) -> dict[str, Any]:
    resp = api.client.get("/user/account/usage", headers=auth)
    assert resp.status_code == 200, resp.text
    body: dict[str, Any] = resp.json()
    return body


def big_upload(api: Api, auth: dict[str, str], file_bytes: int, video: bytes) -> Any:
    """A video's first bytes, then zeros up to ``file_bytes``: it passes the format check on its head."""
    body, total = big_file_then_fields(FIELDS, {}, file_bytes, first_bytes=video)
    return stream_upload(api, auth, "/user/scene/new", body, total)


def test_the_queue_limit_refuses_a_new_scene_before_its_body(api_factory: ApiFactory, mp4_bytes: bytes,
                                                             db_url: str) -> None:
    api = api_factory(user_max_queued=2)
    _, auth = api.user()
    first = api.scene_id(auth, mp4_bytes)
    api.scene_id(auth, mp4_bytes)
    assert usage(api, auth) == {"queued": 2, "max_queued": 2, "bytes": 2 * len(mp4_bytes), "quota_bytes": None}

    answer = big_upload(api, auth, 8 * MiB, mp4_bytes)
    assert (answer.status, answer.read_before_answer) == (429, 0)
    assert "2 scenes waiting or processing" in answer.error
    resumable = create(api, auth, len(mp4_bytes))
    assert resumable.status_code == 429 and resumable.headers["Retry-After"]
    assert scene_count(api) == 2

    _, other = api.user()  # the limit is each user's own
    api.scene_id(other, mp4_bytes)
    set_job(db_url, first, state="done")  # a finished scene leaves the queue: room for one more
    api.scene_id(auth, mp4_bytes)
    assert usage(api, auth)["queued"] == 2


def test_the_quota_refuses_an_upload_that_would_pass_it(api_factory: ApiFactory, mp4_bytes: bytes,
                                                        db_url: str) -> None:
    quota = len(mp4_bytes) + 3 * MiB
    api = api_factory(user_quota_bytes=quota)
    _, auth = api.user()
    scene = api.scene_id(auth, mp4_bytes)
    add_output(api, db_url, scene, "splat_cloud", 100, bytes(MiB))
    assert usage(api, auth) == {"queued": 1, "max_queued": None, "bytes": len(mp4_bytes) + MiB,
                                "quota_bytes": quota}

    answer = big_upload(api, auth, 8 * MiB, mp4_bytes)  # announced by Content-Length: refused unread
    assert (answer.status, answer.read_before_answer) == (413, 0)
    assert "storage quota" in answer.error
    assert create(api, auth, 2 * MiB + 1).status_code == 413  # tus: Upload-Length
    # Within the form's allowance the length cannot tell: the bytes past the quota are refused as they come.
    answer = big_upload(api, auth, 2 * MiB + MiB // 2, mp4_bytes)
    assert answer.status == 413 and 0 < answer.read_before_answer < answer.total
    # A resumable upload being sent counts with its announced size.
    assert create(api, auth, 2 * MiB).status_code == 201
    assert usage(api, auth)["bytes"] == len(mp4_bytes) + 3 * MiB
    assert create(api, auth, 1).status_code == 413
    assert scene_count(api) == 1
