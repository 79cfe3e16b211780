"""Real metric servers for the provider tests: Graphite, InfluxDB, VictoriaMetrics and moto (CloudWatch).

Each comes from `.cache/` (`make tools` fills it: Debian's packages unpacked by tools/fetch-debs.sh,
moto in its own virtualenv by tools/fetch-moto.sh), binds 127.0.0.1 on free ports with its own
temporary storage, is awaited with a bounded readiness loop and is stopped by pid. A test whose
server is missing skips saying which `make` target brings it (and fails in CI, see `missing_tool`).
"""

from __future__ import annotations

import contextlib
import os
import socket
import subprocess
import tempfile
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import requests

from sandbox.prometheus import free_port
from tests.tools import missing_tool

CACHE = Path(__file__).resolve().parents[1] / ".cache"
READY_TIMEOUT = 30.0


def _require(path: Path, what: str, make: str) -> Path:
    if not path.exists():
        missing_tool(f"{what.upper()} NOT FOUND - this test needs a real {what} in {path.parent}. "
                     f"Run `{make}` (or `make tools`, which `make test` runs).")
    return path


class Process:
    """One server process: started with a log file, stopped by its pid."""

    def __init__(self, name: str, argv: Sequence[str], log: Path, env: Mapping[str, str] | None = None,
                 cwd: Path | None = None) -> None:
        self.name, self.log = name, log
        with log.open("wb") as out:
            self.popen = subprocess.Popen(list(argv), stdout=out, stderr=subprocess.STDOUT, cwd=cwd,
                                          env={**os.environ, **(env or {})})

    @property
    def pid(self) -> int:
        return self.popen.pid

    def wait_ready(self, probe: Callable[[], bool], timeout: float = READY_TIMEOUT) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.popen.poll() is not None:
                raise RuntimeError(f"{self.name} exited with {self.popen.returncode}:\n{self.tail()}")
            with contextlib.suppress(OSError, requests.RequestException):
                if probe():
                    return
            time.sleep(0.2)
        raise RuntimeError(f"{self.name} was not ready within {timeout}s:\n{self.tail()}")

    def tail(self) -> str:
        return "\n".join(self.log.read_text(errors="replace").splitlines()[-20:])

    def stop(self) -> None:
        if self.popen.poll() is None:
            self.popen.terminate()
            try:
                self.popen.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.popen.kill()
                self.popen.wait(timeout=10)


def _http_ok(url: str, ok: tuple[int, ...] = (200, 204), **kwargs: object) -> Callable[[], bool]:
    return lambda: requests.get(url, timeout=2, **kwargs).status_code in ok  # type: ignore[arg-type]


def _accepts(port: int) -> Callable[[], bool]:
    def probe() -> bool:
        with socket.create_connection(("127.0.0.1", port), timeout=1):
            return True
    return probe


# ---------------------------------------------------------------------------------------- Graphite

GRAPHITE = CACHE / "graphite"
# Debian's packages are built for Debian's Python; they run from the cache on PYTHONPATH.
DEBIAN_PYTHON = Path("/usr/bin/python3")


@dataclass
class Graphite:
    """carbon-cache (plaintext protocol on `line_port`) and graphite-web (render API at `url`)."""

    url: str
    line_port: int
    whisper: Path
    web: Process
    carbon: Process

    def send(self, lines: Sequence[str], timeout: float = 30.0) -> None:
        """Write `metric value timestamp` lines through carbon's plaintext protocol, and wait until
        graphite-web serves the last point of every metric (carbon takes them in asynchronously)."""
        with socket.create_connection(("127.0.0.1", self.line_port), timeout=5) as sock:
            sock.sendall(("\n".join(lines) + "\n").encode())
        last: dict[str, int] = {}
        for line in lines:
            metric, _, written = line.split()
            last[metric] = max(last.get(metric, 0), int(float(written)))
        deadline = time.monotonic() + timeout
        for metric, newest in last.items():
            while not self._has_point(metric, newest):
                if time.monotonic() > deadline:
                    raise RuntimeError(f"graphite-web did not serve {metric} at {newest} within {timeout}s")
                time.sleep(0.2)

    def _has_point(self, metric: str, stamp: int) -> bool:
        params = {"target": metric, "from": str(stamp - 1), "until": str(stamp + 1), "format": "json"}
        answer = requests.get(f"{self.url}/render", params=params, timeout=5).json()
        return any(value is not None and t == stamp for item in answer for value, t in item["datapoints"])


CARBON_CONF = """[cache]
STORAGE_DIR = {root}/storage/
LOCAL_DATA_DIR = {root}/storage/whisper/
CONF_DIR = {root}/conf/
LOG_DIR = {root}/log/
PID_DIR = {root}/
DATABASE = whisper
ENABLE_LOGROTATION = False
MAX_CACHE_SIZE = inf
MAX_UPDATES_PER_SECOND = 100000
MAX_CREATES_PER_MINUTE = inf
LINE_RECEIVER_INTERFACE = 127.0.0.1
LINE_RECEIVER_PORT = {line}
ENABLE_UDP_LISTENER = False
PICKLE_RECEIVER_INTERFACE = 127.0.0.1
PICKLE_RECEIVER_PORT = {pickle}
CACHE_QUERY_INTERFACE = 127.0.0.1
CACHE_QUERY_PORT = {query}
WHISPER_AUTOFLUSH = True
WHISPER_FALLOCATE_CREATE = False
"""

