"""Config tracking on the sandbox: the ConfigMaps and Secrets a target's pods use are copied for the
primary, and a change to one alone is a release, analysed and promoted by the real operator.

The first tests drive `rollout.workloads` directly (copies, hashes, opt-outs, the global switch);
the last ones run `rollout run` and change only a ConfigMap or a Secret."""

from __future__ import annotations

import base64
import time
from pathlib import Path
from typing import Any

import pytest
import yaml
from kubernetes import client

from rollout.settings import Settings
from rollout.workloads import WorkloadError, Workloads
from tests.e2e.conftest import (
    GROUP,
    VERSION,
    OperatorProcess,
    create_release,
    deployment,
    release_status,
    wait_for,
    wait_phase,
)
from tests.e2e.exporter import Exporter
from tests.e2e.test_gitops import OLD, canary_yaml, gitsource
from tests.e2e.test_operator import canary, healthy
from tests.e2e.test_workloads_sandbox import create_canary, create_deployment, raw
from tests.gitrepo import GitRemote

pytestmark = pytest.mark.e2e

DISABLED = {"flagger.app/config-tracking": "disabled"}


def b64(text: str) -> str:
    return base64.b64encode(text.encode()).decode()


def configured(name: str, namespace: str) -> dict[str, Any]:
    """The e2e Deployment using a ConfigMap (env and a volume), a Secret (envFrom), and a ConfigMap
    that opts out of tracking (env)."""
    d = deployment(name, namespace)
    pod = d["spec"]["template"]["spec"]
    pod["volumes"] = [{"name": "settings", "configMap": {"name": f"{name}-settings"}}]
    pod["containers"][0]["env"] = [
        {"name": "COLOR", "valueFrom": {"configMapKeyRef": {"name": f"{name}-settings", "key": "color"}}},
        {"name": "SHARED", "valueFrom": {"configMapKeyRef": {"name": f"{name}-shared", "key": "k"}}},
        {"name": "MAYBE", "valueFrom": {"configMapKeyRef": {"name": f"{name}-absent", "key": "k", "optional": True}}},
    ]
    pod["containers"][0]["envFrom"] = [{"secretRef": {"name": f"{name}-token"}}]
    return d


def create_configs(core: client.CoreV1Api, name: str, namespace: str) -> None:
    core.create_namespaced_config_map(namespace, {"metadata": {"name": f"{name}-settings"}, "data": {"color": "blue"}})
    core.create_namespaced_config_map(namespace, {"metadata": {"name": f"{name}-shared", "annotations": DISABLED},
                                                  "data": {"k": "1"}})
    core.create_namespaced_secret(namespace, {"metadata": {"name": f"{name}-token"}, "type": "Opaque",
                                              "data": {"TOKEN": b64("s3cret-one")}})


def set_config(core: client.CoreV1Api, namespace: str, name: str, data: dict[str, str]) -> None:
    core.patch_namespaced_config_map(name, namespace, {"data": data})


def set_secret(core: client.CoreV1Api, namespace: str, name: str, data: dict[str, str]) -> None:
    core.patch_namespaced_secret(name, namespace, {"data": data})


def config_data(core: client.CoreV1Api, namespace: str, name: str) -> dict[str, str]:
    return dict(core.read_namespaced_config_map(name, namespace).data or {})


def secret_data(core: client.CoreV1Api, namespace: str, name: str) -> dict[str, str]:
    return dict(core.read_namespaced_secret(name, namespace).data or {})


def primary_pod(api: client.ApiClient, namespace: str, name: str) -> dict[str, Any]:
    primary = raw(api, "deployment", namespace, f"{name}-primary")
    assert primary is not None
    return dict(primary["spec"]["template"]["spec"])


