"""No error ends a release's daemon, and a deletion always completes.

The daemons are driven as kopf drives them, with a fake operator; the Operator's own failure and
finalizer paths run against fake API, router and workload objects, so the tests read what was
written (condition, Event) rather than which calls were made.
"""

from __future__ import annotations

import asyncio
import copy
from collections.abc import Mapping
from datetime import timedelta
from typing import Any

import kopf
import pytest
from kubernetes import client
from kubernetes.client.exceptions import ApiException

from rollout import handlers
from rollout.engine import operator as operator_module
from rollout.engine.operator import FINALIZE_RETRIES, Operator
from rollout.engine.wakes import Wakes
from rollout.routers.base import RouterError
from rollout.settings import Settings
from rollout.workloads.errors import WorkloadError
from tests.unit.test_parse import canary

# --- the daemons -------------------------------------------------------------------------------------


class Stopped:
    """kopf's DaemonStopped as the daemons use it: falsy until stopped, and an awaitable wait."""

    def __init__(self) -> None:
        self.waits: list[float] = []

    def __bool__(self) -> bool:
        return False

    async def wait(self, timeout: float) -> None:
        self.waits.append(timeout)


class FlakyOperator:
    """Raises on its first ticks, then finds the release gone."""

    error_backoff = timedelta(seconds=7)

    def __init__(self, failures: int) -> None:
        self.failures = failures
        self.failed: list[tuple[str, str, str, str]] = []

    def reconcile(self, kind: str, namespace: str, name: str) -> timedelta | None:
        if self.failures:
            self.failures -= 1
            raise OverflowError("date value out of range")
        return None

    def fail(self, kind: str, namespace: str, name: str, error: BaseException) -> None:
        self.failed.append((kind, namespace, name, str(error)))

    def idle(self, kind: str, namespace: str, name: str) -> bool:
        return False


def run_daemon(daemon: Any, memo: dict[str, Any], body: dict[str, Any]) -> Stopped:
    stopped = Stopped()
    pools = handlers.Pools(1, 1)
    try:
        asyncio.run(asyncio.wait_for(daemon(stopped=stopped, body=kopf.Body(body),
                                            memo=kopf.Memo(pools=pools, wakes=Wakes(), **memo)), timeout=10))
    finally:
        pools.shutdown(wait=True)
    return stopped


def test_the_release_daemon_outlives_an_unexpected_error_and_looks_again_after_the_backoff() -> None:
    fake = FlakyOperator(failures=2)
    stopped = run_daemon(handlers._release, {"operator": fake},
                         {"kind": "Canary", "metadata": {"name": "podinfo", "namespace": "test"}})
    assert fake.failed == [("Canary", "test", "podinfo", "date value out of range")] * 2
    assert stopped.waits == [7.0, 7.0]


class FlakySources:
    def __init__(self) -> None:
        self.calls = 0

    def wake_event(self, namespace: str, name: str) -> Any:
        return asyncio.Event()

    def reconcile(self, namespace: str, name: str) -> timedelta | None:
        self.calls += 1
        if self.calls == 1:
            raise KeyError("spec")
        return None


def test_the_source_daemon_outlives_an_unexpected_error(caplog: pytest.LogCaptureFixture) -> None:
    sources = FlakySources()
    run_daemon(handlers._source, {"sources": sources, "settings": Settings(error_backoff=0.0)},
               {"kind": "GitSource", "metadata": {"name": "config", "namespace": "test"}})
    assert sources.calls == 2
    [record] = [r for r in caplog.records if "GitSource test/config" in r.getMessage()]
    assert record.exc_info is not None


# --- Operator.fail -----------------------------------------------------------------------------------


class FakeObjects:
    """The custom objects API holding one release; status patches are merged into it."""

    def __init__(self, obj: dict[str, Any]) -> None:
        self.obj = obj
        self.broken = False
        self.gone = False
        self.patches = 0

    def get_namespaced_custom_object(self, *args: Any, **kwargs: Any) -> dict[str, Any]:
        if self.gone:
            raise ApiException(status=404, reason="Not Found")
        if self.broken:
            raise ApiException(status=503, reason="Service Unavailable")
        return copy.deepcopy(self.obj)

    def patch_namespaced_custom_object_status(self, *args: Any, **kwargs: Any) -> None:
        self.patches += 1
        self.obj.setdefault("status", {}).update(args[-1]["status"])


class FakeEvents:
    def __init__(self) -> None:
        self.emitted: list[tuple[str, str, bool]] = []

    def emit(self, about: Any, reason: str, message: str, warning: bool = False) -> None:
        self.emitted.append((reason, message, warning))


def make_operator(obj: dict[str, Any]) -> tuple[Operator, FakeObjects, FakeEvents]:
    op = Operator(client.ApiClient(), settings=Settings(error_backoff=3.0))
    objects, events = FakeObjects(obj), FakeEvents()
    op.objects = objects  # type: ignore[assignment]
    op.events = events  # type: ignore[assignment]
    return op, objects, events


def ready(obj: Mapping[str, Any]) -> dict[str, Any]:
    return next(c for c in obj["status"]["conditions"] if c["type"] == "Ready")


