"""Leader election on the Lease `rollout-leader`, so that 2 or more replicas run and exactly one acts.

It follows client-go's `tools/leaderelection` (and so controller-runtime's `--leader-elect`): every
retry period a candidate reads the Lease and `rollout.core.leader.decide`s; a standby takes it once
it has seen it unrenewed for the lease duration, or released; the leader renews it and, when it
cannot within the renew deadline, stops acting at once (the process exits non-zero and its pod
restarts as a candidate). Every write names the resourceVersion read, so when two candidates race
the API server accepts one and answers 409 to the other. On a clean stop the leader releases the
Lease and a standby takes over on its next try. Standbys serve health and metrics; `readiness()`
is what `/readyz` asks.
"""

from __future__ import annotations

import contextlib
import logging
import os
import random
import signal
import socket
import sys
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any

from kubernetes import client
from kubernetes.client.exceptions import ApiException
from prometheus_client import Gauge
from urllib3.exceptions import HTTPError

from rollout.core.leader import LeaseRecord, Move, Observation, decide, observe, released
from rollout.settings import Settings

log = logging.getLogger(__name__)

LEASE_NAME = "rollout-leader"
# client-go's JitterFactor: a candidate retries after retry_period * (1 + up to 1.2), so that
# candidates started together do not keep asking in step.
JITTER = 1.2

LEADER = Gauge("rollout_leader", "1 while this replica acts: it holds the leader election Lease, or runs "
               "without leader election; 0 while it stands by")


class Role(StrEnum):
    STARTING = "starting"  # the Lease was not read yet
    LEADER = "leader"
    STANDBY = "standby"


def identity(environ: Mapping[str, str] = os.environ) -> str:
    """This candidate's name in the Lease: the pod's name (downward API), else `<hostname>_<pid>`."""
    return environ.get("POD_NAME") or f"{socket.gethostname()}_{os.getpid()}"


def election_namespace(settings: Settings, environ: Mapping[str, str] = os.environ) -> str:
    return settings.leader_election_namespace or environ.get("POD_NAMESPACE") or "default"


def _micro_time(at: datetime | None) -> str | None:
    return None if at is None else at.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _record(lease: Any) -> LeaseRecord:
    spec = lease.spec
    return LeaseRecord(spec.holder_identity or "", int(spec.lease_duration_seconds or 0), spec.acquire_time,
                       spec.renew_time, int(spec.lease_transitions or 0))


