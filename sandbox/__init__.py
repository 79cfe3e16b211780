"""The embedded local cluster used by `rollout demo`, `rollout sandbox up` and the e2e tests.

No real kube-apiserver can run on the machines this project is developed on, so the
sandbox provides one in-process: kmock's KubernetesEmulator with a fidelity layer (see
`apiserver` and `store`), a garbage collector, simulated Deployment and DaemonSet controllers and
simulated autoscalers (HorizontalPodAutoscaler, KEDA ScaledObject: `autoscalers`) and a simulated
Knative Serving (Services, Revisions and their Deployments: `knative`), all on one
event loop in a background thread. On request it adds a simulated data plane
(`dataplane`: load routed by the live router objects, mesh-style metrics on /metrics)
and a real Prometheus scraping it (`prometheus`). kopf and the official client talk to it over
HTTP on 127.0.0.1 through an ordinary kubeconfig, so operator code cannot tell it from a
real cluster.

    with Sandbox() as sandbox:
        path = sandbox.write_kubeconfig(tmp / "kubeconfig")
        client = kubernetes.config.new_client_from_config(str(path))

    with Sandbox(dataplane=DataPlaneConfig(rps=100), prometheus=True) as sandbox:
        sandbox.metrics_url, sandbox.prometheus_url
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import logging
import signal
import socket
import tempfile
import threading
from collections.abc import Callable, Iterable
from pathlib import Path
from types import FrameType, TracebackType
from typing import Any, TypeVar

import aiohttp.web

from .apiserver import SandboxAPI
from .autoscalers import AutoscalerController
from .collector import GarbageCollector
from .daemonsets import DaemonSetController
from .dataplane import DataPlane, DataPlaneConfig
from .deployments import UNREADY_ANNOTATION, DeploymentController
from .knative import KnativeController
from .kubeconfig import write_kubeconfig
from .pods import ERROR_RATE_ANNOTATION, LATENCY_MEDIAN_ANNOTATION, LATENCY_P99_ANNOTATION
from .prometheus import PrometheusServer
from .resources import AUTOSCALER_KINDS, PROVIDER_KINDS, builtin_specs, load_crd_documents

__all__ = [
    "ERROR_RATE_ANNOTATION",
    "LATENCY_MEDIAN_ANNOTATION",
    "LATENCY_P99_ANNOTATION",
    "UNREADY_ANNOTATION",
    "DataPlaneConfig",
    "Sandbox",
    "default_crd_files",
    "serve",
    "write_kubeconfig",
]

logger = logging.getLogger(__name__)

T = TypeVar("T")

INITIAL_NAMESPACES = ("default", "kube-system", "kube-public", "kube-node-lease")
_START_TIMEOUT = 15.0
_STOP_TIMEOUT = 15.0


def default_crd_files() -> list[Path]:
    """The repository's `crds/*.yaml` (present in a checkout or an editable install)."""
    crds = Path(__file__).resolve().parents[1] / "crds"
    return sorted(crds.glob("*.yaml")) if crds.is_dir() else []


