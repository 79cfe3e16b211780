"""A real Prometheus for the sandbox (and the tests): find the binary, start it, wait, stop it.

Canaries in the sandbox are judged by the same PromQL as on a cluster, so the sandbox runs the
real server rather than an imitation. The binary comes from `ROLLOUT_PROMETHEUS`, else from the
repository's `.cache/prometheus/` (which `make tools` fills from Debian's package), else from PATH.
The server binds 127.0.0.1 on a free port with its own temporary storage, scrapes the given
targets every `scrape_interval`, is awaited with a bounded readiness loop and is stopped by pid.
"""

from __future__ import annotations

import base64
import os
import shutil
import socket
import subprocess
import tempfile
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Sequence
from pathlib import Path
from types import TracebackType

__all__ = [
    "PrometheusNotFoundError",
    "PrometheusServer",
    "find_prometheus",
    "find_promtool",
    "free_port",
    "prometheus_config",
]

CACHE_BIN = Path(__file__).resolve().parents[1] / ".cache" / "prometheus" / "usr" / "bin"
READY_TIMEOUT = 30.0
STOP_TIMEOUT = 10.0
_PORT_ATTEMPTS = 3


class PrometheusNotFoundError(RuntimeError):
    """No prometheus executable was found."""

    def __init__(self) -> None:
        super().__init__(
            "no Prometheus binary found: run `make tools` (it fetches Debian's prometheus package into "
            ".cache/prometheus/), put `prometheus` on PATH, or set ROLLOUT_PROMETHEUS=/path/to/prometheus"
        )


def _executable(path: Path) -> bool:
    return path.is_file() and os.access(path, os.X_OK)


def find_prometheus() -> Path | None:
    """The prometheus executable to use, or None when there is none."""
    env = os.environ.get("ROLLOUT_PROMETHEUS")
    if env:
        return Path(env) if _executable(Path(env)) else None
    if _executable(CACHE_BIN / "prometheus"):
        return CACHE_BIN / "prometheus"
    found = shutil.which("prometheus")
    return Path(found) if found else None


def find_promtool() -> Path | None:
    """promtool next to the prometheus binary (or on PATH), or None."""
    prom = find_prometheus()
    if prom is not None and _executable(prom.parent / "promtool"):
        return prom.parent / "promtool"
    found = shutil.which("promtool")
    return Path(found) if found else None


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        port: int = sock.getsockname()[1]
        return port


def prometheus_config(scrape_targets: Sequence[str], scrape_interval: str) -> str:
    """A prometheus.yml scraping each target URL (e.g. `http://127.0.0.1:8000/metrics`)."""
    lines = ["global:", f"  scrape_interval: {scrape_interval}", f"  evaluation_interval: {scrape_interval}"]
    if scrape_targets:
        lines.append("scrape_configs:")
    for i, url in enumerate(scrape_targets):
        target = urllib.parse.urlsplit(url)
        lines += [
            f"  - job_name: target{i if i else ''}",
            f"    scheme: {target.scheme or 'http'}",
            f"    metrics_path: {target.path or '/metrics'}",
            "    static_configs:",
            f"      - targets: ['{target.netloc}']",
        ]
    return "\n".join(lines) + "\n"


