"""The watch-fed cache against the sandbox API: what it answers from memory, what it sends to the
API server, and how it stays right after writes, conflicts, a broken watch and 410 Gone.

Requests are counted by the sandbox (`SandboxAPI.served`), so a read answered from memory is one the
API server never saw.
"""

from __future__ import annotations

import collections
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from kubernetes import client
from kubernetes.client.exceptions import ApiException

from rollout.engine.cache import CachingApiClient, address_of, cacheable
from rollout.engine.kube import api_client
from rollout.routers.base import RouterError
from rollout.routers.istio import VIRTUALSERVICE
from rollout.routers.objects import Objects
from rollout.settings import Settings
from sandbox import Sandbox
from tests.tools import wait_for

pytestmark = pytest.mark.e2e


@pytest.fixture
def world(tmp_path: Path) -> Iterator[tuple[Sandbox, client.ApiClient, CachingApiClient]]:
    with Sandbox(deployment_ready_delay=0.1, without_kinds=("virtualservices.networking.istio.io",)) as sb:
        plain = api_client(sb.write_kubeconfig(tmp_path / "kubeconfig"))
        client.CoreV1Api(plain).create_namespace({"metadata": {"name": "c"}})
        cached = CachingApiClient(plain.configuration, Settings(watch_timeout=30))
        try:
            yield sb, plain, cached
        finally:
            cached.close()


def _config_map(name: str, value: str = "1") -> dict[str, object]:
    return {"metadata": {"name": name}, "data": {"k": value}}


def _gets(sb: Sandbox) -> collections.Counter[str]:
    assert sb.api is not None
    return collections.Counter({k: v for k, v in sb.api.served.items() if k.startswith("GET /api/v1/namespaces/c/")})


def _synced(cached: CachingApiClient, core: client.CoreV1Api, name: str) -> None:
    core.read_namespaced_config_map(name, "c")  # starts the stream
    wait_for("the ConfigMap stream to list", lambda: all(s.synced for s in cached.cache.streams.values()), timeout=10)


def test_reads_after_the_list_are_answered_from_memory(world: tuple[Sandbox, client.ApiClient, CachingApiClient]
                                                        ) -> None:
    sb, plain, cached = world
    client.CoreV1Api(plain).create_namespaced_config_map("c", _config_map("one"))
    core = client.CoreV1Api(cached)
    _synced(cached, core, "one")
    direct = client.CoreV1Api(plain).read_namespaced_config_map("one", "c")
    before = _gets(sb)
    for _ in range(20):
        model = core.read_namespaced_config_map("one", "c")
        raw = core.read_namespaced_config_map("one", "c", _preload_content=False)
    assert _gets(sb) == before, "reads after the list reached the API server"
    assert model.data == {"k": "1"} and model.metadata.resource_version == direct.metadata.resource_version
    assert b'"kind": "ConfigMap"' in raw.data and b'"apiVersion": "v1"' in raw.data  # a list's items lack both
    # What memory does not hold is asked of the API server: it may have been made a moment ago.
    client.CoreV1Api(plain).create_namespaced_config_map("c", _config_map("new"))
    assert core.read_namespaced_config_map("new", "c").data == {"k": "1"}
    with pytest.raises(ApiException) as missing:
        core.read_namespaced_config_map("none", "c")
    assert missing.value.status == 404 and "NotFound" in str(missing.value.body)


