"""Scale benchmark: what N releases cost one operator, and the API server, on this machine.

The sandbox API (`rollout sandbox up`) and the operator (`rollout run`) run as two processes, as on
a cluster. Per N: N Canaries (provider `kubernetes`, no metric checks, `iterations` steps of
`interval` each), each with a Deployment; N - P in namespace `scale-idle`, P = 10% in `scale-busy`.
The operator starts on all of them at once (as after a restart) and they initialise; then

  idle window         every release Initialized, nothing changes, for a few intervals
  progressing window  the P releases' images change at once; it ends when all P have Succeeded

Where the figures come from:

  ticks, tick lag     the operator's /metrics (`rollout_reconcile_duration_seconds_count`,
                      `rollout_tick_lag_seconds`: actual minus planned tick start), differences over
                      each window; lag quantiles interpolated in the histogram's buckets
  lag's parts         (in --json) per window, the p99 of kopf's loop running late
                      (`rollout_event_loop_lag_seconds`), of the wait for each pool's thread
                      (`rollout_workqueue_wait_seconds`) and of full garbage collections
                      (`python_gc_duration_seconds{generation="2"}`)
  API requests        the sandbox counts every request it serves by client (User-Agent); the
                      benchmark's own (set-up, image changes, its watch of the phases) are told apart
                      by its User-Agent and left out. GET = read, POST/PUT/PATCH/DELETE = write, a
                      watch counts once when opened (reported apart)
  per progressing     requests in `scale-busy` over the progressing window divided by the P releases'
  tick                ticks: those begun in a run's phases (`rollout_release_ticks_total` by phase) and
                      the one that started each run
  CPU, RSS            /proc/<pid>/stat (utime + stime) and /proc/<pid>/status (VmRSS) of each process;
                      cores = CPU seconds / wall seconds
  to Succeeded        per progressing release, from its image change to phase Succeeded (seen on a
                      watch), divided by iterations x interval: 1.0 is no overhead

Run: python -m benchmarks.scale [--sizes 100,500,1000] [--quick] [--json PATH]
     [--operator-arg=--workers=8 ...]. Prints ratios and per-tick costs; never fails on speed.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import math
import os
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from collections import Counter
from collections.abc import Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from kubernetes import client, watch
from kubernetes.client.exceptions import ApiException
from prometheus_client.parser import text_string_to_metric_families

from rollout.api.kinds import GROUP, VERSION
from rollout.engine.kube import api_client
from sandbox.apiserver import REQUESTS_PATH

AGENT = "rollout-scale-benchmark"
IDLE_NS, BUSY_NS = "scale-idle", "scale-busy"
OLD, NEW = "ghcr.io/stefanprodan/podinfo:6.0.0", "ghcr.io/stefanprodan/podinfo:6.0.1"
WRITES = ("POST", "PUT", "PATCH", "DELETE")
IDLE_PHASES = frozenset({"Initialized", "Succeeded", "Initializing", "none"})  # not in a run
CLOCK_TICK = os.sysconf("SC_CLK_TCK")
PAGE = os.sysconf("SC_PAGE_SIZE")


@dataclass(frozen=True)
class Plan:
    """One benchmark run's shape."""

    interval: int = 10  # seconds
    iterations: int = 3  # steps of each release
    idle_intervals: int = 3  # length of the idle window
    settle_intervals: int = 1  # wait after the last release is Initialized
    busy_share: float = 0.1
    init_timeout: float = 600.0
    progress_factor: float = 6.0  # the progressing window ends at this many x steps x interval (+ a minute)
    operator_args: tuple[str, ...] = ()

    @property
    def nominal(self) -> float:
        return float(self.iterations * self.interval)


QUICK = Plan(interval=1, iterations=2, idle_intervals=3, settle_intervals=1, init_timeout=60.0, progress_factor=10.0)


# -- the two processes -------------------------------------------------------------------------------

def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _wait(what: str, probe: Any, timeout: float, every: float = 0.2) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if probe():
            return
        time.sleep(every)
    raise RuntimeError(f"timed out after {timeout:.0f}s waiting for {what}")


