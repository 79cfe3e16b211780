"""The GitSource reconciler against the sandbox API and a real Git remote (a bare repository).

Each test commits to the remote, runs one reconcile (as the operator's daemon would every
interval) and checks the cluster, the GitSource's status and its Events.
"""

from __future__ import annotations

import shutil
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import kubernetes
import pytest

from rollout.api.annotations import REVISION_ANNOTATION, SOURCE_PATH_ANNOTATION
from rollout.api.kinds import GROUP, VERSION
from rollout.engine.events import EventRecorder
from rollout.gitops.source import SourceReconciler
from rollout.settings import Settings
from sandbox import Sandbox
from tests.gitrepo import GitRemote, deployment_yaml, service_yaml
from tests.tools import missing_tool

_new_client: Any = kubernetes.config.new_client_from_config


@pytest.fixture(scope="module")
def api(tmp_path_factory: pytest.TempPathFactory) -> Iterator[kubernetes.client.ApiClient]:
    with Sandbox() as sandbox:
        config = sandbox.write_kubeconfig(tmp_path_factory.mktemp("kube") / "kubeconfig")
        yield _new_client(str(config))


@pytest.fixture
def namespace(api: kubernetes.client.ApiClient) -> str:
    name = f"gs-{uuid.uuid4().hex[:8]}"
    kubernetes.client.CoreV1Api(api).create_namespace({"metadata": {"name": name}})
    return name


@pytest.fixture
def remote(tmp_path: Path) -> GitRemote:
    return GitRemote(tmp_path / "git")


class Harness:
    def __init__(self, api: kubernetes.client.ApiClient, namespace: str, remote: GitRemote, cache: Path) -> None:
        self.api, self.namespace, self.remote = api, namespace, remote
        self.apps: Any = kubernetes.client.AppsV1Api(api)
        self.core: Any = kubernetes.client.CoreV1Api(api)
        self.custom: Any = kubernetes.client.CustomObjectsApi(api)
        self.reconciler = SourceReconciler(api, cache, EventRecorder(api, Settings()).emit, settings=Settings())

    def create_source(self, path: str = "./apps", **spec: Any) -> None:
        body = {"apiVersion": f"{GROUP}/{VERSION}", "kind": "GitSource",
                "metadata": {"name": "apps", "namespace": self.namespace},
                "spec": {"url": self.remote.url, "branch": "main", "path": path, "interval": "1m", **spec}}
        self.custom.create_namespaced_custom_object(GROUP, VERSION, self.namespace, "gitsources", body)

    def sync(self) -> dict[str, Any]:
        assert self.reconciler.reconcile(self.namespace, "apps") is not None
        return self.status()

    def status(self) -> dict[str, Any]:
        obj = self.custom.get_namespaced_custom_object(GROUP, VERSION, self.namespace, "gitsources", "apps")
        return dict(obj.get("status") or {})

    def condition(self, kind: str) -> dict[str, Any]:
        return next(c for c in self.status()["conditions"] if c["type"] == kind)

    def image(self, name: str) -> str:
        return str(self.apps.read_namespaced_deployment(name, self.namespace).spec.template.spec.containers[0].image)

    def names(self, kind: str) -> set[str]:
        items = (self.apps.list_namespaced_deployment(self.namespace) if kind == "Deployment"
                 else self.core.list_namespaced_service(self.namespace)).items
        return {i.metadata.name for i in items}

    def events(self) -> list[tuple[str, str]]:
        return [(e.reason, e.message) for e in self.core.list_namespaced_event(self.namespace).items]


@pytest.fixture
def h(api: kubernetes.client.ApiClient, namespace: str, remote: GitRemote, tmp_path: Path) -> Harness:
    return Harness(api, namespace, remote, tmp_path / "cache")


