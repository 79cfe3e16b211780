"""What tests do when a program they need is missing: skip loudly on a developer's machine, fail in
CI, where `make test` installs everything and a skip would hide a broken install step."""

from __future__ import annotations

import os
from typing import NoReturn

import pytest


def missing_tool(message: str) -> NoReturn:
    if os.environ.get("CI"):
        pytest.fail(f"{message} (CI must have it: `make test` installs it)", pytrace=False)
    pytest.skip(message)
