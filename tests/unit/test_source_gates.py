"""The pure parts of issue 19's GitSource features: how each Git host's push webhook is verified
and read (rollout.gitops.receiver), and when an applied object counts as ready (rollout.gitops.health)."""

from __future__ import annotations

import hashlib
import hmac
import json
from typing import Any

import pytest

from rollout.api.spec import ReceiverType
from rollout.gitops.health import summary, unready
from rollout.gitops.receiver import pushed, verify

TOKEN = "It's a Secret to Everybody"


def sign(body: bytes, token: str = TOKEN) -> str:
    return hmac.new(token.encode(), body, hashlib.sha256).hexdigest()


def test_github_signature_matches_githubs_documented_test_values() -> None:
    # docs.github.com, "Validating webhook deliveries" > "Testing the webhook payload validation".
    body = b"Hello, World!"
    good = "sha256=757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17"
    assert verify(ReceiverType.GITHUB, {"x-hub-signature-256": good}, body, TOKEN) is None
    assert verify(ReceiverType.GITHUB, {"x-hub-signature-256": good}, body + b" ", TOKEN) is not None
    assert verify(ReceiverType.GITHUB, {"x-hub-signature-256": good}, body, "another") is not None
    assert verify(ReceiverType.GITHUB, {"x-hub-signature": "sha1=abc"}, body, TOKEN) == "no x-hub-signature-256 header"
    assert verify(ReceiverType.GITHUB, {"x-hub-signature-256": "sha1=" + good[7:]}, body, TOKEN) is not None


@pytest.mark.parametrize(("kind", "headers"), [
    (ReceiverType.GITEA, lambda body: {"x-gitea-signature": sign(body)}),
    (ReceiverType.GITEA, lambda body: {"x-forgejo-signature": sign(body)}),
    (ReceiverType.GENERIC, lambda body: {"x-signature": "sha256=" + sign(body)}),
    (ReceiverType.GITLAB, lambda body: {"x-gitlab-token": TOKEN}),
])
def test_each_host_is_verified_its_own_way_and_the_answer_never_holds_the_secret(kind: ReceiverType,
                                                                                 headers: Any) -> None:
    body = json.dumps({"ref": "refs/heads/main"}).encode()
    assert verify(kind, headers(body), body, TOKEN) is None
    forged = {k: (v[:-4] + "0000" if k != "x-gitlab-token" else "guess") for k, v in headers(body).items()}
    why = verify(kind, forged, body, TOKEN)
    assert why is not None and TOKEN not in why and sign(body) not in why
    assert verify(kind, {}, body, TOKEN) is not None
    assert verify(kind, {"x-gitlab-token": "ünïcode", "x-signature": "sha256=ü", "x-gitea-signature": "ü",
                         "x-hub-signature-256": "sha256=ü"}, body, TOKEN) is not None


def test_only_a_push_to_the_branch_syncs() -> None:
    main = json.dumps({"ref": "refs/heads/main", "after": "0" * 40}).encode()
    other = json.dumps({"ref": "refs/heads/feature"}).encode()
    tag = json.dumps({"ref": "refs/tags/v1"}).encode()
    assert pushed(ReceiverType.GITHUB, {"x-github-event": "push"}, main, "main") is None
    assert pushed(ReceiverType.GITHUB, {"x-github-event": "ping"}, b"{}", "main") == "event ping is not a push"
    assert pushed(ReceiverType.GITHUB, {"x-github-event": "push"}, other, "main") == \
        "a push to refs/heads/feature, not to refs/heads/main"
    assert pushed(ReceiverType.GITLAB, {"x-gitlab-event": "Push Hook"}, main, "main") is None
    assert pushed(ReceiverType.GITLAB, {"x-gitlab-event": "Tag Push Hook"}, tag, "main") is not None
    assert pushed(ReceiverType.GITEA, {"x-gitea-event": "push"}, main, "main") is None
    assert pushed(ReceiverType.GITEA, {"x-gitea-event": "push"}, b"not json", "main") == "the body is not JSON"
    # generic: any call syncs, unless its JSON names another ref
    assert pushed(ReceiverType.GENERIC, {}, b"", "main") is None
    assert pushed(ReceiverType.GENERIC, {}, b"deploy please", "main") is None
    assert pushed(ReceiverType.GENERIC, {}, other, "main") is not None


def deployment(replicas: int = 2, *, generation: int = 2, observed: int = 2, updated: int = 2, available: int = 2,
               deadline: bool = False) -> dict[str, Any]:
    conditions = [{"type": "Progressing", "status": "False" if deadline else "True",
                   "reason": "ProgressDeadlineExceeded" if deadline else "NewReplicaSetAvailable"}]
    return {"apiVersion": "apps/v1", "kind": "Deployment",
            "metadata": {"name": "web", "namespace": "ns", "generation": generation},
            "spec": {"replicas": replicas},
            "status": {"observedGeneration": observed, "updatedReplicas": updated, "availableReplicas": available,
                       "conditions": conditions}}


