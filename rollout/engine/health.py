"""The operator's one HTTP port: `/metrics`, `/healthz` and `/readyz`, for Prometheus and the probes.

It runs in a thread of its own, beside kopf rather than inside it: a standby of the leader election
serves it without running kopf at all, and a stuck kopf event loop must not silence the probe that
would get the pod restarted. `/metrics` is prometheus_client's exposition of the default registry,
where every part of the operator defines its metrics. Liveness is kopf's own rule (its event loop,
which runs every watch stream, keeps running), read from a heartbeat that loop writes; readiness is
"the API answers, kopf has started (its watches are open) and the caller's `Readiness` agrees".
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterable
from enum import Enum
from typing import Any

from prometheus_client import REGISTRY, make_wsgi_app
from prometheus_client.registry import CollectorRegistry

from rollout.serving import Served, serve_wsgi

log = logging.getLogger(__name__)

# (ready, why): whether this replica may take traffic, and one line saying why (or why not).
Readiness = Callable[[], tuple[bool, str]]
# Whether the API server answers: None when it does, else one line saying what failed.
ApiCheck = Callable[[], str | None]

# kopf's loop beats this often; a beat older than STALE means the loop (and its watches) stopped.
HEARTBEAT = 2.0
STALE = 30.0
# The API is asked at most this often, however often the probes come.
API_CHECK_CACHE = 5.0


def always_ready() -> tuple[bool, str]:
    """The readiness of an operator without leader election: it is the one that acts."""
    return True, "no leader election"


class Kopf(Enum):
    NOT_STARTED = "not started"  # a standby, or before `rollout run` starts it
    STARTING = "starting"
    RUNNING = "running"
    STOPPED = "stopped"


class Health:
    """What the probes read: kopf's state and heartbeat, the API check, the caller's readiness."""

    def __init__(self, readiness: Readiness = always_ready, api: ApiCheck | None = None, *,
                 stale: float = STALE, clock: Callable[[], float] = time.monotonic) -> None:
        self.readiness = readiness
        self.api = api
        self.stale = stale
        self.clock = clock
        self.kopf = Kopf.NOT_STARTED
        self._beat: float | None = None
        self._api_at: float | None = None
        self._api_problem: str | None = None
        self._lock = threading.Lock()

    # -- told by the operator ----------------------------------------------------------------------

    def starting(self) -> None:
        self.kopf = Kopf.STARTING

    def started(self) -> None:
        """kopf ran its startup handlers and opened its watches."""
        self.beat()
        self.kopf = Kopf.RUNNING

    def beat(self) -> None:
        self._beat = self.clock()

    def stopped(self) -> None:
        self.kopf = Kopf.STOPPED

    # -- asked by the probes -----------------------------------------------------------------------

    def live(self) -> tuple[bool, str]:
        if self.kopf == Kopf.STOPPED:
            return False, "kopf has stopped"
        if self.kopf == Kopf.RUNNING and self._beat is not None:
            age = self.clock() - self._beat
            if age > self.stale:
                return False, f"kopf's event loop (its watch streams) has not run for {age:.0f}s"
            return True, f"ok: kopf running, its event loop ran {age:.1f}s ago"
        return True, f"ok: kopf {self.kopf.value}"

    def ready(self) -> tuple[bool, str]:
        if self.kopf == Kopf.STARTING:
            return False, "kopf is starting: its watches are not open yet"
        if self.kopf == Kopf.STOPPED:
            return False, "kopf has stopped"
        if (problem := self._api_check()) is not None:
            return False, f"the API server does not answer: {problem}"
        try:
            ok, why = self.readiness()
        except Exception as e:  # a probe answers whatever went wrong
            return False, f"readiness unknown: {type(e).__name__}: {e}"
        return ok, (f"ok: {why}" if ok else why)

    def _api_check(self) -> str | None:
        if self.api is None:
            return None
        with self._lock:  # one API request at a time, and at most one every API_CHECK_CACHE seconds
            now = self.clock()
            if self._api_at is None or now - self._api_at >= API_CHECK_CACHE:
                try:
                    self._api_problem = self.api()
                except Exception as e:
                    self._api_problem = f"{type(e).__name__}: {e}"
                self._api_at = self.clock()
            return self._api_problem


WsgiApp = Callable[[dict[str, Any], Callable[..., Any]], Iterable[bytes]]


def application(health: Health, registry: CollectorRegistry = REGISTRY) -> WsgiApp:
    """The WSGI app: `/healthz` and `/readyz` (200, or 500/503 with a one-line reason), else `/metrics`."""
    metrics = make_wsgi_app(registry)

    def app(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        path = environ.get("PATH_INFO") or "/"
        probes = {"/healthz": (health.live, "500 Internal Server Error"),
                  "/readyz": (health.ready, "503 Service Unavailable")}
        if path in probes:
            check, failed = probes[path]
            ok, why = check()
            body = (why + "\n").encode()
            start_response("200 OK" if ok else failed,
                           [("Content-Type", "text/plain; charset=utf-8"), ("Content-Length", str(len(body)))])
            return [body]
        if path in ("/", "/metrics"):
            return metrics(environ, start_response)  # type: ignore[no-any-return]
        body = b"not found: /metrics, /healthz and /readyz are served here\n"
        start_response("404 Not Found", [("Content-Type", "text/plain; charset=utf-8")])
        return [body]

    return app


HealthServer = Served  # the running server: `url` to reach it, `stop()` to close it


def serve(addr: str, health: Health, registry: CollectorRegistry = REGISTRY) -> HealthServer | None:
    """Serve `health` and `registry` on `addr` (`HOST:PORT`, `:PORT` for every interface) in a thread;
    None when `addr` is `0` or empty. OSError when the port cannot be bound."""
    return serve_wsgi(addr, application(health, registry), "rollout-health", "/metrics, /healthz and /readyz")
