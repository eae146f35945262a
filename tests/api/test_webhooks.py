"""Webhooks on SQLite and PostgreSQL: the routes, the outbox rows written with each state change, and the
sender a worker runs, against a real HTTP receiver on 127.0.0.1 (signature, payload, retries with back-off
on a moved clock, giving up, refusing private addresses at creation and, after DNS changes, at delivery)."""

from __future__ import annotations

import json
import shutil
import ssl
import subprocess
import time
from collections.abc import Iterator
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any, get_args

import httpx
import pytest
from sqlalchemy.orm import Session, sessionmaker

from tests.support.api_client import PASSWORD, Api, ApiFactory
from tests.support.webhooks import Receiver, serve, verify
from vidscene import webhook_targets
from vidscene.api.deps import LOGIN_ONLY
from vidscene.api.scenes.schemas import SceneProgress
from vidscene.api.webhooks.schemas import Event
from vidscene.catalogue import WEBHOOK_EVENTS
from vidscene.db.models import STAGE_ORDER, Stage, utcnow
from vidscene.db.session import make_engine, make_sessionmaker
from vidscene.jobs import state
from vidscene.jobs import webhooks as sender

ALL = list(WEBHOOK_EVENTS)
WORKER = "test-host:1"


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    with serve() as running:
        yield running


@pytest.fixture
def worker_db(db_url: str) -> Iterator[sessionmaker[Session]]:
    """The database as a worker process sees it."""
    engine = make_engine(db_url)
    yield make_sessionmaker(engine)
    engine.dispose()


@pytest.fixture
def open_api(api_factory: ApiFactory) -> Api:
    return api_factory(webhook_allow_private=True)


def subscribe(api: Api, auth: dict[str, str], url: str, events: list[str]) -> dict[str, Any]:
    resp = api.client.post("/user/webhooks", headers=auth, json={"url": url, "events": events})
    assert resp.status_code == 201, resp.text
    body: dict[str, Any] = resp.json()
    return body


def deliveries(api: Api, auth: dict[str, str], webhook: dict[str, Any]) -> list[dict[str, Any]]:
    resp = api.client.get(f"/user/webhooks/{webhook['id']}/deliveries", headers=auth)
    assert resp.status_code == 200, resp.text
    out: list[dict[str, Any]] = resp.json()["deliveries"]
    return out


def run_stages(factory: sessionmaker[Session], job_id: int, stages: tuple[Stage, ...] = STAGE_ORDER) -> None:
    """What workers do to a job, without the pipeline: claim each stage and finish it."""
    for stage in stages:
        assert state.claim(factory, job_id, stage, WORKER, 60, max_attempts=3) is not None
        assert state.complete_stage(factory, job_id, WORKER, stage) is not False


def start_failing(factory: sessionmaker[Session], job_id: int) -> None:
    assert state.claim(factory, job_id, Stage.frames, WORKER, 60, max_attempts=3) is not None
    assert state.fail(factory, job_id, WORKER, message="The video is too dark.", code=2)


def test_events_match_the_catalogue() -> None:
    assert list(get_args(Event)) == ALL


def test_routes_create_list_delete_and_ownership(open_api: Api, auth: dict[str, str], receiver: Receiver) -> None:
    api = open_api
    made = subscribe(api, auth, receiver.url, ["scene.stage", "scene.done", "scene.done"])
    assert made["secret"].startswith("whsec_") and len(made["secret"]) >= 6 + 43
    assert made["events"] == ["scene.done", "scene.stage"] and made["url"] == receiver.url
    listed = api.client.get("/user/webhooks", headers=auth).json()["webhooks"]
    assert listed == [{key: made[key] for key in ("id", "url", "events", "created_at")}]
    assert deliveries(api, auth, made) == []

    _, other = api.user()
    assert api.client.get("/user/webhooks", headers=other).json() == {"webhooks": []}
    for method, path in (("GET", f"/user/webhooks/{made['id']}/deliveries"),
                         ("DELETE", f"/user/webhooks/{made['id']}")):
        resp = api.client.request(method, path, headers=other)
        assert resp.status_code == 404 and resp.json() == {"error": "Webhook not found."}
    assert api.client.delete(f"/user/webhooks/{made['id']}", headers=auth).status_code == 200
    assert api.client.get("/user/webhooks", headers=auth).json() == {"webhooks": []}
    assert api.client.get(f"/user/webhooks/{made['id']}/deliveries", headers=auth).status_code == 404
    assert api.client.get("/user/webhooks").status_code == 401