class Sandbox:
    """The whole sandbox, started and stopped in-process; usable as a context manager.

    `start()` returns the base URL (`http://127.0.0.1:<free port>`). Everything runs on
    the sandbox's own event loop in a daemon thread; the methods here are thread-safe.
    `dataplane` turns on the simulated data plane (`metrics_url`); `prometheus=True` also
    starts a real Prometheus scraping it every second (`prometheus_url`), and implies a data
    plane with default settings when none is given.
    """

    def __init__(
        self,
        *,
        crd_files: Iterable[Path] | None = None,
        deployment_ready_delay: float = 0.5,
        host: str = "127.0.0.1",
        port: int = 0,
        dataplane: DataPlaneConfig | None = None,
        prometheus: bool = False,
        without_kinds: Iterable[str] = (),
    ) -> None:
        # Traffic providers' kinds ("virtualservices.networking.istio.io") not served, as on a
        # cluster where that provider is not installed.
        self._without_kinds = frozenset(without_kinds)
        unknown = self._without_kinds - {f"{k.plural}.{k.group}" for k in PROVIDER_KINDS}
        if unknown:
            raise ValueError(f"without_kinds: not provider kinds of the sandbox: {sorted(unknown)}")
        self._crd_files = list(crd_files) if crd_files is not None else default_crd_files()
        self._ready_delay = deployment_ready_delay
        self._host = host
        self._port = port
        self._thread: threading.Thread | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._started = threading.Event()
        self._stop: asyncio.Event | None = None
        self._error: BaseException | None = None
        self._url: str | None = None
        self.api: SandboxAPI | None = None
        self.deployments: DeploymentController | None = None
        self.daemonsets: DaemonSetController | None = None
        self._dataplane_config = dataplane if dataplane is not None or not prometheus else DataPlaneConfig()
        self._want_prometheus = prometheus
        self.dataplane: DataPlane | None = None
        self.prometheus: PrometheusServer | None = None

    # -- lifecycle -----------------------------------------------------------------------------

    def start(self) -> str:
        if self._thread is not None:
            raise RuntimeError("the sandbox is already started")
        self._thread = threading.Thread(target=self._thread_main, name="rollout-sandbox", daemon=True)
        self._thread.start()
        if not self._started.wait(_START_TIMEOUT):
            raise RuntimeError("the sandbox did not start in time")
        if self._error is not None:
            self._thread.join(_STOP_TIMEOUT)
            raise RuntimeError("the sandbox failed to start") from self._error
        assert self._url is not None
        if self._want_prometheus:
            try:
                self.prometheus = PrometheusServer([self.metrics_url], scrape_interval="1s")
                self.prometheus.start()
            except BaseException:
                self.prometheus = None
                self.stop()
                raise
        return self._url

    def stop(self) -> None:
        if self.prometheus is not None:
            self.prometheus.stop()
            self.prometheus = None
        if self._thread is None:
            return
        if self._loop is not None and self._stop is not None and not self._loop.is_closed():
            with contextlib.suppress(RuntimeError):  # the loop has just finished on its own
                self._loop.call_soon_threadsafe(self._stop.set)
        self._thread.join(_STOP_TIMEOUT)
        if self._thread.is_alive():
            logger.warning("the sandbox thread did not stop within %.0f seconds", _STOP_TIMEOUT)
        self._thread = None

    def __enter__(self) -> Sandbox:
        self.start()
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()

    @property
    def url(self) -> str:
        if self._url is None:
            raise RuntimeError("the sandbox is not started")
        return self._url

    @property
    def metrics_url(self) -> str:
        """The data plane's Prometheus endpoint (`http://127.0.0.1:<port>/metrics`)."""
        if self.dataplane is None:
            raise RuntimeError("the sandbox runs no data plane: pass Sandbox(dataplane=DataPlaneConfig())")
        return self.dataplane.url

    @property
    def prometheus_url(self) -> str:
        """The base URL of the Prometheus scraping the data plane."""
        if self.prometheus is None:
            raise RuntimeError("the sandbox runs no Prometheus: pass Sandbox(prometheus=True)")
        return self.prometheus.url

    def write_kubeconfig(self, path: Path, *, namespace: str = "default") -> Path:
        """Write a kubeconfig for this sandbox that kopf, the client and kubectl accept."""
        return write_kubeconfig(path, self.url, namespace=namespace)

    def call(self, fn: Callable[[], T], timeout: float = 10.0) -> T:
        """Run `fn` on the sandbox's loop (where the store lives) and return its result."""
        if self._loop is None:
            raise RuntimeError("the sandbox is not started")

        async def invoke() -> T:
            return fn()

        future: concurrent.futures.Future[T] = asyncio.run_coroutine_threadsafe(invoke(), self._loop)
        return future.result(timeout)

    def set_deployment_unready(self, namespace: str, name: str, unready: bool = True) -> None:
        """Keep a Deployment's new pods from becoming ready, or let them become ready again."""
        controller = self.deployments
        if controller is None:
            raise RuntimeError("the sandbox is not started")
        self.call(lambda: controller.set_unready(namespace, name, unready))

    # -- the loop thread -----------------------------------------------------------------------

    def _thread_main(self) -> None:
        loop = asyncio.new_event_loop()
        self._loop = loop
        try:
            loop.run_until_complete(self._main())
        except BaseException as exc:
            self._error = self._error or exc
        finally:
            self._started.set()
            with contextlib.suppress(Exception):
                loop.run_until_complete(loop.shutdown_asyncgens())
            loop.close()

    def _build(self) -> SandboxAPI:
        api = SandboxAPI()
        api.register(builtin_specs())
        api.register(k for k in PROVIDER_KINDS if f"{k.plural}.{k.group}" not in self._without_kinds)
        api.register(AUTOSCALER_KINDS)
        store = api.store
        ns_spec = store.lookup("", "v1", "namespaces")
        crd_spec = store.lookup("apiextensions.k8s.io", "v1", "customresourcedefinitions")
        assert ns_spec is not None and crd_spec is not None
        for name in INITIAL_NAMESPACES:
            store.create(ns_spec, "v1", None, {"metadata": {"name": name}})
        for crd in load_crd_documents(self._crd_files):
            store.create(crd_spec, "v1", None, crd)
        return api

    async def _main(self) -> None:
        self._stop = asyncio.Event()
        try:
            api = self._build()
            self.api = api
            self.deployments = DeploymentController(api.store, ready_delay=self._ready_delay)
            self.daemonsets = DaemonSetController(api.store, ready_delay=self._ready_delay)
            collector = GarbageCollector(api.store)
            autoscalers = AutoscalerController(api.store)
            knative = KnativeController(api.store)
            if self._dataplane_config is not None:
                self.dataplane = DataPlane(api.store, self._dataplane_config)
            sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            sock.bind((self._host, self._port))
        except BaseException as exc:
            self._error = exc
            raise
        async with api:
            server = aiohttp.web.Server(api, handler_cancellation=True)
            runner = aiohttp.web.ServerRunner(server, shutdown_timeout=1.0)
            await runner.setup()
            tasks: list[asyncio.Task[None]] = []
            try:
                site = aiohttp.web.SockSite(runner, sock)
                await site.start()
                port = sock.getsockname()[1]
                self._url = f"http://{self._host}:{port}"
                tasks = [
                    asyncio.create_task(self.deployments.run(), name="sandbox-deployments"),
                    asyncio.create_task(self.daemonsets.run(), name="sandbox-daemonsets"),
                    asyncio.create_task(collector.run(), name="sandbox-collector"),
                    asyncio.create_task(autoscalers.run(), name="sandbox-autoscalers"),
                    asyncio.create_task(knative.run(), name="sandbox-knative"),
                ]
                if self.dataplane is not None:
                    await self.dataplane.start()
                    tasks.append(asyncio.create_task(self.dataplane.run(), name="sandbox-dataplane"))
                self._started.set()
                await self._stop.wait()
            except BaseException as exc:
                self._error = self._error or exc
                raise
            finally:
                api.store.stop()
                for task in tasks:
                    task.cancel()
                await asyncio.gather(*tasks, return_exceptions=True)
                if self.dataplane is not None:
                    await self.dataplane.stop()
                await runner.cleanup()
                sock.close()


