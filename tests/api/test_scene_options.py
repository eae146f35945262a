"""``GET /user/scene/options``: the catalogue the server validates against is what it serves, without login."""

from __future__ import annotations

import pytest

from tests.support.api_client import Api
from vidscene import catalogue
from vidscene.api.errors import BadRequestError
from vidscene.api.scenes.service import parse_scene_request


def test_options_need_no_login_and_list_the_catalogue(api: Api) -> None:
    resp = api.client.get("/user/scene/options")
    assert resp.status_code == 200
    body = resp.json()
    modes = {m["name"]: m for m in body["training_modes"]}
    assert set(modes) == set(catalogue.TRAINING_MODES) == {"gaussian", "tensorf"}
    assert "splat_cloud" in modes["gaussian"]["outputs"] and "splat_cloud" not in modes["tensorf"]["outputs"]
    outputs = {o["name"]: o for o in body["output_types"]}
    assert outputs["video"]["media_type"] == "video/mp4"
    assert outputs["model"]["extensions"] == {"gaussian": ".ckpt", "tensorf": ".th"}
    presets = {p["name"]: p for p in body["presets"]}
    assert list(presets) == ["preview", "standard", "quality"]
    assert presets["quality"]["save_iterations"]["gaussian"] == [7000, 15000, 30000]
    assert body["default_preset"] == api.settings.default_preset
    assert body["limits"]["max_total_iterations"] == 30000
    assert body["limits"]["chunk_bytes"] == 1024 * 1024
    assert body["limits"]["max_upload_bytes"] == api.settings.max_upload_bytes


def test_every_advertised_choice_is_accepted_and_nothing_else(api: Api) -> None:
    """What the form offers is exactly what an upload may ask for: one catalogue for both."""
    body = api.client.get("/user/scene/options").json()
    for mode in body["training_modes"]:
        for preset in body["presets"]:
            total = preset["iterations"][mode["name"]]
            saves = ",".join(str(i) for i in preset["save_iterations"][mode["name"]])
            req = parse_scene_request({"training_mode": mode["name"], "output_types": ",".join(mode["outputs"]),
                                       "total_iterations": str(total), "save_iterations": saves})
            assert req.output_types == mode["outputs"]
            assert req.save_iterations[-1] == total
    tensorf = next(m for m in body["training_modes"] if m["name"] == "tensorf")
    for output_type in sorted(set(catalogue.OUTPUT_TYPES) - set(tensorf["outputs"])):
        with pytest.raises(BadRequestError, match=f"{output_type!r} needs training_mode=gaussian"):
            parse_scene_request({"training_mode": "tensorf", "output_types": output_type,
                                 "total_iterations": "10", "save_iterations": ""})
    with pytest.raises(BadRequestError, match="Invalid training_mode: 'nerfacto'"):
        parse_scene_request({"training_mode": "nerfacto", "output_types": "video", "total_iterations": "10",
                             "save_iterations": ""})