def test_copies_hashes_and_opt_outs(api: client.ApiClient, namespace: str) -> None:
    core = client.CoreV1Api(api)
    workloads = Workloads(api, Settings(api_timeout=5))
    create_configs(core, "app", namespace)
    create_deployment(api, configured("app", namespace))
    release = create_canary(api, namespace, "app")

    workloads.initialize(release)
    pod = primary_pod(api, namespace, "app")
    env = {e["name"]: e["valueFrom"]["configMapKeyRef"]["name"] for e in pod["containers"][0]["env"]}
    assert env == {"COLOR": "app-settings-primary", "SHARED": "app-shared", "MAYBE": "app-absent"}
    assert pod["volumes"][0]["configMap"]["name"] == "app-settings-primary"
    assert pod["containers"][0]["envFrom"] == [{"secretRef": {"name": "app-token-primary"}}]
    assert config_data(core, namespace, "app-settings-primary") == {"color": "blue"}
    assert secret_data(core, namespace, "app-token-primary") == {"TOKEN": b64("s3cret-one")}
    owners = core.read_namespaced_config_map("app-settings-primary", namespace).metadata.owner_references
    assert [o.uid for o in owners] == [release.metadata.uid]
    with pytest.raises(client.exceptions.ApiException):
        core.read_namespaced_config_map("app-shared-primary", namespace)  # opted out: not copied

    target, primary = workloads.observe(release)
    assert target.spec_hash == primary.spec_hash
    promoted = target.spec_hash

    # the opted-out ConfigMap changes: no new version
    set_config(core, namespace, "app-shared", {"k": "2"})
    assert workloads.observe(release)[0].spec_hash == promoted

    # the tracked ConfigMap changes: the target's hash moves, the primary's copy stays
    set_config(core, namespace, "app-settings", {"color": "green"})
    target, primary = workloads.observe(release)
    assert target.spec_hash != promoted and primary.spec_hash == promoted
    changed = target.spec_hash

    # promotion copies it again; the primary then hashes equal to the target
    workloads.promote(release)
    assert config_data(core, namespace, "app-settings-primary") == {"color": "green"}
    target, primary = workloads.observe(release)
    assert target.spec_hash == primary.spec_hash == changed

    # a Secret the same
    set_secret(core, namespace, "app-token", {"TOKEN": b64("s3cret-two")})
    target, primary = workloads.observe(release)
    assert target.spec_hash != changed and primary.spec_hash == changed
    workloads.promote(release)
    assert secret_data(core, namespace, "app-token-primary") == {"TOKEN": b64("s3cret-two")}
    target, primary = workloads.observe(release)
    assert target.spec_hash == primary.spec_hash

    # tracking turned off for an object afterwards: it drops out of the hash, and promotion
    # points the primary back at the shared object
    core.patch_namespaced_secret("app-token", namespace, {"metadata": {"annotations": DISABLED}})
    target, primary = workloads.observe(release)
    assert target.spec_hash != primary.spec_hash
    workloads.promote(release)
    assert primary_pod(api, namespace, "app")["containers"][0]["envFrom"] == [{"secretRef": {"name": "app-token"}}]
    target, primary = workloads.observe(release)
    assert target.spec_hash == primary.spec_hash

    # a mandatory reference to a missing object is an error naming it and where it is named
    core.delete_namespaced_config_map("app-settings", namespace)
    with pytest.raises(WorkloadError, match=r"configmap/app-settings in .*spec\.template\.spec\.volumes\[0\]"):
        workloads.observe(release)


def test_tracking_off_for_the_operator(api: client.ApiClient, namespace: str) -> None:
    core = client.CoreV1Api(api)
    workloads = Workloads(api, Settings(api_timeout=5, enable_config_tracking=False))
    create_configs(core, "off", namespace)
    create_deployment(api, configured("off", namespace))
    release = create_canary(api, namespace, "off")
    workloads.initialize(release)
    pod = primary_pod(api, namespace, "off")
    assert pod["volumes"][0]["configMap"]["name"] == "off-settings"  # shared with the canary, as before
    assert pod["containers"][0]["envFrom"] == [{"secretRef": {"name": "off-token"}}]
    assert [c.metadata.name for c in core.list_namespaced_config_map(namespace).items
            if c.metadata.name.endswith("-primary")] == []
    before = workloads.observe(release)[0].spec_hash
    set_config(core, namespace, "off-settings", {"color": "green"})
    set_secret(core, namespace, "off-token", {"TOKEN": b64("other")})
    target, primary = workloads.observe(release)
    assert target.spec_hash == primary.spec_hash == before


def test_deleted_mid_release_the_kept_primary_keeps_its_copies(api: client.ApiClient, namespace: str) -> None:
    core = client.CoreV1Api(api)
    workloads = Workloads(api, Settings(api_timeout=5))
    create_configs(core, "del", namespace)
    create_deployment(api, configured("del", namespace))
    release = create_canary(api, namespace, "del")
    workloads.initialize(release)
    set_config(core, namespace, "del-settings", {"color": "green"})  # a release is in flight

    workloads.finalize(release)  # the primary keeps serving, no longer owned, and so do its copies
    assert not core.read_namespaced_config_map("del-settings-primary", namespace).metadata.owner_references
    assert not core.read_namespaced_secret("del-token-primary", namespace).metadata.owner_references
    client.CustomObjectsApi(api).delete_namespaced_custom_object(GROUP, VERSION, namespace, "canaries", "del")
    wait_for("generated services collected", lambda: raw(api, "service", namespace, "del-canary") is None, timeout=20)
    assert raw(api, "deployment", namespace, "del-primary") is not None
    assert config_data(core, namespace, "del-settings-primary") == {"color": "blue"}
    assert secret_data(core, namespace, "del-token-primary") == {"TOKEN": b64("s3cret-one")}


