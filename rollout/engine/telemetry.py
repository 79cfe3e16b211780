"""The releases' metrics: Flagger's `flagger_*` set, and rollout's reconcile, tick lag and judge figures.

Flagger's metrics keep Flagger's names, labels and meaning (fluxcd/flagger `pkg/metrics/recorder.go`
and where its scheduler records them), so dashboards and alert rules written for Flagger keep working:
like Flagger, their `name` label is the target's name and a BlueGreen records as a Canary whose
`deployment_strategy` is `blue-green`. rollout's own metrics name the release (`name` is the
Canary's or BlueGreen's). Everything is on prometheus_client's default registry, which the health
server (`rollout.engine.health`) serves on `/metrics`.

The engine calls these functions where it does the thing measured: after a tick's status is
written, when a run ends, when a metric is checked. Nothing in `rollout.core` records anything.
"""

from __future__ import annotations

import gc
import time
from collections import Counter as Tally
from collections.abc import Callable, Iterable, Mapping
from importlib.metadata import PackageNotFoundError, version
from typing import TypeVar

from prometheus_client import Counter, Gauge, Histogram, disable_created_metrics

from rollout.api.spec import BlueGreen, Release
from rollout.api.status import RUNNING_PHASES, Phase, ReleaseStatus
from rollout.core import CheckResult

# Flagger's series carry no `_created` twin (Go's client has none); neither do rollout's.
disable_created_metrics()  # type: ignore[no-untyped-call]

# Go's prometheus.DefBuckets, which Flagger's duration histogram uses.
GO_DEFAULT_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, float("inf"))

# -- Flagger's (help texts as Flagger's) -------------------------------------------------------------

INFO = Gauge("flagger_info", "Flagger version and mesh provider information", ["version", "mesh_provider"])
TOTAL = Gauge("flagger_canary_total", "Total number of canary object", ["namespace"])
# 0 - running, 1 - successful, 2 - failed
STATUS = Gauge("flagger_canary_status", "Last canary analysis result", ["name", "namespace"])
WEIGHT = Gauge("flagger_canary_weight", "The virtual service destination weight current value",
               ["workload", "namespace"])
DURATION = Histogram("flagger_canary_duration_seconds", "Seconds spent performing canary analysis.",
                     ["name", "namespace"], buckets=GO_DEFAULT_BUCKETS)
ANALYSIS = Gauge("flagger_canary_metric_analysis", "Last canary analysis result per metric",
                 ["name", "namespace", "metric"])
SUCCESSES = Counter("flagger_canary_successes_total", "Total number of canary successes",
                    ["name", "namespace", "deployment_strategy", "analysis_status"])
FAILURES = Counter("flagger_canary_failures_total", "Total number of canary failures",
                   ["name", "namespace", "deployment_strategy", "analysis_status"])

# -- rollout's ---------------------------------------------------------------------------------------

RECONCILE_DURATION = Histogram("rollout_reconcile_duration_seconds",
                               "Seconds one reconcile (a release's tick, a GitSource's sync) took", ["kind"])
RECONCILE_ERRORS = Counter("rollout_reconcile_errors_total",
                           "Reconciles that ended on an error and will be retried", ["kind"])
TICK_LAG = Histogram("rollout_tick_lag_seconds",
                     "Seconds a release's tick started later than the planner asked for", ["kind"],
                     buckets=(0.01, 0.05, 0.1, 0.25, 0.5, 0.75, 1.0, 1.5, 2.0, 2.5, 5.0, 10.0, 30.0, 60.0,
                              float("inf")))
# What a tick's lag is made of: waiting for a worker thread, and kopf's event loop running late.
_WAIT_BUCKETS = (0.001, 0.005, 0.01, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, float("inf"))
WORKQUEUE_WAIT = Histogram("rollout_workqueue_wait_seconds",
                           "Seconds work waited for a thread of its pool (quick, under_way, syncs)", ["pool"],
                           buckets=_WAIT_BUCKETS)
LOOP_LAG = Histogram("rollout_event_loop_lag_seconds",
                     "Seconds kopf's event loop ran a timer later than asked (every heartbeat)",
                     buckets=_WAIT_BUCKETS)
# Go's client exports go_gc_duration_seconds, which Flagger's dashboards plot; Python's pauses every
# thread for a collection too, and a full one over a thousand releases' objects is long.
GC_PAUSE = Histogram("python_gc_duration_seconds", "Seconds each garbage collection paused every thread",
                     ["generation"], buckets=_WAIT_BUCKETS)
QUEUED = Gauge("rollout_releases_queued",
               "Releases waiting in phase Waiting for a slot under --max-concurrent-releases")
TICKS = Counter("rollout_release_ticks_total",
                "Ticks of releases that completed, by the phase the release was in when the tick began",
                ["kind", "phase"])
EVIDENCE = Gauge("rollout_judge_evidence",
                 "The judge's evidence at the last check of a metric: p-value (compare) or e-value (sequential)",
                 ["namespace", "name", "metric", "judge", "statistic"])

# Flagger's deployment strategies and analysis statuses (pkg/metrics/recorder.go).
CANARY, BLUE_GREEN, AB_TESTING = "canary", "blue-green", "ab-testing"
COMPLETED, SKIPPED = "completed", "skipped"
# The phases in which Flagger times a tick as "performing canary analysis".
ANALYSIS_PHASES = frozenset({Phase.WAITING, Phase.PROGRESSING, Phase.WAITING_PROMOTION})
# A run that ended in failure and is being (or was) reverted in Git.
FAILED_PHASES = frozenset({Phase.FAILED, Phase.REVERTING, Phase.REVERTED})