def test_a_change_by_someone_else_arrives_and_wakes_its_reader(
        world: tuple[Sandbox, client.ApiClient, CachingApiClient]) -> None:
    _, plain, cached = world
    client.CoreV1Api(plain).create_namespaced_config_map("c", _config_map("one"))
    core = client.CoreV1Api(cached)
    _synced(cached, core, "one")
    woken: list[object] = []
    cached.cache.wake = woken.append
    with cached.cache.reading("release-a"):
        core.read_namespaced_config_map("one", "c")
    client.CoreV1Api(plain).patch_namespaced_config_map("one", "c", {"data": {"k": "2"}})
    wait_for("the change to arrive", lambda: core.read_namespaced_config_map("one", "c").data == {"k": "2"},
             timeout=5)
    wait_for("the reader to be woken", lambda: woken == ["release-a"], timeout=5)
    # The reader's own write does not wake it, and its echo from the watch wakes nobody.
    with cached.cache.reading("release-a"):
        core.patch_namespaced_config_map("one", "c", {"data": {"k": "3"}})
        assert core.read_namespaced_config_map("one", "c").data == {"k": "3"}  # its own write, at once
    time.sleep(0.5)
    assert woken == ["release-a"]


def test_an_echo_that_arrives_before_the_writes_answer_wakes_nobody_but_a_change_after_it_does(
        world: tuple[Sandbox, client.ApiClient, CachingApiClient]) -> None:
    _, plain, cached = world
    client.CoreV1Api(plain).create_namespaced_config_map("c", _config_map("echo"))
    core = client.CoreV1Api(cached)
    _synced(cached, core, "echo")
    woken: list[object] = []
    cached.cache.wake = woken.append
    with cached.cache.reading("release-a"):
        core.read_namespaced_config_map("echo", "c")
    address = address_of("/api/v1/namespaces/c/configmaps/echo")
    assert address is not None
    # The watch event of an object while the reader's write to it is in flight is taken as that
    # write's echo (the answer may come after it): here another client's write stands in for it.
    with cached.cache.reading("release-a"), cached.cache.writing(address):
        client.CoreV1Api(plain).patch_namespaced_config_map("echo", "c", {"data": {"k": "echo"}})
        wait_for("the event to arrive", lambda: core.read_namespaced_config_map("echo", "c").data == {"k": "echo"},
                 timeout=5)
    assert woken == []
    client.CoreV1Api(plain).patch_namespaced_config_map("echo", "c", {"data": {"k": "later"}})
    wait_for("the reader to be woken", lambda: woken == ["release-a"], timeout=5)


def test_a_conflict_sends_the_next_read_to_the_api_server(
        world: tuple[Sandbox, client.ApiClient, CachingApiClient]) -> None:
    sb, plain, cached = world
    client.CoreV1Api(plain).create_namespaced_config_map("c", _config_map("one"))
    core = client.CoreV1Api(cached)
    _synced(cached, core, "one")
    stale = core.read_namespaced_config_map("one", "c")
    client.CoreV1Api(plain).patch_namespaced_config_map("one", "c", {"data": {"k": "2"}})
    # Written with the version read before the change: whether or not the watch has delivered it,
    # the API server refuses, and the read that follows comes from the API server.
    stale.data = {"k": "mine"}
    with pytest.raises(ApiException) as conflict:
        core.replace_namespaced_config_map("one", "c", stale)
    assert conflict.value.status == 409
    before = _gets(sb)
    fresh = core.read_namespaced_config_map("one", "c")
    assert fresh.data == {"k": "2"}
    assert sum((_gets(sb) - before).values()) == 1
    fresh.data = {"k": "mine"}
    core.replace_namespaced_config_map("one", "c", fresh)
    assert core.read_namespaced_config_map("one", "c").data == {"k": "mine"}


def test_410_gone_lists_again(world: tuple[Sandbox, client.ApiClient, CachingApiClient]) -> None:
    sb, plain, cached = world
    client.CoreV1Api(plain).create_namespaced_config_map("c", _config_map("one"))
    core = client.CoreV1Api(cached)
    _synced(cached, core, "one")
    stream = next(iter(cached.cache.streams.values()))
    assert sb.api is not None
    served = sb.api.served
    listed = served["GET /api/v1/configmaps"]

    def compact() -> None:  # as etcd compaction would: the watch's resourceVersion is too old now
        store = sb.api.store  # type: ignore[union-attr]
        store._compacted[("", "configmaps")] = store._rv + 1

    sb.call(lambda: compact())  # type: ignore[arg-type, return-value]
    client.CoreV1Api(plain).create_namespaced_config_map("c", _config_map("two"))
    # The served counter has no query: a list and a watch both count here, so 410 brings two more.
    wait_for("a list after 410", lambda: served["GET /api/v1/configmaps"] >= listed + 2, timeout=10)
    wait_for("the stream to list again", lambda: stream.synced, timeout=10)
    assert core.read_namespaced_config_map("two", "c").data == {"k": "1"}