class PrometheusServer:
    """One Prometheus process on 127.0.0.1; usable as a context manager.

    `data_dir` keeps the TSDB (e.g. one pre-filled by promtool); without it a temporary directory
    is made and removed on `stop()`. `start()` returns the base URL once `/-/ready` answers.
    """

    def __init__(
        self,
        scrape_targets: Sequence[str] = (),
        *,
        scrape_interval: str = "1s",
        data_dir: Path | None = None,
        binary: Path | None = None,
        extra_args: Sequence[str] = (),
        ready_timeout: float = READY_TIMEOUT,
        ready_auth: tuple[str, str] | None = None,
    ) -> None:
        self.scrape_targets = list(scrape_targets)
        # (username, password) for /-/ready when a --web.config.file in `extra_args` asks for basic auth.
        self.ready_auth = ready_auth
        self.scrape_interval = scrape_interval
        self.extra_args = list(extra_args)
        self.ready_timeout = ready_timeout
        self._binary = binary
        self._given_data_dir = data_dir
        self._tmp: tempfile.TemporaryDirectory[str] | None = None
        self._process: subprocess.Popen[bytes] | None = None
        self._port: int | None = None
        self.data_dir: Path | None = data_dir

    @property
    def url(self) -> str:
        if self._port is None:
            raise RuntimeError("prometheus is not started")
        return f"http://127.0.0.1:{self._port}"

    @property
    def port(self) -> int:
        if self._port is None:
            raise RuntimeError("prometheus is not started")
        return self._port

    @property
    def pid(self) -> int:
        if self._process is None:
            raise RuntimeError("prometheus is not started")
        return self._process.pid

    def start(self) -> str:
        if self._process is not None:
            raise RuntimeError("prometheus is already started")
        binary = self._binary or find_prometheus()
        if binary is None:
            raise PrometheusNotFoundError()
        self._tmp = tempfile.TemporaryDirectory(prefix="rollout-prom-")
        root = Path(self._tmp.name)
        self.data_dir = self._given_data_dir or root / "data"
        config = root / "prometheus.yml"
        config.write_text(prometheus_config(self.scrape_targets, self.scrape_interval))
        log = root / "prometheus.log"
        try:
            for attempt in range(_PORT_ATTEMPTS):  # the free port may be taken between choosing and binding
                port = free_port()
                with log.open("wb") as out:
                    process = subprocess.Popen(
                        [str(binary), f"--config.file={config}", f"--storage.tsdb.path={self.data_dir}",
                         f"--web.listen-address=127.0.0.1:{port}", "--log.level=warn", *self.extra_args],
                        stdout=out, stderr=subprocess.STDOUT,
                    )
                try:
                    _wait_ready(f"http://127.0.0.1:{port}", process, log, self.ready_timeout, self.ready_auth)
                except RuntimeError:
                    _terminate(process)
                    if attempt == _PORT_ATTEMPTS - 1 or "address already in use" not in log.read_text():
                        raise
                    continue
                self._process, self._port = process, port
                return self.url
        except BaseException:
            self._cleanup()
            raise
        raise AssertionError("unreachable")

    def stop(self) -> None:
        if self._process is not None:
            _terminate(self._process)
            self._process = None
        self._cleanup()

    def _cleanup(self) -> None:
        if self._tmp is not None:
            self._tmp.cleanup()
            self._tmp = None

    def __enter__(self) -> PrometheusServer:
        self.start()
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()


def _wait_ready(url: str, process: subprocess.Popen[bytes], log: Path, timeout: float,
                auth: tuple[str, str] | None = None) -> None:
    deadline = time.monotonic() + timeout
    request = urllib.request.Request(f"{url}/-/ready")
    if auth is not None:
        request.add_header("Authorization", "Basic " + base64.b64encode(":".join(auth).encode()).decode())
    for _ in range(int(timeout / 0.1) + 1):
        if process.poll() is not None:
            raise RuntimeError(f"prometheus exited with {process.returncode}:\n{log.read_text()[-3000:]}")
        try:
            with urllib.request.urlopen(request, timeout=2) as response:
                if response.status == 200:
                    return
        except (urllib.error.URLError, ConnectionError, TimeoutError):
            pass
        if time.monotonic() > deadline:
            break
        time.sleep(0.1)
    raise RuntimeError(f"prometheus at {url} not ready after {timeout}s:\n{log.read_text()[-3000:]}")


def _terminate(process: subprocess.Popen[bytes]) -> None:
    """Stop the process we started, by its pid: SIGTERM, then SIGKILL if it does not exit."""
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(timeout=STOP_TIMEOUT)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=STOP_TIMEOUT)