@pytest.mark.parametrize(("body", "field"), [
    ({"url": "ftp://example.com/", "events": ALL}, "url"),
    ({"url": "example.com/hook", "events": ALL}, "url"),
    ({"url": "http://user:pw@example.com/", "events": ALL}, "url"),
    ({"url": "http:///nohost", "events": ALL}, "url"),
    ({"url": "http://no-such-host.invalid/", "events": ALL}, "url"),
    ({"url": "http://example.com/" + "a" * 2000, "events": ALL}, "url"),
    ({"events": ALL}, "url"),
    ({"url": "http://example.com/", "events": []}, "events"),
    ({"url": "http://example.com/", "events": ["scene.exploded"]}, "events"),
])
def test_invalid_requests_name_the_field(open_api: Api, auth: dict[str, str], body: dict[str, Any],
                                         field: str) -> None:
    resp = open_api.client.post("/user/webhooks", headers=auth, json=body)
    assert resp.status_code == 400, resp.text
    assert field in resp.json()["error"]


@pytest.mark.parametrize("url", ["http://127.0.0.1:9/", "http://localhost/", "http://169.254.169.254/latest",
                                 "http://10.1.2.3/", "http://192.168.0.1/", "http://[::1]/", "http://0.0.0.0/",
                                 "http://224.0.0.1/", "http://[::ffff:127.0.0.1]/", "http://100.64.0.1/"])
def test_private_addresses_are_refused_without_the_setting(api: Api, auth: dict[str, str], url: str) -> None:
    resp = api.client.post("/user/webhooks", headers=auth, json={"url": url, "events": ALL})
    assert resp.status_code == 400, resp.text
    assert resp.json()["error"].startswith("Invalid url: the host") and "not public" in resp.json()["error"]


