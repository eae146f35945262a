"""Concurrent HTTP clients for ``bench/api.py``: wrk (a separate process) and its output, or an asyncio httpx
load generator in the bench's own process where wrk is missing, with the latency percentiles both report."""

from __future__ import annotations

import asyncio
import math
import random
import re
import statistics
import subprocess
import tempfile
import time

import httpx


def percentiles(samples: list[float]) -> dict[str, float]:
    ordered = sorted(samples)
    nearest_rank = max(0, math.ceil(0.99 * len(ordered)) - 1)
    return {"p50_ms": round(statistics.median(ordered) * 1000, 2), "p99_ms": round(ordered[nearest_rank] * 1000, 2)}


_UNIT_S = {"us": 1e-6, "ms": 1e-3, "s": 1.0, "m": 60.0, "h": 3600.0}


def _seconds(text: str) -> float:
    match = re.fullmatch(r"([\d.]+)(us|ms|s|m|h)", text)
    if match is None:
        raise ValueError(f"unexpected wrk duration {text!r}")
    return float(match[1]) * _UNIT_S[match[2]]


def parse_wrk(output: str) -> dict[str, float]:
    """requests/s, p50/p99 and error counts from ``wrk --latency`` output (wrk 4)."""
    result: dict[str, float] = {}
    for pct, key in (("50", "p50_ms"), ("99", "p99_ms")):
        match = re.search(rf"^\s+{pct}%\s+(\S+)\s*$", output, re.M)
        if match is None:
            raise ValueError(f"no {pct}% latency in wrk output:\n{output}")
        result[key] = round(_seconds(match[1]) * 1000, 2)
    match = re.search(r"^\s+(\d+) requests in ([\d.]+\w+),", output, re.M)
    if match is None:
        raise ValueError(f"no request count in wrk output:\n{output}")
    result["requests"] = int(match[1])
    result["seconds"] = round(_seconds(match[2]), 2)
    rate = re.search(r"^Requests/sec:\s+([\d.]+)", output, re.M)
    result["requests_per_s"] = float(rate[1]) if rate else 0.0
    non2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", output)
    result["non_2xx"] = int(non2xx[1]) if non2xx else 0
    sockets = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", output)
    result["socket_errors"] = sum(int(x) for x in sockets.groups()) if sockets else 0
    result["timeouts"] = int(sockets[4]) if sockets else 0
    return result


def run_wrk(url: str, token: str, clients: int, duration: int, script: str | None = None) -> dict[str, float]:
    # A timeout longer than the run keeps slow answers in the latency histogram instead of dropping them.
    cmd = ["wrk", "-c", str(clients), "-t", "2", "-d", f"{duration}s", "--latency", "--timeout", f"{duration + 10}s",
           "-H", f"Authorization: Bearer {token}"]
    with tempfile.NamedTemporaryFile("w", suffix=".lua", prefix="vidscene-bench-") as lua:
        if script is not None:
            lua.write(script)
            lua.flush()
            cmd += ["-s", lua.name]
        output = subprocess.run([*cmd, url], check=True, capture_output=True, text=True).stdout
    return parse_wrk(output)


async def httpx_load(urls: list[str], token: str, clients: int, duration: float,
                     pause_s: float) -> dict[str, float]:
    """``clients`` connections cycling through ``urls`` for ``duration`` seconds, ``pause_s`` (jittered) apart;
    the figures ``parse_wrk`` gives."""
    latencies: list[float] = []
    errors = 0
    limits = httpx.Limits(max_connections=clients, max_keepalive_connections=clients)
    async with httpx.AsyncClient(headers={"Authorization": f"Bearer {token}"}, limits=limits, timeout=60) as client:
        deadline = time.perf_counter() + duration

        async def one(seed: int) -> None:
            nonlocal errors
            rng = random.Random(seed)
            n = seed
            while time.perf_counter() < deadline:
                started = time.perf_counter()
                try:
                    ok = (await client.get(urls[n % len(urls)])).status_code < 400
                except httpx.HTTPError:
                    ok = False
                latencies.append(time.perf_counter() - started)
                errors += not ok
                n += 1
                if pause_s:
                    await asyncio.sleep(rng.uniform(pause_s / 2, pause_s * 3 / 2))

        started = time.perf_counter()
        await asyncio.gather(*(one(i) for i in range(clients)))
        elapsed = time.perf_counter() - started
    return {**percentiles(latencies), "requests": len(latencies), "seconds": round(elapsed, 2),
            "requests_per_s": round(len(latencies) / elapsed, 1), "non_2xx": errors, "socket_errors": 0,
            "timeouts": 0}
