"""The GitSource reconciler against the sandbox API and a real Git remote (a bare repository).

Each test commits to the remote, runs one reconcile (as the operator's daemon would every
interval) and checks the cluster, the GitSource's status and its Events.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import logging
import shutil
import urllib.error
import urllib.request
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import kubernetes
import pytest

from rollout.api.annotations import REVISION_ANNOTATION, SOURCE_PATH_ANNOTATION
from rollout.api.kinds import GROUP, VERSION
from rollout.api.status import format_time
from rollout.engine.events import EventRecorder
from rollout.gitops.receiver import Receiver, serve
from rollout.gitops.source import SourceReconciler
from rollout.settings import Settings
from sandbox import Sandbox
from tests.gitrepo import GitRemote, deployment_yaml, service_yaml
from tests.prom import free_port
from tests.sopsfiles import age_key, encrypt, secret_yaml
from tests.tools import missing_tool, wait_for

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

    def create_source(self, path: str = "./apps", name: str = "apps", **spec: Any) -> None:
        body = {"apiVersion": f"{GROUP}/{VERSION}", "kind": "GitSource",
                "metadata": {"name": name, "namespace": self.namespace},
                "spec": {"url": self.remote.url, "branch": "main", "path": path, "interval": "1m", **spec}}
        self.custom.create_namespaced_custom_object(GROUP, VERSION, self.namespace, "gitsources", body)

    def sync(self, name: str = "apps") -> dict[str, Any]:
        assert self.reconciler.reconcile(self.namespace, name) is not None
        return self.status(name)

    def status(self, name: str = "apps") -> dict[str, Any]:
        obj = self.custom.get_namespaced_custom_object(GROUP, VERSION, self.namespace, "gitsources", name)
        return dict(obj.get("status") or {})

    def condition(self, kind: str, name: str = "apps") -> dict[str, Any]:
        return next(c for c in self.status(name)["conditions"] if c["type"] == kind)

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


# -- issue 19: health-gated and ordered sync, SOPS secrets, push webhooks --------------------------

UNREADY = "sandbox.rollout.gitops.dev/unready"  # the sandbox's Deployment controller keeps it unready
CRD = """apiVersion: apiextensions.k8s.io/v1
kind: CustomResourceDefinition
metadata:
  name: widgets.example.com
spec:
  group: example.com
  scope: Namespaced
  names: {kind: Widget, plural: widgets, singular: widget, listKind: WidgetList}
  versions:
    - name: v1
      served: true
      storage: true
      schema: {openAPIV3Schema: {type: object, x-kubernetes-preserve-unknown-fields: true}}