class Process:
    """A child process run as a user runs it, its output in a log; stopped by its pid."""

    def __init__(self, args: Sequence[str], log: Path) -> None:
        self.log = log
        with log.open("wb") as out:
            self.popen = subprocess.Popen(list(args), stdout=out, stderr=subprocess.STDOUT)

    @property
    def pid(self) -> int:
        return self.popen.pid

    def alive(self) -> bool:
        return self.popen.poll() is None

    def stop(self) -> None:
        if self.alive():
            self.popen.send_signal(signal.SIGTERM)
            try:
                self.popen.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.popen.kill()
                self.popen.wait(timeout=5)

    def tail(self, lines: int = 20) -> str:
        with contextlib.suppress(OSError):
            return "\n".join(self.log.read_text(errors="replace").splitlines()[-lines:])
        return ""


def _rollout(*args: str) -> list[str]:
    return [sys.executable, "-m", "rollout", *args]


def start_sandbox(root: Path) -> tuple[Process, Path, str]:
    kubeconfig = root / "kubeconfig"
    sandbox = Process(_rollout("sandbox", "up", "--kubeconfig", str(kubeconfig)), root / "sandbox.log")
    _wait("the sandbox", lambda: "kubeconfig:" in sandbox.log.read_text() or not sandbox.alive(), 60)
    if not sandbox.alive():
        raise RuntimeError(f"the sandbox did not start:\n{sandbox.tail()}")
    url = next(line.split(" at ", 1)[1].strip() for line in sandbox.log.read_text().splitlines()
               if "API server at" in line)
    return sandbox, kubeconfig, url


def start_operator(root: Path, kubeconfig: Path, plan: Plan) -> tuple[Process, str]:
    port = _free_port()
    operator = Process(_rollout("run", "-n", IDLE_NS, "-n", BUSY_NS, "--kubeconfig", str(kubeconfig),
                                "--metrics-addr", f"127.0.0.1:{port}", "--git-cache", str(root / "git"),
                                "--prometheus", "http://127.0.0.1:9", *plan.operator_args),
                       root / "operator.log")
    url = f"http://127.0.0.1:{port}/metrics"

    def up() -> bool:
        if not operator.alive():
            return True
        with contextlib.suppress(OSError):
            urllib.request.urlopen(url, timeout=2).read()
            return True
        return False

    _wait("the operator's /metrics", up, 60)
    if not operator.alive():
        raise RuntimeError(f"the operator did not start:\n{operator.tail()}")
    return operator, url


# -- the objects -------------------------------------------------------------------------------------

def deployment(name: str, namespace: str) -> dict[str, Any]:
    labels = {"app": name}
    return {
        "apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": {"name": name, "namespace": namespace, "labels": labels},
        "spec": {"replicas": 1, "selector": {"matchLabels": labels},
                 "template": {"metadata": {"labels": labels},
                              "spec": {"containers": [{"name": "app", "image": OLD,
                                                       "ports": [{"name": "http", "containerPort": 9898}]}]}}},
    }


def canary(name: str, namespace: str, plan: Plan) -> dict[str, Any]:
    """The cheapest release to route: a Service selector switch, no metric checks."""
    return {
        "apiVersion": f"{GROUP}/{VERSION}", "kind": "Canary",
        "metadata": {"name": name, "namespace": namespace},
        "spec": {"provider": "kubernetes",
                 "targetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": name},
                 "service": {"port": 9898},
                 "analysis": {"interval": f"{plan.interval}s", "threshold": 2, "iterations": plan.iterations,
                              "metrics": []}},
    }


def releases(n: int, share: float) -> list[tuple[str, str]]:
    busy = max(1, round(n * share))
    return [(BUSY_NS if i < busy else IDLE_NS, f"app-{i:04d}") for i in range(n)]


def _parallel(fn: Any, items: Sequence[Any], workers: int = 8) -> None:
    with ThreadPoolExecutor(workers) as pool:
        for _ in pool.map(fn, items):
            pass


def create_all(api: client.ApiClient, items: Sequence[tuple[str, str]], plan: Plan) -> None:
    core, apps, custom = client.CoreV1Api(api), client.AppsV1Api(api), client.CustomObjectsApi(api)
    for ns in (IDLE_NS, BUSY_NS):
        core.create_namespace({"metadata": {"name": ns}})  # type: ignore[arg-type]

    def one(item: tuple[str, str]) -> None:
        ns, name = item
        apps.create_namespaced_deployment(ns, deployment(name, ns))  # type: ignore[arg-type]
        custom.create_namespaced_custom_object(GROUP, VERSION, ns, "canaries", canary(name, ns, plan))

    _parallel(one, items)


