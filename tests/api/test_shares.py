"""Share links: the owner makes, lists and revokes them; a live token opens the scene's public outputs
without login, with the same Range handling, and nothing else."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from sqlalchemy import update

from tests.support.api_client import Api
from tests.support.scenes import add_output, open_db
from vidscene.db.models import Share, utcnow


def _scene_with_outputs(api: Api, auth: dict[str, str], mp4_bytes: bytes, db_url: str) -> str:
    scene = api.scene_id(auth, mp4_bytes, output_types="splat_cloud,video,model", save_iterations="100",
                         total_iterations="200", scene_name="Garden")
    add_output(api, db_url, scene, "splat_cloud", 200, bytes(range(256)) * 5000)
    add_output(api, db_url, scene, "model", 200, b"secret weights")
    return scene


def _share(api: Api, auth: dict[str, str], scene: str, **body: Any) -> dict[str, Any]:
    resp = api.client.post(f"/user/scene/share/{scene}", headers=auth, **({"json": body} if body else {}))
    assert resp.status_code == 201, resp.text
    out: dict[str, Any] = resp.json()
    return out


def test_share_link_life(api: Api, auth: dict[str, str], mp4_bytes: bytes, db_url: str) -> None:
    scene = _scene_with_outputs(api, auth, mp4_bytes, db_url)
    share = _share(api, auth, scene)
    token = share["token"]
    assert len(token) >= 22 and all(c.isalnum() or c in "-_" for c in token)
    assert share["url"] == f"/s/{token}" and share["expires"] is None
    assert f'src="/s/{token}?embed=1"' in share["embed"]

    # without login: metadata (no checkpoint), the splat with Range, the page
    meta = api.client.get(f"/public/{token}/metadata")
    assert meta.status_code == 200
    body = meta.json()
    assert set(body["resources"]) == {"splat_cloud", "video"}
    assert body["uuid"] == token and body["name"] == "Garden"
    assert scene not in meta.text  # the scene id is not given away
    whole = api.client.get(f"/public/{token}/output/splat_cloud")
    assert whole.status_code == 200 and whole.content == bytes(range(256)) * 5000
    part = api.client.get(f"/public/{token}/output/splat_cloud?iteration=200", headers={"Range": "bytes=256-511"})
    assert part.status_code == 206 and part.content == bytes(range(256))
    assert part.headers["content-range"] == f"bytes 256-511/{256 * 5000}"
    assert api.client.get(f"/public/{token}/output/model").status_code == 404  # never public
    assert api.client.get(f"/public/{token}/output/video").status_code == 404  # not produced yet
    assert api.client.get(f"/public/{token}/output/nonsense").status_code == 400
    page = api.client.get(f"/s/{token}")
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    assert page.headers["content-security-policy"].endswith("; frame-ancestors *")
    assert "script-src 'self'" in page.headers["content-security-policy"]
    assert "x-frame-options" not in page.headers

    # the token grants nothing on the owner's routes
    as_bearer = {"Authorization": f"Bearer {token}"}
    assert api.client.get(f"/user/scene/metadata/{scene}", headers=as_bearer).status_code == 401

    listed = api.client.get(f"/user/scene/shares/{scene}", headers=auth).json()
    assert [s["token"] for s in listed["shares"]] == [token]

    # revoke: everything the token opened is gone
    assert api.client.delete(f"/user/scene/share/{scene}/{token}", headers=auth).status_code == 200
    for path in (f"/public/{token}/metadata", f"/public/{token}/output/splat_cloud", f"/s/{token}"):
        assert api.client.get(path).status_code == 404, path
    assert api.client.get(f"/public/{token}/metadata").json()["error"]
    assert api.client.delete(f"/user/scene/share/{scene}/{token}", headers=auth).status_code == 404


def test_expiry_and_scene_deletion_end_a_link(api: Api, auth: dict[str, str], mp4_bytes: bytes,
                                              db_url: str) -> None:
    scene = _scene_with_outputs(api, auth, mp4_bytes, db_url)
    expiring = _share(api, auth, scene, expires_in_days=7)
    assert expiring["expires"] is not None
    lasting = _share(api, auth, scene)
    with open_db(db_url) as session:
        session.execute(update(Share).where(Share.token == expiring["token"])
                        .values(expires_at=utcnow() - timedelta(seconds=1)))
        session.commit()
    assert api.client.get(f"/public/{expiring['token']}/metadata").status_code == 404
    assert api.client.get(f"/public/{lasting['token']}/metadata").status_code == 200
    assert api.client.delete(f"/user/scene/delete/{scene}", headers=auth).status_code == 200
    assert api.client.get(f"/public/{lasting['token']}/metadata").status_code == 404
    assert api.client.get(f"/s/{lasting['token']}").status_code == 404


def test_only_the_owner_manages_links(api: Api, auth: dict[str, str], mp4_bytes: bytes, db_url: str) -> None:
    scene = _scene_with_outputs(api, auth, mp4_bytes, db_url)
    token = _share(api, auth, scene)["token"]
    _, other = api.user()
    not_found = {"error": "Scene not found."}
    for method, path in [("POST", f"/user/scene/share/{scene}"), ("GET", f"/user/scene/shares/{scene}"),
                         ("DELETE", f"/user/scene/share/{scene}/{token}")]:
        resp = api.client.request(method, path, headers=other)
        assert (resp.status_code, resp.json()) == (404, not_found), path
        assert api.client.request(method, path).status_code == 401
    # another user's scene id with a real token of mine: still 404
    other_scene = api.scene_id(other, mp4_bytes)
    assert api.client.delete(f"/user/scene/share/{other_scene}/{token}", headers=other).status_code == 404
    assert api.client.get(f"/public/{token}/metadata").status_code == 200


def test_share_request_validation(api: Api, auth: dict[str, str], mp4_bytes: bytes, db_url: str) -> None:
    scene = _scene_with_outputs(api, auth, mp4_bytes, db_url)
    for days in (0, -1, 5000, "soon"):
        resp = api.client.post(f"/user/scene/share/{scene}", headers=auth, json={"expires_in_days": days})
        assert resp.status_code == 400, days
        assert "expires_in_days" in resp.json()["error"]
    assert api.client.get("/public/not-a-token/metadata").status_code == 404


def test_the_rest_of_the_app_may_not_be_framed(api: Api) -> None:
    resp = api.client.get("/health")
    assert resp.headers["x-frame-options"] == "DENY"
    assert resp.headers["content-security-policy"] == "frame-ancestors 'none'"