class LeaderElector:
    """One candidate for the Lease `namespace/name`. Thread-safe for `role`/`readiness()` readers."""

    def __init__(self, api: client.ApiClient, *, identity: str, namespace: str, name: str = LEASE_NAME,
                 lease_duration: float, renew_deadline: float, retry_period: float, request_timeout: float,
                 clock: Callable[[], float] = time.monotonic,
                 wall: Callable[[], datetime] = lambda: datetime.now(UTC)) -> None:
        # Any: the bodies are plain dicts (MicroTime written as the API formats it), which it accepts.
        self.leases: Any = client.CoordinationV1Api(api)
        self.identity, self.namespace, self.name = identity, namespace, name
        self.lease_duration, self.renew_deadline, self.retry_period = lease_duration, renew_deadline, retry_period
        self.request_timeout = request_timeout
        self.clock, self.wall = clock, wall
        self._lock = threading.Lock()
        self._observed: Observation | None = None
        self._role = Role.STARTING
        self._problem: str | None = None
        self._renewed_at: float | None = None  # when the last successful acquire or renew was sent
        LEADER.set(0)

    @classmethod
    def from_settings(cls, api: client.ApiClient, settings: Settings,
                      environ: Mapping[str, str] = os.environ) -> LeaderElector:
        return cls(api, identity=identity(environ), namespace=election_namespace(settings, environ),
                   lease_duration=settings.lease_duration, renew_deadline=settings.renew_deadline,
                   retry_period=settings.retry_period, request_timeout=settings.api_timeout)

    @property
    def where(self) -> str:
        return f"Lease {self.namespace}/{self.name}"

    # -- what the health server and the handlers ask -------------------------------------------

    @property
    def role(self) -> Role:
        with self._lock:
            return self._role

    @property
    def holder(self) -> str:
        """The holder this candidate last saw ("" before the first read or when released)."""
        with self._lock:
            return self._observed.record.holder if self._observed else ""

    def readiness(self) -> tuple[bool, str]:
        """For /readyz: a standby is ready (it serves health and metrics); not reaching the API is not."""
        with self._lock:
            role, problem = self._role, self._problem
            holder = self._observed.record.holder if self._observed else ""
        if problem is not None:
            return False, f"cannot reach the API server for the {self.where}: {problem}"
        if role is Role.STARTING:
            return False, f"starting: the {self.where} was not read yet"
        if role is Role.LEADER:
            return True, f"leader: {self.identity} holds the {self.where}"
        return True, f"standby: {holder or 'nobody'} holds the {self.where}"

    def leading(self) -> bool:
        """Whether this candidate may act now: it holds the Lease and renewed it within the renew deadline."""
        with self._lock:
            return (self._role is Role.LEADER and self._renewed_at is not None
                    and self.clock() - self._renewed_at < self.renew_deadline)

    # -- one try -------------------------------------------------------------------------------

    def try_acquire_or_renew(self, timeout: float | None = None) -> bool:
        """Read the Lease, decide, write: True when this candidate holds it afterwards."""
        timeout = self.request_timeout if timeout is None else max(0.1, min(timeout, self.request_timeout))
        started = self.clock()
        try:
            lease = self.leases.read_namespaced_lease(self.name, self.namespace, _request_timeout=timeout)
        except ApiException as e:
            if e.status != 404:
                return self._failed(f"{e.status} {e.reason}")
            lease = None
        except (HTTPError, OSError) as e:
            return self._failed(str(e) or type(e).__name__)
        with self._lock:
            self._problem = None
            if lease is not None:
                self._observed = observe(self._observed, _record(lease), started)
            elif self._observed is not None:
                self._observed = None
            observed = self._observed
        election = decide(observed, identity=self.identity, now=self.clock(), wall=self.wall(),
                          lease_duration=self.lease_duration)
        if election.move is Move.WAIT or election.write is None:
            self._set_role(Role.STANDBY)
            return False
        try:
            self._write(election.move, election.write, lease, timeout)
        except ApiException as e:
            if e.status == 409:  # another candidate wrote first: it won this round
                log.info("%s: lost the race to %s it (409 Conflict)", self.where, election.move.value)
                if self.role is Role.STARTING:
                    self._set_role(Role.STANDBY)
                return False
            return self._failed(f"{e.status} {e.reason}")
        except (HTTPError, OSError) as e:
            return self._failed(str(e) or type(e).__name__)
        with self._lock:
            self._observed = Observation(election.write, self.clock())
            self._renewed_at = started
        if election.move is not Move.RENEW or self.role is not Role.LEADER:
            log.info("%s: %s is the leader (%s)", self.where, self.identity, election.reason)
        self._set_role(Role.LEADER)
        return True

    def _write(self, move: Move, record: LeaseRecord, lease: Any, timeout: float) -> None:
        spec = {"holderIdentity": record.holder, "leaseDurationSeconds": record.duration,
                "acquireTime": _micro_time(record.acquired), "renewTime": _micro_time(record.renewed),
                "leaseTransitions": record.transitions}
        if move is Move.CREATE:
            body = {"apiVersion": "coordination.k8s.io/v1", "kind": "Lease",
                    "metadata": {"name": self.name, "namespace": self.namespace}, "spec": spec}
            self.leases.create_namespaced_lease(self.namespace, body, _request_timeout=timeout)
            return
        # The resourceVersion read makes this a compare-and-swap: a write in between answers 409.
        body = {"apiVersion": "coordination.k8s.io/v1", "kind": "Lease",
                "metadata": {"name": self.name, "namespace": self.namespace,
                             "resourceVersion": lease.metadata.resource_version}, "spec": spec}
        self.leases.replace_namespaced_lease(self.name, self.namespace, body, _request_timeout=timeout)

    def _failed(self, problem: str) -> bool:
        with self._lock:
            self._problem = problem
        log.warning("%s: %s", self.where, problem)
        return False

    def _set_role(self, role: Role) -> None:
        with self._lock:
            before, self._role = self._role, role
        LEADER.set(1 if role is Role.LEADER else 0)
        if role is Role.STANDBY and before is not Role.STANDBY:
            log.info("%s: %s stands by (%s holds it)", self.where, self.identity, self.holder or "nobody")

    # -- the loops -----------------------------------------------------------------------------

    def acquire(self, stop: threading.Event) -> bool:
        """Try every retry period (with jitter) until this candidate leads (True) or `stop` is set (False)."""
        while not stop.is_set():
            if self.try_acquire_or_renew():
                return True
            stop.wait(self.retry_period * (1 + random.uniform(0, JITTER)))
        return False

    def keep(self, stop: threading.Event) -> bool:
        """Renew every retry period until `stop` is set (True), or until the lease is lost (False): not
        renewed within the renew deadline, or seen held by another candidate."""
        while not stop.wait(self.retry_period):
            while True:
                with self._lock:
                    renewed = self._renewed_at or 0.0
                left = renewed + self.renew_deadline - self.clock()
                if left <= 0:
                    return self._lost(f"not renewed for {self.renew_deadline:g}s")
                if self.try_acquire_or_renew(timeout=left):
                    break
                if self.holder not in ("", self.identity):
                    return self._lost(f"{self.holder} holds it")
                if stop.wait(min(self.retry_period, max(0.0, left))):
                    return True
        return True

    def _lost(self, why: str) -> bool:
        with self._lock:
            self._role = Role.STANDBY
        LEADER.set(0)
        log.error("%s: leadership lost (%s); this replica stops acting", self.where, why)
        return False

    def release(self) -> bool:
        """Give the Lease up (clean stop), so that a standby takes over on its next try."""
        if self.role is not Role.LEADER:
            return True
        try:
            lease = self.leases.read_namespaced_lease(self.name, self.namespace, _request_timeout=self.request_timeout)
            if (lease.spec.holder_identity or "") != self.identity:
                return True
            self._write(Move.ACQUIRE, released(_record(lease), self.wall()), lease, self.request_timeout)
        except (ApiException, HTTPError, OSError) as e:
            log.warning("%s: could not release it (%s); a standby takes over when it expires", self.where, e)
            return False
        self._set_role(Role.STANDBY)
        log.info("%s: released by %s", self.where, self.identity)
        return True