# -- the operator --------------------------------------------------------------------------------


def _start(api: client.ApiClient, exporter: Exporter, namespace: str, name: str) -> None:
    core = client.CoreV1Api(api)
    create_configs(core, name, namespace)
    healthy(exporter, namespace, name)
    client.AppsV1Api(api).create_namespaced_deployment(namespace, configured(name, namespace))
    create_release(api, canary(name, namespace, interval="1s", stepWeight=25))
    wait_phase(api, namespace, name, "Initialized")


def _released(api: client.ApiClient, operator: OperatorProcess, namespace: str, name: str,
              promoted: str) -> dict[str, Any]:
    """Waits for a new run to start (Progressing, another candidate) and end; its status."""
    wait_for("a run started by the config change",
             lambda: release_status(api, namespace, name).get("lastAppliedSpec") not in (None, promoted) or None,
             timeout=60)
    status = wait_phase(api, namespace, name, "Succeeded", "Failed", timeout=120)
    assert status["phase"] == "Succeeded", operator.output()
    assert status["lastPromotedSpec"] == status["lastAppliedSpec"] != promoted
    return status


def test_a_configmap_change_alone_is_released(api: client.ApiClient, operator: OperatorProcess,
                                              exporter: Exporter, namespace: str) -> None:
    core = client.CoreV1Api(api)
    _start(api, exporter, namespace, "cfg")
    first = wait_phase(api, namespace, "cfg", "Initialized")["lastPromotedSpec"]
    template = client.AppsV1Api(api).read_namespaced_deployment("cfg", namespace).spec.template.to_dict()

    set_config(core, namespace, "cfg-settings", {"color": "green"})
    status = _released(api, operator, namespace, "cfg", first)

    assert status["candidate"]["spec"] == status["lastPromotedSpec"]
    assert config_data(core, namespace, "cfg-settings-primary") == {"color": "green"}
    assert primary_pod(api, namespace, "cfg")["volumes"][0]["configMap"]["name"] == "cfg-settings-primary"
    # nothing else changed: the target's template is as it was
    assert client.AppsV1Api(api).read_namespaced_deployment("cfg", namespace).spec.template.to_dict() == template


def test_a_secret_change_alone_is_released_and_never_shown(api: client.ApiClient, operator: OperatorProcess,
                                                           exporter: Exporter, namespace: str) -> None:
    core = client.CoreV1Api(api)
    _start(api, exporter, namespace, "sec")
    first = wait_phase(api, namespace, "sec", "Initialized")["lastPromotedSpec"]

    set_secret(core, namespace, "sec-token", {"TOKEN": b64("s3cret-two")})
    status = _released(api, operator, namespace, "sec", first)

    assert secret_data(core, namespace, "sec-token-primary") == {"TOKEN": b64("s3cret-two")}
    env_from = primary_pod(api, namespace, "sec")["containers"][0]["envFrom"]
    assert env_from == [{"secretRef": {"name": "sec-token-primary"}}]
    events = core.list_namespaced_event(namespace).items
    shown = [str(status), operator.output(), *(e.message or "" for e in events)]
    for text in shown:
        for value in ("s3cret-one", "s3cret-two", b64("s3cret-one"), b64("s3cret-two")):
            assert value not in text


def test_an_opted_out_configmap_change_starts_nothing(api: client.ApiClient, operator: OperatorProcess,
                                                      exporter: Exporter, namespace: str) -> None:
    core = client.CoreV1Api(api)
    _start(api, exporter, namespace, "opt")
    first = wait_phase(api, namespace, "opt", "Initialized")["lastPromotedSpec"]
    set_config(core, namespace, "opt-shared", {"k": "2"})
    time.sleep(4)  # the release ticks every second: several ticks pass without a run
    status = wait_phase(api, namespace, "opt", "Initialized")
    assert status["lastPromotedSpec"] == first and not status.get("candidate")


