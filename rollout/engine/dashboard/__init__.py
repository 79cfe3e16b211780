"""The web dashboard: every release live, one page per release, and promote / abort / retry buttons.

Argo Rollouts has a dashboard, Flagger none. This one is served by `rollout dashboard` (from any
machine with a kubeconfig) or beside the operator by `rollout run --dashboard-addr`. It reads only
what every user of the API can read, the releases' status, and keeps in memory, while it runs, what
the status showed over time (the weight and phase at each change, the metrics at each check), which
is what the release page plots. The buttons write `status.command`, exactly as `rollout
promote|abort|retry` do, so the planner picks them up at its next tick; `--read-only` removes them
and the server refuses them. Finished runs link to the analysis reports when the server is given
their folder.

Served with aiohttp (already a dependency) in a thread of its own with its own event loop; the page
is plain HTML, CSS and JavaScript shipped in this package (`static/`): no CDN, no build step. A POST
must carry the `X-Rollout-Dashboard` header, which a cross-site form cannot send and a cross-site
script cannot send without a CORS preflight that this server never grants.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, cast

from aiohttp import web
from kubernetes import client
from kubernetes.client.exceptions import ApiException
from urllib3.exceptions import HTTPError

from analysis.report import INDEX, index_entries, index_html
from rollout.api.kinds import GROUP, PLURALS, RELEASE_KINDS, VERSION
from rollout.api.status import Command
from rollout.settings import listen_address

log = logging.getLogger(__name__)

STATIC = Path(__file__).parent / "static"
# The header every POST must carry (see the module's docstring).
HEADER = "X-Rollout-Dashboard"
# Points kept per release: weight and phase changes, and checks.
KEEP = 2000
# With no page open (no API request for WATCHED seconds) the releases are listed every IDLE_REFRESH
# seconds only: the timelines go on, coarser, and a cluster of many releases is not listed every second.
WATCHED = 60.0
IDLE_REFRESH = 10.0


@dataclass
class Timeline:
    """What one release's status showed while the dashboard watched: [time, weight, phase] at each change,
    and each check (`status.analysis`) once."""

    weights: list[tuple[float, int, str]] = field(default_factory=list)
    checks: list[dict[str, Any]] = field(default_factory=list)
    last_check: str | None = None

    def observe(self, status: Mapping[str, Any], now: float) -> None:
        weight, phase = int(status.get("canaryWeight") or 0), str(status.get("phase") or "")
        if not self.weights or self.weights[-1][1:] != (weight, phase):
            self.weights.append((now, weight, phase))
            del self.weights[:-KEEP]
        analysis = status.get("analysis") or {}
        checked = analysis.get("checkedAt")
        if checked and checked != self.last_check:
            self.last_check = checked
            self.checks.append({"at": checked, "verdict": analysis.get("verdict") or "", "weight": weight,
                                "metrics": [{k: m.get(k) for k in ("name", "value", "primary", "verdict", "limit")}
                                            for m in analysis.get("metrics") or []]})
            del self.checks[:-KEEP]


class Releases:
    """The releases as last listed (`refresh`), their timelines, and the commands sent to them."""

    def __init__(self, api: client.ApiClient, namespaces: Sequence[str] = (), *, timeout: float = 10.0,
                 reports: Path | None = None, clock: Callable[[], float] = time.time) -> None:
        self.objects = client.CustomObjectsApi(api)
        self.namespaces = tuple(namespaces)
        self.timeout = timeout
        self.reports = reports
        self.clock = clock
        self.listed: dict[tuple[str, str, str], dict[str, Any]] = {}
        self.timelines: dict[tuple[str, str, str], Timeline] = {}
        # Why the last listing failed, shown on the page; None when it worked.
        self.problem: str | None = None
        # When a page last asked (monotonic); None: never.
        self.looked_at: float | None = None
        self._lock = threading.Lock()

    def refresh(self) -> None:
        """List every release once; a failure is kept as `problem` and the last listing stays shown."""
        found: dict[tuple[str, str, str], dict[str, Any]] = {}
        try:
            for kind in RELEASE_KINDS:
                for namespace in self.namespaces or (None,):
                    listed = cast(dict[str, Any], (
                        self.objects.list_namespaced_custom_object(GROUP, VERSION, namespace, PLURALS[kind],
                                                                   _request_timeout=self.timeout)
                        if namespace else
                        self.objects.list_cluster_custom_object(GROUP, VERSION, PLURALS[kind],
                                                                _request_timeout=self.timeout)))
                    for obj in listed.get("items") or []:
                        meta = obj.get("metadata") or {}
                        obj.setdefault("kind", kind)
                        found[(kind, meta.get("namespace") or "default", meta.get("name") or "")] = obj
        except ApiException as e:
            self.problem = f"listing releases failed: {e.status} {e.reason}"
            return
        except (HTTPError, OSError) as e:
            self.problem = f"cannot reach the Kubernetes API: {type(e).__name__}: {str(e)[:200]}"
            return
        now = self.clock()
        with self._lock:
            self.problem = None
            self.listed = found
            for key, obj in found.items():
                self.timelines.setdefault(key, Timeline()).observe(obj.get("status") or {}, now)
            for gone in set(self.timelines) - set(found):
                del self.timelines[gone]

    def watched(self) -> bool:
        """Whether a page asked in the last WATCHED seconds."""
        return self.looked_at is not None and time.monotonic() - self.looked_at < WATCHED

    def summaries(self) -> list[dict[str, Any]]:
        self.looked_at = time.monotonic()
        with self._lock:
            return [summary(obj) for _, obj in sorted(self.listed.items())]

    def detail(self, kind: str, namespace: str, name: str) -> dict[str, Any] | None:
        self.looked_at = time.monotonic()
        key = (kind, namespace, name)
        with self._lock:
            obj = self.listed.get(key)
            if obj is None:
                return None
            timeline = self.timelines.get(key) or Timeline()
            found = {**summary(obj), **plan(obj),
                     "timeline": {"weights": list(timeline.weights), "checks": list(timeline.checks)},
                     "conditions": (obj.get("status") or {}).get("conditions") or [],
                     "metrics": ((obj.get("status") or {}).get("analysis") or {}).get("metrics") or []}
        found["reports"] = self.reports_of(namespace, name)
        return found

    def reports_of(self, namespace: str, name: str) -> list[dict[str, Any]]:
        if self.reports is None or not self.reports.is_dir():
            return []
        return [e for e in index_entries(self.reports) if e["namespace"] == namespace and e["name"] == name]

    def send(self, kind: str, namespace: str, name: str, command: Command) -> None:
        """Record `command` in the release's status, as `rollout promote|abort|retry` do."""
        self.objects.patch_namespaced_custom_object_status(
            GROUP, VERSION, namespace, PLURALS[kind], name, {"status": {"command": command.value}},
            _request_timeout=self.timeout, _content_type="application/merge-patch+json")


