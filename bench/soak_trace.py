"""Follow every stage message of a kept soak run (``bench/soak.py --keep-logs DIR``) from send to run.

    .venv/bin/python bench/soak_trace.py DIR

Joins three sources by Celery task id: the "enqueued" lines (who sent which job's stage, when, from which
process), the worker's "received" / "succeeded" lines, and the broker's message table (a message the
embedded SQLite transport handed to a consumer is kept with ``visible = 0``). A message sent but never
received, and not waiting in the broker either, is a lost one; the report lists each with what happened
around it. Pool children that died by a signal are listed with the stage their last task ran.
"""

from __future__ import annotations

import argparse
import json
import re
import sqlite3
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

STAMP = r"(?P<t>\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3})"
ENQUEUED = re.compile(STAMP + r" INFO vidscene\.jobs\.celery_app: enqueued \[job=(?P<job>\d+) stage=(?P<stage>\w+) "
                      r"task_id=(?P<id>[0-9a-f-]+) pid=(?P<pid>\d+)")
RECEIVED = re.compile(STAMP + r" INFO celery\.worker\.strategy: Task vidscene\.stage\.(?P<stage>\w+)"
                      r"\[(?P<id>[0-9a-f-]+)\] received")
RAISED = re.compile(STAMP + r" ERROR celery\.app\.trace: Task vidscene\.stage\.\w+\[(?P<id>[0-9a-f-]+)\] "
                    r"raised (?P<why>.*?) \[")
SUCCEEDED = re.compile(STAMP + r" INFO celery\.app\.trace: Task vidscene\.stage\.\w+\[(?P<id>[0-9a-f-]+)\] succeeded")
SIGNALLED = re.compile(r"\[(?P<t>[\d\- :,]+): ERROR/MainProcess\] Process '(?P<name>[^']+)' pid:(?P<pid>\d+) "
                       r"exited with '(?P<how>[^']+)'")
STAGE_STARTED = re.compile(STAMP + r" INFO vidscene\.jobs\.runner: stage started \[scene=\S+ stage=(?P<stage>\w+) "
                           r"job=(?P<job>\d+)")


def when(stamp: str) -> datetime:
    return datetime.strptime(stamp, "%Y-%m-%d %H:%M:%S,%f")


@dataclass
class Message:
    task_id: str
    job: int
    stage: str
    sent: datetime
    sender_pid: int
    received: datetime | None = None
    succeeded: datetime | None = None
    raised: str = ""
    broker_visible: int | None = None
    notes: list[str] = field(default_factory=list)


def broker_messages(path: Path) -> dict[str, int]:
    """Task id -> ``visible`` of its row in kombu's message table (1 waiting, 0 handed to a consumer)."""
    if not path.exists():
        return {}
    out: dict[str, int] = {}
    with sqlite3.connect(f"file:{path}?mode=ro", uri=True) as conn:
        for payload, visible in conn.execute("SELECT payload, visible FROM kombu_message"):
            doc = json.loads(payload)
            task_id = doc.get("headers", {}).get("id") or doc.get("properties", {}).get("correlation_id")
            if task_id:
                out[str(task_id)] = int(visible)
    return out


def trace(run_dir: Path) -> tuple[dict[str, Message], list[str]]:
    messages: dict[str, Message] = {}
    deaths: list[str] = []
    last_stage_of_pid: dict[int, str] = {}
    for log in sorted(run_dir.glob("*.log")):
        for line in log.read_text(errors="replace").splitlines():
            if "uvicorn.access" in line:
                continue
            if m := ENQUEUED.match(line):
                messages[m["id"]] = Message(m["id"], int(m["job"]), m["stage"], when(m["t"]), int(m["pid"]))
            elif m := RECEIVED.match(line):
                if m["id"] in messages:
                    messages[m["id"]].received = when(m["t"])
                else:
                    deaths.append(f"received a message nobody logged sending: {m['id']}")
            elif m := SUCCEEDED.match(line):
                if m["id"] in messages:
                    messages[m["id"]].succeeded = when(m["t"])
            elif m := RAISED.match(line):
                if m["id"] in messages:
                    messages[m["id"]].raised = m["why"]
            elif m := SIGNALLED.search(line):
                pid = int(m["pid"])
                deaths.append(f"{m['t']} {m['name']} pid {pid} {m['how']} (its last sender line: "
                              f"{last_stage_of_pid.get(pid, '?')})")
            if m := ENQUEUED.match(line):
                last_stage_of_pid[int(m["pid"])] = f"sent job {m['job']} {m['stage']}"
    for task_id, visible in broker_messages(run_dir / "broker.db").items():
        if task_id in messages:
            messages[task_id].broker_visible = visible
    return messages, deaths


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("run_dir", type=Path)
    args = parser.parse_args()
    messages, deaths = trace(args.run_dir)
    never = [m for m in messages.values() if m.received is None]
    lost = [m for m in never if m.broker_visible != 1]
    print(f"messages sent: {len(messages)}; received: {len(messages) - len(never)}; "
          f"still waiting in the broker: {sum(1 for m in never if m.broker_visible == 1)}; lost: {len(lost)}; "
          f"consumed by a task that raised: {sum(1 for m in messages.values() if m.raised)}")
    for m in sorted(lost, key=lambda m: m.sent):
        where = {None: "no row in the broker", 0: "row handed to a consumer (visible=0)"}[m.broker_visible]
        print(f"  LOST {m.task_id} job {m.job} {m.stage} sent {m.sent:%H:%M:%S.%f} by pid {m.sender_pid}: {where}")
    # A delivery whose task raised was consumed (and acknowledged) without running: its stage lost a message.
    for m in sorted((m for m in messages.values() if m.raised), key=lambda m: m.sent):
        print(f"  CONSUMED BUT RAISED {m.task_id} job {m.job} {m.stage} sent {m.sent:%H:%M:%S.%f}: {m.raised}")
    print(f"pool children ended by a signal: {sum('signal' in d for d in deaths)}")
    for line in deaths:
        print(f"  {line}")


if __name__ == "__main__":
    main()
