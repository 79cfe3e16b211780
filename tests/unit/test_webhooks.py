"""Webhooks against a real HTTP server on 127.0.0.1 that records what it gets and answers 200, 201,
500 or slowly."""

from __future__ import annotations

import json
import socket
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

from rollout.api.spec import Analysis, Canary, CanarySpec, Metadata, ObjectRef, ServiceSpec, Webhook, WebhookType
from rollout.engine.webhooks import Webhooks, event_payload, payload, redact

SLOW_SECONDS = 1.5


class Recorder(ThreadingHTTPServer):
    daemon_threads = True
    block_on_close = False

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), Handler)
        self.requests: list[dict[str, Any]] = []
        self.lock = threading.Lock()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}"

    def handle_error(self, request: Any, client_address: Any) -> None:
        pass  # a client that gave up on a slow answer closed its end: expected here

    def paths(self) -> list[str]:
        with self.lock:
            return [r["path"] for r in self.requests]


class Handler(BaseHTTPRequestHandler):
    server: Recorder

    def do_POST(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length)
        with self.server.lock:
            self.server.requests.append({"path": self.path, "content_type": self.headers.get("Content-Type"),
                                         "body": json.loads(body)})
        path, _, query = self.path.partition("?")
        if path == "/slow":
            time.sleep(float(query.removeprefix("s=")) if query.startswith("s=") else SLOW_SECONDS)
        code = {"/fail": 500, "/created": 201, "/denied": 403, "/busy": 429, "/unimplemented": 501}.get(path, 200)
        if path == "/flaky":  # fails (503) the first n calls, then answers 200
            with self.server.lock:
                calls = sum(r["path"].startswith("/flaky") for r in self.server.requests)
            code = 503 if calls <= int(query.removeprefix("n=")) else 200
        text = b"load test failed: 12 errors" if code == 500 else b"ok"
        self.send_response(code)
        self.send_header("Content-Length", str(len(text)))
        self.end_headers()
        self.wfile.write(text)

    def log_message(self, format: str, *args: Any) -> None:
        pass


