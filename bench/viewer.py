"""Benchmark: what opening a trained scene costs a visitor: bytes on the wire and time to first picture of the
scene page in Chromium, on an unthrottled loopback and on a 20 Mbit/s link (CDP
``Network.emulateNetworkConditions``), before and after the web app was made to load fast.

- **before**: the built app served by Starlette's plain ``StaticFiles`` (what the app had before
  ``vidscene/api/webapp.py``: no precompressed variants, no ``Cache-Control``), from a copy of ``dist`` without
  the ``.br``/``.gz`` files, opening a scene that has no SPZ, so the viewer loads the ``.splat`` (as every scene
  did before SPZ existed);
- **after**: the same app served as it is now (brotli, immutable assets), opening the same trained scene with
  its SPZ.

Both servers run at once on two loopback ports over one data dir into which the scene (outputs of
``vidscene run``) is seeded twice. Each visit gets a fresh Chromium profile (a first visit), then the same
profile loads the page again (a returning visitor). "First picture" is the first animation frame in which the
viewer canvas differs from its clear colour on more than 1% of a 64x48 sample, in ms since navigation start;
to read it back the page's WebGL contexts are created with ``preserveDrawingBuffer`` (both variants alike).

    python bench/gaussian.py ...  or  vidscene run VIDEO --out DIR --preset preview --outputs spz,splat_cloud,...
    python bench/viewer.py --scene-dir DIR --rounds 3
"""

from __future__ import annotations

import argparse
import json
import os
import secrets
import shutil
import statistics
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # the repo root, for tests.support

from tests.support.server import free_port, wait_healthy

ROOT = Path(__file__).resolve().parents[1]
DIST = ROOT / "vidscene" / "web" / "dist"
CHROMIUM = Path(os.environ.get("VIDSCENE_TEST_CHROMIUM", "/usr/bin/chromium"))
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-quic",
                 "--no-first-run", "--disable-component-update", "--disable-sync"]
JWT_SECRET = "viewer-bench-secret-not-for-production-0123456789"
PASSWORD = "correct horse battery"
CLEAR = (0x10, 0x13, 0x1A)  # the viewer's clear colour (vidscene/web/src/viewer/stage.ts)

# Runs before the app's scripts: logs in (the token in localStorage, as the app keeps it), keeps WebGL
# pictures readable, and watches for the first frame with something drawn.
PROBE = """
(() => {
  localStorage.setItem("vidscene.token", %(token)s);
  localStorage.setItem("vidscene.username", %(username)s);
  const getContext = HTMLCanvasElement.prototype.getContext;
  HTMLCanvasElement.prototype.getContext = function (type, attrs) {
    if (type === "webgl2" || type === "webgl") attrs = { ...(attrs || {}), preserveDrawingBuffer: true };
    return getContext.call(this, type, attrs);
  };
  window.__firstPicture = null;
  const probe = document.createElement("canvas");
  probe.width = 64;
  probe.height = 48;
  const check = () => {
    const canvas = document.querySelector(".viewer-canvas");
    if (canvas && canvas.width > 1) {
      const ctx = probe.getContext("2d", { willReadFrequently: true });
      ctx.drawImage(canvas, 0, 0, 64, 48);
      const d = ctx.getImageData(0, 0, 64, 48).data;
      let drawn = 0;
      for (let i = 0; i < d.length; i += 4) {
        if (Math.abs(d[i] - %(r)d) + Math.abs(d[i + 1] - %(g)d) + Math.abs(d[i + 2] - %(b)d) > 40) drawn++;
      }
      if (drawn > 0.01 * 64 * 48) {
        window.__firstPicture = performance.now();
        return;
      }
    }
    requestAnimationFrame(check);
  };
  requestAnimationFrame(check);
})();
"""


def serve(variant: str, dist: Path, port: int) -> None:
    """The API and the web app from ``dist``; ``before`` serves the app with Starlette's plain StaticFiles."""
    import uvicorn
    from starlette.staticfiles import StaticFiles

    from vidscene.api import app as app_module
    from vidscene.api import webapp
    from vidscene.config import Settings

    app_module.WEB_DIST = dist
    if variant == "before":
        # The serving the app had before webapp.py existed: no precompressed files, no Cache-Control.
        webapp.WebAppFiles.get_response = StaticFiles.get_response  # type: ignore[method-assign]  # the bench's "before"
    api = app_module.create_app(Settings())
    uvicorn.run(api, host="127.0.0.1", port=port, log_level="warning")


@contextmanager
def server(variant: str, dist: Path, data_dir: Path) -> Iterator[str]:
    port = free_port()
    env = {**os.environ, "VIDSCENE_DATA_DIR": str(data_dir), "VIDSCENE_JWT_SECRET": JWT_SECRET,
           "VIDSCENE_EMBEDDED_WORKER": "false", "VIDSCENE_REGISTER_RATE_LIMIT": "1000/hour"}
    proc = subprocess.Popen([sys.executable, __file__, "--serve", variant, "--dist", str(dist), "--port", str(port)],
                            env=env, cwd=ROOT)
    base = f"http://127.0.0.1:{port}"
    try:
        wait_healthy(base, proc, logs=lambda: f"(the {variant} server)")
        yield base
    finally:
        proc.terminate()
        proc.wait(timeout=20)


