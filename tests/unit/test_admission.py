"""The slots of `--max-concurrent-releases`: order, a restart, and many releases ticking at once.

The bookkeeping is driven as the operator drives it: `ask` when the planner asks for a slot,
`settle` with every status written, `done` when a tick ends. The last tests run several whole
releases (the real planner and tick driver on the simulated cluster) against one `Admission`.
"""

from __future__ import annotations

import random
import sys
import threading
import time
from collections.abc import Iterable, Mapping
from datetime import datetime, timedelta
from typing import Any

from prometheus_client import REGISTRY

from rollout.api.status import Phase, ReleaseStatus
from rollout.core import Slot
from rollout.core.queue import queued_message
from rollout.engine.admission import Admission, Key
from tests.unit.test_plan import canary
from tests.unit.world import T0, World


def key(name: str, kind: str = "Canary") -> Key:
    return (kind, "shop", name)


def at(seconds: float) -> datetime:
    return T0 + timedelta(seconds=seconds)


RUNNING = ReleaseStatus(phase=Phase.PROGRESSING)
SUCCEEDED = ReleaseStatus(phase=Phase.SUCCEEDED)


def queued(seconds: float) -> ReleaseStatus:
    return ReleaseStatus(phase=Phase.WAITING, queued_at=at(seconds))


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def queued_gauge() -> float | None:
    return REGISTRY.get_sample_value("rollout_releases_queued")


def test_without_a_cap_every_run_starts_and_nothing_is_listed() -> None:
    def lister() -> Iterable[tuple[Key, Mapping[str, Any] | None]]:
        raise AssertionError("no cap: nothing to learn")

    admission = Admission(0, lister)
    assert all(admission.ask(key(f"r{i}"), at(i)) == Slot() for i in range(20))


def test_a_slot_is_given_oldest_first_and_a_freed_one_goes_to_the_oldest() -> None:
    admission = Admission(1)
    assert admission.ask(key("a"), at(0)).granted
    admission.settle(key("a"), RUNNING)
    b = admission.ask(key("b"), at(1))
    c = admission.ask(key("c"), at(2))
    assert (b.granted, b.place, b.queued, b.running, b.limit) == (False, 1, 1, 1, 1)
    assert (c.granted, c.place, c.queued) == (False, 2, 2)
    admission.settle(key("b"), queued(1))
    admission.settle(key("c"), queued(2))
    assert queued_gauge() == 2
    admission.settle(key("a"), SUCCEEDED)
    # c ticks first, but b asked first: c waits, now 2nd of 2 with nobody running.
    c = admission.ask(key("c"), at(2))
    assert (c.granted, c.place, c.queued, c.running) == (False, 2, 2, 0)
    assert admission.ask(key("b"), at(1)).granted
    admission.settle(key("b"), RUNNING)
    assert admission.queued == (key("c"),) and admission.running == 1 and queued_gauge() == 1


def test_canaries_and_bluegreens_count_together() -> None:
    admission = Admission(2)
    assert admission.ask(key("web", "BlueGreen"), at(0)).granted
    assert admission.ask(key("web"), at(1)).granted
    assert not admission.ask(key("api"), at(2)).granted


def test_several_free_slots_go_to_the_oldest_ones_at_once() -> None:
    admission = Admission(2)
    for name, seconds in (("x", 0), ("y", 1)):
        admission.ask(key(name), at(seconds))
        admission.settle(key(name), RUNNING)
    for i, name in enumerate(("a", "b", "c")):
        admission.ask(key(name), at(10 + i))
        admission.settle(key(name), queued(10 + i))
    admission.settle(key("x"), SUCCEEDED)
    admission.settle(key("y"), SUCCEEDED)
    assert not admission.ask(key("c"), at(12)).granted
    assert admission.ask(key("b"), at(11)).granted
    assert admission.ask(key("a"), at(10)).granted
    assert not admission.ask(key("c"), at(12)).granted


def test_a_slot_granted_to_a_tick_that_recorded_no_run_is_given_back() -> None:
    admission = Admission(1)
    assert admission.ask(key("a"), at(0)).granted
    assert not admission.ask(key("b"), at(1)).granted
    admission.done(key("a"))  # its tick failed before the status was written
    assert admission.running == 0
    assert admission.ask(key("b"), at(1)).granted


