"""What a release waiting for a slot under the operator's `--max-concurrent-releases` says.

The engine keeps the slots and the queue (`rollout.engine.admission`); the planner only learns,
as a `Slot`, whether this release may start its run now. When it may not, the release waits in
phase Waiting with its Promoted condition's reason `Queued`, a message giving its place, and
looks again soon, so that a freed slot is taken within about a second. Only the first `limit`
in the queue can take the next free slots; every `limit` places further back is one more round
of runs to wait for, so such a release looks a second later per round (at most every 30s): a
thousand queued releases do not tick a thousand times a second.
"""

from __future__ import annotations

import math
from datetime import timedelta

from rollout.core.observations import Slot

# The Promoted condition's reason (and the Event's) while a release waits for a slot.
QUEUED = "Queued"
# How soon a queued release that may be next looks again, and the longest a far one waits.
QUEUE_LOOK = timedelta(seconds=1)
QUEUE_FAR = timedelta(seconds=30)


def ordinal(n: int) -> str:
    """1st, 2nd, 3rd, 4th, 11th, 12th, 13th, 21st, ..."""
    suffix = "th" if 10 <= n % 100 <= 20 else {1: "st", 2: "nd", 3: "rd"}.get(n % 10, "th")
    return f"{n}{suffix}"


def queued_message(slot: Slot) -> str:
    if slot.unknown:
        return f"waiting for a release slot: {slot.unknown}, --max-concurrent-releases {slot.limit}"
    running = f"{slot.running} release{'' if slot.running == 1 else 's'} running"
    return (f"waiting for a release slot: {ordinal(slot.place)} of {slot.queued} in the queue, {running}, "
            f"--max-concurrent-releases {slot.limit}")


def look_again(slot: Slot, interval: timedelta) -> timedelta:
    """When a queued release looks again: every second while it is among the first `limit` in
    the queue, a second more per `limit` places further back, never later than its interval."""
    rounds = math.ceil(max(slot.place, 1) / max(slot.limit, 1))
    return min(interval, min(QUEUE_LOOK * rounds, QUEUE_FAR))
