"""Property-based requests generated from /openapi.json: no 5xx, and every answer matches its documentation.

Runs on SQLite only: what is under test is the HTTP contract, not the database. The default run keeps to a few
examples per operation; for a larger pass by hand set ``VIDSCENE_FUZZ_EXAMPLES`` (bench/RESULTS.md, API):

    VIDSCENE_FUZZ_EXAMPLES=300 .venv/bin/python -m pytest tests/api/test_schema_fuzz.py -k POSITIVE
"""

from __future__ import annotations

import os
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from hypothesis.errors import Unsatisfiable
from schemathesis import GenerationMode
from schemathesis.checks import (
    content_type_conformance,
    not_a_server_error,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from tests.support.api_client import TestClient, make_settings
from vidscene.api import create_app

MAX_EXAMPLES = int(os.environ.get("VIDSCENE_FUZZ_EXAMPLES", "25"))


@dataclass(frozen=True)
class Target:
    schema: schemathesis.BaseSchema
    authorization: str
    # Every other generated case of a route that names a scene or a share link is sent for these real ones,
    # so the checks also see the answers about things that exist, not only 404s for random ids.
    real: dict[str, str]


@schemathesis.serializer("application/offset+octet-stream")
def _offset_octet_stream(ctx: schemathesis.SerializationContext, value: Any) -> dict[str, Any]:
    """The body of a tus PATCH is raw bytes, sent as application/octet-stream bodies are."""
    return {"data": value if isinstance(value, bytes) else str(value).encode()}


@pytest.fixture
def fuzz_target(tmp_path: Path, sqlite_url: str, mp4_bytes: bytes) -> Iterator[Target]:
    app = create_app(make_settings(tmp_path / "data", sqlite_url, login_rate_limit="1000/minute"))
    with TestClient(app) as client:
        assert client.post("/user/account/register",
                           json={"username": "fuzzer", "password": "fuzzing password"}).status_code == 201
        token = client.post("/user/account/login",
                            json={"username": "fuzzer", "password": "fuzzing password"}).json()["jwtToken"]
        auth = {"Authorization": f"Bearer {token}"}
        created = client.post("/user/scene/new", headers=auth,
                              data={"training_mode": "gaussian", "output_types": "video", "save_iterations": "5",
                                    "total_iterations": "10"},
                              files={"file": ("v.mp4", mp4_bytes, "video/mp4")})
        assert created.status_code == 202
        scene_id = created.json()["id"]
        share = client.post(f"/user/scene/share/{scene_id}", headers=auth)
        assert share.status_code == 201, share.text
        yield Target(schemathesis.openapi.from_asgi("/openapi.json", app), auth["Authorization"],
                     {"scene_id": scene_id, "token": share.json()["token"]})


CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance, response_schema_conformance,
          response_headers_conformance]


def _checker(operation: Any, mode: GenerationMode, target: Target,
             statuses: dict[str, set[int]], calls: Counter[str]) -> Callable[[], None]:
    @given(case=operation.as_strategy(generation_mode=mode))
    @settings(max_examples=MAX_EXAMPLES, deadline=None, database=None, derandomize=True,
              suppress_health_check=list(HealthCheck))
    def check(case: schemathesis.Case[Any]) -> None:
        # a real token replaces whatever Authorization value was generated for the bearer scheme
        case.headers["Authorization"] = target.authorization
        if calls[operation.label] % 2 and operation.method.upper() != "DELETE":  # the real ones must last
            for name, value in target.real.items():
                if case.path_parameters and name in case.path_parameters:
                    case.path_parameters[name] = value
        response = case.call_and_validate(checks=CHECKS)
        statuses.setdefault(operation.label, set()).add(response.status_code)
        calls[operation.label] += 1

    return check


@pytest.mark.parametrize("mode", [GenerationMode.POSITIVE, GenerationMode.NEGATIVE])
def test_generated_requests_follow_the_schema(fuzz_target: Target, mode: GenerationMode) -> None:
    """Hypothesis drives each operation's strategy directly (schemathesis' pytest plugin does not load under
    this pytest); a failing example is reported with the operation it came from."""
    operations = [result.ok() for result in fuzz_target.schema.get_all_operations()]  # type: ignore[union-attr]  # Err raises
    # HEAD of an output is an operation of its own; 6 resumable-upload ones, 3 API token and 4 webhook ones
    assert len(operations) == 43

    statuses: dict[str, set[int]] = {}
    calls: Counter[str] = Counter()
    for operation in operations:
        try:
            _checker(operation, mode, fuzz_target, statuses, calls)()
        except Unsatisfiable:
            # an operation without parameters or body has nothing to negate
            assert mode is GenerationMode.NEGATIVE, operation.label
        except Exception as exc:
            raise AssertionError(f"{operation.label}: {exc}") from exc

    print(f"{mode.value}: {sum(calls.values())} cases over {len(calls)} operations; statuses {statuses}")
    # the run really exercised the API: requests reached every operation with generated input
    assert len(statuses) >= (15 if mode is GenerationMode.POSITIVE else 10), statuses
    if mode is GenerationMode.POSITIVE:
        assert statuses["GET /health"] == {200}
        assert 200 in statuses["GET /user/scene/history"]