def test_workloads_are_ready_when_every_replica_of_the_new_spec_is_available() -> None:
    assert unready(deployment()) is None
    assert unready(deployment(replicas=0, updated=0, available=0)) is None
    assert str(unready(deployment(observed=1))) == "Deployment/ns/web (its controller has not seen the new spec yet)"
    assert str(unready(deployment(updated=1))) == "Deployment/ns/web (1/2 replicas updated)"
    assert str(unready(deployment(available=1))) == "Deployment/ns/web (1/2 replicas available)"
    failed = unready(deployment(available=1, deadline=True))
    assert failed is not None and failed.failed
    ds = {"kind": "DaemonSet", "metadata": {"name": "d", "generation": 1},
          "status": {"observedGeneration": 1, "desiredNumberScheduled": 3, "updatedNumberScheduled": 3,
                     "numberAvailable": 2}}
    assert str(unready(ds)) == "DaemonSet/d (2/3 replicas available)"


def test_jobs_crds_and_objects_with_a_ready_condition() -> None:
    job: dict[str, Any] = {"kind": "Job", "metadata": {"name": "migrate", "namespace": "ns"}, "status": {}}
    assert str(unready(job)) == "Job/ns/migrate (not complete)"
    job["status"] = {"conditions": [{"type": "Complete", "status": "True"}]}
    assert unready(job) is None
    job["status"] = {"conditions": [{"type": "Failed", "status": "True", "reason": "BackoffLimitExceeded"}]}
    problem = unready(job)
    assert problem is not None and problem.failed and "BackoffLimitExceeded" in problem.why
    crd: dict[str, Any] = {"kind": "CustomResourceDefinition", "metadata": {"name": "x.example.com"},
                           "status": {"conditions": [{"type": "Established", "status": "False"}]}}
    assert str(unready(crd)) == "CustomResourceDefinition/x.example.com (not established)"
    crd["status"]["conditions"][0]["status"] = "True"
    assert unready(crd) is None
    cr = {"kind": "Certificate", "metadata": {"name": "tls", "namespace": "ns"},
          "status": {"conditions": [{"type": "Ready", "status": "False", "reason": "Issuing"}]}}
    assert str(unready(cr)) == "Certificate/ns/tls (Issuing)"
    assert unready({"kind": "ConfigMap", "metadata": {"name": "c"}}) is None
    assert str(unready(None, kind="Service", name="gone")) == "Service/gone (not found)"
    many = [unready(None, kind="Service", name=f"s{i}") for i in range(7)]
    assert summary(u for u in many if u is not None).endswith("; and 2 more")


def test_the_new_gitsource_fields_are_validated() -> None:
    from rollout.api.errors import ValidationError
    from rollout.api.parse import parse_gitsource

    def problems(**spec: Any) -> list[str]:
        try:
            parse_gitsource({"apiVersion": "rollout.gitops.dev/v1alpha1", "kind": "GitSource",
                             "metadata": {"name": "apps", "namespace": "ns"},
                             "spec": {"url": "file:///r", **spec}})
        except ValidationError as e:
            return [f"{x.path}: {x.message}" for x in e.errors]
        return []

    assert problems(wait=True, timeout="2m", dependsOn=[{"name": "infra"}, {"name": "apps", "namespace": "other"}],
                    webhook={"type": "gitea", "secretRef": {"name": "w"}},
                    decryption={"provider": "sops", "secretRef": {"name": "k"}}) == []
    assert problems(dependsOn=[{"name": "apps"}, {"name": "x"}, {"name": "x"}]) == [
        "spec.dependsOn[0]: a GitSource cannot depend on itself", "spec.dependsOn[2]: 'x' is listed twice"]
    assert problems(webhook={"secretRef": {}}) == [
        "spec.webhook.secretRef.name: is required",
        "spec.webhook.type: is required: one of github, gitlab, gitea, generic"]
    assert problems(decryption={"provider": "vault", "secretRef": {"name": "k"}}) == [
        "spec.decryption.provider: must be sops (the only provider, as in Flux), got 'vault'"]
    assert problems(timeout="soon") != []
    assert problems(wait="yes") != []


def test_a_secret_written_as_string_data_is_not_drift_once_stored_as_data() -> None:
    from rollout.gitops.desired import drifted

    desired = {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "db"}, "stringData": {"password": "p"}}
    stored = {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "db"}, "data": {"password": "cA=="}}
    assert not drifted(desired, stored)
    assert drifted(desired, {**stored, "data": {"password": "cQ=="}})  # changed by hand
    kept = {**desired, "metadata": {"name": "db"}}
    assert not drifted(desired, kept)  # a server that keeps it as sent (the sandbox)
