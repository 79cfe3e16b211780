"""Short garbage-collection pauses for an operator that holds many releases.

A full collection stops every thread while it walks every tracked object; with a thousand releases
(kopf's bodies and daemons, the clients' models) that took 0.5 to 1 s on 2 cores, and each such
pause delays every tick due meanwhile. Most of those objects live as long as the process, so after a
long full collection the survivors are frozen (`gc.freeze`): later collections skip them, and only
what was made since is walked. A frozen object that dies is still freed by its reference count; only
one caught in a reference cycle would stay, so once an hour everything is unfrozen and collected
(one long pause an hour instead of one every few seconds under load).
"""

from __future__ import annotations

import gc
import time
from collections.abc import Callable

# A full collection longer than this freezes its survivors.
LONG = 0.05
# Everything is unfrozen and collected this often (seconds), so cycles that died frozen are freed.
RECLAIM_EVERY = 3600.0


class Freezer:
    """Watches full collections (a `gc.callbacks` entry) and, when asked by `maintain` from a loop
    that runs every few seconds, freezes the survivors of a long one. Never calls into `gc` from the
    callback itself."""

    def __init__(self, clock: Callable[[], float] = time.monotonic, *, long: float = LONG,
                 reclaim_every: float = RECLAIM_EVERY) -> None:
        self.clock = clock
        self.long = long
        self.reclaim_every = reclaim_every
        self.long_seen = False
        self.freezes = 0
        self.reclaims = 0
        self._began = 0.0
        self._reclaimed = clock()

    def install(self) -> None:
        if self._observe not in gc.callbacks:
            gc.callbacks.append(self._observe)

    def uninstall(self) -> None:
        if self._observe in gc.callbacks:
            gc.callbacks.remove(self._observe)

    def _observe(self, phase: str, info: dict[str, int]) -> None:
        if info.get("generation") != 2:
            return
        if phase == "start":
            self._began = time.perf_counter()
        elif time.perf_counter() - self._began >= self.long:
            self.long_seen = True

    def maintain(self) -> None:
        """Freeze after a long full collection; unfreeze, collect and freeze again once an hour."""
        now = self.clock()
        if now - self._reclaimed >= self.reclaim_every:
            self._reclaimed = now
            self.reclaims += 1
            gc.unfreeze()
            gc.collect()
            gc.freeze()
            self.long_seen = False
        elif self.long_seen:
            self.long_seen = False
            self.freezes += 1
            gc.freeze()