def test_a_public_name_is_accepted(api: Api, auth: dict[str, str], monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(webhook_targets, "resolve", lambda host, port: ["93.184.216.34", "2606:2800:220:1::1"])
    subscribe(api, auth, "https://hooks.example.com/vidscene", ["scene.done"])
    monkeypatch.setattr(webhook_targets, "resolve", lambda host, port: ["93.184.216.34", "10.0.0.7"])
    resp = api.client.post("/user/webhooks", headers=auth, json={"url": "https://mixed.example.com/", "events": ALL})
    assert resp.status_code == 400 and "10.0.0.7 is a private address" in resp.json()["error"]


def test_delivery_is_signed_and_carries_the_progress_fields(open_api: Api, auth: dict[str, str], mp4_bytes: bytes,
                                                             receiver: Receiver,
                                                             worker_db: sessionmaker[Session]) -> None:
    api = open_api
    hook = subscribe(api, auth, receiver.url, ["scene.stage", "scene.done"])
    subscribe(api, auth, receiver.url + "/failures-only", ["scene.failed"])  # hears nothing here
    scene = api.scene_id(auth, mp4_bytes)
    run_stages(worker_db, api.enqueued[-1])
    assert receiver.requests == []  # nothing is sent from the state change itself
    assert sender.deliver_due(worker_db, allow_private=True) == 5
    assert sender.deliver_due(worker_db, allow_private=True) == 0  # delivered once, never again

    bodies = [json.loads(r["body"]) for r in receiver.requests]
    assert [b["event"] for b in bodies] == ["scene.stage"] * 4 + ["scene.done"]
    assert [b.get("stage") for b in bodies] == ["frames", "sfm", "train", "export", None]
    now = time.time()
    for request, body in zip(receiver.requests, bodies, strict=True):
        headers = {k.lower(): v for k, v in request["headers"].items()}
        assert request["path"] == "/hook" and headers["content-type"] == "application/json"
        assert verify(hook["secret"], headers["vidscene-signature"], request["body"], now=now)
        assert not verify(hook["secret"], headers["vidscene-signature"], request["body"] + " ", now=now)
        assert set(body) - {"stage"} == {"id", "event", "created_at", "scene"}
        assert set(body["scene"]) == set(SceneProgress.model_fields)
        assert body["scene"]["uuid"] == scene and body["created_at"].endswith("Z")
    assert bodies[0]["scene"]["state"] == "processing" and bodies[0]["scene"]["step"] == "sfm"
    done = bodies[-1]["scene"]
    progress = api.client.get(f"/user/scene/progress/{scene}", headers=auth).json()
    assert done == {**progress, "overall_size": done["overall_size"]}  # the progress route's answer
    assert done["state"] == "done" and done["percent"] == 100.0

    log = deliveries(api, auth, hook)
    assert [d["id"] for d in log] == [b["id"] for b in reversed(bodies)]  # newest first
    outcomes = {(d["state"], d["status_code"], d["attempts"], d["last_error"]) for d in log}
    assert outcomes == {("delivered", 200, 1, None)}
    assert all(d["delivered_at"] and d["next_attempt_at"] is None for d in log)


def test_a_failed_attempt_is_retried_with_backoff_then_delivered(open_api: Api, auth: dict[str, str],
                                                                 mp4_bytes: bytes, receiver: Receiver,
                                                                 worker_db: sessionmaker[Session]) -> None:
    api = open_api
    hook = subscribe(api, auth, receiver.url, ["scene.failed"])
    api.scene_id(auth, mp4_bytes)
    start_failing(worker_db, api.enqueued[-1])
    receiver.answers = [500]
    t0 = utcnow() + timedelta(seconds=1)
    assert sender.deliver_due(worker_db, allow_private=True, clock=lambda: t0) == 1
    (pending,) = deliveries(api, auth, hook)
    assert (pending["state"], pending["status_code"], pending["attempts"]) == ("pending", 500, 1)
    assert pending["last_error"] == "The receiver answered 500."
    assert sender.deliver_due(worker_db, allow_private=True, clock=lambda: t0 + timedelta(seconds=29)) == 0
    assert sender.deliver_due(worker_db, allow_private=True, clock=lambda: t0 + timedelta(seconds=31)) == 1
    (delivered,) = deliveries(api, auth, hook)
    assert (delivered["state"], delivered["status_code"], delivered["attempts"]) == ("delivered", 200, 2)
    first, second = (json.loads(r["body"]) for r in receiver.requests)
    assert first == second and first["event"] == "scene.failed" and first["scene"]["error"] == 2
    assert first["scene"]["message"] == "The video is too dark."
    signatures = [r["headers"]["Vidscene-Signature"] for r in receiver.requests]
    assert signatures[0] != signatures[1]  # a new timestamp each attempt


def test_backoff_doubles_to_an_hour_and_gives_up_after_a_day(open_api: Api, auth: dict[str, str],
                                                             mp4_bytes: bytes, receiver: Receiver,
                                                             worker_db: sessionmaker[Session]) -> None:
    assert [sender.retry_delay(n).total_seconds() for n in (1, 2, 3, 7, 8, 30)] == [30, 60, 120, 1920, 3600, 3600]
    api = open_api
    hook = subscribe(api, auth, receiver.url, ["scene.failed"])
    api.scene_id(auth, mp4_bytes)
    start_failing(worker_db, api.enqueued[-1])
    receiver.answers = [503] * 100
    clock = utcnow() + timedelta(seconds=1)
    while (log := deliveries(api, auth, hook))[0]["state"] == "pending":
        sent = sender.deliver_due(worker_db, allow_private=True, clock=lambda at=clock: at)
        assert sent == 1
        clock = datetime.fromisoformat(deliveries(api, auth, hook)[0]["next_attempt_at"] or clock.isoformat())
    (given_up,) = log
    assert given_up["state"] == "failed" and given_up["next_attempt_at"] is None
    assert given_up["attempts"] == len(receiver.requests) == 30
    created = datetime.fromisoformat(given_up["created_at"])
    assert clock - created < timedelta(hours=24)


def test_rebinding_to_a_private_address_is_refused_at_delivery(api: Api, auth: dict[str, str], mp4_bytes: bytes,
                                                               receiver: Receiver, worker_db: sessionmaker[Session],
                                                               monkeypatch: pytest.MonkeyPatch) -> None:
    port = receiver.server.server_address[1]
    url = f"http://hooks.example.com:{port}/hook"
    monkeypatch.setattr(webhook_targets, "resolve", lambda host, port: ["93.184.216.34"])
    hook = subscribe(api, auth, url, ["scene.cancelled"])
    scene = api.scene_id(auth, mp4_bytes)
    assert api.client.delete(f"/user/scene/delete/{scene}", headers=auth).status_code == 200
    monkeypatch.setattr(webhook_targets, "resolve", lambda host, port: ["127.0.0.1"])  # the name now points inside
    assert sender.deliver_due(worker_db, allow_private=False) == 1
    assert receiver.requests == []
    (refused,) = deliveries(api, auth, hook)
    assert refused["event"] == "scene.cancelled" and refused["state"] == "pending" and refused["status_code"] is None
    assert "127.0.0.1 is a loopback address" in refused["last_error"]

    # Allowed, the request goes to the address the name resolved to, with the name kept in Host.
    later = utcnow() + timedelta(minutes=5)
    assert sender.deliver_due(worker_db, allow_private=True, clock=lambda: later) == 1
    (request,) = receiver.requests
    assert request["headers"]["Host"] == f"hooks.example.com:{port}"
    body = json.loads(request["body"])
    assert body["scene"]["uuid"] == scene and body["scene"]["state"] == "cancelled"
    assert deliveries(api, auth, hook)[0]["state"] == "delivered"


def test_https_keeps_the_name_for_sni_and_the_certificate(open_api: Api, auth: dict[str, str], mp4_bytes: bytes,
                                                          worker_db: sessionmaker[Session], tmp_path: Path,
                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    """Connecting to the checked address does not weaken TLS: the name goes in SNI and the certificate is
    checked against it, so a certificate for another name is refused."""
    if shutil.which("openssl") is None:
        pytest.skip("openssl is needed to make a test certificate")
    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", str(key), "-out",
                    str(cert), "-days", "1", "-subj", "/CN=hooks.example.com",
                    "-addext", "subjectAltName=DNS:hooks.example.com"], check=True, capture_output=True)
    tls = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    tls.load_cert_chain(cert, key)
    names: list[str | None] = []
    tls.sni_callback = lambda _sock, name, _ctx: names.append(name)
    trust = ssl.create_default_context(cafile=str(cert))
    monkeypatch.setattr(webhook_targets, "resolve", lambda host, port: ["127.0.0.1"])
    with serve(tls) as receiver:
        port = receiver.server.server_address[1]
        good = subscribe(open_api, auth, f"https://hooks.example.com:{port}/hook", ["scene.failed"])
        wrong = subscribe(open_api, auth, f"https://other.example.com:{port}/hook", ["scene.failed"])
        open_api.scene_id(auth, mp4_bytes)
        start_failing(worker_db, open_api.enqueued[-1])
        with httpx.Client(verify=trust, follow_redirects=False, trust_env=False, timeout=10) as http:
            assert sender.deliver_due(worker_db, allow_private=True, http=http) == 2
        assert deliveries(open_api, auth, good)[0]["state"] == "delivered"
        (refused,) = deliveries(open_api, auth, wrong)
        assert refused["state"] == "pending" and "CERTIFICATE_VERIFY_FAILED" in refused["last_error"]
        assert [r["headers"]["Host"] for r in receiver.requests] == [f"hooks.example.com:{port}"]
        assert set(names) == {"hooks.example.com", "other.example.com"}


