"""Run a real Prometheus for tests: fill it with data, start it, stop it.

Finding, starting and stopping the server is `sandbox.prometheus` (the sandbox runs the
same one); this adds what only tests need: a skip (or a CI failure) when the binary is missing, and
OpenMetrics text turned into TSDB blocks by `promtool tsdb create-blocks-from openmetrics` before
the server starts.
"""

from __future__ import annotations

import contextlib
import subprocess
import tempfile
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

from sandbox.prometheus import PrometheusServer, find_prometheus, find_promtool, free_port
from tests.tools import missing_tool

__all__ = ["BASIC_AUTH", "RunningPrometheus", "free_port", "load_openmetrics", "require_prometheus",
           "running_prometheus"]

# The one user a Prometheus started with `basic_auth=True` lets in. Prometheus keeps only a bcrypt hash
# (its web config's `basic_auth_users`); this one was made once with Python's crypt.crypt(password,
# crypt.mksalt(crypt.METHOD_BLOWFISH)), so the tests need no bcrypt library.
BASIC_AUTH = ("rollout", "canary-pass-1")
_BASIC_AUTH_HASH = "$2b$12$pY0odddRXkQg6hKIw0jd6OiNa3BBPPg1ie5qFZexYsgRQnAEjXNt2"


def require_prometheus() -> tuple[Path, Path]:
    """The prometheus and promtool binaries, or skip the test with a reason nobody can miss."""
    prom, tool = find_prometheus(), find_promtool()
    if prom is None or tool is None:
        missing_tool(
            "PROMETHEUS NOT FOUND - this test needs a real Prometheus. Run `make tools` "
            "(or `make test`, which does) or set ROLLOUT_PROMETHEUS=/path/to/prometheus."
        )
    return prom, tool


@dataclass(frozen=True)
class RunningPrometheus:
    url: str
    port: int
    pid: int
    data_dir: Path


def load_openmetrics(promtool: Path, text: str, data_dir: Path) -> None:
    """Write OpenMetrics `text` as TSDB blocks into `data_dir` (it must end with '# EOF')."""
    data_dir.mkdir(parents=True, exist_ok=True)
    source = data_dir.parent / "input.om"
    source.write_text(text if text.endswith("\n") else text + "\n")
    done = subprocess.run(
        [str(promtool), "tsdb", "create-blocks-from", "openmetrics", str(source), str(data_dir)],
        capture_output=True, text=True, timeout=120, check=False,
    )
    if done.returncode != 0:
        raise RuntimeError(f"promtool could not load the OpenMetrics data:\n{done.stderr}{done.stdout}")


@contextlib.contextmanager
def running_prometheus(
    openmetrics: str | None = None,
    *,
    scrape_target: str | None = None,
    scrape_interval: str = "1s",
    extra_args: Sequence[str] = (),
    basic_auth: bool = False,
) -> Iterator[RunningPrometheus]:
    """Start a real Prometheus on 127.0.0.1 with a temporary data dir; stop it on exit.

    `openmetrics` pre-fills the TSDB (timestamps in the text must lie within the last 15 days,
    the default retention); `scrape_target` (e.g. 'http://127.0.0.1:8000/metrics') is scraped
    every `scrape_interval`. With `basic_auth`, every request must carry `BASIC_AUTH`'s user and password.
    """
    prom, tool = require_prometheus()
    with tempfile.TemporaryDirectory(prefix="rollout-prom-data-") as tmp:
        data = Path(tmp) / "data"
        if openmetrics is not None:
            load_openmetrics(tool, openmetrics, data)
        args = list(extra_args)
        if basic_auth:
            web = Path(tmp) / "web.yml"
            web.write_text(f"basic_auth_users:\n  {BASIC_AUTH[0]}: '{_BASIC_AUTH_HASH}'\n")
            args.append(f"--web.config.file={web}")
        server = PrometheusServer([scrape_target] if scrape_target else [], scrape_interval=scrape_interval,
                                  data_dir=data, binary=prom, extra_args=args,
                                  ready_auth=BASIC_AUTH if basic_auth else None)
        with server:
            yield RunningPrometheus(url=server.url, port=server.port, pid=server.pid, data_dir=data)
