"""Wake-ups for the releases' daemons: a release waits for its next tick or for a change to what it read.

The watch-fed cache (`rollout.engine.cache`) learns of a change on its own threads; each release's
daemon waits on kopf's loop. `Wakes` holds one asyncio Event per daemon and sets it from any thread.
A burst of changes costs one tick, not one per change: a daemon woken less than `settle` seconds
after its last tick waits out the rest first.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Awaitable, Hashable
from contextlib import suppress
from typing import Any


class Wakes:
    def __init__(self) -> None:
        self._events: dict[Hashable, tuple[asyncio.AbstractEventLoop, asyncio.Event]] = {}
        self._lock = threading.Lock()

    def register(self, key: Hashable) -> asyncio.Event:
        """The Event of `key`'s daemon; call on its loop."""
        event = asyncio.Event()
        with self._lock:
            self._events[key] = (asyncio.get_running_loop(), event)
        return event

    def unregister(self, key: Hashable) -> None:
        with self._lock:
            self._events.pop(key, None)

    def wake(self, key: Hashable) -> None:
        """Wake `key`'s daemon, from any thread; nothing when it has none (another kind of reader)."""
        with self._lock:
            held = self._events.get(key)
        if held is not None:
            loop, event = held
            with suppress(RuntimeError):  # the loop has closed: the daemon is gone
                loop.call_soon_threadsafe(event.set)

    @staticmethod
    async def pause(event: asyncio.Event, timer: Awaitable[Any], settle: float) -> bool:
        """Until `timer` ends (the next tick is due, or the daemon is stopping) or `event` is set; True
        when woken by the event (something the release reads changed)."""
        loop = asyncio.get_running_loop()
        began = loop.time()
        woken = asyncio.ensure_future(event.wait())
        timed = asyncio.ensure_future(timer)
        try:
            await asyncio.wait({woken, timed}, return_when=asyncio.FIRST_COMPLETED)
            early = not timed.done()
        finally:
            woken.cancel()
            timed.cancel()
        event.clear()
        if early and (rest := settle - (loop.time() - began)) > 0:
            await asyncio.sleep(rest)
        return early