def test_sync_applies_a_revision_with_annotations_inventory_and_conditions(h: Harness) -> None:
    sha = h.remote.commit({"apps/web/deployment.yaml": deployment_yaml("web", "web:1"),
                           "apps/web/service.yaml": service_yaml("web"),
                           "README.md": "not under the path"}, "feat: web 1")
    h.create_source()
    status = h.sync()
    assert status["revision"] == status["lastAppliedRevision"] == sha
    assert {(i["kind"], i["name"], i["namespace"]) for i in status["inventory"]} == {
        ("Deployment", "web", h.namespace), ("Service", "web", h.namespace)}
    annotations = h.apps.read_namespaced_deployment("web", h.namespace).metadata.annotations
    assert annotations[REVISION_ANNOTATION] == sha
    assert annotations[SOURCE_PATH_ANNOTATION] == "apps/web/deployment.yaml"
    ready = h.condition("Ready")
    assert ready["status"] == "True" and sha[:12] in ready["message"]
    assert h.condition("Stalled")["status"] == "False"
    assert ("Applied", ready["message"]) in h.events()
    two = h.remote.commit({"apps/web/deployment.yaml": deployment_yaml("web", "web:2")}, "feat: web 2")
    assert h.sync()["lastAppliedRevision"] == two
    assert h.image("web") == "web:2"


def test_drift_is_healed_and_counted_but_a_release_target_keeps_its_replicas(h: Harness) -> None:
    h.remote.commit({"apps/web.yaml": deployment_yaml("web", "web:1", replicas=2),
                     "apps/api.yaml": deployment_yaml("api", "api:1", replicas=2)}, "feat: two apps")
    h.create_source()
    h.sync()
    canary = {"apiVersion": f"{GROUP}/{VERSION}", "kind": "Canary", "metadata": {"name": "web"},
              "spec": {"targetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": "web"},
                       "service": {"port": 80}, "analysis": {"interval": "1m", "threshold": 1}}}
    h.custom.create_namespaced_custom_object(GROUP, VERSION, h.namespace, "canaries", canary)
    # by hand: a new image on api (drift), and the release scaling its target to zero (not drift)
    h.apps.patch_namespaced_deployment("api", h.namespace, {"spec": {"template": {"spec": {
        "containers": [{"name": "app", "image": "api:hotfix"}]}}}})
    h.apps.patch_namespaced_deployment("web", h.namespace, {"spec": {"replicas": 0}})
    status = h.sync()
    assert h.image("api") == "api:1"
    assert status["driftCorrections"] == 1
    assert h.apps.read_namespaced_deployment("web", h.namespace).spec.replicas == 0
    assert any(r == "DriftCorrected" and "Deployment/api" in m for r, m in h.events())
    h.apps.delete_namespaced_deployment("api", h.namespace)
    assert h.sync()["driftCorrections"] == 2
    assert "api" in h.names("Deployment")
    assert h.sync()["driftCorrections"] == 2  # nothing changed: nothing re-applied


def test_objects_that_left_git_are_pruned_but_only_our_own(h: Harness) -> None:
    h.remote.commit({"apps/web.yaml": deployment_yaml("web", "web:1"), "apps/svc.yaml": service_yaml("web")},
                    "feat: web")
    h.create_source()
    h.sync()
    h.core.create_namespaced_service(h.namespace, {"metadata": {"name": "by-hand"}, "spec": {
        "ports": [{"port": 80}]}})
    h.remote.commit({"apps/svc.yaml": None}, "chore: drop the service")
    status = h.sync()
    assert h.names("Service") == {"by-hand"}
    assert [i["kind"] for i in status["inventory"]] == ["Deployment"]
    assert ("Pruned", "Service/web left Git; deleted") in h.events()


def test_prune_false_keeps_objects_that_left_git(h: Harness) -> None:
    h.remote.commit({"apps/web.yaml": deployment_yaml("web", "web:1"), "apps/svc.yaml": service_yaml("web")},
                    "feat: web")
    h.create_source(prune=False)
    h.sync()
    h.remote.commit({"apps/svc.yaml": None}, "chore: drop the service")
    h.sync()
    assert h.names("Service") == {"web"}


