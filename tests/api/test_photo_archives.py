"""A zip of photos is an upload like a video: accepted when it is a safe archive of enough photos, refused
(415, nothing kept) with the reason when it is not: paths leaving the archive, links, bombs, too few photos."""

from __future__ import annotations

import io
import stat
import zipfile

import numpy as np
import pytest
from PIL import Image
from sqlalchemy import select

from tests.support.api_client import Api
from tests.support.scenes import files_under, open_db
from vidscene.db.models import Scene
from vidscene.storage import Storage


def _jpeg(seed: int) -> bytes:
    out = io.BytesIO()
    pixels = np.random.default_rng(seed).integers(0, 255, (48, 64, 3), dtype=np.uint8)
    Image.fromarray(pixels).save(out, format="JPEG")
    return out.getvalue()


def _zip(entries: dict[str, bytes], *, links: tuple[str, ...] = ()) -> bytes:
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, data in entries.items():
            archive.writestr(name, data)
        for name in links:
            info = zipfile.ZipInfo(name)
            info.external_attr = (stat.S_IFLNK | 0o777) << 16
            archive.writestr(info, "/etc/passwd")
    return out.getvalue()


PHOTOS = {f"IMG_{i:04d}.jpg": _jpeg(i) for i in range(10)}


def test_a_zip_of_photos_is_a_scene(api: Api, auth: dict[str, str], db_url: str) -> None:
    archive = _zip({**PHOTOS, "notes.txt": b"taken with a phone", "__MACOSX/._IMG_0000.jpg": b"\0"})
    resp = api.new_scene(auth, archive, filename="photos.zip")
    assert resp.status_code == 202, resp.text
    scene_id = resp.json()["id"]
    files = Storage(api.settings.data_dir).scene(scene_id)
    assert (files.upload_dir / "photos.zip").read_bytes() == archive
    with open_db(db_url) as session:
        scene = session.scalars(select(Scene)).one()
        assert scene.video_info["container"] == "zip" and scene.video_info["frame_count"] == 10
        assert (scene.video_info["width"], scene.video_info["height"]) == (64, 48)


@pytest.mark.parametrize(("entries", "links", "fragment"), [
    ({**PHOTOS, "../../evil.jpg": _jpeg(99)}, (), "outside itself"),
    ({**PHOTOS, "/etc/cron.d/x.jpg": _jpeg(99)}, (), "outside itself"),
    (PHOTOS, ("IMG_9999.jpg",), "a link"),
    ({**PHOTOS, "bomb.jpg": b"\0" * (8 * 1024 * 1024)}, (), "unpacks to"),
    (dict(list(PHOTOS.items())[:3]), (), "holds 3 photos"),
    ({"readme.txt": b"no photos here"}, (), "holds 0 photos"),
])
def test_unsafe_or_unusable_archives_are_refused(api: Api, auth: dict[str, str], db_url: str,
                                                 entries: dict[str, bytes], links: tuple[str, ...],
                                                 fragment: str) -> None:
    resp = api.new_scene(auth, _zip(entries, links=links), filename="photos.zip")
    assert resp.status_code == 415, resp.text
    assert fragment in resp.json()["error"]
    assert files_under(api.settings.data_dir) == []
    with open_db(db_url) as session:
        assert session.scalars(select(Scene)).all() == []


def test_a_damaged_archive_is_refused(api: Api, auth: dict[str, str]) -> None:
    resp = api.new_scene(auth, _zip(PHOTOS)[:-200], filename="photos.zip")
    assert resp.status_code == 415
    assert "damaged" in resp.json()["error"]
