"""The pure parts of the revert writer: finding one workload's document in manifest files, putting
a document back without touching its neighbours, and the commit message git must parse."""

from __future__ import annotations

import subprocess
from dataclasses import replace

import pytest
import yaml
from hypothesis import given
from hypothesis import strategies as st

from rollout.gitops.manifests import (
    WorkloadId,
    container_images,
    find_document,
    other_documents,
    replace_document,
    split_documents,
    workload_document,
)
from rollout.gitops.revert import RevertRequest, revert_branch, revert_message

PODINFO = WorkloadId("Deployment", "podinfo", "prod")


def deployment(name: str, image: str, namespace: str | None = None, sidecar: str | None = None) -> str:
    containers = [{"name": "app", "image": image}] + ([{"name": "proxy", "image": sidecar}] if sidecar else [])
    metadata = {"name": name} | ({"namespace": namespace} if namespace else {})
    body = {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": metadata,
            "spec": {"template": {"spec": {"containers": containers}}}}
    return yaml.safe_dump(body, sort_keys=False)


SERVICE = "apiVersion: v1\nkind: Service\nmetadata:\n  name: podinfo\n"
STREAM = (
    "# the shop\n---\n" + deployment("podinfo", "podinfo:1", sidecar="envoy:1")
    + "--- # backend\n" + deployment("backend", "backend:1", "prod") + "---\n" + SERVICE
)


@pytest.mark.parametrize(("body", "expected"), [
    ({"kind": "Deployment", "metadata": {"name": "podinfo"}}, True),
    ({"kind": "Deployment", "metadata": {"name": "podinfo", "namespace": "prod"}}, True),
    ({"kind": "Deployment", "metadata": {"name": "podinfo", "namespace": "staging"}}, False),
    ({"kind": "Service", "metadata": {"name": "podinfo"}}, False),
    ({"kind": "Deployment", "metadata": {"name": "podinfo-primary"}}, False),
    ({"kind": "Deployment"}, False),
    (None, False),
    (["kind", "Deployment"], False),
])
def test_workload_matches_kind_name_and_namespace(body: object, expected: bool) -> None:
    assert PODINFO.matches(body) is expected


def test_split_keeps_every_byte_and_finds_documents() -> None:
    documents = split_documents(STREAM)
    assert "".join(d.text for d in documents) == STREAM
    assert [d.body["kind"] if isinstance(d.body, dict) else None for d in documents] == [
        None, "Deployment", "Deployment", "Service"]
    assert find_document(STREAM, PODINFO) == 1
    assert find_document(STREAM, WorkloadId("Deployment", "backend", "prod")) == 2
    assert find_document(STREAM, WorkloadId("Deployment", "backend", "other")) is None


@given(st.lists(st.sampled_from(["---\n", "--- # c\n", "a: 1\n", "b: [x]\n", "\n", "# note\n", "  ---\n"]),
                max_size=12))
def test_split_round_trips_any_stream(lines: list[str]) -> None:
    text = "".join(lines)
    assert "".join(d.text for d in split_documents(text)) == text


def test_images_in_container_order() -> None:
    found = workload_document(STREAM, PODINFO)
    assert found is not None and container_images(found.body) == ("podinfo:1", "envoy:1")
    assert container_images({"spec": {}}) == ()
    assert container_images(None) == ()


def test_other_documents_ignore_the_workload_and_refuse_broken_yaml() -> None:
    changed = STREAM.replace("podinfo:1", "podinfo:2")
    assert other_documents(changed, PODINFO) == other_documents(STREAM, PODINFO)
    assert other_documents(STREAM.replace("backend:1", "backend:2"), PODINFO) != other_documents(STREAM, PODINFO)
    assert other_documents(STREAM + "---\nkey: [unclosed\n", PODINFO) is None
    assert other_documents(None, PODINFO) == ()


def test_replace_document_changes_only_the_workload() -> None:
    good = workload_document(STREAM, PODINFO)
    now = STREAM.replace("podinfo:1", "podinfo:2").replace("backend:1", "backend:2")

    restored = replace_document(now, PODINFO, good)

    assert restored == STREAM.replace("backend:1", "backend:2")


def test_replace_document_removes_and_appends() -> None:
    without = replace_document(STREAM, PODINFO, None)
    assert without is not None and find_document(without, PODINFO) is None
    assert "backend:1" in without and "kind: Service" in without and without.startswith("# the shop\n")

    good = workload_document(STREAM, PODINFO)
    assert good is not None
    appended = replace_document(without, PODINFO, good)
    assert appended is not None and appended.startswith(without)
    kinds = [(d.body["kind"], d.body["metadata"]["name"]) for d in split_documents(appended) if d.body]
    assert kinds == [("Deployment", "backend"), ("Service", "podinfo"), ("Deployment", "podinfo")]
    assert workload_document(appended, PODINFO) == good
    assert replace_document(deployment("podinfo", "podinfo:2"), PODINFO, None) is None  # nothing left: no file
    assert replace_document(None, PODINFO, good) == good.text


def request(**changes: object) -> RevertRequest:
    base = RevertRequest(
        namespace="prod", name="podinfo", kind="Deployment", workload="podinfo", workload_namespace="prod",
        candidate_revision="a" * 40, promoted_revision="b" * 40, source_path=None, search_path="./",
        images=("podinfo:2",), promoted_images=("podinfo:1",), reason="error rate\n too high",
        report="## Report\n\n| metric | verdict |\n|---|---|\n| errors | fail |\n\n---\nRollout-Canary: x/y\n",
    )
    return replace(base, **changes)  # type: ignore[arg-type]


def test_message_parses_as_git_trailers() -> None:
    message = revert_message(request(), ["c" * 40, "d" * 40])
    lines = message.splitlines()
    assert lines[:3] == ["revert(podinfo): roll back podinfo:2 after failed canary", "", "error rate too high"]
    assert "## Report" in lines and "| errors | fail |" in lines
    parsed = subprocess.run(["git", "interpret-trailers", "--parse"], input=message, text=True,
                            capture_output=True, check=True).stdout.splitlines()
    assert parsed == ["Rollout-Canary: prod/podinfo", f"Rollout-Reverts: {'c' * 40}", f"Rollout-Reverts: {'d' * 40}"]


def test_message_without_image_or_report() -> None:
    message = revert_message(request(images=(), report=""), ["c" * 40])
    assert message.splitlines()[0] == "revert(podinfo): roll back podinfo after failed canary"
    assert message.endswith("\n\nRollout-Canary: prod/podinfo\nRollout-Reverts: " + "c" * 40 + "\n")


def test_revert_branch_name() -> None:
    assert revert_branch(request(), "0123456789abcdef") == "rollout/revert-prod-podinfo-0123456"
