"""Idle ticks spread over the interval: every release on its own grid, looks one interval apart."""

from __future__ import annotations

import statistics

from rollout.core.spread import offset, spread


def test_a_look_moves_by_at_most_half_an_interval() -> None:
    for i in range(200):
        key = f"Canary/ns/app-{i}"
        delay = spread(10.0, 1234.5, key, 10.0)
        assert 5.0 <= delay <= 15.0


def on_grid(at: float, key: str) -> bool:
    return min(abs((at - offset(key, 10.0)) % 10.0 - edge) for edge in (0.0, 10.0)) < 1e-6


def test_a_look_that_ran_late_is_followed_by_one_on_the_grid_one_interval_after_the_last() -> None:
    key = "Canary/ns/app"
    planned = 100.0 + spread(10.0, 100.0, key, 10.0)
    assert on_grid(planned, key)
    for late in (0.004, 0.3, 2.0, 0.0, 4.9):
        ran = planned + late  # the tick started (and ended) this much after its planned time
        step = spread(10.0, ran, key, 10.0)
        assert abs(ran + step - (planned + 10.0)) < 1e-6
        planned = ran + step


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
