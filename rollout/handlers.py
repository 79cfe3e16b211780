"""kopf registrations only: thin, no logic.

`run` serves /metrics, /healthz and /readyz (`rollout.engine.health`), and the dashboard when asked
(`rollout.engine.dashboard`), from before kopf starts until after it stops; kopf's loop beats a
heartbeat there while it runs. Each Canary and BlueGreen gets a daemon that ticks it at the interval
the planner asks for (a daemon waits on its stop flag between ticks, never sleeps in a handler);
deletion goes through a finalizer that sends all traffic back to the primary. Each GitSource gets a
daemon that syncs it every interval, or at once when a revert was pushed. Everything else is
`rollout.engine.operator` and `rollout.gitops`. With leader election the process first campaigns
(`rollout.engine.leader`) and starts kopf only once it leads: a standby registers nothing and acts on
nothing.
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta
from pathlib import Path
from typing import Any, TypeVar

import kopf
from kubernetes import client

from rollout.api.kinds import BLUEGREEN, CANARY, GIT_SOURCE, GROUP, PLURALS, VERSION
from rollout.engine import dashboard, telemetry
from rollout.engine.alerts import Alerter
from rollout.engine.cache import CachingApiClient
from rollout.engine.events import EventRecorder
from rollout.engine.gcpauses import Freezer
from rollout.engine.health import HEARTBEAT, Health, always_ready, serve
from rollout.engine.kube import api_answers, api_client, connection
from rollout.engine.leader import LEADER, LeaderElector, lead
from rollout.engine.operator import Operator
from rollout.engine.wakes import Wakes
from rollout.gitops.receiver import Receiver
from rollout.gitops.receiver import serve as serve_webhooks
from rollout.gitops.source import SourceReconciler
from rollout.gitops.writer import GitRevertWriter
from rollout.settings import Settings

log = logging.getLogger(__name__)

# The shortest wait between two ticks, so a planner asking for "now" cannot spin.
MIN_WAIT = 0.2
# Connections kept beyond the pools' threads: the watch-fed cache's streams (one per kind watched).
POOL_SLACK = 32
T = TypeVar("T")
# A GitSource waits for its interval in slices this long, so a pushed revert is applied at once.
WAKE_SLICE = 0.5
# How long a release or GitSource waits while the leader's Lease is overdue (the process is about to exit).
NOT_LEADING_WAIT = 1.0


@kopf.on.startup()
def _configure(settings: kopf.OperatorSettings, memo: kopf.Memo, **_: Any) -> None:
    settings.execution.executor = memo["pools"].quick
    settings.persistence.finalizer = f"{GROUP}/finalizer"
    settings.persistence.progress_storage = kopf.AnnotationsProgressStorage(prefix=GROUP)
    settings.persistence.diffbase_storage = kopf.AnnotationsDiffBaseStorage(prefix=GROUP)
    settings.posting.enabled = False  # the engine writes its own Events
    settings.watching.server_timeout = memo["settings"].watch_timeout
    settings.networking.request_timeout = memo["settings"].watch_request_timeout


@kopf.on.startup()
async def _heartbeat(memo: kopf.Memo, **_: Any) -> None:
    # kopf opens its watches once its startup handlers are done. The beat comes from kopf's own
    # loop, which runs every watch stream: a stuck or dead loop stops it.
    health: Health = memo["health"]
    health.started()

    freezer: Freezer | None = memo.get("freezer")

    async def beat() -> None:
        loop = asyncio.get_running_loop()
        while True:
            health.beat()
            if freezer is not None:
                freezer.maintain()
            due = loop.time() + HEARTBEAT
            await asyncio.sleep(HEARTBEAT)
            telemetry.loop_late(loop.time() - due)

    memo["heartbeat"] = asyncio.create_task(beat())


@kopf.on.cleanup()
async def _heartbeat_stop(memo: kopf.Memo, **_: Any) -> None:
    if (task := memo.get("heartbeat")) is not None:
        task.cancel()


@kopf.on.login()
def _login(memo: kopf.Memo, **_: Any) -> kopf.ConnectionInfo:
    return kopf.ConnectionInfo(**connection(memo["operator"].api))


@kopf.daemon(GROUP, VERSION, PLURALS[CANARY], cancellation_timeout=10)
@kopf.daemon(GROUP, VERSION, PLURALS[BLUEGREEN], cancellation_timeout=10)
async def _release(stopped: kopf.DaemonStopped, body: kopf.Body, memo: kopf.Memo, **_: Any) -> None:
    # Async so that a waiting release holds no thread: only a tick borrows one (the client is sync).
    operator: Operator = memo["operator"]
    kind, namespace, name = body["kind"], body.metadata.namespace or "default", body.metadata.name or ""
    wakes: Wakes = memo["wakes"]
    wake = wakes.register((kind, namespace, name))
    woken = False
    try:
        while not stopped:
            if not memo.get("leading", _always)():
                await stopped.wait(NOT_LEADING_WAIT)
                continue
            # A release under way may wait on Prometheus, a webhook or Git, and an idle one woken by a
            # change is about to write (a new run starts): they tick on a pool of their own, so that
            # however slow those are, the idle releases' timer ticks (reads from memory) are not held up.
            pools: Pools = memo["pools"]
            pool = "quick" if operator.idle(kind, namespace, name) and not woken else "under_way"
            try:
                delay = await pools.run(pool, telemetry.reconciled, kind, operator.reconcile, kind, namespace, name)
            except Exception as e:  # the daemon's edge: a bug in a tick must not end the release's daemon
                await pools.run(pool, operator.fail, kind, namespace, name, e)
                delay = operator.error_backoff
            if delay is None:
                return
            # Until the next tick is due, or something the tick read changes (the watch-fed cache wakes it).
            woken = await wakes.pause(wake, stopped.wait(max(delay.total_seconds(), MIN_WAIT)), MIN_WAIT)
    finally:
        wakes.unregister((kind, namespace, name))


@kopf.daemon(GROUP, VERSION, PLURALS[GIT_SOURCE], cancellation_timeout=10)
async def _source(stopped: kopf.DaemonStopped, body: kopf.Body, memo: kopf.Memo, **_: Any) -> None:
    sources: SourceReconciler = memo["sources"]
    namespace, name = body.metadata.namespace or "default", body.metadata.name or ""
    wake = sources.wake_event(namespace, name)
    while not stopped:
        if not memo.get("leading", _always)():
            await stopped.wait(NOT_LEADING_WAIT)
            continue
        try:
            delay = await memo["pools"].run("syncs", telemetry.reconciled, GIT_SOURCE, sources.reconcile,
                                            namespace, name)
        except Exception:  # the daemon's edge: a bug in a sync must not end the source's daemon
            log.exception("sync of GitSource %s/%s failed unexpectedly; trying again", namespace, name)
            delay = timedelta(seconds=memo["settings"].error_backoff)
        if delay is None:
            return
        deadline = asyncio.get_running_loop().time() + delay.total_seconds()
        while not stopped and not wake.is_set() and asyncio.get_running_loop().time() < deadline:
            await stopped.wait(WAKE_SLICE)


@kopf.on.delete(GROUP, VERSION, PLURALS[CANARY])
@kopf.on.delete(GROUP, VERSION, PLURALS[BLUEGREEN])
def _delete(body: kopf.Body, memo: kopf.Memo, retry: int, **_: Any) -> None:
    if not memo.get("leading", _always)():
        raise kopf.TemporaryError("this replica's leader Lease is overdue", delay=NOT_LEADING_WAIT)
    # The operator bounds the retries and never raises: a deletion always completes.
    delay = memo["operator"].finalize(dict(body), attempt=retry)
    if delay is not None:
        # e.g. the target is scaling back up before the primary is let go: look again soon.
        raise kopf.TemporaryError("traffic not yet back on the primary", delay=delay.total_seconds())


def run(
    namespaces: Sequence[str],
    *,
    kubeconfig: Path | None,
    settings: Settings,
    reports: Path | None,
    git_cache: Path,
    stop: threading.Event | None = None,
    ready: threading.Event | None = None,
    elector: LeaderElector | None = None,
) -> None:
    """Run the operator until stopped: on `namespaces`, or on every namespace when empty; with an
    `elector`, only while it holds the leader Lease (it exits the process when the Lease is lost).

    /metrics, /healthz and /readyz are served all along, a standby's too. OSError when
    --metrics-addr cannot be bound."""
    telemetry.time_gc()
    freezer = Freezer()
    freezer.install()
    config = api_client(kubeconfig).configuration
    # One kept connection per thread that may talk to the API server at once (the pools, the cache's
    # watch streams), instead of the client's CPUs x 5: past that every request opens a connection.
    config.connection_pool_maxsize = max(config.connection_pool_maxsize,
                                         2 * settings.workers + settings.release_workers + POOL_SLACK)
    api = CachingApiClient(config, settings, tuple(namespaces)) if settings.watch_cache else client.ApiClient(config)
    health = Health(elector.readiness if elector is not None else always_ready, api_answers(api))
    server = serve(settings.metrics_addr, health)
    try:
        board = dashboard.serve(settings.dashboard_addr, dashboard.Releases(
            client.ApiClient(config), namespaces, timeout=settings.api_timeout, reports=reports),
            read_only=settings.read_only)
    except BaseException:
        if server is not None:
            server.stop()
        raise
    try:
        _run(namespaces, api, health, freezer, settings=settings, reports=reports, git_cache=git_cache, stop=stop,
             ready=ready, elector=elector)
    finally:
        freezer.uninstall()
        health.stopped()
        if server is not None:
            server.stop()
        if board is not None:
            board.stop()
        if isinstance(api, CachingApiClient):
            api.cache.stop()


def _run(namespaces: Sequence[str], api: client.ApiClient, health: Health, freezer: Freezer, *, settings: Settings,
         reports: Path | None, git_cache: Path, stop: threading.Event | None, ready: threading.Event | None,
         elector: LeaderElector | None) -> None:
    alerts = Alerter(api, settings)
    sources = SourceReconciler(api, git_cache, EventRecorder(api, settings).emit, settings=settings,
                               alert=alerts.gitsource, on_error=lambda: telemetry.reconcile_failed(GIT_SOURCE))
    operator = Operator(api, settings=settings, reports=reports, alerts=alerts, namespaces=namespaces)
    wakes = Wakes()
    operator.admission.wake = wakes.wake  # a freed slot: the oldest queued releases tick at once
    if isinstance(api, CachingApiClient):
        api.cache.wake = wakes.wake
    # The writer reverts the target's tracked ConfigMaps and Secrets with it (the workloads know them).
    operator.revert = GitRevertWriter(api, git_cache, settings, on_pushed=sources.request,
                                      tracked=operator.workloads.tracked_documents)
    pools = Pools(settings.workers, settings.release_workers)
    logging.getLogger("kopf").setLevel(logging.WARNING)
    # kopf waits on a threading.Event in a thread that only setting it ends: after a SIGTERM (which kopf
    # handles itself) that thread would hold the process forever. So kopf gets only a caller's flag, and
    # the campaign its own, which SIGTERM sets while kopf is not running.
    campaign = stop if stop is not None else threading.Event()

    def operate() -> None:
        if campaign.is_set():  # stopped between taking the lead and starting kopf
            return
        health.starting()
        try:
            # standalone: kopf's own peering stays off; with leader election only the leader runs kopf.
            kopf.run(
                standalone=True,
                clusterwide=not namespaces,
                namespaces=list(namespaces),
                memo=kopf.Memo(operator=operator, sources=sources, pools=pools, settings=settings, health=health,
                               freezer=freezer,
                               wakes=wakes, leading=elector.leading if elector is not None else _always),
                stop_flag=stop,
                ready_flag=ready,
            )
        finally:
            # A leader lets the ticks in flight finish before it releases the Lease to a standby.
            pools.shutdown(wait=elector is not None)

    # Push webhooks (--webhook-addr) wake a GitSource's sync; a standby answers 503. Started last, so
    # nothing between here and the `finally` that stops it can leave its server running.
    webhooks = serve_webhooks(settings.webhook_addr, Receiver(
        api, sources.request, timeout=settings.api_timeout,
        leading=elector.leading if elector is not None else _always))
    try:
        if elector is None:
            LEADER.set(1)  # the only replica: it acts
            operate()
        else:
            lead(elector, campaign, operate)
    finally:
        alerts.close(settings.alert_timeout)
        if webhooks is not None:
            webhooks.stop()


def _always() -> bool:
    return True


class Pools:
    """Three bounded thread pools, so that no slow kind of work holds up another: ticks of idle releases
    (and kopf's own handlers), which compute, with `--workers` threads; ticks of releases under way,
    which mostly wait (on the API server, Prometheus, webhooks, Git) and come in bursts when many
    releases step at once, with `--release-workers`; GitSource syncs, with `--workers`."""

    def __init__(self, workers: int, release_workers: int) -> None:
        self.quick = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="rollout-tick")
        self.under_way = ThreadPoolExecutor(max_workers=release_workers, thread_name_prefix="rollout-release")
        self.syncs = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="rollout-sync")

    def run(self, pool: str, work: Callable[..., T], *args: object) -> asyncio.Future[T]:
        """Run `work(*args)` on the pool named `pool`, from kopf's loop; the wait for a thread is counted."""
        executor = {"quick": self.quick, "under_way": self.under_way, "syncs": self.syncs}[pool]
        return asyncio.get_running_loop().run_in_executor(executor, telemetry.waited, pool, time.monotonic(),
                                                          work, *args)

    def shutdown(self, *, wait: bool) -> None:
        for pool in (self.quick, self.under_way, self.syncs):
            pool.shutdown(wait=wait, cancel_futures=True)