# -- GitOps: a ConfigMap in Git -------------------------------------------------------------------


def _config_yaml(namespace: str, color: str) -> str:
    return yaml.safe_dump({"apiVersion": "v1", "kind": "ConfigMap",
                           "metadata": {"name": "web-settings", "namespace": namespace}, "data": {"color": color}})


def _web_yaml(namespace: str) -> str:
    d = deployment("web", namespace, image=OLD)
    pod = d["spec"]["template"]["spec"]
    pod["volumes"] = [{"name": "settings", "configMap": {"name": "web-settings"}}]
    pod["containers"][0]["envFrom"] = [{"configMapRef": {"name": "web-settings"}}]
    return yaml.safe_dump(d)


def test_a_configmap_changed_in_git_is_released_and_a_failed_one_reverted_in_git(
    api: client.ApiClient, operator: OperatorProcess, exporter: Exporter, namespace: str, tmp_path: Path
) -> None:
    core = client.CoreV1Api(api)
    remote = GitRemote(tmp_path / "git")
    remote.commit({"apps/web/deployment.yaml": _web_yaml(namespace),
                   "apps/web/config.yaml": _config_yaml(namespace, "blue"),
                   "apps/web/canary.yaml": canary_yaml(namespace)}, "feat(web): podinfo, blue")
    healthy(exporter, namespace, "web")
    client.CustomObjectsApi(api).create_namespaced_custom_object(GROUP, VERSION, namespace, "gitsources",
                                                                 gitsource(namespace, remote.url))
    first = wait_phase(api, namespace, "web", "Initialized", timeout=60)["lastPromotedSpec"]
    assert config_data(core, namespace, "web-settings-primary") == {"color": "blue"}

    # a commit that changes only the ConfigMap is a release, promoted when healthy
    green = remote.commit({"apps/web/config.yaml": _config_yaml(namespace, "green")}, "feat(web): green")
    status = _released(api, operator, namespace, "web", first)
    assert status["candidate"]["revision"] == green
    assert config_data(core, namespace, "web-settings-primary") == {"color": "green"}
    promoted = status["lastPromotedSpec"]

    # a failing one is rolled back, and its revert restores the ConfigMap in Git and in the cluster
    red = remote.commit({"apps/web/config.yaml": _config_yaml(namespace, "red")}, "feat(web): red")
    exporter.set(namespace, "web", rps=50, error_ratio=0.3)
    status = wait_phase(api, namespace, "web", "Reverted", timeout=120)
    assert status["candidate"]["revision"] == red, operator.output()
    head = remote.head()
    assert remote.log(f"{green}..{head}") == ["revert(web): roll back the configuration of web after failed canary",
                                             "feat(web): red"]
    assert status["revert"]["reverts"] == [red] and status["revert"]["commit"] == head
    assert remote.show(head, "apps/web/config.yaml") == _config_yaml(namespace, "green").rstrip("\n")
    assert config_data(core, namespace, "web-settings") == {"color": "green"}
    assert config_data(core, namespace, "web-settings-primary") == {"color": "green"}
    assert status["lastPromotedSpec"] == promoted  # the reverted target is the promoted spec: no new run


def test_an_operator_run_with_tracking_off_shares_configs_and_ignores_their_changes(
    api: client.ApiClient, operator: OperatorProcess, exporter: Exporter, namespace: str
) -> None:
    core = client.CoreV1Api(api)
    args = operator.args
    operator.stop()
    operator.args = [*args, "--enable-config-tracking=false"]
    operator.start()
    try:
        _start(api, exporter, namespace, "glob")
        first = wait_phase(api, namespace, "glob", "Initialized")["lastPromotedSpec"]
        pod = primary_pod(api, namespace, "glob")
        assert pod["volumes"][0]["configMap"]["name"] == "glob-settings"
        assert pod["containers"][0]["envFrom"] == [{"secretRef": {"name": "glob-token"}}]
        assert not [c for c in core.list_namespaced_config_map(namespace).items if c.metadata.name.endswith("-primary")]
        set_config(core, namespace, "glob-settings", {"color": "green"})
        set_secret(core, namespace, "glob-token", {"TOKEN": b64("s3cret-two")})
        time.sleep(4)  # the release ticks every second: several ticks pass without a run
        status = wait_phase(api, namespace, "glob", "Initialized")
        assert status["lastPromotedSpec"] == first and not status.get("candidate")
    finally:
        operator.stop()
        operator.args = args
        operator.start()