T = TypeVar("T")


def set_info(mesh_provider: str) -> None:
    try:
        own = version("rollout")
    except PackageNotFoundError:
        own = "unknown"
    INFO.labels(own, mesh_provider).set(1)


def strategy(release: Release) -> str:
    """Flagger's `Canary.DeploymentStrategy()`; a BlueGreen is Flagger's blue-green Canary."""
    if isinstance(release, BlueGreen):
        return BLUE_GREEN
    analysis = release.spec.analysis
    if analysis.match and analysis.iterations:
        return AB_TESTING
    if analysis.iterations:
        return BLUE_GREEN
    return CANARY


def status_value(phase: Phase) -> int:
    """flagger_canary_status: 0 while a run is under way, 2 when it failed, 1 otherwise."""
    if phase in RUNNING_PHASES:
        return 0
    if phase in FAILED_PHASES:
        return 2
    return 1


def tick_recorded(release: Release, old: ReleaseStatus, new: ReleaseStatus, seconds: float) -> None:
    """A tick took `seconds` and wrote `new` over `old`: status, weights, analysis time, a run's end."""
    target, namespace = release.spec.target_ref.name, release.metadata.namespace
    TICKS.labels(release.kind, old.phase.value if old.phase else "none").inc()
    if new.phase is None:
        return
    STATUS.labels(target, namespace).set(status_value(new.phase))
    WEIGHT.labels(target, namespace).set(new.canary_weight)
    WEIGHT.labels(f"{target}-primary", namespace).set(100 - new.canary_weight)
    if old.phase in ANALYSIS_PHASES or new.phase in ANALYSIS_PHASES:
        DURATION.labels(target, namespace).observe(seconds)
    if new.phase == old.phase:
        return
    analysis = SKIPPED if release.spec.skip_analysis else COMPLETED
    if new.phase == Phase.SUCCEEDED:
        SUCCESSES.labels(target, namespace, strategy(release), analysis).inc()
    elif new.phase == Phase.FAILED and old.phase not in FAILED_PHASES:
        # Reverting -> Failed (the revert was skipped) is the same failed run, not a second one.
        FAILURES.labels(target, namespace, strategy(release), analysis).inc()


def checks_recorded(release: Release, results: Iterable[CheckResult],
                    evidence: Mapping[str, tuple[str, str, float]]) -> None:
    """The metric checks of a tick: each metric's value, and the judge's evidence where it has one."""
    target, namespace, name = release.spec.target_ref.name, release.metadata.namespace, release.metadata.name
    for result in results:
        if result.value is not None:
            ANALYSIS.labels(target, namespace, result.name).set(result.value)
        if result.name in evidence:
            judge, statistic, value = evidence[result.name]
            EVIDENCE.labels(namespace, name, result.name, judge, statistic).set(value)


def totals(releases: Iterable[tuple[str, str, str]], namespaces: Iterable[str] = ()) -> None:
    """flagger_canary_total per namespace from the (kind, namespace, name) of every release known;
    `namespaces` that hold none any more go to 0."""
    counts = Tally(namespace for _, namespace, _ in releases)
    for namespace in set(namespaces) | set(counts):
        TOTAL.labels(namespace).set(counts.get(namespace, 0))


def forget(release: Release) -> None:
    """A deleted release's series go with it (its counters and histograms stay, as counters do)."""
    target, namespace, name = release.spec.target_ref.name, release.metadata.namespace, release.metadata.name
    STATUS.remove_by_labels({"name": target, "namespace": namespace})
    for workload in (target, f"{target}-primary"):
        WEIGHT.remove_by_labels({"workload": workload, "namespace": namespace})
    ANALYSIS.remove_by_labels({"name": target, "namespace": namespace})
    EVIDENCE.remove_by_labels({"namespace": namespace, "name": name})


# -- reconciles --------------------------------------------------------------------------------------

def reconciled(kind: str, reconcile: Callable[..., T], *args: object) -> T:
    """Run one reconcile of `kind`, timing it; one that raises counts as an error (and still raises)."""
    began = time.monotonic()
    try:
        return reconcile(*args)
    except Exception:
        RECONCILE_ERRORS.labels(kind).inc()
        raise
    finally:
        RECONCILE_DURATION.labels(kind).observe(time.monotonic() - began)


def waited(pool: str, since: float, work: Callable[..., T], *args: object) -> T:
    """Run `work` on a pool's thread, counting how long it waited for that thread since `since` (monotonic)."""
    WORKQUEUE_WAIT.labels(pool).observe(max(0.0, time.monotonic() - since))
    return work(*args)


_gc_began: list[float] = []


def _gc_timed(phase: str, info: dict[str, int]) -> None:
    if phase == "start":
        _gc_began[:] = [time.perf_counter()]
    elif _gc_began:
        GC_PAUSE.labels(str(info.get("generation", ""))).observe(time.perf_counter() - _gc_began.pop())


def time_gc() -> None:
    """Time every garbage collection from now on (once per process)."""
    if _gc_timed not in gc.callbacks:
        gc.callbacks.append(_gc_timed)


def loop_late(seconds: float) -> None:
    LOOP_LAG.observe(max(0.0, seconds))


def reconcile_failed(kind: str) -> None:
    """A reconcile ended on an error it handled (the API, Git or a router failed) and will retry."""
    RECONCILE_ERRORS.labels(kind).inc()


def queued(count: int) -> None:
    """How many releases wait for a slot under --max-concurrent-releases."""
    QUEUED.set(count)


def tick_late(kind: str, seconds: float) -> None:
    TICK_LAG.labels(kind).observe(max(0.0, seconds))
