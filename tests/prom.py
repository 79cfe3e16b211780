"""Run a real Prometheus for tests: find the binary, fill it with data, start it, stop it.

The binary comes from `ROLLOUT_PROMETHEUS` or from `.cache/prometheus/` (filled by
`tools/fetch-prometheus.sh`, which the Makefile runs). Data either comes from OpenMetrics text,
turned into TSDB blocks by `promtool tsdb create-blocks-from openmetrics` before the server starts,
or from scraping a target. The server binds 127.0.0.1 on a free port, is awaited with a bounded
readiness loop and is stopped by pid.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import socket
import subprocess
import tempfile
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

from tests.tools import missing_tool

REPO = Path(__file__).resolve().parent.parent
CACHE_BIN = REPO / ".cache" / "prometheus" / "usr" / "bin"
READY_TIMEOUT = 30.0


def prometheus_binary() -> Path | None:
    """The prometheus executable to use, or None when there is none."""
    env = os.environ.get("ROLLOUT_PROMETHEUS")
    if env:
        path = Path(env)
        return path if path.is_file() and os.access(path, os.X_OK) else None
    cached = CACHE_BIN / "prometheus"
    if cached.is_file() and os.access(cached, os.X_OK):
        return cached
    found = shutil.which("prometheus")
    return Path(found) if found else None


def promtool_binary() -> Path | None:
    """promtool next to the prometheus binary (or on PATH), or None."""
    prom = prometheus_binary()
    if prom is not None and (prom.parent / "promtool").is_file():
        return prom.parent / "promtool"
    found = shutil.which("promtool")
    return Path(found) if found else None


def require_prometheus() -> tuple[Path, Path]:
    """The prometheus and promtool binaries, or skip the test with a reason nobody can miss."""
    prom, tool = prometheus_binary(), promtool_binary()
    if prom is None or tool is None:
        missing_tool(
            "PROMETHEUS NOT FOUND - this test needs a real Prometheus. Run tools/fetch-prometheus.sh "
            "(or `make test`, which does) or set ROLLOUT_PROMETHEUS=/path/to/prometheus."
        )
    return prom, tool


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


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


def _config(scrape_target: str | None, scrape_interval: str) -> str:
    lines = ["global:", f"  scrape_interval: {scrape_interval}", f"  evaluation_interval: {scrape_interval}"]
    if scrape_target:
        target = urllib.parse.urlsplit(scrape_target)
        lines += [
            "scrape_configs:",
            "  - job_name: target",
            f"    scheme: {target.scheme or 'http'}",
            f"    metrics_path: {target.path or '/metrics'}",
            "    static_configs:",
            f"      - targets: ['{target.netloc}']",
        ]
    return "\n".join(lines) + "\n"


def _wait_ready(url: str, process: subprocess.Popen[bytes], log: Path) -> None:
    deadline = time.monotonic() + READY_TIMEOUT
    for _ in range(int(READY_TIMEOUT / 0.1) + 1):
        if process.poll() is not None:
            raise RuntimeError(f"prometheus exited with {process.returncode}:\n{log.read_text()[-3000:]}")
        try:
            with urllib.request.urlopen(f"{url}/-/ready", timeout=2) as response:
                if response.status == 200:
                    return
        except (urllib.error.URLError, ConnectionError, TimeoutError):
            pass
        if time.monotonic() > deadline:
            break
        time.sleep(0.1)
    raise RuntimeError(f"prometheus at {url} not ready after {READY_TIMEOUT}s:\n{log.read_text()[-3000:]}")


@contextlib.contextmanager
def running_prometheus(
    openmetrics: str | None = None,
    *,
    scrape_target: str | None = None,
    scrape_interval: str = "1s",
    extra_args: Sequence[str] = (),
) -> Iterator[RunningPrometheus]:
    """Start a real Prometheus on 127.0.0.1 with a temporary data dir; stop it on exit.

    `openmetrics` pre-fills the TSDB (timestamps in the text must lie within the last 15 days,
    the default retention); `scrape_target` (e.g. 'http://127.0.0.1:8000/metrics') is scraped
    every `scrape_interval`.
    """
    prom, tool = require_prometheus()
    with tempfile.TemporaryDirectory(prefix="rollout-prom-") as tmp:
        root = Path(tmp)
        data = root / "data"
        if openmetrics is not None:
            load_openmetrics(tool, openmetrics, data)
        config = root / "prometheus.yml"
        config.write_text(_config(scrape_target, scrape_interval))
        log = root / "prometheus.log"
        for attempt in range(3):  # the free port may be taken between choosing and binding it
            port = free_port()
            url = f"http://127.0.0.1:{port}"
            with log.open("wb") as out:
                process = subprocess.Popen(
                    [
                        str(prom), f"--config.file={config}", f"--storage.tsdb.path={data}",
                        f"--web.listen-address=127.0.0.1:{port}", "--log.level=warn", *extra_args,
                    ],
                    stdout=out, stderr=subprocess.STDOUT,
                )
            try:
                _wait_ready(url, process, log)
                break
            except RuntimeError:
                _stop(process)
                if attempt == 2 or "address already in use" not in log.read_text():
                    raise
        try:
            yield RunningPrometheus(url=url, port=port, pid=process.pid, data_dir=data)
        finally:
            _stop(process)


def _stop(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=10)
