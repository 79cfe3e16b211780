"""The chaos world, started once per session: sandbox with data plane, a breakable Prometheus, the
operator, a webhook receiver, the simulated Flux and the release lanes, all initialized."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from kubernetes import client

from rollout.engine.kube import api_client
from sandbox.demo import app
from tests.chaos.receiver import Receiver
from tests.chaos.world import (
    APP,
    Flux,
    Lane,
    Operator,
    PrometheusProcess,
    SandboxProcess,
    create_lane,
    env_int,
)
from tests.e2e.conftest import release_status
from tests.tools import wait_for

FIRST_IMAGE = "ghcr.io/stefanprodan/podinfo:6.0.0"


@dataclass
class World:
    api: client.ApiClient
    root: Path
    lanes: list[Lane]
    operator: Operator
    prometheus: PrometheusProcess
    receiver: Receiver
    mutant_namespace: str
    sandbox_log: Path


@pytest.fixture(scope="session")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    root = tmp_path_factory.mktemp("chaos")
    sandbox = SandboxProcess(root, rps=80, seed=env_int("CHAOS_SEED", 0))
    prometheus = PrometheusProcess(root, sandbox.metrics_url)
    receiver = Receiver().start()
    operator: Operator | None = None
    flux: Flux | None = None
    try:
        prometheus.start()
        api = api_client(sandbox.kubeconfig)
        suffix = uuid.uuid4().hex[:4]
        lanes = [create_lane(api, root, f"chaos-{i}-{suffix}", ("gitsource", "url")[i % 2], receiver.url, FIRST_IMAGE)
                 for i in range(max(1, env_int("CHAOS_LANES", 2)))]
        mutant_namespace = f"chaos-mutants-{suffix}"
        client.CoreV1Api(api).create_namespace(client.V1Namespace(metadata=client.V1ObjectMeta(name=mutant_namespace)))
        client.AppsV1Api(api).create_namespaced_deployment(
            mutant_namespace, app.deployment(app.VERSIONS[1], mutant_namespace))  # type: ignore[arg-type]
        flux = Flux(api, lanes).start()
        operator = Operator(sandbox.kubeconfig, prometheus.url, root)
        operator.start()
        for lane in lanes:
            wait_for(f"{lane.namespace}/{APP} initialized",
                     lambda lane=lane: release_status(api, lane.namespace, APP).get("phase") == "Initialized",  # type: ignore[misc]
                     timeout=90)
        yield World(api, root, lanes, operator, prometheus, receiver, mutant_namespace, sandbox.log)
    finally:
        if operator is not None:
            operator.stop()
        if flux is not None:
            flux.stop()
        receiver.stop()
        prometheus.stop()
        sandbox.stop()
