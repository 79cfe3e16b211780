"""What a release waiting for a slot under the operator's `--max-concurrent-releases` says.

The engine keeps the slots and the queue (`rollout.engine.admission`); the planner only learns,
as a `Slot`, whether this release may start its run now. When it may not, the release waits in
phase Waiting with its Promoted condition's reason `Queued`, a message giving its place, and
looks again soon, so that a freed slot is taken within about a second.
"""

from __future__ import annotations

from datetime import timedelta

from rollout.core.observations import Slot

# The Promoted condition's reason (and the Event's) while a release waits for a slot.
QUEUED = "Queued"
# How soon a queued release looks again.
QUEUE_LOOK = timedelta(seconds=1)


def ordinal(n: int) -> str:
    """1st, 2nd, 3rd, 4th, 11th, 12th, 13th, 21st, ..."""
    suffix = "th" if 10 <= n % 100 <= 20 else {1: "st", 2: "nd", 3: "rd"}.get(n % 10, "th")
    return f"{n}{suffix}"


def queued_message(slot: Slot) -> str:
    running = f"{slot.running} release{'' if slot.running == 1 else 's'} running"
    return (f"waiting for a release slot: {ordinal(slot.place)} of {slot.queued} in the queue, {running}, "
            f"--max-concurrent-releases {slot.limit}")