def summary(obj: Mapping[str, Any]) -> dict[str, Any]:
    """One release as the list shows it."""
    meta, spec, status = obj.get("metadata") or {}, obj.get("spec") or {}, obj.get("status") or {}
    analysis = status.get("analysis") or {}
    candidate = status.get("candidate") or {}
    history = status.get("history") or []
    revert = status.get("revert") or None
    ready = next((c for c in status.get("conditions") or [] if c.get("type") == "Ready"), None)
    problem = f"{ready.get('reason')}: {ready.get('message')}" if ready and ready.get("status") == "False" else ""
    revision = candidate.get("revision") or (history[-1].get("revision") if history else None)
    return {
        "kind": obj.get("kind"), "namespace": meta.get("namespace"), "name": meta.get("name"),
        "provider": status.get("provider") or spec.get("provider") or "",
        "phase": status.get("phase") or "", "weight": int(status.get("canaryWeight") or 0),
        "failedChecks": int(status.get("failedChecks") or 0),
        "threshold": (spec.get("analysis") or {}).get("threshold", 1),
        "lastCheck": {"at": analysis.get("checkedAt"), "verdict": analysis.get("verdict") or ""}
        if analysis.get("checkedAt") else None,
        "revision": revision, "revert": revert, "command": status.get("command"), "problem": problem,
        "lastTransitionTime": status.get("lastTransitionTime"),
    }


