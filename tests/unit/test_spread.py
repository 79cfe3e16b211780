"""Idle ticks spread over the interval: every release on its own grid, looks one interval apart."""

from __future__ import annotations

import statistics

from rollout.core.spread import offset, spread


def test_a_look_is_never_earlier_than_planned_and_less_than_an_interval_later() -> None:
    for i in range(200):
        key = f"Canary/ns/app-{i}"
        delay = spread(10.0, 1234.5, key, 10.0)
        assert 10.0 <= delay < 20.0


def test_once_on_its_grid_a_release_looks_exactly_one_interval_apart() -> None:
    now, key = 100.0, "Canary/ns/app"
    now += spread(10.0, now, key, 10.0)
    for _ in range(5):
        step = spread(10.0, now, key, 10.0)
        assert abs(step - 10.0) < 1e-6
        now += step
    assert min(abs((now - offset(key, 10.0)) % 10.0 - edge) for edge in (0.0, 10.0)) < 1e-6


def test_releases_started_together_look_at_instants_spread_over_the_interval() -> None:
    started = 50.0
    looks = sorted((started + spread(10.0, started, f"Canary/scale/app-{i:04d}", 10.0)) % 10.0 for i in range(1000))
    # Every tenth of the interval holds about a tenth of the looks (not all in one instant).
    for tenth in range(10):
        share = sum(1 for t in looks if tenth <= t < tenth + 1) / len(looks)
        assert 0.06 < share < 0.14
    assert statistics.pstdev(looks) > 2.5


def test_no_interval_no_spread() -> None:
    assert spread(3.0, 10.0, "Canary/ns/app", 0.0) == 3.0
