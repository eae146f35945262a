"""vidscene/web/src/api/schema.d.ts is generated from the app's OpenAPI schema (scripts/web_api_types.py): the
checked-in file must be what the server's schema gives now, so the web app's types cannot drift from it."""

from __future__ import annotations

from pathlib import Path
from types import ModuleType

import pytest

from tests.support.scripts import load_script
from tests.support.services import unavailable


@pytest.fixture(scope="module")
def web_api_types() -> ModuleType:
    module = load_script("web_api_types")
    if not module.GENERATOR.is_file():
        unavailable("openapi-typescript is not installed (run scripts/build-web.sh or `npm ci` in vidscene/web)")
    return module


def test_checked_in_types_match_the_schema(web_api_types: ModuleType, capsys: pytest.CaptureFixture[str]) -> None:
    assert web_api_types.main(["--check"]) == 0, capsys.readouterr().err


def test_check_names_the_drift(web_api_types: ModuleType, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    # The drift issue #24 found: the metadata's scene name missing from the hand-written types.
    current = web_api_types.DEFAULT_OUTPUT.read_text(encoding="utf-8")
    stale = tmp_path / "schema.d.ts"
    marker = "        SceneMetadata: {"
    assert marker in current
    start = current.index(marker)
    name_line = current.index("            name: string;\n", start)
    stale.write_text(current[:name_line] + current[name_line + len("            name: string;\n"):], encoding="utf-8")
    assert web_api_types.main(["--check", "--output", str(stale)]) == 1
    err = capsys.readouterr().err
    assert "does not match the app's schema; run `python scripts/web_api_types.py`" in err
    assert "+            name: string;" in err