def change_images(api: client.ApiClient, items: Sequence[tuple[str, str]], phases: Phases) -> None:
    apps = client.AppsV1Api(api)

    def one(item: tuple[str, str]) -> None:
        ns, name = item
        apps.patch_namespaced_deployment(
            name, ns, {"spec": {"template": {"spec": {"containers": [{"name": "app", "image": NEW}]}}}},
            _content_type="application/strategic-merge-patch+json")
        phases.changed(ns, name)

    _parallel(one, items)


class Phases:
    """Each release's phase, from a watch per namespace (one request each, the benchmark's own), and
    when each progressing release reached Succeeded after its change."""

    def __init__(self, api: client.ApiClient, namespaces: Sequence[str]) -> None:
        self.custom = client.CustomObjectsApi(api)
        self.phase: dict[tuple[str, str], str] = {}
        self.changed_at: dict[tuple[str, str], float] = {}
        self.succeeded_after: dict[tuple[str, str], float] = {}
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._threads = [threading.Thread(target=self._follow, args=(ns,), daemon=True) for ns in namespaces]
        for t in self._threads:
            t.start()

    def changed(self, namespace: str, name: str) -> None:
        with self._lock:
            self.changed_at[(namespace, name)] = time.monotonic()

    def count(self, phase: str, namespace: str | None = None) -> int:
        with self._lock:
            return sum(1 for (ns, _), p in self.phase.items() if p == phase and namespace in (None, ns))

    def _seen(self, namespace: str, obj: Mapping[str, Any]) -> None:
        key = (namespace, str(obj["metadata"]["name"]))
        phase = str((obj.get("status") or {}).get("phase") or "")
        with self._lock:
            self.phase[key] = phase
            began = self.changed_at.get(key)
            if phase == "Succeeded" and began is not None and key not in self.succeeded_after:
                self.succeeded_after[key] = time.monotonic() - began

    def _follow(self, namespace: str) -> None:
        while not self._stop.is_set():
            try:
                # Bounded in time: a saturated API server must not leave the phases unwatched for good.
                listing: dict[str, Any] = self.custom.list_namespaced_custom_object(  # type: ignore[assignment]
                    GROUP, VERSION, namespace, "canaries", _request_timeout=120)
                for obj in listing.get("items", []):
                    self._seen(namespace, obj)
                version = listing["metadata"]["resourceVersion"]
                stream = watch.Watch().stream(  # type: ignore[no-untyped-call]
                    self.custom.list_namespaced_custom_object, GROUP, VERSION, namespace, "canaries",
                    resource_version=version, timeout_seconds=60, _request_timeout=90)
                for event in stream:
                    if self._stop.is_set():
                        return
                    self._seen(namespace, event["object"])
            except (ApiException, OSError, ValueError):
                if self._stop.wait(1.0):
                    return
            except Exception:  # urllib3's errors when the sandbox goes away at the end
                if self._stop.wait(1.0):
                    return

    def stop(self) -> None:
        self._stop.set()


# -- measuring ---------------------------------------------------------------------------------------

