"""Property-based requests generated from /openapi.json: no 5xx, and every answer matches its documentation.

Runs on SQLite only: what is under test is the HTTP contract, not the database.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
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
    response_schema_conformance,
    status_code_conformance,
)

from tests.api.api_helpers import TestClient, make_settings
from vidscene.api import create_app

MAX_EXAMPLES = 25


@schemathesis.serializer("application/offset+octet-stream")
def _offset_octet_stream(ctx: schemathesis.SerializationContext, value: Any) -> dict[str, Any]:
    """The body of a tus PATCH is raw bytes, sent as application/octet-stream bodies are."""
    return {"data": value if isinstance(value, bytes) else str(value).encode()}


@pytest.fixture
def fuzz_target(tmp_path: Path, sqlite_url: str, mp4_bytes: bytes) -> Iterator[tuple[schemathesis.BaseSchema,
                                                                                       dict[str, str]]]:
    app = create_app(make_settings(tmp_path / "data", sqlite_url, login_rate_limit="1000/minute"))
    with TestClient(app) as client:
        assert client.post("/user/account/register",
                           json={"username": "fuzzer", "password": "fuzzing password"}).status_code == 201
        token = client.post("/user/account/login",
                            json={"username": "fuzzer", "password": "fuzzing password"}).json()["jwtToken"]
        # one real scene, so generated ids sit next to a scene that exists
        assert client.post("/user/scene/new", headers={"Authorization": f"Bearer {token}"},
                           data={"training_mode": "gaussian", "output_types": "video", "save_iterations": "5",
                                 "total_iterations": "10"},
                           files={"file": ("v.mp4", mp4_bytes, "video/mp4")}).status_code == 202
        yield schemathesis.openapi.from_asgi("/openapi.json", app), {"Authorization": f"Bearer {token}"}


CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance, response_schema_conformance]


def _checker(operation: Any, mode: GenerationMode, authorization: str,
             statuses: dict[str, set[int]]) -> Callable[[], None]:
    @given(case=operation.as_strategy(generation_mode=mode))
    @settings(max_examples=MAX_EXAMPLES, deadline=None, database=None, derandomize=True,
              suppress_health_check=list(HealthCheck))
    def check(case: schemathesis.Case[Any]) -> None:
        # a real token replaces whatever Authorization value was generated for the bearer scheme
        case.headers["Authorization"] = authorization
        response = case.call_and_validate(checks=CHECKS)
        statuses.setdefault(operation.label, set()).add(response.status_code)

    return check


@pytest.mark.parametrize("mode", [GenerationMode.POSITIVE, GenerationMode.NEGATIVE])
def test_generated_requests_follow_the_schema(fuzz_target: tuple[schemathesis.BaseSchema, dict[str, str]],
                                              mode: GenerationMode) -> None:
    """Hypothesis drives each operation's strategy directly (schemathesis' pytest plugin does not load under
    this pytest); a failing example is reported with the operation it came from."""
    schema, auth = fuzz_target
    operations = [result.ok() for result in schema.get_all_operations()]  # type: ignore[union-attr]  # Err raises
    assert len(operations) == 32  # HEAD of an output is an operation of its own; 6 resumable-upload ones

    statuses: dict[str, set[int]] = {}
    for operation in operations:
        try:
            _checker(operation, mode, auth["Authorization"], statuses)()
        except Unsatisfiable:
            # an operation without parameters or body has nothing to negate
            assert mode is GenerationMode.NEGATIVE, operation.label
        except Exception as exc:
            raise AssertionError(f"{operation.label}: {exc}") from exc

    # the run really exercised the API: requests reached every operation with generated input
    assert len(statuses) >= (15 if mode is GenerationMode.POSITIVE else 10), statuses
    if mode is GenerationMode.POSITIVE:
        assert statuses["GET /health"] == {200}
        assert 200 in statuses["GET /user/scene/history"]