def test_a_release_that_stopped_asking_keeps_its_place_but_holds_nobody_back() -> None:
    clock = Clock()
    admission = Admission(1, clock=clock, stale=30)
    admission.ask(key("x"), at(0))
    admission.settle(key("x"), RUNNING)
    admission.ask(key("a"), at(1))  # then suspended: it asks no more
    admission.ask(key("b"), at(2))
    admission.settle(key("x"), SUCCEEDED)
    clock.now += 10
    assert not admission.ask(key("b"), at(2)).granted  # a asked 10s ago: still first
    clock.now += 25
    assert admission.ask(key("b"), at(2)).granted
    admission.settle(key("b"), RUNNING)
    assert admission.queued == (key("a"),)


def test_gone_and_finished_releases_leave_the_books() -> None:
    admission = Admission(1)
    admission.ask(key("a"), at(0))
    admission.settle(key("a"), RUNNING)
    admission.ask(key("b"), at(1))
    admission.settle(key("b"), queued(1))
    admission.forget(key("b"))
    admission.forget(key("a"))
    assert admission.running == 0 and admission.queued == ()
    # A queued release whose change was reverted is Initialized again: out of the queue.
    admission.ask(key("c"), at(2))
    admission.settle(key("c"), RUNNING)
    admission.ask(key("d"), at(3))
    admission.settle(key("d"), ReleaseStatus(phase=Phase.INITIALIZED))
    assert admission.queued == ()


# -- after a restart ----------------------------------------------------------------------------------


def listing(*items: tuple[str, ReleaseStatus]) -> list[tuple[Key, Mapping[str, Any] | None]]:
    return [(key(name), status.to_dict()) for name, status in items]


def test_a_restarted_operator_learns_every_release_before_it_grants_a_slot() -> None:
    calls: list[int] = []

    def lister() -> list[tuple[Key, Mapping[str, Any] | None]]:
        calls.append(1)
        return listing(("x", RUNNING), ("late", queued(20)), ("early", queued(10)), ("idle", SUCCEEDED),
                       ("gate", ReleaseStatus(phase=Phase.WAITING)))

    admission = Admission(1, lister)
    new = admission.ask(key("new"), at(30))
    assert (new.granted, new.place, new.queued, new.running) == (False, 3, 3, 1)
    assert admission.queued == (key("early"), key("late"), key("new"))
    admission.settle(key("x"), SUCCEEDED)
    assert not admission.ask(key("late"), at(20)).granted
    assert admission.ask(key("early"), at(10)).granted
    assert len(calls) == 1


def test_more_running_than_a_lowered_cap_stop_nothing_and_hold_new_ones() -> None:
    admission = Admission(2, lambda: listing(*((f"r{i}", RUNNING) for i in range(5))))
    slot = admission.ask(key("new"), at(0))
    assert (slot.granted, slot.running, slot.limit) == (False, 5, 2)
    # A running one never asks; if it did, it holds its slot.
    assert admission.ask(key("r0"), at(0)).granted
    for i in range(4):
        admission.settle(key(f"r{i}"), SUCCEEDED)
    assert admission.ask(key("new"), at(0)).granted


def test_a_failed_list_holds_every_start_and_is_tried_again() -> None:
    answers: list[Exception | list[tuple[Key, Mapping[str, Any] | None]]] = [
        OSError("connection refused"), listing(("x", RUNNING))]

    def lister() -> list[tuple[Key, Mapping[str, Any] | None]]:
        answer = answers.pop(0)
        if isinstance(answer, Exception):
            raise answer
        return answer

    admission = Admission(1, lister)
    slot = admission.ask(key("a"), at(0))
    assert not slot.granted and slot.unknown == (
        "the releases running are not known yet (listing them failed: connection refused)")
    assert queued_message(slot) == ("waiting for a release slot: the releases running are not known yet (listing "
                                    "them failed: connection refused), --max-concurrent-releases 1")
    slot = admission.ask(key("a"), at(0))
    assert (slot.granted, slot.place, slot.running) == (False, 1, 1) and not answers


def test_what_a_tick_told_wins_over_an_older_list() -> None:
    admission = Admission(1, lambda: listing(("x", RUNNING)))
    admission.settle(key("x"), SUCCEEDED)  # ticked (and finished) before the list was read
    assert admission.ask(key("a"), at(0)).granted


