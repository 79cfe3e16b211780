"""The processes a chaos campaign runs and breaks: the sandbox with its data plane, a Prometheus the
test can kill and freeze, the operator (`rollout run`), local Git remotes and a simulated Flux.

One world serves every cycle: only the operator is restarted between cycles, so a cycle costs the
release itself (seconds: 1s analysis intervals) and not a cluster's start-up.
"""

from __future__ import annotations

import contextlib
import os
import re
import signal
import subprocess
import sys
import threading
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml
from kubernetes import client

from rollout.api.kinds import GROUP, VERSION
from sandbox.demo import app
from sandbox.prometheus import free_port, prometheus_config
from tests.e2e.conftest import OperatorProcess
from tests.gitrepo import GitRemote
from tests.prom import require_prometheus
from tests.tools import wait_for

APP = app.APP
# Fast retries and short timeouts: a fault must resolve within a cycle, not within minutes.
OPERATOR_FLAGS = ["--prometheus-timeout", "2", "--prometheus-retries", "0", "--error-backoff", "1",
                  "--git-retry", "2", "--push-backoff", "0.5", "--push-backoff-max", "2",
                  "--git-connect-timeout", "3"]


class SandboxProcess:
    """`rollout sandbox up --dataplane` in its own process, so the API does not share the test's GIL."""

    def __init__(self, root: Path, rps: float, seed: int) -> None:
        self.kubeconfig, self.log = root / "kubeconfig", root / "sandbox.log"
        with self.log.open("wb") as out:
            self.process = subprocess.Popen(
                [str(Path(sys.executable).parent / "rollout"), "sandbox", "up", "--dataplane", "--rps", f"{rps:g}",
                 "--seed", str(seed), "--kubeconfig", str(self.kubeconfig)], stdout=out, stderr=subprocess.STDOUT)
        text = wait_for("the sandbox with its data plane",
                        lambda: "kubeconfig:" in self.log.read_text() and self.log.read_text(), timeout=60)
        metrics = re.search(r"data plane metrics: (\S+)", str(text))
        assert metrics, text
        self.metrics_url = metrics.group(1)

    def stop(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(timeout=5)


class PrometheusProcess:
    """A Prometheus scraping the data plane, restarted on the same port and data after a SIGKILL so
    the operator's `--prometheus` URL stays right; `freeze()` is SIGSTOP, `thaw()` SIGCONT."""

    def __init__(self, root: Path, target: str) -> None:
        self.binary, _ = require_prometheus()
        self.port = free_port()
        self.data, self.config, self.log = root / "data", root / "prometheus.yml", root / "prometheus.log"
        self.config.write_text(prometheus_config([target], "1s"))
        self.process: subprocess.Popen[bytes] | None = None
        self.frozen = False

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> None:
        with self.log.open("ab") as out:
            self.process = subprocess.Popen(
                [str(self.binary), f"--config.file={self.config}", f"--storage.tsdb.path={self.data}",
                 f"--web.listen-address=127.0.0.1:{self.port}", "--log.level=warn"],
                stdout=out, stderr=subprocess.STDOUT)
        wait_for("Prometheus ready", self._ready, timeout=30, every=0.2)

    def _ready(self) -> bool:
        assert self.process is not None
        if self.process.poll() is not None:
            raise AssertionError(f"prometheus exited: {self.log.read_text()[-2000:]}")
        try:
            with urllib.request.urlopen(f"{self.url}/-/ready", timeout=2) as response:
                return bool(response.status == 200)
        except (urllib.error.URLError, ConnectionError, TimeoutError):
            return False

    def kill(self) -> None:
        self.thaw()
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGKILL)
            self.process.wait(timeout=10)

    def freeze(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGSTOP)
            self.frozen = True

    def thaw(self) -> None:
        if self.frozen and self.process is not None:
            self.process.send_signal(signal.SIGCONT)
            self.frozen = False

    def running(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def stop(self) -> None:
        self.thaw()
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=5)


