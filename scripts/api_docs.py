"""Render ``docs/api-routes.md``, the table of every HTTP route, from the app's own OpenAPI schema.

    python scripts/api_docs.py            # rewrite docs/api-routes.md
    python scripts/api_docs.py --check    # exit 1 when docs/api-routes.md differs from what the app serves

The app is built the way the tests build it (``create_app`` on settings that point at a temporary data dir
and a SQLite file in it; nothing is migrated or served) and no ``VIDSCENE_*`` variable is read, so the table
depends on the code alone. Rows are sorted by path, then method, so moving a router does not reorder them.
``tests/api/test_api_docs.py`` runs the check, so a route changed without regenerating the table fails CI.
"""

from __future__ import annotations

import argparse
import difflib
import sys
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from fastapi import FastAPI

REPO = Path(__file__).resolve().parent.parent
DEFAULT_OUTPUT = REPO / "docs" / "api-routes.md"
METHOD_ORDER = ("GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS")
# Every route documents 500 (schemas.error_responses adds it); the table says so once instead of per row.
ALWAYS_POSSIBLE = "500"


@dataclass(frozen=True)
class Operation:
    """One row of the table: a method on a path, as the OpenAPI schema describes it."""

    method: str
    path: str
    auth: bool
    scopes: tuple[str, ...]  # what a personal API token needs; none: the login token only
    summary: str
    success: tuple[str, ...]
    errors: tuple[str, ...]


def build_app(data_dir: Path) -> FastAPI:
    """The API as ``create_app`` builds it, on throw-away settings in ``data_dir`` (no environment read)."""
    # Imported here, after ``main`` has put this checkout first on the path: the table documents this tree.
    from pydantic_settings import BaseSettings, PydanticBaseSettingsSource

    from vidscene.api.app import create_app
    from vidscene.config import Settings

    class DocSettings(Settings):
        @classmethod
        def settings_customise_sources(cls, settings_cls: type[BaseSettings],
                                       init_settings: PydanticBaseSettingsSource,
                                       env_settings: PydanticBaseSettingsSource,
                                       dotenv_settings: PydanticBaseSettingsSource,
                                       file_secret_settings: PydanticBaseSettingsSource,
                                       ) -> tuple[PydanticBaseSettingsSource, ...]:
            return (init_settings,)  # only the values given below, never VIDSCENE_* from the environment

    # A fixed secret keeps create_app from generating one into the data dir; nothing is ever signed with it.
    settings = DocSettings(data_dir=data_dir, database_url=f"sqlite:///{data_dir / 'vidscene.db'}",
                           jwt_secret="api-docs-" + "x" * 55)
    return create_app(settings)


def openapi_schema() -> dict[str, Any]:
    """The app's OpenAPI document (what ``GET /openapi.json`` serves)."""
    with tempfile.TemporaryDirectory(prefix="vidscene-api-docs-") as tmp:
        app = build_app(Path(tmp))
        try:
            return app.openapi()
        finally:
            app.state.context.engine.dispose()


def operations(schema: dict[str, Any]) -> list[Operation]:
    """Every operation of ``schema``, sorted by path and then by ``METHOD_ORDER``.

    ``auth`` is whether the operation lists a security requirement (FastAPI adds the bearer scheme to every
    route that depends on the token), ``scopes`` the scopes that requirement names (``api.auth``);
    ``success`` are its 1xx-3xx statuses, ``errors`` the others but 500.
    """
    found: list[Operation] = []
    for path, item in schema.get("paths", {}).items():
        for method, operation in item.items():
            if method.upper() not in METHOD_ORDER or not isinstance(operation, dict):
                continue
            codes = sorted(str(code) for code in operation.get("responses", {}))
            security = operation.get("security") or []
            found.append(Operation(
                method=method.upper(),
                path=path,
                auth=bool(security),
                scopes=tuple(sorted({scope for requirement in security for scopes in requirement.values()
                                     for scope in scopes})),
                summary=str(operation.get("summary", "")).strip(),
                success=tuple(code for code in codes if code[:1] in "123"),
                errors=tuple(code for code in codes if code[:1] not in "123" and code != ALWAYS_POSSIBLE),
            ))
    return sorted(found, key=lambda op: (op.path, METHOD_ORDER.index(op.method)))


def _auth(op: Operation) -> str:
    if not op.auth:
        return "no"
    return ", ".join(f"`{scope}`" for scope in op.scopes) if op.scopes else "login"


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def render(schema: dict[str, Any]) -> str:
    """The Markdown of ``docs/api-routes.md`` for ``schema``; the same schema always gives the same text."""
    ops = operations(schema)
    lines = [
        "# HTTP routes",
        "",
        "<!-- Generated by scripts/api_docs.py from the app's OpenAPI schema. Do not edit by hand: run",
        "     `python scripts/api_docs.py` after changing a route and commit the result. -->",
        "",
        "Every route the server documents in its OpenAPI schema (`GET /openapi.json`, browsable at `/docs`),",
        "generated from the code by `scripts/api_docs.py`; `tests/api/test_api_docs.py` fails when this file",
        "and the code disagree. What the routes mean, their bodies and their rules: [api.md](api.md).",
        "",
        f"{len(ops)} operations. **auth**: `login` needs `Authorization: Bearer <jwtToken>` (the token",
        "`POST /user/account/login` returns) and refuses personal API tokens; a scope (`scenes:read`,",
        "`scenes:write`) takes the login token or a personal API token (`vst_...`) that has that scope;",
        "`no` needs no token. **success** and **errors** are the statuses the schema",
        "documents; every error body is JSON `{\"error\": \"...\"}`, and any route may also answer 500.",
        "",
        "| method | path | auth | summary | success | errors |",
        "| --- | --- | --- | --- | --- | --- |",
    ]
    for op in ops:
        lines.append(f"| {op.method} | `{op.path}` | {_auth(op)} | {_cell(op.summary)} | "
                     f"{', '.join(op.success)} | {', '.join(op.errors)} |")
    return "\n".join(lines) + "\n"


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--check", action="store_true",
                        help="do not write; exit 1 when the file differs from what the app serves")
    parser.add_argument("--output", type=Path, default=DEFAULT_OUTPUT, help="default: docs/api-routes.md")
    args = parser.parse_args(argv)
    if str(REPO) not in sys.path:
        sys.path.insert(0, str(REPO))  # document this checkout, whatever else is installed
    return write_or_check(args.output, render(openapi_schema()), check=args.check,
                          stale="does not match the app's routes; run `python scripts/api_docs.py`")


def write_or_check(output: Path, text: str, *, check: bool, stale: str) -> int:
    """Write a generated file, or (``check``) exit status 1 with a diff when the checked-in one differs; the
    one behaviour of every generated file's script (this one and ``web_api_types.py``)."""
    shown = output.relative_to(REPO) if output.is_relative_to(REPO) else output
    if not check:
        output.parent.mkdir(parents=True, exist_ok=True)
        output.write_text(text, encoding="utf-8")
        print(f"wrote {shown}")
        return 0
    current = output.read_text(encoding="utf-8") if output.is_file() else ""
    if current == text:
        print(f"{shown} is up to date")
        return 0
    diff = difflib.unified_diff(current.splitlines(keepends=True), text.splitlines(keepends=True),
                                fromfile=f"{shown} (checked in)", tofile=f"{shown} (from the app)")
    sys.stderr.write(f"{shown} {stale} and commit the result.\n")
    sys.stderr.writelines(diff)
    return 1


if __name__ == "__main__":
    sys.exit(main())