def test_fail_sets_ready_false_and_one_warning_event_per_distinct_error(caplog: pytest.LogCaptureFixture) -> None:
    op, objects, events = make_operator(canary())
    error = OverflowError("date value out of range")
    op.fail("Canary", "test", "podinfo", error)
    condition = ready(objects.obj)
    assert (condition["status"], condition["reason"]) == ("False", "ReconcileError")
    assert "OverflowError: date value out of range" in condition["message"]
    assert events.emitted == [("ReconcileError", condition["message"], True)]
    assert [r.exc_info is not None for r in caplog.records if "podinfo" in r.getMessage()] == [True]
    # The same error again: no second Event, no second traceback, no write.
    op.fail("Canary", "test", "podinfo", error)
    assert len(events.emitted) == 1 and objects.patches == 1
    assert [r.exc_info is not None for r in caplog.records if "podinfo" in r.getMessage()] == [True, False]


def test_fail_never_raises_when_the_api_is_down() -> None:
    op, objects, events = make_operator(canary())
    objects.broken = True
    op.fail("Canary", "test", "podinfo", RuntimeError("boom"))
    assert events.emitted == [] and objects.patches == 0


# --- Operator.finalize -------------------------------------------------------------------------------


class FakeRouter:
    def __init__(self, error: Exception | None) -> None:
        self.error = error

    def finalize(self, release: Any) -> None:
        if self.error is not None:
            raise self.error


class FakeWorkloads:
    def __init__(self) -> None:
        self.finalized = 0

    def finalize(self, release: Any) -> None:
        self.finalized += 1


def finalizing(monkeypatch: pytest.MonkeyPatch, error: Exception | None) -> tuple[Operator, FakeEvents, FakeWorkloads]:
    op, _, events = make_operator(canary())
    workloads = FakeWorkloads()
    op.workloads = workloads  # type: ignore[assignment]
    monkeypatch.setattr(operator_module, "router_for", lambda *args: FakeRouter(error))
    return op, events, workloads


def test_finalize_returns_traffic_and_lets_go(monkeypatch: pytest.MonkeyPatch) -> None:
    op, events, workloads = finalizing(monkeypatch, None)
    assert op.finalize(canary()) is None
    assert workloads.finalized == 1 and events.emitted == []


@pytest.mark.parametrize("obj", [
    {**canary(), "spec": {"analysis": {"interval": "99999999999999999999s"}}},
    {**canary(), "spec": "nonsense"},
    {"kind": "Canary", "metadata": {"name": "x"}},
    {"metadata": {}},
])
def test_finalize_lets_go_of_an_invalid_spec(obj: dict[str, Any], monkeypatch: pytest.MonkeyPatch) -> None:
    op, _, workloads = finalizing(monkeypatch, None)
    assert op.finalize(obj) is None
    assert workloads.finalized == 0


def test_an_unexpected_error_lets_go_with_a_warning(monkeypatch: pytest.MonkeyPatch) -> None:
    op, events, _ = finalizing(monkeypatch, ValueError("bad weights"))
    assert op.finalize(canary()) is None
    [(reason, message, warning)] = events.emitted
    assert reason == "FinalizeFailed" and "bad weights" in message and warning


@pytest.mark.parametrize("error", [RouterError("busy"), WorkloadError("primary still scaling"),
                                   ApiException(status=503)])
def test_a_temporary_error_is_retried_a_bounded_number_of_times(error: Exception,
                                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    op, events, _ = finalizing(monkeypatch, error)
    for attempt in range(FINALIZE_RETRIES):
        assert op.finalize(canary(), attempt=attempt) == timedelta(seconds=3)
    assert events.emitted == []
    assert op.finalize(canary(), attempt=FINALIZE_RETRIES) is None
    assert [e[0] for e in events.emitted] == ["FinalizeFailed"]


def test_a_permanent_error_lets_go_at_once(monkeypatch: pytest.MonkeyPatch) -> None:
    op, events, _ = finalizing(monkeypatch, RouterError("no such mesh", temporary=False))
    assert op.finalize(canary()) is None
    assert [e[0] for e in events.emitted] == ["FinalizeFailed"]


def test_the_delete_handler_asks_kopf_to_retry_only_when_the_operator_says_so() -> None:
    class Finalizer:
        def __init__(self, delay: timedelta | None) -> None:
            self.delay = delay
            self.attempts: list[int] = []

        def finalize(self, obj: dict[str, Any], attempt: int = 0) -> timedelta | None:
            self.attempts.append(attempt)
            return self.delay

    body = kopf.Body(canary())
    done = Finalizer(None)
    handlers._delete(body=body, memo=kopf.Memo(operator=done), retry=4)
    assert done.attempts == [4]
    with pytest.raises(kopf.TemporaryError) as caught:
        handlers._delete(body=body, memo=kopf.Memo(operator=Finalizer(timedelta(seconds=5))), retry=0)
    assert caught.value.delay == 5


def test_a_tick_that_raises_leaves_a_condition_and_an_event_and_the_daemon_goes_on(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    op, objects, events = make_operator(canary())
    ticks: list[str] = []

    def broken_tick(obj: Mapping[str, Any]) -> timedelta:
        ticks.append(obj["metadata"]["name"])
        if len(ticks) == 2:
            objects.gone = True  # deleted meanwhile: the next look ends the daemon
        raise AssertionError("the planner met a state it never expected")

    monkeypatch.setattr(op, "reconcile_object", broken_tick)
    stopped = run_daemon(handlers._release, {"operator": op}, canary())
    assert ticks == ["podinfo", "podinfo"]
    assert stopped.waits == [3.0, 3.0]
    condition = ready(objects.obj)
    assert (condition["status"], condition["reason"]) == ("False", "ReconcileError")
    assert "AssertionError: the planner met a state it never expected" in condition["message"]
    assert [(reason, warning) for reason, _, warning in events.emitted] == [("ReconcileError", True)]