def exit_now() -> None:
    """What a leader that lost its Lease does (controller-runtime's choice): stop acting at once, by
    ending the process with code 1; its pod restarts and campaigns again. Ticks in flight die with it."""
    sys.stderr.flush()
    os._exit(1)


@contextlib.contextmanager
def _stop_on_signals(stop: threading.Event) -> Iterator[None]:
    """While campaigning (before the operator's runtime handles signals), SIGTERM/SIGINT end the campaign."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = {s: signal.signal(s, lambda *_: stop.set()) for s in (signal.SIGTERM, signal.SIGINT)}
    try:
        yield
    finally:
        for s, handler in previous.items():
            signal.signal(s, handler)


def lead(elector: LeaderElector, stop: threading.Event, work: Callable[[], None],
         on_lost: Callable[[], None] = exit_now) -> bool:
    """Campaign until this candidate leads, then run `work` (the operator) while renewing the Lease, and
    release it when `work` returns. False when stopped before leading. `on_lost` runs the moment the
    Lease is lost; by default it ends the process."""
    with _stop_on_signals(stop):
        log.info("%s: %s campaigns", elector.where, elector.identity)
        if not elector.acquire(stop):
            return False
        done = threading.Event()

        def renew() -> None:
            if not elector.keep(done):
                on_lost()

        keeper = threading.Thread(target=renew, name="rollout-leader", daemon=True)
        keeper.start()
        try:
            work()
        finally:
            done.set()
            keeper.join(timeout=elector.request_timeout + elector.retry_period)
            elector.release()
        return True
