"""Downloads from ``s3://`` counted in requests to the store: the web client's 1 MiB ``Range`` chunk is one
ranged ``GET`` (the object's size and date come with it, no ``HEAD``), and every answer is still the one
the data dir gives (ranges clamped at the end, 416 past it, ``If-Range`` gone stale, share links)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from tests.support.api_client import Api
from tests.support.scenes import seed_scene
from tests.support.trained import Deployment
from vidscene.storage import open_storage, scene_key

MiB = 1024 * 1024
DATA = bytes(range(256)) * (10 * 1024 + 3)  # 2.5 MiB and a bit: two whole chunks and a short one



def _seed(api: Api, tmp_path: Path, username: str) -> str:
    seeded = tmp_path / "seed"
    scene_id = seed_scene(Deployment(seeded, api.settings.database_url), username,  # type: ignore[arg-type]
                          name="Chunks", outputs={"splat_cloud": {4: DATA}}, total_iterations=4,
                          save_iterations=(4,), thumbnail=False, capture=False)
    storage = open_storage(seeded, api.settings.storage_url)
    assert storage.objects is not None
    storage.objects.put_bytes(scene_key(scene_id, "outputs/splat_cloud/4.splat"), DATA)
    return scene_id


def _count_requests(api: Api) -> list[str]:
    """The operations the API's store client sends from now on."""
    sent: list[str] = []
    client: Any = api.app.state.context.storage.objects.client

    def count(**kwargs: Any) -> None:
        sent.append(kwargs["model"].name)

    client.meta.events.register("before-call.s3", count)
    return sent


def test_a_chunk_is_one_request_to_the_store(s3_api: Api, tmp_path: Path) -> None:
    username, auth = s3_api.user()
    scene_id = _seed(s3_api, tmp_path, username)
    url = f"/user/scene/output/splat_cloud/{scene_id}"
    sent = _count_requests(s3_api)
    size = len(DATA)

    for start in range(0, size, MiB):
        last = min(start + MiB, size) - 1
        sent.clear()
        resp = s3_api.client.get(url, headers={**auth, "Range": f"bytes={start}-{start + MiB - 1}"})
        assert resp.status_code == 206 and resp.content == DATA[start:last + 1]
        assert resp.headers["content-range"] == f"bytes {start}-{last}/{size}"
        assert sent == ["GetObject"]
    etag = resp.headers["etag"]

    sent.clear()
    past = s3_api.client.get(url, headers={**auth, "Range": f"bytes={size}-{size + 10}"})
    assert past.status_code == 416 and past.headers["content-range"] == f"bytes */{size}"
    assert "error" in past.json() and sent == ["GetObject", "HeadObject"]  # the 416 takes a HEAD for the size

    stale = s3_api.client.get(url, headers={**auth, "Range": "bytes=0-99", "If-Range": '"not-it"'})
    assert stale.status_code == 200 and stale.content == DATA
    current = s3_api.client.get(url, headers={**auth, "Range": "bytes=5-9", "If-Range": etag})
    assert current.status_code == 206 and current.content == DATA[5:10]
    suffix = s3_api.client.get(url, headers={**auth, "Range": "bytes=-7"})  # not a chunk: as before
    assert suffix.status_code == 206 and suffix.content == DATA[-7:]

    token = s3_api.client.post(f"/user/scene/share/{scene_id}", headers=auth).json()["token"]
    sent.clear()
    shared = s3_api.client.get(f"/public/{token}/output/splat_cloud", headers={"Range": "bytes=100-199"})
    assert shared.status_code == 206 and shared.content == DATA[100:200] and sent == ["GetObject"]
    missing = s3_api.client.get(f"{url}?iteration=3", headers={**auth, "Range": "bytes=0-99"})
    assert missing.status_code == 404 and "error" in missing.json()