def _proc_cpu(pid: int) -> float:
    """CPU seconds (user + system) of process `pid` and its threads."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLOCK_TICK


def _proc_rss(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    return 0


@dataclass
class Snapshot:
    at: float
    requests: Counter[str]  # the operator's: "METHOD path" ("WATCH path" for a watch opened)
    ticks: float
    lag: dict[float, float]  # cumulative counts by upper bound (seconds)
    phase_ticks: dict[str, float]  # by the phase a tick began in
    waits: dict[str, dict[float, float]]  # what the lag is made of: "loop" and each pool's, cumulative buckets
    operator_cpu: float
    sandbox_cpu: float
    operator_rss: int
    sandbox_rss: int


def operator_metrics(url: str) -> tuple[float, dict[float, float], dict[str, float], dict[str, dict[float, float]]]:
    """The operator's ticks, tick lag buckets and ticks by the phase they began in (Canaries), and the
    buckets of what the lag is made of: kopf's event loop running late, and the wait for each pool's thread."""
    text = urllib.request.urlopen(url, timeout=10).read().decode()
    ticks, lag, phases = 0.0, {}, {}
    waits: dict[str, dict[float, float]] = {}
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            if s.name == "rollout_event_loop_lag_seconds_bucket":
                waits.setdefault("loop", {})[float(s.labels["le"])] = s.value
            elif s.name == "python_gc_duration_seconds_bucket" and s.labels.get("generation") == "2":
                waits.setdefault("gc2", {})[float(s.labels["le"])] = s.value
            elif s.name == "rollout_workqueue_wait_seconds_bucket":
                waits.setdefault(s.labels["pool"], {})[float(s.labels["le"])] = s.value
            if s.labels.get("kind") != "Canary":
                continue
            if s.name == "rollout_reconcile_duration_seconds_count":
                ticks = s.value
            elif s.name == "rollout_tick_lag_seconds_bucket":
                lag[float(s.labels["le"])] = s.value
            elif s.name == "rollout_release_ticks_total":
                phases[s.labels["phase"]] = s.value
    return ticks, lag, phases, waits


def served(sandbox_url: str) -> Counter[str]:
    """Every request the sandbox served so far, except the benchmark's own."""
    body = json.loads(urllib.request.urlopen(sandbox_url + REQUESTS_PATH, timeout=10).read())
    total: Counter[str] = Counter()
    for agent, counts in body["agents"].items():
        if agent != AGENT:
            total.update(counts)
    return total


def snapshot(sandbox: Process, sandbox_url: str, operator: Process, metrics_url: str) -> Snapshot:
    ticks, lag, phases, waits = operator_metrics(metrics_url)
    return Snapshot(time.monotonic(), served(sandbox_url), ticks, lag, phases, waits, _proc_cpu(operator.pid),
                    _proc_cpu(sandbox.pid), _proc_rss(operator.pid), _proc_rss(sandbox.pid))


def quantile(q: float, buckets: Mapping[float, float]) -> float | None:
    """histogram_quantile over cumulative bucket counts; inf when it falls past the last bound."""
    bounds = sorted(buckets)
    if not bounds or buckets[bounds[-1]] <= 0:
        return None
    rank = q * buckets[bounds[-1]]
    below, lower = 0.0, 0.0
    for bound in bounds:
        count = buckets[bound]
        if count >= rank:
            if math.isinf(bound):
                return math.inf
            share = (rank - below) / (count - below) if count > below else 1.0
            return lower + (bound - lower) * share
        below, lower = count, bound
    return math.inf


def _namespace_of(path: str) -> str | None:
    parts = path.split("/")
    return parts[parts.index("namespaces") + 1] if "namespaces" in parts[:-1] else None


def _shape(key: str) -> str:
    """"GET /api/v1/namespaces/x/services/app-0001" as "GET /api/v1/namespaces/*/services/*"."""
    method, path = key.split(" ", 1)
    parts = path.strip("/").split("/")
    base = 2 if parts[0] == "api" else 3  # /api/v1 or /apis/group/version
    rest = parts[base:]
    if rest[:1] == ["namespaces"] and len(rest) >= 2:
        rest = ["namespaces", "*", *rest[2:]]
        if len(rest) >= 4:
            rest[3] = "*"
    return f"{method} /{'/'.join([*parts[:base], *rest])}"


@dataclass
class Window:
    """What the operator and the sandbox did between two snapshots."""

    seconds: float
    ticks: float
    reads: int
    writes: int
    watches: int
    operator_cpu: float
    sandbox_cpu: float
    lag_buckets: dict[float, float]
    run_ticks: float | None  # ticks begun in a run's phases (not idle), when the operator counts them
    waits: dict[str, dict[float, float]] = field(default_factory=dict)
    by_namespace: dict[str, tuple[int, int]] = field(default_factory=dict)  # (reads, writes)
    by_shape: dict[str, int] = field(default_factory=dict)  # "GET /apis/apps/v1/namespaces/*/deployments/*": n

    @classmethod
    def between(cls, a: Snapshot, b: Snapshot) -> Window:
        diff = b.requests - a.requests
        reads = writes = watches = 0
        by_ns: dict[str, list[int]] = {}
        shapes: Counter[str] = Counter()
        for key, n in diff.items():
            shapes[_shape(key)] += n
            method, path = key.split(" ", 1)
            ns = _namespace_of(path) or ""
            slot = by_ns.setdefault(ns, [0, 0])
            if method == "WATCH":
                watches += n
            elif method in WRITES:
                writes += n
                slot[1] += n
            else:
                reads += n
                slot[0] += n
        return cls(b.at - a.at, b.ticks - a.ticks, reads, writes, watches, b.operator_cpu - a.operator_cpu,
                   b.sandbox_cpu - a.sandbox_cpu, {k: b.lag.get(k, 0) - a.lag.get(k, 0) for k in b.lag},
                   sum(v - a.phase_ticks.get(k, 0) for k, v in b.phase_ticks.items() if k not in IDLE_PHASES)
                   if b.phase_ticks else None,
                   {name: {k: v - a.waits.get(name, {}).get(k, 0) for k, v in buckets.items()}
                    for name, buckets in b.waits.items()},
                   {k: (v[0], v[1]) for k, v in by_ns.items()}, dict(shapes.most_common()))

    def per_tick(self, n: float) -> float:
        return n / self.ticks if self.ticks else math.nan

    def cores(self, cpu: float) -> float:
        return cpu / self.seconds if self.seconds else math.nan

    @property
    def requests(self) -> int:
        return self.reads + self.writes + self.watches