# -- many threads -------------------------------------------------------------------------------------


def test_threads_asking_at_once_never_take_more_than_the_cap() -> None:
    limit, releases, runs = 3, 30, 20

    def slow_clock() -> float:
        time.sleep(0.0001)  # read inside the critical section: without the lock, others get in here
        return time.monotonic()

    admission = Admission(limit, lambda: [], clock=slow_clock)
    holding: set[str] = set()
    guard = threading.Lock()
    most = 0
    errors: list[str] = []
    barrier = threading.Barrier(releases)

    def release(name: str, joined: datetime) -> None:
        nonlocal most
        barrier.wait()
        rng = random.Random(name)
        for _ in range(runs):
            while not (slot := admission.ask(key(name), joined)).granted:
                admission.settle(key(name), queued((joined - T0).total_seconds()))
                time.sleep(rng.random() / 2000)
            with guard:
                holding.add(name)
                most = max(most, len(holding))
                if len(holding) > limit:
                    errors.append(f"{sorted(holding)} hold slots at once")
            admission.settle(key(name), RUNNING)
            time.sleep(rng.random() / 1000)
            with guard:
                holding.discard(name)
            admission.settle(key(name), SUCCEEDED)
            assert slot.running <= limit

    switching = sys.getswitchinterval()
    sys.setswitchinterval(1e-6)  # threads switch as often as they can: a race shows
    try:
        threads = [threading.Thread(target=release, args=(f"r{i:02}", at(i % 7))) for i in range(releases)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(timeout=120)
    finally:
        sys.setswitchinterval(switching)
    assert not any(t.is_alive() for t in threads)
    assert not errors and most == limit
    assert admission.queued == () and admission.running == 0


# -- whole releases, one Admission --------------------------------------------------------------------


def test_three_releases_changed_at_once_run_one_after_another_oldest_first() -> None:
    admission = Admission(1)
    worlds = {name: World(canary(interval=10.0)) for name in ("a", "b", "c")}
    for name, world in worlds.items():
        world.slot = lambda w, name=name: admission.ask(key(name), w.status.queued_at or w.now)
        world.run_until(Phase.INITIALIZED)
    for i, world in enumerate(worlds.values()):  # a changed first, then b, then c
        world.now = at(100 + i)
        world.release("v2", "c2")
    started: list[str] = []
    for round in range(200):
        # They ask in the order they changed; later ticks come in another order.
        for name in ("a", "b", "c") if round == 0 else ("c", "b", "a"):
            world = worlds[name]
            world.tick()
            admission.settle(key(name), world.status)
            admission.done(key(name))
            if world.status.phase == Phase.PROGRESSING and name not in started:
                started.append(name)
            running = [n for n, w in worlds.items() if w.status.phase in
                       (Phase.PROGRESSING, Phase.PROMOTING, Phase.FINALISING, Phase.WAITING_PROMOTION)]
            assert len(running) <= 1
        if all(w.status.phase == Phase.SUCCEEDED for w in worlds.values()):
            break
    assert started == ["a", "b", "c"]
    assert all(w.status.phase == Phase.SUCCEEDED and w.status.queued_at is None for w in worlds.values())
    assert all(w.phases()[2:] == ["Waiting", "Progressing", "Promoting", "Finalising", "Succeeded"]
               for n, w in worlds.items() if n != "a")


def test_a_freed_slot_wakes_the_oldest_queued_releases() -> None:
    admission = Admission(1)
    woken: list[Key] = []
    admission.wake = woken.append
    first, second, third = ("Canary", "ns", "a"), ("Canary", "ns", "b"), ("Canary", "ns", "c")
    assert admission.ask(first, T0).granted
    admission.settle(first, ReleaseStatus(phase=Phase.PROGRESSING))
    assert not admission.ask(second, T0).granted
    assert not admission.ask(third, T0 + timedelta(seconds=1)).granted
    admission.settle(first, ReleaseStatus(phase=Phase.PROGRESSING))  # still running: nobody woken
    assert woken == []
    admission.settle(first, ReleaseStatus(phase=Phase.SUCCEEDED))
    assert woken == [second]
