"""Idle releases' ticks spread evenly over their interval, whenever they started.

An operator that starts on many releases at once (a restart, a failover) starts every release's
timer at the same instant, and releases with the same interval then tick together forever: a burst
of N ticks each interval that queues for the worker threads, while the rest of the interval is
quiet. An idle release's next look is therefore put on a grid of its own: the first instant after
the planned delay that is its offset (a stable hash of its name) past a multiple of the interval.
That delays one look by less than an interval, once; after that every look is exactly one interval
apart, and the releases' looks are spread evenly however they began. An idle release is woken at
once by a change to anything it reads, so the later look delays nothing that happens.
"""

from __future__ import annotations

import hashlib


def offset(key: str, interval: float) -> float:
    """The release's place in its interval, in seconds: stable across restarts and replicas."""
    # A cryptographic digest: CRCs of names that differ in one digit are far from uniform.
    digest = hashlib.blake2b(key.encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big") / 2**64 * interval


def spread(delay: float, now: float, key: str, interval: float) -> float:
    """The delay from `now` (seconds on any steady clock) to the release's next look: at least `delay`,
    on the release's own grid of `interval`; `delay` itself when `interval` is not positive."""
    if interval <= 0:
        return delay
    lag = (offset(key, interval) - (now + delay)) % interval
    # On the grid line already (up to rounding): no extra interval.
    return delay if lag > interval - 1e-6 else delay + lag
