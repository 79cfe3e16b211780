"""The operator's cap on concurrent releases (`--max-concurrent-releases`): who runs, who waits.

A release holds a slot while its status is in a running phase (`SLOT_PHASES`: from the new
revision's Progressing until Succeeded or Failed); Canaries and BlueGreens count together. The
planner asks for a slot (`AskSlot`) only when a new run would start; `ask` answers at once, under
a lock, so two releases ticking on two threads never both take the last slot. A release that
gets none waits in the queue, which is served oldest first: by when it first asked (its status's
`queuedAt`, so the order survives a restart), then by name.

What is held here is a cache of the releases' statuses: the operator tells it every status it
reads or writes (`settle`), and before it grants the first slot it lists every release once, so a
restarted operator never admits more than the cap because it has not yet seen a running one.
A release that stopped asking (suspended, its target gone, its spec invalid) for `STALE` seconds
keeps its place but no longer holds back the ones behind it.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, cast

from kubernetes import client
from kubernetes.client.exceptions import ApiException
from urllib3.exceptions import HTTPError

from rollout.api.kinds import GROUP, PLURALS, RELEASE_KINDS, VERSION
from rollout.api.status import SLOT_PHASES, Phase, ReleaseStatus
from rollout.core import Slot
from rollout.engine import telemetry

log = logging.getLogger(__name__)

# (kind, namespace, name) of a Canary or BlueGreen.
Key = tuple[str, str, str]
# Every release in the operator's scope with its status as stored: (key, status).
Lister = Callable[[], Iterable[tuple[Key, Mapping[str, Any] | None]]]

# Seconds after its last ask that a queued release still holds back the ones behind it (a queued
# release asks every second or so).
STALE = 30.0


@dataclass
class _Waiting:
    since: datetime
    asked: float  # monotonic: when it last asked (or was listed)


class Admission:
    def __init__(self, limit: int, lister: Lister | None = None, *,
                 clock: Callable[[], float] = time.monotonic, stale: float = STALE) -> None:
        self.limit = limit
        self._lister = lister
        self._clock = clock
        self._stale = stale
        self._lock = threading.Lock()
        self._load_lock = threading.Lock()
        # Without a lister (a single release's tests), what the ticks tell is all there is.
        self._loaded = limit == 0 or lister is None
        self._running: set[Key] = set()
        # Granted by `ask` in a tick whose status is not written yet.
        self._reserved: set[Key] = set()
        self._waiting: dict[Key, _Waiting] = {}
        # Releases whose status a tick reported: fresher than any list.
        self._seen: set[Key] = set()
        self._load_error = ""
        # Called (outside the lock) with the queued releases a freed slot may take, to tick them now.
        self.wake: Callable[[Key], None] = lambda key: None

    # -- asking --------------------------------------------------------------------------------

    def ask(self, key: Key, since: datetime) -> Slot:
        """A slot for a new run of `key`, or its place in the queue (joined at `since` if new).

        Lists every release first (the first ask after a start); until that list is read, no slot
        is granted and the answer says why."""
        if self.limit <= 0:
            return Slot()
        try:
            self._load()
        except (ApiException, HTTPError, OSError) as e:
            why = f"{e.status} {e.reason}" if isinstance(e, ApiException) else str(e)
            if why != self._load_error:  # once per distinct error, not once per queued release's tick
                log.warning("listing the releases for --max-concurrent-releases failed: %s", why)
            self._load_error = why
            return Slot(granted=False, limit=self.limit,
                        unknown=f"the releases running are not known yet (listing them failed: {why})")
        with self._lock:
            now = self._clock()
            busy = len(self._running | self._reserved)
            if key in self._running or key in self._reserved:
                return Slot(granted=True, running=busy, limit=self.limit)
            waiting = self._waiting.get(key)
            if waiting is None:
                waiting = self._waiting[key] = _Waiting(since, now)
            waiting.asked = now
            queue = self._queue(now)
            place = queue.index(key) + 1
            if place <= self.limit - busy:
                del self._waiting[key]
                self._reserved.add(key)
                self._publish()
                return Slot(granted=True, running=busy + 1, limit=self.limit)
            self._publish()
            return Slot(granted=False, place=place, queued=len(queue), running=busy, limit=self.limit)

    def _queue(self, now: float) -> list[Key]:
        """The waiting releases still asking, oldest first."""
        live = [(w.since, key) for key, w in self._waiting.items() if now - w.asked <= self._stale]
        return [key for _, key in sorted(live)]

    # -- what the ticks tell -------------------------------------------------------------------

    def settle(self, key: Key, status: ReleaseStatus | None) -> None:
        """`key`'s status as now stored (None: the release is gone); ends a reservation of its tick."""
        with self._lock:
            was_running = key in self._running
            self._seen.add(key)
            self._reserved.discard(key)
            self._note(key, status)
            self._publish()
            freed = was_running and key not in self._running
            free = self.limit - len(self._running | self._reserved)
            next_up = self._queue(self._clock())[:max(free, 0)] if freed else []
        for waiting in next_up:
            self.wake(waiting)

    def done(self, key: Key) -> None:
        """`key`'s tick ended: a slot it was granted but whose run it did not record is given back."""
        with self._lock:
            self._reserved.discard(key)

    def forget(self, key: Key) -> None:
        self.settle(key, None)

    def _note(self, key: Key, status: ReleaseStatus | None) -> None:
        phase = status.phase if status is not None else None
        if phase in SLOT_PHASES:
            self._running.add(key)
            self._waiting.pop(key, None)
            return
        self._running.discard(key)
        if status is not None and phase == Phase.WAITING and status.queued_at is not None:
            if key not in self._waiting:
                self._waiting[key] = _Waiting(status.queued_at, self._clock())
        else:
            self._waiting.pop(key, None)

    # -- after a restart -----------------------------------------------------------------------

    def _load(self) -> None:
        if self._loaded:
            return
        with self._load_lock:
            if self._loaded or self._lister is None:
                return
            listed = list(self._lister())
            with self._lock:
                for key, raw in listed:
                    if key not in self._seen:
                        self._note(key, ReleaseStatus.from_dict(dict(raw) if raw else None))
                self._loaded = True
                self._publish()

    # -- figures -------------------------------------------------------------------------------

    def _publish(self) -> None:
        telemetry.queued(len(self._waiting))

    @property
    def running(self) -> int:
        with self._lock:
            return len(self._running | self._reserved)

    @property
    def queued(self) -> tuple[Key, ...]:
        """Every waiting release, oldest first (those that stopped asking too)."""
        with self._lock:
            return tuple(key for _, key in sorted((w.since, key) for key, w in self._waiting.items()))


def release_lister(objects: client.CustomObjectsApi, namespaces: Sequence[str], timeout: float) -> Lister:
    """Lists every Canary and BlueGreen in `namespaces` (every namespace when empty)."""

    def listed() -> list[tuple[Key, Mapping[str, Any] | None]]:
        out: list[tuple[Key, Mapping[str, Any] | None]] = []
        for kind in RELEASE_KINDS:
            pages: list[dict[str, Any]]
            if namespaces:
                pages = [cast(dict[str, Any], objects.list_namespaced_custom_object(
                    GROUP, VERSION, ns, PLURALS[kind], _request_timeout=timeout)) for ns in namespaces]
            else:
                pages = [cast(dict[str, Any], objects.list_cluster_custom_object(
                    GROUP, VERSION, PLURALS[kind], _request_timeout=timeout))]
            for page in pages:
                for item in page.get("items") or ():
                    meta = item.get("metadata") or {}
                    out.append(((kind, meta.get("namespace") or "default", meta.get("name") or ""),
                                item.get("status")))
        return out

    return listed