WEB_SETTINGS = """SECRET_KEY = 'rollout-tests'
STORAGE_DIR = '{root}/storage/'
WHISPER_DIR = '{root}/storage/whisper/'
LOG_DIR = '{root}/log/'
INDEX_FILE = '{root}/storage/index'
DATABASES = {{'default': {{'NAME': '{root}/storage/graphite.db', 'ENGINE': 'django.db.backends.sqlite3'}}}}
CARBONLINK_HOSTS = ['127.0.0.1:{query}:a']
DEFAULT_XFILES_FACTOR = 0
"""


@contextlib.contextmanager
def running_graphite(retention: str = "10s:2d") -> Iterator[Graphite]:
    """carbon-cache and graphite-web from Debian's packages, storing `retention` for every metric."""
    carbon_cache = _require(GRAPHITE / "usr/bin/carbon-cache", "Graphite", "make tools")
    if not DEBIAN_PYTHON.exists():
        missing_tool(f"GRAPHITE NEEDS DEBIAN'S PYTHON - {DEBIAN_PYTHON} is missing")
    site = GRAPHITE / "usr/lib/python3/dist-packages"
    with tempfile.TemporaryDirectory(prefix="rollout-graphite-") as tmp:
        root = Path(tmp)
        for sub in ("conf", "storage/whisper", "log", "settings"):
            (root / sub).mkdir(parents=True)
        line, pickle, query, web_port = (free_port() for _ in range(4))
        (root / "conf/carbon.conf").write_text(CARBON_CONF.format(root=root, line=line, pickle=pickle, query=query))
        (root / "conf/storage-schemas.conf").write_text(f"[default]\npattern = .*\nretentions = {retention}\n")
        (root / "settings/rollout_graphite_settings.py").write_text(WEB_SETTINGS.format(root=root, query=query))
        env = {"PYTHONPATH": f"{root / 'settings'}:{site}", "GRAPHITE_SETTINGS_MODULE": "rollout_graphite_settings",
               "DJANGO_SETTINGS_MODULE": "graphite.settings", "PYTHONDONTWRITEBYTECODE": "1"}
        carbon = Process("carbon-cache", [str(DEBIAN_PYTHON), str(carbon_cache), f"--config={root}/conf/carbon.conf",
                                          "--debug", "start"], root / "carbon.log", env, cwd=root)
        web: Process | None = None
        try:
            web = Process("graphite-web", [str(DEBIAN_PYTHON), "-m", "django", "runserver", "--noreload",
                                           f"127.0.0.1:{web_port}"], root / "web.log", env, cwd=root)
            carbon.wait_ready(_accepts(line))
            url = f"http://127.0.0.1:{web_port}"
            web.wait_ready(_http_ok(f"{url}/render?target=test&format=json"))
            yield Graphite(url, line, root / "storage/whisper", web, carbon)
        finally:
            if web is not None:
                web.stop()
            carbon.stop()


# ---------------------------------------------------------------------------------------- InfluxDB

INFLUXD = CACHE / "influxdb/usr/bin/influxd"

INFLUX_CONF = """reporting-disabled = true
bind-address = "127.0.0.1:{rpc}"
[meta]
  dir = "{root}/meta"
[data]
  dir = "{root}/data"
  wal-dir = "{root}/wal"
  query-log-enabled = false
[http]
  bind-address = "127.0.0.1:{http}"
  auth-enabled = {auth}
  log-enabled = false
[monitor]
  store-enabled = false
"""


@dataclass
class InfluxDB:
    """influxd with authentication on; `username`/`password` is its admin, `database` exists."""

    url: str
    username: str
    password: str
    database: str
    process: Process

    def write(self, lines: Sequence[str], precision: str = "s") -> None:
        """Write line-protocol points into the database."""
        response = requests.post(f"{self.url}/write", params={"db": self.database, "precision": precision},
                                 data="\n".join(lines).encode(), auth=(self.username, self.password), timeout=10)
        response.raise_for_status()