"""


def unready_deployment(name: str, namespace: str) -> str:
    return deployment_yaml(name, f"{name}:1").replace(
        "metadata:\n", f"metadata:\n  annotations:\n    {UNREADY}: 'true'\n  namespace: {namespace}\n", 1)


def test_wait_names_each_unready_object_and_fails_after_the_timeout(h: Harness) -> None:
    h.remote.commit({"apps/web.yaml": deployment_yaml("web", "web:1"),
                     "apps/slow.yaml": unready_deployment("slow", h.namespace), "apps/crd.yaml": CRD},
                    "feat: web, slow and a CRD")
    h.create_source(wait=True, timeout="1m")
    started = datetime.now(UTC)
    h.reconciler.clock = lambda: started
    assert h.reconciler.reconcile(h.namespace, "apps") == timedelta(seconds=2)  # looks again soon
    ready = h.condition("Ready")
    assert (ready["status"], ready["reason"]) == ("Unknown", "Progressing")
    assert f"Deployment/{h.namespace}/slow (0/2 replicas available)" in ready["message"]
    assert h.status()["lastAppliedAt"] == format_time(started)
    wait_for("web available", lambda: h.apps.read_namespaced_deployment("web", h.namespace).status
             .available_replicas == 2, timeout=10, every=0.1)
    h.reconciler.clock = lambda: started + timedelta(seconds=30)
    message = h.sync() and h.condition("Ready")["message"]  # a look at the objects only (no fetch)
    assert message.endswith(f"waiting for: Deployment/{h.namespace}/slow (0/2 replicas available)"), message
    assert "web" not in message and "widgets" not in message  # ready ones (and the Established CRD) are not named
    h.reconciler.clock = lambda: started + timedelta(seconds=61)
    h.sync()
    ready, healthy = h.condition("Ready"), h.condition("Healthy")
    assert (ready["status"], ready["reason"]) == ("False", "HealthCheckFailed") and healthy == ready | {
        "type": "Healthy"}
    assert "timed out after 60s waiting for: Deployment" in ready["message"]
    assert ("HealthCheckFailed", ready["message"]) in h.events()  # a Warning Event (and the alerts) once
    fixed = h.remote.commit({"apps/slow.yaml": deployment_yaml("slow", "slow:2")}, "fix: slow becomes ready")
    h.sync()  # applies the fix; its pods become ready a moment later
    wait_for("slow available", lambda: h.apps.read_namespaced_deployment("slow", h.namespace).status
             .available_replicas == 2, timeout=10, every=0.1)
    later = h.remote.commit({"README.md": "docs\n"}, "docs: a commit while the source waits")
    status = h.sync()  # while it waits it only looks at its objects: no fetch before the interval
    ready = h.condition("Ready")
    assert status["lastAppliedRevision"] == status["revision"] == fixed and ready["status"] == "True"
    assert ready["message"].endswith("all 3 objects ready")
    h.reconciler.request(h.namespace, "apps")  # what a push webhook does: fetch now
    assert h.sync()["lastAppliedRevision"] == later


def test_depends_on_waits_until_the_other_source_is_ready_at_its_latest_revision(h: Harness) -> None:
    h.remote.commit({"infra/cm.yaml": "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: settings\n",
                     "apps/web.yaml": deployment_yaml("web", "web:1")}, "feat: infra and apps")
    h.create_source(path="./infra", name="infra")
    h.create_source(dependsOn=[{"name": "infra"}])
    h.sync()
    ready = h.condition("Ready")
    assert (ready["status"], ready["reason"]) == ("Unknown", "DependencyNotReady")
    assert ready["message"] == f"waiting for GitSource {h.namespace}/infra (Ready is Unknown: not synced yet)"
    assert "web" not in h.names("Deployment")
    wake = h.reconciler.wake_event(h.namespace, "apps")
    wake.clear()
    h.sync("infra")
    assert wake.is_set()  # infra turning Ready wakes its dependents at once
    assert h.sync()["lastAppliedRevision"] == h.remote.head() and "web" in h.names("Deployment")
    h.remote.commit({"infra/bad.yaml": "apiVersion: v1\nkind: ConfigMap\n"}, "chore: a bad infra file")
    h.sync("infra")
    h.remote.commit({"apps/web.yaml": deployment_yaml("web", "web:2")}, "feat: web 2")
    h.sync()
    assert h.image("web") == "web:1"  # not applied while infra is stalled
    assert "Ready is False: RenderFailed" in h.condition("Ready")["message"]


def test_sops_secrets_are_decrypted_in_memory_and_shown_nowhere(
    h: Harness, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    plain = "pl41n-t3xt-p4ss"
    identity, recipient = age_key()
    encrypted = encrypt(secret_yaml("db", {"password": plain}), recipient)
    first = h.remote.commit({"apps/db.sops.yaml": encrypted, "apps/web.yaml": deployment_yaml("web", "web:1")},
                            "feat: web and its encrypted password")
    h.create_source()
    h.sync()
    stalled = h.condition("Stalled")
    assert (stalled["status"], stalled["reason"]) == ("True", "DecryptionFailed")
    assert "apps/db.sops.yaml: encrypted with SOPS: set spec.decryption" in stalled["message"]
    assert "web" not in h.names("Deployment")  # no ciphertext applied as a value, and nothing else either
    h.core.create_namespaced_secret(h.namespace, {"metadata": {"name": "sops-age"},
                                                  "stringData": {"age.agekey": identity + "\n"}})
    h.custom.patch_namespaced_custom_object(GROUP, VERSION, h.namespace, "gitsources", "apps", {
        "spec": {"decryption": {"provider": "sops", "secretRef": {"name": "sops-age"}}}})
    caplog.set_level(logging.DEBUG)
    assert h.sync()["lastAppliedRevision"] == first
    secret = h.core.read_namespaced_secret("db", h.namespace)
    values = secret.string_data or {k: base64.b64decode(v).decode() for k, v in (secret.data or {}).items()}
    assert values == {"password": plain}
    raw = h.api.sanitize_for_serialization(secret)
    assert "sops" not in raw and "ENC[" not in str(raw)
    # a file changed after it was encrypted: refused by its MAC, the applied Secret kept
    bad = h.remote.commit({"apps/db.sops.yaml": encrypted.replace("name: db", "name: db2")}, "chore: rename")
    status = h.sync()
    assert status["lastAppliedRevision"] == first and status["revision"] == bad
    assert "the SOPS MAC does not match" in h.condition("Stalled")["message"]
    # nowhere else: status, Events, logs, the Git cache on disk
    on_disk = [p for p in (tmp_path / "cache").rglob("*") if p.is_file() and plain.encode() in p.read_bytes()]
    seen = str(h.status()) + str(h.events()) + caplog.text
    assert plain not in seen and identity not in seen and on_disk == []


def post(url: str, body: bytes, headers: dict[str, str]) -> tuple[int, str]:
    request = urllib.request.Request(url, data=body, headers=headers, method="POST")
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, response.read().decode()
    except urllib.error.HTTPError as e:
        return e.code, e.read().decode()


def test_push_webhooks_of_each_host_are_verified_and_wake_the_sync(
    h: Harness, caplog: pytest.LogCaptureFixture
) -> None:
    """A real HTTP client posts each host's push payload, signed as that host signs it."""
    token = "w3bh00k-t0k3n"
    h.remote.commit({"apps/web.yaml": deployment_yaml("web", "web:1")}, "feat: web")
    h.core.create_namespaced_secret(h.namespace, {"metadata": {"name": "hook"}, "stringData": {"token": token}})
    h.create_source(webhook={"type": "github", "secretRef": {"name": "hook"}})
    h.sync()
    webhook = h.condition("Webhook")  # this harness's Settings have no --webhook-addr
    assert (webhook["status"], webhook["reason"]) == ("False", "NotServed")
    server = serve(f"127.0.0.1:{free_port()}", Receiver(h.api, h.reconciler.request, timeout=10))
    assert server is not None
    url = f"http://127.0.0.1:{server.port}/hook/{h.namespace}/apps"
    wake = h.reconciler.wake_event(h.namespace, "apps")
    body = json.dumps({"ref": "refs/heads/main", "after": h.remote.head()}).encode()
    mac = hmac.new(token.encode(), body, hashlib.sha256).hexdigest()
    signed = {
        "github": {"X-GitHub-Event": "push", "X-Hub-Signature-256": f"sha256={mac}"},
        "gitea": {"X-Gitea-Event": "push", "X-Gitea-Signature": mac},
        "gitlab": {"X-Gitlab-Event": "Push Hook", "X-Gitlab-Token": token},
        "generic": {"X-Signature": f"sha256={mac}"},
    }
    caplog.set_level(logging.INFO)
    try:
        for kind, headers in signed.items():
            h.custom.patch_namespaced_custom_object(GROUP, VERSION, h.namespace, "gitsources", "apps", {
                "spec": {"webhook": {"type": kind}}})
            wake.clear()
            assert post(url, body, {"Content-Type": "application/json", **headers})[0] == 202, kind
            assert wake.is_set(), kind
            wake.clear()
            forged = {k: v.replace(mac, "0" * 64).replace(token, "guess") for k, v in headers.items()}
            code, text = post(url, body, forged)
            assert code == 401 and text.startswith("refused:"), (kind, code, text)
            # a signature of another body; GitLab signs nothing (its token is all), so only the ref stops it
            assert post(url, body.replace(b"main", b"mine"), headers)[0] == (200 if kind == "gitlab" else 401)
            assert not wake.is_set(), kind
        other = json.dumps({"ref": "refs/heads/feature"}).encode()
        other_mac = hmac.new(token.encode(), other, hashlib.sha256).hexdigest()
        assert post(url, other, {"X-Signature": f"sha256={other_mac}"}) == (
            200, "nothing to do: a push to refs/heads/feature, not to refs/heads/main\n")
        assert post(url.replace("/apps", "/nope"), body, signed["generic"])[0] == 404
        assert not wake.is_set()
    finally:
        server.stop()
    refused = [r.getMessage() for r in caplog.records if "refused (401)" in r.getMessage()]
    assert len(refused) == 7 and all(f"GitSource {h.namespace}/apps" in m for m in refused)
    assert token not in caplog.text and mac not in caplog.text


