"""Crash consistency under fault injection: the operator SIGKILLed at seeded random instants over
good and failing releases, in GitSource and url mode, with Prometheus killed and frozen, Git remotes
gone and back, people pushing during reverts and mutated specs applied beside it.

`make test` runs the short form (a few cycles); `make chaos` the long one (`CHAOS_CYCLES`, default
100). `CHAOS_SEED` replays a campaign; without it the seed is random, and always printed.
"""

from __future__ import annotations

import os
import random

import pytest

from tests.chaos.campaign import Campaign
from tests.chaos.conftest import World
from tests.chaos.ledger import Ledger
from tests.chaos.world import env_int

pytestmark = [pytest.mark.chaos, pytest.mark.e2e]


# The short form in `make test` replays one campaign, so that a red build is a change's doing; the
# long form draws a new seed each time unless CHAOS_SEED is given.
SHORT_SEED = 20261204


def campaign(world: World, cycles: int, capsys: pytest.CaptureFixture[str], default_seed: int | None = None) -> None:
    seed = env_int("CHAOS_SEED", default_seed or random.SystemRandom().randrange(1, 10**6))

    def say(line: str) -> None:
        with capsys.disabled():
            print(line, flush=True)

    say(f"\nchaos: seed {seed}, {cycles} kill cycles, lanes "
        f"{', '.join(f'{lane.namespace} ({lane.mode})' for lane in world.lanes)} (replay with CHAOS_SEED={seed})")
    ledger = Ledger(seed, say)
    run = Campaign(world.api, world.lanes, world.operator, world.prometheus, world.receiver,
                   world.mutant_namespace, world.root, ledger, faults=os.environ.get("CHAOS_FAULTS") != "0",
                   sandbox_log=world.sandbox_log)
    try:
        run.run(cycles)
    finally:
        say(ledger.summary())
    if ledger.failed:
        pytest.fail("\n".join([ledger.summary(), *ledger.violations]), pytrace=False)


def test_chaos_short(world: World, capsys: pytest.CaptureFixture[str]) -> None:
    campaign(world, env_int("CHAOS_SHORT_CYCLES", 3), capsys, SHORT_SEED)


@pytest.mark.skipif(not os.environ.get("CHAOS_CYCLES"), reason="the long campaign runs with `make chaos` "
                    "(CHAOS_CYCLES=N)")
def test_chaos_long(world: World, capsys: pytest.CaptureFixture[str]) -> None:
    campaign(world, env_int("CHAOS_CYCLES", 100), capsys)