def plan(obj: Mapping[str, Any]) -> dict[str, Any]:
    """What the spec says the run goes through: its weights, interval and each metric's fixed limits."""
    analysis = (obj.get("spec") or {}).get("analysis") or {}
    steps: list[int] = [int(w) for w in analysis.get("stepWeights") or []]
    step, top = analysis.get("stepWeight"), int(analysis.get("maxWeight") or 100)
    if not steps and step and analysis.get("iterations") is None and int(step) > 0:
        steps = [*range(int(step), top, int(step)), top]
    limits = {}
    for m in analysis.get("metrics") or []:
        bounds = m.get("thresholdRange") or {}
        if "threshold" in m and not bounds:  # Flagger's deprecated form: a minimum for the success rate
            bounds = {"min": m["threshold"]} if m.get("name") == "request-success-rate" else {"max": m["threshold"]}
        limits[m.get("name")] = {"min": bounds.get("min"), "max": bounds.get("max")}
    return {"steps": steps, "interval": analysis.get("interval") or "1m", "judge": analysis.get("judge") or
            "threshold", "iterations": analysis.get("iterations"), "limits": limits}


# -- HTTP --------------------------------------------------------------------------------------------


def application(releases: Releases, *, read_only: bool = False, refresh: float = 1.0) -> web.Application:
    """The aiohttp app; it lists the releases every `refresh` seconds while it runs."""
    app = web.Application()

    async def page(_: web.Request) -> web.FileResponse:
        return web.FileResponse(STATIC / "index.html")

    async def listing(_: web.Request) -> web.Response:
        return web.json_response({"readOnly": read_only, "problem": releases.problem,
                                  "reports": releases.reports is not None, "releases": releases.summaries()})

    async def one(request: web.Request) -> web.Response:
        m = request.match_info
        found = releases.detail(m["kind"], m["namespace"], m["name"])
        if found is None:
            return web.json_response({"error": f"no {m['kind']} {m['namespace']}/{m['name']}"}, status=404)
        return web.json_response({"readOnly": read_only, **found})

    async def command(request: web.Request) -> web.Response:
        m = request.match_info
        if read_only:
            return web.json_response({"error": "this dashboard is read-only"}, status=403)
        if request.headers.get(HEADER) != "1":
            return web.json_response({"error": f"a command needs the {HEADER} header"}, status=403)
        if m["kind"] not in RELEASE_KINDS or m["command"] not in {c.value for c in Command}:
            return web.json_response({"error": "unknown kind or command"}, status=404)
        try:
            await asyncio.get_running_loop().run_in_executor(
                None, releases.send, m["kind"], m["namespace"], m["name"], Command(m["command"]))
        except ApiException as e:
            return web.json_response({"error": f"{e.status} {e.reason}"}, status=e.status or 502)
        except (HTTPError, OSError) as e:
            return web.json_response({"error": f"cannot reach the Kubernetes API: {e}"}, status=502)
        log.info("dashboard: %s %s %s/%s requested", m["command"], m["kind"], m["namespace"], m["name"])
        return web.json_response({"requested": m["command"]})

    async def reports_index(_: web.Request) -> web.Response:
        if releases.reports is None or not releases.reports.is_dir():
            raise web.HTTPNotFound(text="no reports folder: start with --reports DIR")
        return web.Response(text=index_html(index_entries(releases.reports)), content_type="text/html")

    async def report(request: web.Request) -> web.StreamResponse:
        folder = releases.reports
        file = request.match_info["file"]
        if folder is None or "/" in file or file.startswith(".") or not file.endswith((".html", ".md", ".json")):
            raise web.HTTPNotFound()
        if file == INDEX:
            return await reports_index(request)
        path = folder / file
        if not path.is_file():
            raise web.HTTPNotFound()
        return web.FileResponse(path, headers={"Content-Type": _TYPES[path.suffix]})

    async def poll(app: web.Application) -> Any:
        loop = asyncio.get_running_loop()

        async def loop_forever() -> None:
            while True:
                try:
                    await loop.run_in_executor(None, releases.refresh)
                except Exception:  # the page shows the last listing; the next refresh tries again
                    log.exception("dashboard: listing releases failed")
                idle = time.monotonic() + max(refresh, IDLE_REFRESH)
                await asyncio.sleep(refresh)
                while not releases.watched() and time.monotonic() < idle:
                    await asyncio.sleep(refresh)

        task = asyncio.create_task(loop_forever())
        yield
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task

    app.router.add_get("/", page)
    app.router.add_get("/api/releases", listing)
    app.router.add_get("/api/releases/{kind}/{namespace}/{name}", one)
    app.router.add_post("/api/releases/{kind}/{namespace}/{name}/{command}", command)
    app.router.add_get("/reports/", reports_index)
    app.router.add_get("/reports/{file}", report)
    app.router.add_static("/static/", STATIC)
    app.cleanup_ctx.append(poll)
    return app