@dataclass
class Row:
    n: int
    busy: int
    initialized: int
    init_seconds: float
    idle: Window
    progressing: Window
    succeeded: int
    to_succeed: list[float]  # seconds / (iterations x interval), per progressing release that succeeded
    operator_rss: int
    sandbox_rss: int
    notes: list[str] = field(default_factory=list)

    @property
    def busy_ticks(self) -> float:
        """The progressing releases' ticks in the progressing window: those begun in a run's phases
        and the one that started each run (from Initialized). An operator that does not count ticks by
        phase: all ticks less the idle releases' share at their idle-window rate (an estimate)."""
        if self.progressing.run_ticks is not None:
            return max(1.0, self.progressing.run_ticks + self.busy)
        rate = self.idle.ticks / (self.n * self.idle.seconds) if self.idle.seconds else 0.0
        others = rate * (self.n - self.busy) * self.progressing.seconds
        return max(1.0, self.progressing.ticks - others)

    def busy_requests(self) -> tuple[int, int]:
        return self.progressing.by_namespace.get(BUSY_NS, (0, 0))

    def figures(self) -> dict[str, Any]:
        reads, writes = self.busy_requests()
        ratios = sorted(self.to_succeed)
        both = Window(self.idle.seconds + self.progressing.seconds, 0, 0, 0, 0, 0, 0,
                      {k: self.idle.lag_buckets.get(k, 0) + v for k, v in self.progressing.lag_buckets.items()}, None)
        return {
            "n": self.n, "progressing": self.busy, "initialized": self.initialized,
            "init_seconds": round(self.init_seconds, 1),
            "lag_p50_s": quantile(0.5, both.lag_buckets), "lag_p99_s": quantile(0.99, both.lag_buckets),
            "idle_lag_p99_s": quantile(0.99, self.idle.lag_buckets),
            "progressing_lag_p99_s": quantile(0.99, self.progressing.lag_buckets),
            # Where the lag comes from: kopf's loop late on its timers, and the waits for a pool's thread.
            **{f"{window}_{name}_wait_p99_s": quantile(0.99, buckets)
               for window, w in (("idle", self.idle), ("progressing", self.progressing))
               for name, buckets in sorted(w.waits.items())},
            "idle_ticks_per_s": self.idle.ticks / self.idle.seconds if self.idle.seconds else None,
            "idle_reads_per_tick": self.idle.per_tick(self.idle.reads),
            "idle_writes_per_tick": self.idle.per_tick(self.idle.writes),
            "idle_watches_opened": self.idle.watches,
            "progressing_reads_per_tick": reads / self.busy_ticks,
            "progressing_writes_per_tick": writes / self.busy_ticks,
            "progressing_ticks": round(self.busy_ticks, 1),
            "progressing_ticks_counted": self.progressing.run_ticks is not None,
            "progressing_watches_opened": self.progressing.watches,
            "operator_cpu_ms_per_tick_idle": 1000 * self.idle.per_tick(self.idle.operator_cpu),
            "operator_cpu_ms_per_tick_progressing": 1000 * self.progressing.per_tick(self.progressing.operator_cpu),
            "operator_cores_idle": self.idle.cores(self.idle.operator_cpu),
            "operator_cores_progressing": self.progressing.cores(self.progressing.operator_cpu),
            "operator_rss_mib": self.operator_rss / 2**20,
            "sandbox_cores_idle": self.idle.cores(self.idle.sandbox_cpu),
            "sandbox_cores_progressing": self.progressing.cores(self.progressing.sandbox_cpu),
            "sandbox_requests_per_s_progressing": self.progressing.requests / self.progressing.seconds
            if self.progressing.seconds else None,
            "sandbox_cpu_ms_per_request_progressing": 1000 * self.progressing.sandbox_cpu / self.progressing.requests
            if self.progressing.requests else None,
            "sandbox_rss_mib": self.sandbox_rss / 2**20,
            "succeeded": self.succeeded,
            "to_succeed_median": statistics.median(ratios) if ratios else None,
            "to_succeed_max": ratios[-1] if ratios else None,
            "idle_requests_by_shape": self.idle.by_shape,
            "progressing_requests_by_shape": self.progressing.by_shape,
            "notes": self.notes,
        }


