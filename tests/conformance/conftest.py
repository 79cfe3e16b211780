"""Fixtures for the conformance tests: the embedded sandbox, or a real cluster when asked.

With `ROLLOUT_E2E_KUBECONFIG=/path/to/kubeconfig` the same tests run against that
cluster (the repository's CRDs are installed if missing); otherwise a sandbox is started
on a free port of 127.0.0.1 for the session and stopped after it.
"""

from __future__ import annotations

import json
import os
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import kubernetes
import pytest
import yaml

from sandbox import Sandbox, default_crd_files

_new_client: Any = kubernetes.config.new_client_from_config  # untyped in the client package


@dataclass
class Cluster:
    """How the tests reach the cluster under test."""

    kubeconfig: Path
    client: kubernetes.client.ApiClient
    sandbox: Sandbox | None

    def raw(
        self,
        method: str,
        path: str,
        body: Any = None,
        *,
        content_type: str = "application/json",
        query: dict[str, str] | None = None,
        timeout: float = 10.0,
    ) -> tuple[int, Any]:
        """One HTTP request with the client's connection and credentials; returns (status, JSON or text)."""
        headers = {"Accept": "application/json", "Content-Type": content_type}
        self.client.update_params_for_auth(headers, [], ["BearerToken"], path, method, body)
        url = self.client.configuration.host + path + (f"?{urlencode(query)}" if query else "")
        payload = None if body is None else body if isinstance(body, str) else json.dumps(body)
        response = self.client.rest_client.pool_manager.request(
            method, url, headers=headers, body=payload, timeout=timeout, preload_content=True
        )
        text = response.data.decode()
        try:
            return response.status, json.loads(text)
        except ValueError:
            return response.status, text


def _install_crds(client: kubernetes.client.ApiClient) -> None:
    ext: Any = kubernetes.client.ApiextensionsV1Api(client)  # accepts plain dicts at runtime
    names = []
    for path in default_crd_files():
        for doc in yaml.safe_load_all(path.read_text(encoding="utf-8")):
            if isinstance(doc, dict) and doc.get("kind") == "CustomResourceDefinition":
                names.append(doc["metadata"]["name"])
                try:
                    ext.create_custom_resource_definition(doc)
                except kubernetes.client.ApiException as exc:
                    if exc.status != 409:
                        raise
    deadline = time.monotonic() + 30
    for name in names:
        while True:
            crd = ext.read_custom_resource_definition(name)
            conditions = {c.type: c.status for c in (crd.status.conditions or [])}
            if conditions.get("Established") == "True":
                break
            if time.monotonic() > deadline:
                raise TimeoutError(f"CRD {name} is not established")
            time.sleep(0.2)


@pytest.fixture(scope="session")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    real = os.environ.get("ROLLOUT_E2E_KUBECONFIG")
    if real:
        client = _new_client(real)
        _install_crds(client)
        yield Cluster(Path(real), client, None)
        client.close()
        return
    with Sandbox(deployment_ready_delay=0.3) as sandbox:
        path = sandbox.write_kubeconfig(tmp_path_factory.mktemp("sandbox") / "kubeconfig")
        client = _new_client(str(path))
        _install_crds(client)  # already served by the sandbox: this only checks they are Established
        yield Cluster(path, client, sandbox)
        client.close()


@pytest.fixture
def namespace(cluster: Cluster) -> Iterator[str]:
    """A fresh namespace per test, deleted afterwards (its content goes with it)."""
    name = f"conformance-{uuid.uuid4().hex[:8]}"
    core: Any = kubernetes.client.CoreV1Api(cluster.client)
    core.create_namespace({"metadata": {"name": name}})
    yield name
    try:
        core.delete_namespace(name)
    except kubernetes.client.ApiException as exc:
        if exc.status != 404:
            raise