def serve(
    kubeconfig: Path | None = None, *, dataplane: DataPlaneConfig | None = None, prometheus: bool = False
) -> int:
    """Run the sandbox until SIGINT or SIGTERM, printing where its kubeconfig is (and, with a data
    plane, where its metrics and Prometheus are)."""
    stop = threading.Event()

    def on_signal(signum: int, frame: FrameType | None) -> None:
        stop.set()

    previous: dict[int, Any] = {sig: signal.signal(sig, on_signal) for sig in (signal.SIGINT, signal.SIGTERM)}
    own_dir: tempfile.TemporaryDirectory[str] | None = None
    try:
        if kubeconfig is None:
            own_dir = tempfile.TemporaryDirectory(prefix="rollout-sandbox-")
            kubeconfig = Path(own_dir.name) / "kubeconfig"
        with Sandbox(dataplane=dataplane, prometheus=prometheus) as sandbox:
            path = sandbox.write_kubeconfig(kubeconfig)
            print(f"rollout sandbox: API server at {sandbox.url}", flush=True)
            if sandbox.dataplane is not None:
                print(f"data plane metrics: {sandbox.metrics_url}", flush=True)
            if sandbox.prometheus is not None:
                print(f"prometheus: {sandbox.prometheus_url}", flush=True)
            print(f"kubeconfig: {path}", flush=True)
            print(f"  export KUBECONFIG={path}", flush=True)
            print("Stop with Ctrl-C (SIGINT) or SIGTERM.", flush=True)
            while not stop.wait(0.5):
                pass
        print("rollout sandbox: stopped", flush=True)
        return 0
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
        if own_dir is not None:  # a path the user chose stays, as it would for kubectl
            own_dir.cleanup()