def test_only_changes_that_happen_make_deliveries(open_api: Api, auth: dict[str, str], mp4_bytes: bytes,
                                                  receiver: Receiver, worker_db: sessionmaker[Session]) -> None:
    api = open_api
    hook = subscribe(api, auth, receiver.url, ALL)
    _, other = api.user()
    api.scene_id(other, mp4_bytes)  # another user's scene: not this webhook's business
    run_stages(worker_db, api.enqueued[-1])
    finished = api.scene_id(auth, mp4_bytes)
    run_stages(worker_db, api.enqueued[-1])
    assert state.complete_stage(worker_db, api.enqueued[-1], WORKER, Stage.export) is False  # a stale repeat
    assert api.client.delete(f"/user/scene/delete/{finished}", headers=auth).status_code == 200  # done: no cancel
    assert [d["event"] for d in reversed(deliveries(api, auth, hook))] == ["scene.stage"] * 4 + ["scene.done"]


def test_two_workers_never_send_the_same_delivery(open_api: Api, auth: dict[str, str], mp4_bytes: bytes,
                                                  receiver: Receiver, worker_db: sessionmaker[Session]) -> None:
    api = open_api
    subscribe(api, auth, receiver.url, ["scene.failed"])
    api.scene_id(auth, mp4_bytes)
    start_failing(worker_db, api.enqueued[-1])
    now = utcnow() + timedelta(seconds=1)
    (delivery_id,) = sender.due(worker_db, now)
    first = sender.claim(worker_db, delivery_id, now)
    assert first is not None and first.attempts == 1
    assert sender.claim(worker_db, delivery_id, now) is None
    assert sender.deliver_due(worker_db, allow_private=True, clock=lambda: now) == 0
    # A worker that died mid-send: once its claim runs out, another sends it.
    later = now + timedelta(seconds=sender.CLAIM_SECONDS + 1)
    assert sender.deliver_due(worker_db, allow_private=True, clock=lambda: later) == 1
    assert len(receiver.requests) == 1