@pytest.mark.parametrize(
    ("files", "file", "words"),
    [
        ({"apps/z-bad.yaml": "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: x\n"}, "apps/z-bad.yaml",
         "line"),
        ({"apps/z-bad.yaml": "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: Not_Valid\n"}, "apps/z-bad.yaml",
         "Not_Valid"),
        ({"apps/z-bad.yaml": "apiVersion: example.com/v1\nkind: Widget\nmetadata:\n  name: w\n"},
         "apps/z-bad.yaml", "Widget"),
        ({"apps/z-bad.yaml": "apiVersion: v1\nkind: ConfigMap\n"}, "apps/z-bad.yaml", "metadata.name"),
    ],
    ids=["yaml-syntax", "rejected-by-api", "unknown-kind", "no-name"],
)
def test_a_bad_manifest_stalls_the_revision_and_applies_none_of_it(
    h: Harness, files: dict[str, str], file: str, words: str
) -> None:
    good = h.remote.commit({"apps/web.yaml": deployment_yaml("web", "web:1")}, "feat: web 1")
    h.create_source()
    h.sync()
    bad = h.remote.commit({"apps/web.yaml": deployment_yaml("web", "web:2"),
                           "apps/a-new.yaml": service_yaml("new"), **files}, "feat: web 2 and a bad file")
    status = h.sync()
    assert status["revision"] == bad and status["lastAppliedRevision"] == good
    stalled = h.condition("Stalled")
    assert stalled["status"] == "True" and file in stalled["message"] and words in stalled["message"]
    assert bad[:12] in stalled["message"]
    assert h.condition("Ready")["status"] == "False"
    assert h.image("web") == "web:1" and "new" not in h.names("Service")  # nothing of it applied
    warnings = [m for r, m in h.events() if r == stalled["reason"]]
    h.sync()
    assert [m for r, m in h.events() if r == stalled["reason"]] == warnings  # one Event per problem
    fixed = h.remote.commit({file: None}, "fix: drop the bad file")
    status = h.sync()
    assert status["lastAppliedRevision"] == fixed and h.image("web") == "web:2"
    assert h.condition("Stalled")["status"] == "False"


def test_unreachable_remote_and_missing_branch_say_so_and_keep_the_cluster(h: Harness, tmp_path: Path) -> None:
    h.remote.commit({"apps/web.yaml": deployment_yaml("web", "web:1")}, "feat: web")
    h.create_source()
    h.sync()
    moved = tmp_path / "moved.git"
    h.remote.bare.rename(moved)
    h.sync()
    ready = h.condition("Ready")
    assert ready["status"] == "False" and ready["reason"] == "FetchFailed"
    assert h.image("web") == "web:1"
    moved.rename(h.remote.bare)
    assert h.sync()["conditions"][0]["status"] == "True"


def test_a_kustomization_is_built_with_kubectl(h: Harness) -> None:
    if shutil.which("kubectl") is None:
        missing_tool("kubectl is not installed (`kubectl kustomize` renders kustomizations)")
    h.remote.commit({
        "apps/base/deployment.yaml": deployment_yaml("web", "web:1"),
        "apps/kustomization.yaml": "resources:\n  - base/deployment.yaml\nimages:\n  - name: web\n    newTag: '7'\n",
    }, "feat: kustomized web")
    h.create_source()
    status = h.sync()
    assert status["conditions"][0]["status"] == "True", status
    assert h.image("web") == "web:7"
    annotations = h.apps.read_namespaced_deployment("web", h.namespace).metadata.annotations
    assert annotations[SOURCE_PATH_ANNOTATION] == "apps"


def test_credentials_come_from_a_secret_and_a_missing_one_is_named(h: Harness) -> None:
    h.remote.commit({"apps/web.yaml": deployment_yaml("web", "web:1")}, "feat: web")
    h.create_source(secretRef={"name": "git-auth"})
    h.sync()
    ready = h.condition("Ready")
    assert ready["status"] == "False" and "git-auth" in ready["message"] and "does not exist" in ready["message"]
    h.core.create_namespaced_secret(h.namespace, {"metadata": {"name": "git-auth"},
                                                  "stringData": {"username": "u", "password": "s3cr3t-token"}})
    h.sync()
    assert h.condition("Ready")["status"] == "True"  # file:// ignores the token; it is never shown
    assert "s3cr3t-token" not in str(h.status()) + str(h.events())