def test_wait_leaves_a_release_target_to_its_release(h: Harness) -> None:
    h.remote.commit({"apps/web.yaml": unready_deployment("web", h.namespace)}, "feat: web, never ready here")
    canary = {"apiVersion": f"{GROUP}/{VERSION}", "kind": "Canary", "metadata": {"name": "web"},
              "spec": {"targetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": "web"},
                       "service": {"port": 80}, "analysis": {"interval": "1m", "threshold": 1}}}
    h.custom.create_namespaced_custom_object(GROUP, VERSION, h.namespace, "canaries", canary)
    h.create_source(wait=True)
    h.sync()
    assert h.condition("Ready")["status"] == "True"  # the Canary judges web, not the sync


def test_a_sops_secret_built_by_kustomize_is_decrypted(h: Harness) -> None:
    if shutil.which("kubectl") is None:
        missing_tool("kubectl is not installed (`kubectl kustomize` renders kustomizations)")
    identity, recipient = age_key()
    h.remote.commit({"apps/db.sops.yaml": encrypt(secret_yaml("db", {"password": "k-s3cr3t"}), recipient),
                     "apps/web.yaml": deployment_yaml("web", "web:1"),
                     "apps/kustomization.yaml": "resources: [web.yaml, db.sops.yaml]\n"}, "feat: kustomized")
    h.core.create_namespaced_secret(h.namespace, {"metadata": {"name": "sops-age"},
                                                  "stringData": {"key.agekey": identity}})
    h.create_source(decryption={"secretRef": {"name": "sops-age"}})
    status = h.sync()
    assert status.get("lastAppliedRevision") == h.remote.head(), status
    secret = h.core.read_namespaced_secret("db", h.namespace)
    values = secret.string_data or {k: base64.b64decode(v).decode() for k, v in (secret.data or {}).items()}
    assert values == {"password": "k-s3cr3t"} and h.image("web") == "web:1"
