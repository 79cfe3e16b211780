"""Small helpers every kind of test uses: what to do when a program is missing (skip loudly on a
developer's machine, fail in CI, where `make test` installs everything and a skip would hide a
broken install step), and waiting for a condition for a bounded time."""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from typing import NoReturn, TypeVar

import pytest

T = TypeVar("T")


def missing_tool(message: str) -> NoReturn:
    if os.environ.get("CI"):
        pytest.fail(f"{message} (CI must have it: `make test` installs it)", pytrace=False)
    pytest.skip(message)


def wait_for(what: str, probe: Callable[[], T | None], timeout: float = 60.0, every: float = 0.2) -> T:
    """Poll `probe` until it returns something truthy; bounded in time (the probes' own time included).

    Most waits end a fraction of a poll after the condition holds, and the e2e tests chain hundreds of
    them, so the poll is short; a probe is one small API or HTTP request."""
    deadline = time.monotonic() + timeout
    while True:
        last = probe()
        if last:
            return last
        if time.monotonic() >= deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}; last: {last!r}")
        time.sleep(every)