# -- one size ----------------------------------------------------------------------------------------

def run_size(n: int, plan: Plan, log: Any = print) -> Row:
    root = Path(tempfile.mkdtemp(prefix=f"rollout-scale-{n}-"))
    sandbox = operator = None
    phases: Phases | None = None
    try:
        sandbox, kubeconfig, sandbox_url = start_sandbox(root)
        api = api_client(kubeconfig)
        api.user_agent = AGENT
        items = releases(n, plan.busy_share)
        busy = [item for item in items if item[0] == BUSY_NS]
        log(f"N={n}: creating {n} Deployments and Canaries ({len(busy)} to progress)")
        create_all(api, items, plan)
        phases = Phases(api, (IDLE_NS, BUSY_NS))
        operator, metrics_url = start_operator(root, kubeconfig, plan)

        def both_alive() -> bool:
            return operator.alive() and sandbox.alive()

        began = time.monotonic()
        notes: list[str] = []
        try:
            _wait("every release Initialized", lambda: phases.count("Initialized") >= n or not both_alive(),
                  plan.init_timeout, every=0.5)
        except RuntimeError:
            notes.append(f"only {phases.count('Initialized')} of {n} Initialized after {plan.init_timeout:.0f}s")
        if not both_alive():
            raise RuntimeError(f"the operator or the sandbox stopped:\n{operator.tail()}\n{sandbox.tail()}")
        init_seconds = time.monotonic() - began
        initialized = phases.count("Initialized")
        log(f"N={n}: {initialized} Initialized in {init_seconds:.0f}s; idle window")
        time.sleep(plan.settle_intervals * plan.interval)
        a = snapshot(sandbox, sandbox_url, operator, metrics_url)
        time.sleep(plan.idle_intervals * plan.interval)
        b = snapshot(sandbox, sandbox_url, operator, metrics_url)
        log(f"N={n}: {len(busy)} releases progressing")
        change_images(api, busy, phases)
        deadline = plan.progress_factor * plan.nominal + 60
        try:
            _wait("the progressing releases Succeeded",
                  lambda: len(phases.succeeded_after) >= len(busy) or not both_alive(), deadline, every=0.25)
        except RuntimeError:
            notes.append(f"only {len(phases.succeeded_after)} of {len(busy)} Succeeded after {deadline:.0f}s")
        c = snapshot(sandbox, sandbox_url, operator, metrics_url)
        ratios = [seconds / plan.nominal for seconds in phases.succeeded_after.values()]
        return Row(n, len(busy), initialized, init_seconds, Window.between(a, b), Window.between(b, c),
                   len(phases.succeeded_after), ratios, c.operator_rss, c.sandbox_rss, notes)
    finally:
        if phases is not None:
            phases.stop()
        for process in (operator, sandbox):
            if process is not None:
                process.stop()
        shutil.rmtree(root, ignore_errors=True)


# -- the table ---------------------------------------------------------------------------------------