def test_a_kind_that_is_not_installed_is_read_from_the_api_server(
        world: tuple[Sandbox, client.ApiClient, CachingApiClient]) -> None:
    _, _, cached = world
    objects = Objects(cached, timeout=5)
    for _ in range(2):
        with pytest.raises(RouterError) as missing:
            objects.get(VIRTUALSERVICE, "c", "app")
        assert missing.value.kind_missing  # not "the object does not exist"
        time.sleep(0.3)


def test_which_paths_and_kinds_are_cached() -> None:
    a = address_of("/apis/apps/v1/namespaces/ns/deployments/app/status")
    assert a is not None and (a.group, a.plural, a.name, a.subresource) == ("apps", "deployments", "app", "status")
    created = address_of("/api/v1/namespaces/ns/services", {"metadata": {"name": "svc"}})
    assert created is not None and created.name == "svc"
    assert address_of("/api/v1/namespaces/ns/services") is None  # a list
    assert address_of("/api/v1/nodes/n1") is None  # cluster-scoped
    assert cacheable("apps", "deployments") and cacheable("", "secrets") and cacheable("rollout.gitops.dev", "canaries")
    assert cacheable("gateway.networking.k8s.io", "httproutes") and cacheable("networking.istio.io", "virtualservices")
    assert not cacheable("coordination.k8s.io", "leases") and not cacheable("", "events") and not cacheable("", "pods")


def test_credentials_are_left_out_only_of_what_memory_answers(
        world: tuple[Sandbox, client.ApiClient, CachingApiClient]) -> None:
    _, plain, cached = world
    sent: list[dict[str, str]] = []
    direct = cached.direct

    def recording(method: str, url: str, headers: Any, body: Any, post: Any, timeout: Any) -> Any:
        if method == "GET" and "/configmaps/" in url:
            sent.append(dict(headers or {}))
        return direct(method, url, headers, body, post, timeout)

    cached.direct = recording  # type: ignore[method-assign]
    client.CoreV1Api(plain).create_namespaced_config_map("c", _config_map("one"))
    core = client.CoreV1Api(cached)
    _synced(cached, core, "one")
    wait_for("the ConfigMap in memory", lambda: cached._held("/api/v1/namespaces/c/configmaps/one"), timeout=5)
    sent.clear()
    core.read_namespaced_config_map("one", "c")
    assert sent == []  # answered from memory: no credentials needed, none refreshed
    # Dropped between building the request and sending it (a failed write, a deletion): the
    # credentials are added after all.
    original = cached.update_params_for_auth
    stream = next(iter(cached.cache.streams.values()))

    def then_forget(*args: Any, **kwargs: Any) -> None:
        original(*args, **kwargs)
        stream.forget(("c", "one"))

    cached.update_params_for_auth = then_forget  # type: ignore[method-assign]
    core.read_namespaced_config_map("one", "c")
    assert len(sent) == 1 and sent[0].get("authorization") == "Bearer rollout-sandbox"  # the kubeconfig's token
    assert "X-Rollout-Deferred-Auth" not in sent[0]
    cached.update_params_for_auth = original  # type: ignore[method-assign]
    with pytest.raises(ApiException):
        core.read_namespaced_config_map("none", "c")
    assert sent[-1].get("authorization") == "Bearer rollout-sandbox"  # the kubeconfig's token
