"""The operator's wheel and image carry no sandbox: it is its own distribution (rollout-sandbox).

The wheel is built offline from a copy of the project (so the checkout gets no build/ folder),
without build isolation, by the setuptools the test extra installs."""

from __future__ import annotations

import shlex
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
# What the build does not read; sandbox/ is copied on purpose: the wheel must leave it out.
NOT_COPIED = {".git", ".venv", ".cache", ".hypothesis", ".import_linter_cache", ".mypy_cache", ".pytest_cache",
              ".ruff_cache", "benchmarks", "deploy", "examples", "reports", "tests", "tools", "build"}


def wheel_files(tmp_path: Path) -> list[str]:
    src = tmp_path / "src"
    shutil.copytree(ROOT, src, symlinks=True, ignore=lambda folder, names: [
        n for n in names
        if (Path(folder) == ROOT and n in NOT_COPIED) or n == "__pycache__" or n.endswith(".egg-info")
    ])
    out = tmp_path / "dist"
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps", "--no-build-isolation", "--no-index",
                    "-w", str(out), str(src)], check=True, capture_output=True, timeout=300)
    (wheel,) = out.glob("rollout-*.whl")
    with zipfile.ZipFile(wheel) as z:
        return z.namelist()


def test_the_wheel_has_the_operator_and_the_analysis_and_no_sandbox(tmp_path: Path) -> None:
    files = wheel_files(tmp_path)
    assert "rollout/handlers.py" in files and "rollout/cli/__init__.py" in files
    assert any(f.startswith("rollout/engine/") and f.endswith(".py") for f in files)
    assert any(f.startswith("analysis/") and f.endswith(".py") for f in files)
    # The dashboard's page, script and styles: it fetches nothing from elsewhere.
    static = {f"rollout/engine/dashboard/static/{n}" for n in ("index.html", "dashboard.js", "dashboard.css")}
    assert static <= set(files)
    assert [f for f in files if f.startswith("sandbox/") or "/sandbox/" in f or "/demo/" in f] == []


def test_the_image_copies_no_sandbox() -> None:
    copies = [shlex.split(line)[1:] for line in (ROOT / "Dockerfile").read_text().splitlines()
              if line.startswith("COPY ")]
    assert copies, "the Dockerfile copies nothing"
    sources = [arg for args in copies for arg in args[:-1] if not arg.startswith("--")]
    assert not [s for s in sources if "sandbox" in s or s in (".", "./")]
    assert "sandbox" in (ROOT / ".dockerignore").read_text().split()