@contextlib.contextmanager
def running_influxdb(database: str = "metrics", auth: bool = True) -> Iterator[InfluxDB]:
    """Debian's influxd (1.x: InfluxQL over /query) with an admin user and one database; `auth`
    False lets anyone read and write."""
    influxd = _require(INFLUXD, "InfluxDB", "make tools")
    with tempfile.TemporaryDirectory(prefix="rollout-influxdb-") as tmp:
        root = Path(tmp)
        http = free_port()
        (root / "influxdb.conf").write_text(INFLUX_CONF.format(root=root, rpc=free_port(), http=http,
                                                                      auth=str(auth).lower()))
        process = Process("influxd", [str(influxd), "-config", str(root / "influxdb.conf")], root / "influxd.log")
        try:
            url = f"http://127.0.0.1:{http}"
            process.wait_ready(_http_ok(f"{url}/ping"))
            server = InfluxDB(url, "admin", "adm1n-pass", database, process)
            # The first user may be created without credentials; it must be an admin.
            admin = (server.username, server.password)
            create_user = f"CREATE USER {server.username} WITH PASSWORD '{server.password}' WITH ALL PRIVILEGES"
            requests.post(f"{url}/query", data={"q": create_user}, timeout=10).raise_for_status()
            requests.post(f"{url}/query", data={"q": f'CREATE DATABASE "{database}"'}, auth=admin,
                          timeout=10).raise_for_status()
            yield server
        finally:
            process.stop()


# --------------------------------------------------------------------------------- VictoriaMetrics

VICTORIA = CACHE / "victoria-metrics/usr/bin"


@dataclass
class VictoriaMetrics:
    """victoria-metrics at `url`, and vmauth in front of it at `auth_url` asking for basic auth."""

    url: str
    auth_url: str
    username: str
    password: str
    process: Process

    def import_prometheus(self, text: str) -> None:
        """Import Prometheus exposition text (timestamps in ms) and make it searchable at once."""
        requests.post(f"{self.url}/api/v1/import/prometheus", data=text.encode(), timeout=10).raise_for_status()
        requests.get(f"{self.url}/internal/force_flush", timeout=10).raise_for_status()


@contextlib.contextmanager
def running_victoria_metrics() -> Iterator[VictoriaMetrics]:
    """Debian's victoria-metrics single-node server, and its vmauth proxy with one user."""
    binary = _require(VICTORIA / "victoria-metrics", "VictoriaMetrics", "make tools")
    with tempfile.TemporaryDirectory(prefix="rollout-vm-") as tmp:
        root = Path(tmp)
        port, auth_port = free_port(), free_port()
        process = Process("victoria-metrics", [
            str(binary), f"-storageDataPath={root / 'data'}", f"-httpListenAddr=127.0.0.1:{port}",
            "-retentionPeriod=1y", "-search.latencyOffset=0s", "-search.disableCache", "-loggerLevel=ERROR",
        ], root / "vm.log")
        proxy: Process | None = None
        try:
            url = f"http://127.0.0.1:{port}"
            process.wait_ready(_http_ok(f"{url}/health"))
            username, password = "rollout", "vm-s3cret"
            (root / "auth.yml").write_text(f"users:\n- username: {username}\n  password: {password}\n"
                                           f"  url_prefix: {url}\n")
            proxy = Process("vmauth", [str(VICTORIA / "vmauth"), f"-auth.config={root / 'auth.yml'}",
                                       f"-httpListenAddr=127.0.0.1:{auth_port}", "-loggerLevel=ERROR"],
                            root / "vmauth.log")
            auth_url = f"http://127.0.0.1:{auth_port}"
            proxy.wait_ready(_http_ok(f"{auth_url}/api/v1/query?query=1", auth=(username, password)))
            yield VictoriaMetrics(url, auth_url, username, password, process)
        finally:
            if proxy is not None:
                proxy.stop()
            process.stop()


# ------------------------------------------------------------------------------ moto (CloudWatch)

MOTO = CACHE / "moto/bin"


@dataclass
class Moto:
    """moto_server imitating AWS at `url`; `python` is its virtualenv's (with boto3) for putting data."""

    url: str
    python: Path
    process: Process

    def boto3(self, script: str, env: Mapping[str, str]) -> str:
        """Run a Python `script` with moto's boto3 (a `client` for CloudWatch at `url` is given)."""
        prelude = ("import boto3, datetime, json, sys\n"
                   f"client = boto3.client('cloudwatch', endpoint_url={self.url!r}, region_name='eu-west-1')\n")
        done = subprocess.run([str(self.python), "-c", prelude + script], capture_output=True, text=True,
                              timeout=60, env={**os.environ, **env}, check=False)
        if done.returncode != 0:
            raise RuntimeError(f"boto3 script failed:\n{done.stderr}")
        return done.stdout


@contextlib.contextmanager
def running_moto(env: Mapping[str, str] | None = None) -> Iterator[Moto]:
    """moto's server mode on 127.0.0.1 (tools/fetch-moto.sh puts it in .cache/moto); `env` configures
    it (e.g. INITIAL_NO_AUTH_ACTION_COUNT turns IAM authentication on after that many calls)."""
    server = _require(MOTO / "moto_server", "moto", "make tools")
    with tempfile.TemporaryDirectory(prefix="rollout-moto-") as tmp:
        port = free_port()
        process = Process("moto_server", [str(server), "-H", "127.0.0.1", "-p", str(port)], Path(tmp) / "moto.log",
                          env)
        try:
            url = f"http://127.0.0.1:{port}"
            process.wait_ready(_http_ok(f"{url}/moto-api/"))
            yield Moto(url, MOTO / "python", process)
        finally:
            process.stop()