@pytest.fixture
def server() -> Iterator[Recorder]:
    srv = Recorder()
    thread = threading.Thread(target=srv.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    try:
        yield srv
    finally:
        srv.shutdown()
        srv.server_close()
        thread.join(5)


def hook(url: str, kind: WebhookType = WebhookType.ROLLOUT, name: str = "h", timeout: float = 2.0,
         metadata: tuple[tuple[str, str], ...] = (), retries: int = 0, disable_tls: bool = False) -> Webhook:
    return Webhook(name=name, url=url, type=kind, timeout=timeout, metadata=metadata, retries=retries,
                   disable_tls=disable_tls)


def release(*hooks: Webhook) -> Canary:
    spec = CanarySpec(
        target_ref=ObjectRef("apps/v1", "Deployment", "podinfo"),
        service=ServiceSpec(port=9898),
        analysis=Analysis(step_weight=10, max_weight=50, webhooks=hooks),
    )
    return Canary(Metadata(name="podinfo", namespace="test", uid="u1"), spec)


def test_call_posts_flaggers_payload(server: Recorder) -> None:
    h = hook(f"{server.url}/gate/check", WebhookType.CONFIRM_ROLLOUT, metadata=(("cmd", "hey -z 1m"),))
    result = Webhooks().call(release(h), h, "Progressing", checksum="abc")
    assert (result.ok, result.status, result.name) == (True, 200, "h")
    [got] = server.requests
    assert got["path"] == "/gate/check"
    assert got["content_type"] == "application/json"
    assert got["body"] == {"name": "podinfo", "namespace": "test", "phase": "Progressing", "checksum": "abc",
                           "metadata": {"cmd": "hey -z 1m"}}
    assert got["body"] == payload(release(h), h, "Progressing", "abc")


def test_metadata_is_omitted_when_empty_and_checksum_always_present(server: Recorder) -> None:
    h = hook(f"{server.url}/")
    Webhooks().call(release(h), h, "Waiting")
    assert server.requests[0]["body"] == {"name": "podinfo", "namespace": "test", "phase": "Waiting", "checksum": ""}


def test_any_2xx_passes(server: Recorder) -> None:
    h = hook(f"{server.url}/created")
    result = Webhooks().call(release(h), h, "Progressing")
    assert (result.ok, result.status) == (True, 201)


def test_an_error_status_fails_with_the_answer_in_the_message_and_no_secret(server: Recorder) -> None:
    h = hook(f"{server.url}/fail?token=s3cret")
    result = Webhooks().call(release(h), h, "Progressing")
    assert (result.ok, result.status) == (False, 500)
    assert "load test failed: 12 errors" in result.message
    assert "s3cret" not in result.message and "/fail" not in result.message
    assert server.url in result.message


def test_timeout_is_honoured_and_bounded(server: Recorder) -> None:
    h = hook(f"{server.url}/slow", timeout=0.3)
    started = time.monotonic()
    result = Webhooks().call(release(h), h, "Progressing")
    elapsed = time.monotonic() - started
    assert (result.ok, result.status) == (False, None)
    assert "within 0.3s" in result.message
    assert 0.25 <= elapsed < SLOW_SECONDS - 0.5  # it did wait, but not for the slow answer


def test_a_slow_answer_within_the_timeout_passes(server: Recorder) -> None:
    h = hook(f"{server.url}/slow?s=0.3", timeout=2)
    assert Webhooks().call(release(h), h, "Progressing").ok


def test_connection_refused_fails_without_raising() -> None:
    with socket.socket() as s:  # a port that was free a moment ago, and nothing listens on it now
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    h = hook(f"http://user:pw@127.0.0.1:{port}/x?token=s3cret", timeout=2)
    result = Webhooks().call(release(h), h, "Progressing")
    assert (result.ok, result.status) == (False, None)
    assert "cannot connect" in result.message
    assert "s3cret" not in result.message and "pw" not in result.message


def test_gate_without_hooks_is_open(server: Recorder) -> None:
    other = hook(f"{server.url}/fail", WebhookType.PRE_ROLLOUT)
    assert Webhooks().gate(release(other), WebhookType.CONFIRM_PROMOTION, "WaitingPromotion") is True
    assert server.requests == []


def test_gate_is_open_only_when_every_hook_passes(server: Recorder) -> None:
    kind = WebhookType.CONFIRM_PROMOTION
    a, b = hook(f"{server.url}/a", kind, "a"), hook(f"{server.url}/b", kind, "b")
    bad = hook(f"{server.url}/fail", kind, "bad")
    hooks = Webhooks()
    assert hooks.gate(release(a, b), kind, "WaitingPromotion") is True
    assert server.paths() == ["/a", "/b"]
    server.requests.clear()
    assert hooks.gate(release(bad, a), kind, "WaitingPromotion") is False
    assert server.paths() == ["/fail"]  # closed at the first failure, as in Flagger
    server.requests.clear()
    assert hooks.gate(release(a, bad, hook(f"{server.url}/fail", WebhookType.ROLLBACK)), kind, "Progressing") is False
    assert server.paths() == ["/a", "/fail"]


def test_notify_calls_every_hook_of_its_type_and_never_raises(server: Recorder) -> None:
    kind = WebhookType.POST_ROLLOUT
    hooks = (hook(f"{server.url}/fail", kind, "a"), hook(f"{server.url}/b", kind, "b"),
             hook(f"{server.url}/c", WebhookType.EVENT, "c"))
    results = Webhooks().notify(release(*hooks), kind, "Succeeded")
    assert [(r.name, r.ok) for r in results] == [("a", False), ("b", True)]
    assert server.paths() == ["/fail", "/b"]


def test_event_hooks_get_flaggers_event_payload(server: Recorder) -> None:
    h = hook(f"{server.url}/events", WebhookType.EVENT, metadata=(("eventType", "mine"), ("env", "prod")))
    other = hook(f"{server.url}/rollout", WebhookType.ROLLOUT)
    results = Webhooks(clock=lambda: 1_700_000_000.25).notify_event(
        release(h, other), "Failed", "Canary failed! Rolling back podinfo", "Failed", warning=True)
    assert [r.ok for r in results] == [True]
    [got] = server.requests
    assert got["path"] == "/events"
    assert got["body"] == {
        "name": "podinfo", "namespace": "test", "phase": "Failed", "checksum": "",
        "metadata": {"eventMessage": "Canary failed! Rolling back podinfo", "eventType": "Warning",
                     "timestamp": "1700000000250", "eventReason": "Failed", "env": "prod"},
    }
    assert got["body"] == event_payload(release(h), h, "Failed", "Failed", "Canary failed! Rolling back podinfo",
                                        True, 1_700_000_000.25)


def test_redact_keeps_scheme_host_and_port_only() -> None:
    assert redact("https://u:p@hooks.example.com:8443/services/T0/B0/XyZ?x=1") == "https://hooks.example.com:8443"
    assert redact("http://loadtester.test/") == "http://loadtester.test"


# --- retries and disableTLS (Flagger's go-retryablehttp client) ---------------------------------


def test_retries_call_again_after_a_5xx_with_flaggers_backoff(server: Recorder) -> None:
    waits: list[float] = []
    h = hook(f"{server.url}/flaky?n=2", retries=3)
    result = Webhooks(sleep=waits.append).call(release(h), h, "Progressing")
    assert (result.ok, result.status) == (True, 200)
    assert len(server.requests) == 3
    assert waits == [1.0, 2.0]


def test_without_retries_a_failing_hook_is_called_once(server: Recorder) -> None:
    waits: list[float] = []
    h = hook(f"{server.url}/flaky?n=1")
    result = Webhooks(sleep=waits.append).call(release(h), h, "Progressing")
    assert (result.ok, result.status, len(server.requests), waits) == (False, 503, 1, [])


def test_retries_run_out_and_the_last_answer_is_the_result(server: Recorder) -> None:
    waits: list[float] = []
    h = hook(f"{server.url}/fail", retries=2)
    result = Webhooks(sleep=waits.append).call(release(h), h, "Progressing")
    assert (result.ok, result.status, len(server.requests), waits) == (False, 500, 3, [1.0, 2.0])


@pytest.mark.parametrize(("path", "calls"), [("/busy", 3), ("/denied", 1), ("/unimplemented", 1)])
def test_only_429_5xx_and_no_answer_are_retried(server: Recorder, path: str, calls: int) -> None:
    h = hook(f"{server.url}{path}", retries=2)
    Webhooks(sleep=lambda _: None).call(release(h), h, "Progressing")
    assert len(server.requests) == calls


def test_no_answer_is_retried() -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # closed once the block ends: nothing listens there
    waits: list[float] = []
    h = hook(f"http://127.0.0.1:{port}/", retries=1, timeout=0.5)
    result = Webhooks(sleep=waits.append).call(release(h), h, "Progressing")
    assert (result.ok, result.status, waits) == (False, None, [1.0])


def test_backoff_is_capped_at_30_seconds(server: Recorder) -> None:
    waits: list[float] = []
    h = hook(f"{server.url}/fail", retries=7, timeout=1)
    Webhooks(sleep=waits.append).call(release(h), h, "Progressing")
    assert waits == [1.0, 2.0, 4.0, 8.0, 16.0, 30.0, 30.0]


@pytest.fixture
def tls_server(tmp_path: Any) -> Iterator[Recorder]:
    """The recorder behind TLS with a self-signed certificate no client trusts."""
    import ssl
    import subprocess

    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1", "-subj", "/CN=127.0.0.1",
                    "-keyout", str(key), "-out", str(cert)], check=True, capture_output=True, timeout=60)
    srv = Recorder()
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert, key)
    srv.socket = context.wrap_socket(srv.socket, server_side=True)
    thread = threading.Thread(target=srv.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    try:
        yield srv
    finally:
        srv.shutdown()
        srv.server_close()
        thread.join(5)


def test_disable_tls_calls_a_hook_whose_certificate_is_not_trusted(tls_server: Recorder) -> None:
    url = tls_server.url.replace("http://", "https://") + "/gate"
    strict = hook(url)
    result = Webhooks().call(release(strict), strict, "Progressing")
    assert (result.ok, result.status) == (False, None)
    assert tls_server.requests == []
    relaxed = hook(url, disable_tls=True)
    result = Webhooks().call(release(relaxed), relaxed, "Progressing")
    assert (result.ok, result.status) == (True, 200)
    assert [r["path"] for r in tls_server.requests] == ["/gate"]