class Operator(OperatorProcess):
    """The e2e tests' operator process, with the chaos flags and a record of how it ended."""

    def __init__(self, kubeconfig: Path, prometheus: str, root: Path) -> None:
        super().__init__(kubeconfig, prometheus, root / "reports", root / "operator.log")
        self.args += OPERATOR_FLAGS
        self.kills = 0

    def alive(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def sigkill(self) -> None:
        self.kill()
        self.kills += 1


@dataclass
class Lane:
    """One namespace with one Canary, released over and over: `gitsource` mode (the operator syncs
    the remote) or `url` mode (the simulated Flux syncs it, the operator only writes reverts)."""

    namespace: str
    mode: str
    remote: GitRemote
    hooks: str
    promoted_image: str = ""
    promoted_error_rate: float = 0.0
    away: bool = False  # the remote is renamed away (Git outage)
    retired: bool = False
    lock: threading.Lock = field(default_factory=threading.Lock)

    @property
    def manifest(self) -> str:
        return "apps/deployment.yaml" if self.mode == "gitsource" else "deploy/podinfo.yaml"

    @property
    def canary_file(self) -> str:
        return "apps/canary.yaml"

    def deployment(self, image: str, error_rate: float) -> dict[str, Any]:
        return app.deployment(app.Version(0, image, error_rate), self.namespace)

    def canary(self) -> dict[str, Any]:
        return canary_manifest(self.namespace, self.hooks, self.mode, self.remote.url)

    def go_away(self) -> None:
        with self.lock:
            self.remote.bare.rename(self.remote.bare.with_suffix(".away"))
            self.away = True

    def come_back(self) -> None:
        with self.lock:
            if self.away:
                self.remote.bare.with_suffix(".away").rename(self.remote.bare)
                self.away = False


def canary_manifest(namespace: str, hooks: str, mode: str, url: str) -> dict[str, Any]:
    """The data-plane-backed Canary of the demo, judged every second over a 4s window, in five steps
    (10% to 50%); a failing version must fail two checks (see `campaign.BAD_ERROR_RATE`)."""
    obj = app.canary("gatewayapi", "threshold", 1.0, namespace, git=False)
    spec = obj["spec"]
    spec["progressDeadlineSeconds"] = 60
    spec["analysis"].update(
        interval="1s", threshold=2, stepWeight=10, maxWeight=50,
        metrics=[{"name": "request-success-rate", "interval": "4s", "thresholdRange": {"min": 95}}],
        webhooks=[{"name": "notify", "type": "post-rollout", "url": f"{hooks}/post-rollout/{namespace}",
                   "timeout": "2s"},
                  {"name": "events", "type": "event", "url": f"{hooks}/event/{namespace}", "timeout": "2s"}])
    author = {"name": "rollout-bot", "email": "rollout-bot@example.com"}
    spec["git"] = ({"source": "apps", "author": author} if mode == "gitsource"
                   else {"url": url, "branch": "main", "path": "./deploy", "author": author})
    return obj


def create_lane(api: client.ApiClient, root: Path, namespace: str, mode: str, hooks: str, image: str) -> Lane:
    """A namespace, its remote at `image` (healthy), and the Canary initialized on it."""
    client.CoreV1Api(api).create_namespace(client.V1Namespace(metadata=client.V1ObjectMeta(name=namespace)))
    lane = Lane(namespace, mode, GitRemote(root / namespace), hooks, image, 0.0)
    client.CustomObjectsApi(api).create_namespaced_custom_object(
        "gateway.networking.k8s.io", "v1", namespace, "gateways", app.gateway(namespace))
    files: dict[str, str | None] = {lane.manifest: yaml.safe_dump(lane.deployment(image, 0.0), sort_keys=False)}
    custom = client.CustomObjectsApi(api)
    if mode == "gitsource":
        files[lane.canary_file] = yaml.safe_dump(lane.canary(), sort_keys=False)
        lane.remote.commit(files, f"feat({APP}): {image}")
        custom.create_namespaced_custom_object(GROUP, VERSION, namespace, "gitsources", {
            "apiVersion": f"{GROUP}/{VERSION}", "kind": "GitSource",
            "metadata": {"name": "apps", "namespace": namespace},
            "spec": {"url": lane.remote.url, "branch": "main", "path": "./apps", "interval": "2s"}})
    else:
        lane.remote.commit(files, f"feat({APP}): {image}")
        client.AppsV1Api(api).create_namespaced_deployment(namespace, lane.deployment(image, 0.0))  # type: ignore[arg-type]
        custom.create_namespaced_custom_object(GROUP, VERSION, namespace, "canaries", lane.canary())
    return lane


class Flux:
    """What Flux or Argo CD would do for url-mode lanes: apply the file on the remote's head, every
    second, when the cluster's pod template differs; silent while the remote is away."""

    def __init__(self, api: client.ApiClient, lanes: list[Lane]) -> None:
        self.apps = client.AppsV1Api(api)
        self.lanes = lanes  # the campaign's own list: a replaced lane is synced from then on
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="flux", daemon=True)

    def start(self) -> Flux:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=10)

    def _run(self) -> None:
        while not self._stop.wait(1.0):
            for lane in list(self.lanes):
                with contextlib.suppress(Exception), lane.lock:
                    if lane.away or lane.retired or lane.mode != "url":
                        continue
                    wanted = yaml.safe_load(lane.remote.show(lane.remote.head(), lane.manifest))["spec"]["template"]
                    live: Any = self.apps.read_namespaced_deployment(APP, lane.namespace).spec.template
                    notes = live.metadata.annotations or {}
                    if (live.spec.containers[0].image != wanted["spec"]["containers"][0]["image"]
                            or any(notes.get(k) != v for k, v in wanted["metadata"].get("annotations", {}).items())):
                        self.apps.patch_namespaced_deployment(APP, lane.namespace, {"spec": {"template": wanted}})


def env_int(name: str, default: int) -> int:
    value = os.environ.get(name, "").strip()
    return int(value) if value else default