_TYPES = {".html": "text/html; charset=utf-8", ".md": "text/markdown; charset=utf-8",
          ".json": "application/json"}


@dataclass
class DashboardServer:
    """The running server: `url` to reach it, `stop()` to close it."""

    loop: asyncio.AbstractEventLoop
    runner: web.AppRunner
    thread: threading.Thread
    host: str
    port: int

    @property
    def url(self) -> str:
        host = "127.0.0.1" if self.host in ("0.0.0.0", "") else (f"[{self.host}]" if ":" in self.host else self.host)
        return f"http://{host}:{self.port}"

    def stop(self) -> None:
        if self.loop.is_closed():
            return
        asyncio.run_coroutine_threadsafe(self.runner.cleanup(), self.loop).result(timeout=10)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(timeout=5)


def serve(addr: str, releases: Releases, *, read_only: bool = False, refresh: float = 1.0) -> DashboardServer | None:
    """Serve the dashboard on `addr` (`HOST:PORT`, `:PORT` for every interface) in a thread; None when
    `addr` is `0` or empty. OSError naming `--dashboard-addr` when the port cannot be bound."""
    where = listen_address(addr)
    if where is None:
        return None
    host, port = where
    loop = asyncio.new_event_loop()
    runner = web.AppRunner(application(releases, read_only=read_only, refresh=refresh), access_log=None)
    started: list[BaseException | int] = []
    ready = threading.Event()

    def run() -> None:
        asyncio.set_event_loop(loop)
        try:
            loop.run_until_complete(runner.setup())
            site = web.TCPSite(runner, host or None, port)
            loop.run_until_complete(site.start())
        except BaseException as e:
            started.append(e)
            with contextlib.suppress(Exception):  # ends the listing task that setup started
                loop.run_until_complete(runner.cleanup())
            ready.set()
            loop.close()
            return
        started.append(port)
        ready.set()
        try:
            loop.run_forever()
        finally:
            loop.close()

    thread = threading.Thread(target=run, name="rollout-dashboard", daemon=True)
    thread.start()
    ready.wait(timeout=30)
    outcome = started[0] if started else TimeoutError("the dashboard did not start")
    if isinstance(outcome, OSError):
        # asyncio's text repeats the address; the errno's own words are what `rollout run` prints.
        why = os.strerror(outcome.errno) if outcome.errno else str(outcome)
        raise OSError(outcome.errno, why, f"--dashboard-addr {addr}") from outcome
    if isinstance(outcome, BaseException):
        raise outcome
    log.info("serving the dashboard on %s%s", addr, " (read-only)" if read_only else "")
    return DashboardServer(loop, runner, thread, host, port)
