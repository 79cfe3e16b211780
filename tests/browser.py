"""Debian's Chromium for the tests that look at pages as a browser draws them (the HTML reports, the
dashboard): where it is, a headless run of it, and counting a colour's pixels in its screenshots.

Chromium comes from `ROLLOUT_CHROMIUM` or PATH (Debian package `chromium`; the Makefile installs it
when missing). The colours are the ones the report and the dashboard draw canary, primary and weight in.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import matplotlib.image
import numpy as np
import numpy.typing as npt

from tests.tools import missing_tool

CANARY_RGB = (0xD9, 0x5F, 0x02)
PRIMARY_RGB = (0x1B, 0x9E, 0x77)
WEIGHT_RGB = (0x75, 0x70, 0xB3)


def chromium_binary() -> str:
    explicit = os.environ.get("ROLLOUT_CHROMIUM")
    if explicit:
        return explicit
    for name in ("chromium", "chromium-browser", "google-chrome"):
        found = shutil.which(name)
        if found:
            return found
    missing_tool("CHROMIUM NOT FOUND - install the Debian package `chromium` (`make test` does) "
                "or set ROLLOUT_CHROMIUM=/path/to/chromium")


def chromium(tmp_path: Path, page: Path, *args: str) -> subprocess.CompletedProcess[str]:
    profile = tmp_path / f"profile-{len(list(tmp_path.iterdir()))}"
    command = [
        chromium_binary(), "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
        "--disable-background-networking", "--disable-component-update", "--disable-sync",
        "--disable-extensions", "--hide-scrollbars", f"--user-data-dir={profile}", *args, page.as_uri(),
    ]
    done = subprocess.run(command, capture_output=True, text=True, timeout=90, check=False)
    assert done.returncode == 0, done.stderr[-2000:]
    return done


def colour_pixels(png: Path, rgb: tuple[int, int, int]) -> int:
    pixels: npt.NDArray[np.float32] = matplotlib.image.imread(str(png))[..., :3]
    target = np.array(rgb, dtype=np.float32) / 255
    return int((np.abs(pixels - target).max(axis=-1) < 0.06).sum())