def output_files(scene_dir: Path) -> dict[str, dict[int, Path]]:
    """What ``vidscene run`` wrote: output type -> iteration -> file."""
    found: dict[str, dict[int, Path]] = {}
    for type_dir in sorted((scene_dir / "outputs").iterdir()):
        for path in type_dir.iterdir():
            if path.is_file() and not path.name.endswith(".part"):
                found.setdefault(type_dir.name, {})[int(path.name.split(".")[0])] = path
    return found


def seed(data_dir: Path, username: str, name: str, files: dict[str, dict[int, Path]], scene_dir: Path) -> str:
    """A finished scene with these files, inserted the way the job engine leaves one."""
    from sqlalchemy import select

    from vidscene.db.models import Job, Output, Scene, User, utcnow
    from vidscene.db.session import make_engine, make_sessionmaker, write_session
    from vidscene.storage import Storage

    scene_id = secrets.token_urlsafe(16)
    target = Storage(data_dir).scene(scene_id)
    target.create()
    if (scene_dir / "thumbnail.jpg").is_file():
        shutil.copyfile(scene_dir / "thumbnail.jpg", target.thumbnail)
    rows = []
    for output_type, by_iteration in files.items():
        for iteration, path in by_iteration.items():
            dest = target.outputs_dir / output_type / path.name
            dest.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(path, dest)
            rows.append((output_type, iteration, str(dest.relative_to(target.root)), path.stat().st_size))
    iterations = sorted({it for by in files.values() for it in by})
    engine = make_engine(f"sqlite:///{data_dir / 'vidscene.db'}")
    try:
        with write_session(make_sessionmaker(engine)) as session:
            user = session.scalars(select(User).where(User.username == username)).one()
            now = utcnow()
            session.add(Scene(id=scene_id, user_id=user.id, name=name, training_mode="gaussian",
                              output_types=list(files), save_iterations=iterations,
                              total_iterations=iterations[-1], preset="preview", video_filename="upload/video.mp4",
                              video_info={}))
            session.flush()
            session.add(Job(scene_id=scene_id, state="done", stage="export", stage_done="export",
                            current_position=0, current_size=0, message="", error_code=0, started_at=now,
                            finished_at=now))
            for output_type, iteration, relpath, size in rows:
                session.add(Output(scene_id=scene_id, output_type=output_type, iteration=iteration, relpath=relpath,
                                   size=size))
    finally:
        engine.dispose()
    return scene_id


def visit(pw: Any, base: str, scene_id: str, token: str, username: str, profile: Path,
          mbit: float | None, latency_ms: float) -> dict[str, float]:
    """One page load: seconds to first picture, bytes on the wire by then and once the network is idle."""
    context = pw.chromium.launch_persistent_context(str(profile), executable_path=str(CHROMIUM), headless=True,
                                                    args=CHROMIUM_ARGS, viewport={"width": 1280, "height": 860})
    try:
        page = context.pages[0] if context.pages else context.new_page()
        page.add_init_script(PROBE % {"token": json.dumps(token), "username": json.dumps(username),
                                      "r": CLEAR[0], "g": CLEAR[1], "b": CLEAR[2]})
        cdp = context.new_cdp_session(page)
        cdp.send("Network.enable")
        if mbit is not None:
            rate = mbit * 1e6 / 8
            cdp.send("Network.emulateNetworkConditions", {"offline": False, "latency": latency_ms,
                                                          "downloadThroughput": rate, "uploadThroughput": rate})
        wire = {"bytes": 0.0}
        cdp.on("Network.loadingFinished", lambda e: wire.__setitem__("bytes", wire["bytes"] + e["encodedDataLength"]))
        page.goto(f"{base}/#/scene/{scene_id}", wait_until="commit")
        page.wait_for_function("() => window.__firstPicture !== null", timeout=180_000, polling=50)
        first_ms = float(page.evaluate("window.__firstPicture"))
        at_first = wire["bytes"]
        page.wait_for_load_state("networkidle", timeout=180_000)
        page.wait_for_timeout(500)
        return {"first_picture_s": first_ms / 1000, "bytes_at_first_picture": at_first, "bytes_total": wire["bytes"]}
    finally:
        context.close()


def span(rows: list[dict[str, Any]], key: str, fmt: str) -> str:
    """Median (range) of one figure over rows."""
    values = [float(r[key]) for r in rows]
    return f"{statistics.median(values):{fmt}} ({min(values):{fmt}}-{max(values):{fmt}})"


def load_average() -> float:
    return os.getloadavg()[0]