COLUMNS = (
    ("N", "n", "{:>5}"),
    ("lag p50", "lag_p50_s", "{:>7}"),
    ("lag p99", "lag_p99_s", "{:>7}"),
    ("idle R/t", "idle_reads_per_tick", "{:>8}"),
    ("idle W/t", "idle_writes_per_tick", "{:>8}"),
    ("prog R/t", "progressing_reads_per_tick", "{:>8}"),
    ("prog W/t", "progressing_writes_per_tick", "{:>8}"),
    ("watches", "progressing_watches_opened", "{:>7}"),
    ("op ms/t", "operator_cpu_ms_per_tick_idle", "{:>7}"),
    ("op cores", "operator_cores_progressing", "{:>8}"),
    ("op MiB", "operator_rss_mib", "{:>6}"),
    ("sb cores", "sandbox_cores_progressing", "{:>8}"),
    ("done/nom p50", "to_succeed_median", "{:>12}"),
    ("max", "to_succeed_max", "{:>5}"),
)

LEGEND = """\
lag p50/p99   tick lag (actual minus planned start), seconds, both windows
idle R/t W/t  API reads and writes per tick, all releases idle (Initialized)
prog R/t W/t  API reads and writes per tick of a progressing release (10% changed at once)
watches       watch streams the operator opened during the progressing window
op ms/t       operator CPU ms per tick (idle window); op cores: operator CPU / wall (progressing window)
op MiB        operator RSS; sb cores: the sandbox API server's own CPU / wall (progressing window)
done/nom      change to Succeeded / (iterations x interval), median and max over the progressing releases"""


def _cell(value: Any) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "-"
    if isinstance(value, float):
        if math.isinf(value):
            return ">60"
        return f"{value:.3g}" if abs(value) < 100 else f"{value:.0f}"
    return str(value)


def table(rows: Sequence[Mapping[str, Any]]) -> str:
    header = "  ".join(fmt.format(title) for title, _, fmt in COLUMNS)
    lines = [header, "-" * len(header)]
    for row in rows:
        lines.append("  ".join(fmt.format(_cell(row[key])) for _, key, fmt in COLUMNS))
    for row in rows:
        lines.extend(f"N={row['n']}: {note}" for note in row["notes"])
    return "\n".join(lines)


def bottleneck(row: Mapping[str, Any]) -> str | None:
    """A line naming the sandbox as the bottleneck when its one Python thread is near a full core."""
    cores = row["sandbox_cores_progressing"]
    if cores is None or cores < 0.8:
        return None
    return (f"N={row['n']}: the sandbox API server is the bottleneck: {cores:.2f} cores (one Python thread), "
            f"{row['sandbox_requests_per_s_progressing']:.0f} requests/s at "
            f"{row['sandbox_cpu_ms_per_request_progressing']:.2f} ms CPU each")


def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m benchmarks.scale", description=__doc__.split("\n\n")[0])
    p.add_argument("--sizes", default="100,500,1000", help="numbers of releases, comma-separated")
    p.add_argument("--quick", action="store_true",
                   help="a smoke run: 1 s interval, 2 steps, short windows (default sizes 20)")
    p.add_argument("--interval", type=int, help="seconds per step (default 10, --quick 1)")
    p.add_argument("--iterations", type=int, help="steps per release (default 3, --quick 2)")
    p.add_argument("--json", type=Path, metavar="PATH", help="also write the figures here")
    p.add_argument("--operator-arg", action="append", default=[], metavar="ARG",
                   help="passed to `rollout run` (repeatable), e.g. --operator-arg=--workers=8")
    args = p.parse_args(argv)
    plan = QUICK if args.quick else Plan()
    if args.quick and args.sizes == p.get_default("sizes"):
        args.sizes = "20"
    overrides = {k: v for k, v in (("interval", args.interval), ("iterations", args.iterations)) if v}
    plan = Plan(**{**asdict(plan), **overrides, "operator_args": tuple(args.operator_arg)})
    sizes = [int(s) for s in args.sizes.split(",") if s.strip()]
    print(f"scale benchmark: Canaries (provider kubernetes, no metric checks, {plan.iterations} steps of "
          f"{plan.interval}s), {plan.busy_share:.0%} progressing at once; sizes {sizes}", flush=True)
    rows = []
    for n in sizes:
        row = run_size(n, plan, log=lambda text: print(text, file=sys.stderr, flush=True)).figures()
        rows.append(row)
        print(table([row]).splitlines()[2], file=sys.stderr, flush=True)
    print()
    print(table(rows))
    for row in rows:
        if (line := bottleneck(row)) is not None:
            print(line)
    print()
    print(LEGEND)
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps({"plan": asdict(plan), "rows": rows}, indent=2, default=str))
    return 0


if __name__ == "__main__":
    sys.exit(main())
