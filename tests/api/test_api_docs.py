"""docs/api-routes.md is generated from the app (scripts/api_docs.py): it must match the code, and its auth
column must say what the routes enforce."""

from __future__ import annotations

from pathlib import Path
from types import ModuleType

import pytest

from tests.support.scripts import load_script
from vidscene.api.system import route_table


@pytest.fixture(scope="module")
def api_docs() -> ModuleType:
    return load_script("api_docs")


def test_checked_in_route_table_matches_the_app(api_docs: ModuleType, capsys: pytest.CaptureFixture[str]) -> None:
    code = api_docs.main(["--check"])
    assert code == 0, capsys.readouterr().err


def test_check_fails_with_a_clear_message_on_drift(api_docs: ModuleType, tmp_path: Path,
                                                   capsys: pytest.CaptureFixture[str]) -> None:
    stale = tmp_path / "api-routes.md"
    stale.write_text(api_docs.DEFAULT_OUTPUT.read_text(encoding="utf-8").replace("| Liveness check |", "| Alive |"),
                     encoding="utf-8")
    assert api_docs.main(["--check", "--output", str(stale)]) == 1
    err = capsys.readouterr().err
    assert "does not match the app's routes; run `python scripts/api_docs.py`" in err
    assert "-| GET | `/health` | no | Alive |" in err
    assert api_docs.main(["--check", "--output", str(tmp_path / "missing.md")]) == 1


def test_auth_column_agrees_with_what_routes_enforce(api_docs: ModuleType, tmp_path: Path) -> None:
    app = api_docs.build_app(tmp_path)
    try:
        documented = {(op.method, op.path): op.auth for op in api_docs.operations(app.openapi())}
        enforced = {(row.method, row.path): row.auth for row in route_table(app.routes)}
    finally:
        app.state.context.engine.dispose()
    assert documented == enforced