def main() -> None:
    args = _parse_args()
    if args.serve:
        serve(args.serve, args.dist, args.port)
        return

    from playwright.sync_api import sync_playwright

    from vidscene.db.migrate import upgrade

    files = output_files(args.scene_dir)
    _print_files(files)
    if "spz" not in files or "splat_cloud" not in files:
        sys.exit("the scene needs both spz and splat_cloud outputs")

    results: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory(prefix="viewer-bench-") as tmp_name:
        tmp = Path(tmp_name)
        data_dir = tmp / "data"
        data_dir.mkdir(mode=0o700)
        upgrade(f"sqlite:///{data_dir / 'vidscene.db'}")
        plain_dist = tmp / "dist-plain"
        shutil.copytree(DIST, plain_dist, ignore=shutil.ignore_patterns("*.br", "*.gz"))
        with server("after", DIST, data_dir) as after_base, server("before", plain_dist, data_dir) as before_base:
            username, token = _register_and_log_in(after_base)
            after_id = seed(data_dir, username, "Orbit (with SPZ)", files, args.scene_dir)
            older = {t: f for t, f in files.items() if t in ("splat_cloud", "point_cloud", "video")}
            before_id = seed(data_dir, username, "Orbit (before SPZ)", older, args.scene_dir)
            variants = {"before": (before_base, before_id), "after": (after_base, after_id)}
            with sync_playwright() as pw:
                results = _visit_rounds(pw, variants, token, username, tmp, args)
    if args.json:
        args.json.write_text(json.dumps(results, indent=1))
    _print_summary(results)


def _parse_args() -> argparse.Namespace:
    """The command line; ``--serve`` (with ``--dist`` and ``--port``) is how the bench starts its servers."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--scene-dir", type=Path, help="the --out directory of a `vidscene run` (gaussian mode)")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--mbit", type=float, default=20.0, help="the throttled link, Mbit/s both ways")
    parser.add_argument("--latency-ms", type=float, default=20.0, help="round-trip latency added when throttled")
    parser.add_argument("--json", type=Path, help="also write every visit as JSON")
    parser.add_argument("--serve", choices=["before", "after"], help=argparse.SUPPRESS)
    parser.add_argument("--dist", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--port", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if not args.serve:
        if args.scene_dir is None:
            parser.error("--scene-dir is required")
        if not (DIST / "index.html").is_file():
            parser.error("build the web app first: bash scripts/build-web.sh")
    return args


def _print_files(files: dict[str, dict[int, Path]]) -> None:
    print("files of the scene (bytes):")
    for output_type, by_iteration in files.items():
        for iteration, path in sorted(by_iteration.items()):
            print(f"  {output_type:>15} @ {iteration:>5}: {path.stat().st_size:>12,}  {path.name}")


def _register_and_log_in(base: str) -> tuple[str, str]:
    """A new bench account's username and token."""
    username = f"bench_{secrets.token_hex(3)}"
    httpx.post(f"{base}/user/account/register", json={"username": username, "password": PASSWORD},
               timeout=60).raise_for_status()
    login = httpx.post(f"{base}/user/account/login", json={"username": username, "password": PASSWORD},
                       timeout=60)
    return username, login.json()["jwtToken"]


def _visit_rounds(pw: Any, variants: dict[str, tuple[str, str]], token: str, username: str, tmp: Path,
                  args: argparse.Namespace) -> list[dict[str, Any]]:
    """Every visit of every round, each printed as a JSON line as it ends.

    Rounds alternate which variant goes first; each variant gets a first and a repeat visit on loopback, then
    on the throttled link, each pair in a fresh profile.
    """
    results: list[dict[str, Any]] = []
    for round_no in range(args.rounds):
        order = ["before", "after"] if round_no % 2 == 0 else ["after", "before"]
        for mbit in (None, args.mbit):
            for variant in order:
                base, scene_id = variants[variant]
                profile = tmp / f"profile-{variant}-{round_no}-{mbit}"
                for visit_kind in ("first", "repeat"):
                    load = load_average()
                    figures = visit(pw, base, scene_id, token, username, profile, mbit, args.latency_ms)
                    row = {"variant": variant, "network": f"{mbit:g} Mbit/s" if mbit else "loopback",
                           "visit": visit_kind, "round": round_no, "load": round(load, 1), **figures}
                    results.append(row)
                    print(json.dumps(row), flush=True)
    return results


def _print_summary(results: list[dict[str, Any]]) -> None:
    """A Markdown table: median (range) over rounds of each variant, network and visit."""
    print("\nmedian (range) over rounds:")
    print("| variant | network | visit | first picture (s) | bytes at first picture | bytes in all | load |")
    print("| --- | --- | --- | --- | --- | --- | --- |")
    keys = sorted({(r["network"], r["visit"], r["variant"]) for r in results},
                  key=lambda k: (k[0] != "loopback", k[1], k[2] != "before"))
    for network, visit_kind, variant in keys:
        rows = [r for r in results if (r["network"], r["visit"], r["variant"]) == (network, visit_kind, variant)]

        loads = [r["load"] for r in rows]
        print(f"| {variant} | {network} | {visit_kind} | {span(rows, 'first_picture_s', '.2f')} | "
              f"{span(rows, 'bytes_at_first_picture', ',.0f')} | {span(rows, 'bytes_total', ',.0f')} | "
              f"{min(loads)}-{max(loads)} |")


if __name__ == "__main__":
    main()
