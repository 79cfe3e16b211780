"""Small helpers every kind of test uses: what to do when a program is missing (skip loudly on a
developer's machine, fail in CI, where `make test` installs everything and a skip would hide a
broken install step), and waiting for a condition with bounded time and count."""

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


def wait_for(what: str, probe: Callable[[], T | None], timeout: float = 60.0, every: float = 0.5) -> T:
    """Poll `probe` until it returns something truthy; bounded in time and count."""
    last: T | None = None
    for _ in range(int(timeout / every) + 1):
        last = probe()
        if last:
            return last
        time.sleep(every)
    raise AssertionError(f"timed out after {timeout}s waiting for {what}; last: {last!r}")
