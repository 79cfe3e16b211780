"""Long full collections freeze their survivors; once an hour everything is unfrozen and collected."""

from __future__ import annotations

import gc
import weakref
from collections.abc import Iterator

import pytest

from rollout.engine.gcpauses import Freezer


@pytest.fixture(autouse=True)
def unfrozen() -> Iterator[None]:
    yield
    gc.unfreeze()


def test_a_long_full_collection_freezes_its_survivors_at_the_next_maintenance() -> None:
    freezer = Freezer(long=0.0)
    freezer.install()
    try:
        freezer.maintain()
        assert freezer.freezes == 0  # nothing long seen yet
        gc.collect(generation=1)
        freezer.maintain()
        assert freezer.freezes == 0  # a young collection is not a full one
        gc.collect()
        freezer.maintain()
        assert freezer.freezes == 1 and gc.get_freeze_count() > 0
        freezer.maintain()
        assert freezer.freezes == 1  # once per long collection
    finally:
        freezer.uninstall()
    assert freezer._observe not in gc.callbacks


def test_short_full_collections_freeze_nothing() -> None:
    freezer = Freezer(long=3600.0)
    freezer.install()
    try:
        gc.collect()
        freezer.maintain()
        assert freezer.freezes == 0 and gc.get_freeze_count() == 0
    finally:
        freezer.uninstall()


def test_once_an_hour_everything_is_unfrozen_collected_and_frozen_again() -> None:
    now = [0.0]
    freezer = Freezer(lambda: now[0], reclaim_every=3600.0)
    node = Node()
    node.me = node  # a cycle
    gone = weakref.ref(node)
    gc.freeze()
    del node  # dead, but frozen: no collection frees it
    gc.collect()
    now[0] = 3599.0
    freezer.maintain()
    assert freezer.reclaims == 0 and gone() is not None
    now[0] = 3600.0
    freezer.maintain()
    assert freezer.reclaims == 1 and gone() is None and gc.get_freeze_count() > 0


class Node:
    me: object = None