def test_an_api_token_cannot_manage_webhooks(api: Api, auth: dict[str, str]) -> None:
    token = api.client.post("/user/tokens", headers=auth,
                            json={"name": "ci", "scopes": ["scenes:read", "scenes:write"]}).json()["token"]
    resp = api.client.post("/user/webhooks", headers={"Authorization": f"Bearer {token}"},
                           json={"url": "http://example.com/", "events": ALL})
    assert resp.status_code == 403 and resp.json() == {"error": LOGIN_ONLY}


def test_the_worker_thread_sends_what_is_due(open_api: Api, auth: dict[str, str], mp4_bytes: bytes,
                                             receiver: Receiver, worker_db: sessionmaker[Session]) -> None:
    """``vidscene worker`` runs ``WebhookSender``: it polls, sends, and stops when asked."""
    api = open_api
    hook = subscribe(api, auth, receiver.url, ["scene.failed"])
    api.scene_id(auth, mp4_bytes)
    start_failing(worker_db, api.enqueued[-1])
    thread = sender.WebhookSender(worker_db, api.settings.model_copy(update={"webhook_poll_seconds": 0.05}))
    thread.start()
    try:
        deadline = time.monotonic() + 20
        while not receiver.requests and time.monotonic() < deadline:
            time.sleep(0.05)
    finally:
        thread.stop()
        thread.join(timeout=20)
    assert not thread.is_alive()
    assert json.loads(receiver.requests[0]["body"])["event"] == "scene.failed"
    assert deliveries(api, auth, hook)[0]["state"] == "delivered"


def test_the_readme_verifier_accepts_what_the_sender_signs() -> None:
    """The receiver code the README gives works on the sender's signature, and refuses the rest."""
    readme = (Path(__file__).resolve().parents[2] / "README.md").read_text(encoding="utf-8")
    code = readme.split("Checking a delivery in Python", 1)[1].split("```python\n", 1)[1].split("```", 1)[0]
    namespace: dict[str, Any] = {}
    exec(compile(code, "README.md", "exec"), namespace)  # noqa: S102 - our own documentation
    readme_verify = namespace["verify"]
    body = '{"event":"scene.done","id":"x","scene":{"name":"Café"}}'
    now = int(time.time())
    header = sender.sign("whsec_test", body, now)
    assert readme_verify("whsec_test", header, body.encode())
    assert not readme_verify("whsec_other", header, body.encode())
    assert not readme_verify("whsec_test", header, body.encode() + b" ")
    assert not readme_verify("whsec_test", sender.sign("whsec_test", body, now - 301), body.encode())
    assert not readme_verify("whsec_test", "garbage", body.encode())


def test_a_stage_that_keeps_killing_its_worker_fails_with_an_event(open_api: Api, auth: dict[str, str],
                                                                    mp4_bytes: bytes,
                                                                    worker_db: sessionmaker[Session]) -> None:
    api = open_api
    hook = subscribe(api, auth, "http://127.0.0.1:9/hook", ["scene.failed"])
    scene = api.scene_id(auth, mp4_bytes)
    job = api.enqueued[-1]
    assert state.claim(worker_db, job, Stage.frames, WORKER, 0, max_attempts=1) is not None  # then the worker died
    time.sleep(0.01)  # its lease (0 s) runs out
    assert state.claim(worker_db, job, Stage.frames, WORKER, 0, max_attempts=1) is None
    (failed,) = deliveries(api, auth, hook)
    assert failed["event"] == "scene.failed" and failed["scene_id"] == scene
    assert api.client.get(f"/user/scene/progress/{scene}", headers=auth).json()["state"] == "failed"


def test_deleting_the_account_takes_its_webhooks_and_their_deliveries(open_api: Api, auth: dict[str, str],
                                                                      mp4_bytes: bytes,
                                                                      worker_db: sessionmaker[Session]) -> None:
    api = open_api
    subscribe(api, auth, "http://127.0.0.1:9/hook", ALL)
    api.scene_id(auth, mp4_bytes)
    run_stages(worker_db, api.enqueued[-1], (Stage.frames,))
    api.scene_id(auth, mp4_bytes)  # queued: deleting the account cancels it
    resp = api.client.request("DELETE", "/user/account/delete", headers=auth, json={"password": PASSWORD})
    assert resp.status_code == 200, resp.text
    assert sender.due(worker_db, utcnow() + timedelta(days=1)) == []
