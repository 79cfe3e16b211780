"""Idle releases' ticks spread evenly over their interval, whenever they started.

An operator that starts on many releases at once (a restart, a failover) starts every release's
timer at the same instant, and releases with the same interval then tick together forever: a burst
of N ticks each interval that queues for the worker threads, while the rest of the interval is
quiet. An idle release's next look is therefore put on a grid of its own: the instant nearest the
planned one that is its offset (a stable hash of its name) past a multiple of the interval. That
moves one look by at most half an interval, once; after that a look that ran a little late is
followed by one on the grid again, every look is one interval apart, and the releases' looks are
spread evenly however they began. An idle release is woken at once by a change to anything it
reads, so a look moved later delays nothing that happens.
"""

from __future__ import annotations

import hashlib


def offset(key: str, interval: float) -> float:
    """The release's place in its interval, in seconds: stable across restarts and replicas."""
    # A cryptographic digest: CRCs of names that differ in one digit are far from uniform.
    digest = hashlib.blake2b(key.encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big") / 2**64 * interval


def spread(delay: float, now: float, key: str, interval: float) -> float:
    """The delay from `now` (unix seconds) to the release's next look: the point of the release's own
    grid of `interval` nearest `now + delay`, so within half an interval of `delay`; `delay` itself when
    `interval` is not positive."""
    if interval <= 0:
        return delay
    lag = (offset(key, interval) - (now + delay)) % interval
    return delay + (lag - interval if lag > interval / 2 else lag)
