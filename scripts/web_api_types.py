"""Generate ``vidscene/web/src/api/schema.d.ts``, the web app's API types, from the app's own OpenAPI schema.

    python scripts/web_api_types.py            # rewrite vidscene/web/src/api/schema.d.ts
    python scripts/web_api_types.py --check    # exit 1 when the checked-in file differs from what the app serves

The schema is the one ``scripts/api_docs.py`` documents (``create_app`` on throw-away settings, no
``VIDSCENE_*`` read), turned into TypeScript by openapi-typescript. The generator lives in the npm workspace
``vidscene/web/tools/api-types`` with a TypeScript 5 of its own (openapi-typescript drives the TypeScript 5
compiler API; the app itself builds with TypeScript 7), installed by ``npm ci`` in ``vidscene/web`` as
``scripts/build-web.sh`` runs it. ``tests/api/test_web_api_types.py`` runs the check, so a changed response
model without regenerated types fails CI.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path
from types import ModuleType

REPO = Path(__file__).resolve().parent.parent
WEB = REPO / "vidscene" / "web"
DEFAULT_OUTPUT = WEB / "src" / "api" / "schema.d.ts"
GENERATOR = WEB / "tools" / "api-types" / "node_modules" / "openapi-typescript" / "bin" / "cli.js"


class GeneratorMissingError(RuntimeError):
    """Node or the locked openapi-typescript is not installed."""


def _api_docs() -> ModuleType:
    """``scripts/api_docs.py``, which builds the app the one way both generated files are made from."""
    spec = importlib.util.spec_from_file_location("vidscene_api_docs_script", REPO / "scripts" / "api_docs.py")
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules.setdefault(spec.name, module)  # dataclasses look their module up by name
    spec.loader.exec_module(module)
    return module


def generate() -> str:
    """The TypeScript openapi-typescript writes for the app's schema now."""
    node = shutil.which("node")
    if node is None or not GENERATOR.is_file():
        raise GeneratorMissingError("node or openapi-typescript is missing: run `npm ci` in vidscene/web "
                               "(scripts/build-web.sh does)")
    if str(REPO) not in sys.path:
        sys.path.insert(0, str(REPO))  # generate from this checkout, whatever else is installed
    schema = _api_docs().openapi_schema()
    with tempfile.TemporaryDirectory(prefix="vidscene-web-types-") as tmp:
        source, target = Path(tmp) / "openapi.json", Path(tmp) / "schema.d.ts"
        source.write_text(json.dumps(schema, indent=1), encoding="utf-8")
        subprocess.run([node, str(GENERATOR), str(source), "--output", str(target)], check=True,
                       capture_output=True, timeout=120, cwd=WEB)
        return target.read_text(encoding="utf-8")


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--check", action="store_true",
                        help="do not write; exit 1 when the file differs from what the app's schema gives")
    parser.add_argument("--output", type=Path, default=DEFAULT_OUTPUT, help="default: vidscene/web/src/api/schema.d.ts")
    args = parser.parse_args(argv)
    try:
        text = generate()
    except GeneratorMissingError as exc:
        sys.stderr.write(f"{exc}\n")
        return 2
    return int(_api_docs().write_or_check(args.output, text, check=args.check,
                                          stale="does not match the app's schema; run "
                                                "`python scripts/web_api_types.py`"))


if __name__ == "__main__":
    sys.exit(main())
