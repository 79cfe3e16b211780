"""Rendering a GitSource's folder: which objects, from which file, and what stops a revision."""

from __future__ import annotations

from pathlib import Path

import pytest

from rollout.gitops.desired import desired_object, drifted, matches, release_targets, to_prune
from rollout.gitops.render import RenderError, render
from rollout.settings import Settings

KUSTOMIZE = Settings().kustomize_timeout
CONFIGMAP = "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: {name}\ndata:\n  k: v\n"


def write(root: Path, files: dict[str, str]) -> Path:
    for name, text in files.items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_text(text)
    return root


def test_yaml_json_and_lists_are_read_recursively_in_file_order_skipping_hidden(tmp_path: Path) -> None:
    write(tmp_path, {
        "apps/b.yaml": CONFIGMAP.format(name="b") + "---\n" + CONFIGMAP.format(name="b2"),
        "apps/a/one.json": '{"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "a"}}',
        "apps/list.yml": "apiVersion: v1\nkind: List\nitems:\n  - " + CONFIGMAP.format(name="l").replace(
            "\n", "\n    ").rstrip() + "\n",
        "apps/.hidden/x.yaml": CONFIGMAP.format(name="hidden"),
        "apps/notes.txt": "not yaml",
        "other/c.yaml": CONFIGMAP.format(name="c"),
    })
    found = [(m.path, m.name) for m in render(tmp_path, "./apps", timeout=KUSTOMIZE)]
    assert found == [("apps/a/one.json", "a"), ("apps/b.yaml", "b"), ("apps/b.yaml", "b2"),
                     ("apps/list.yml", "l")]
    assert [m.name for m in render(tmp_path, "./", timeout=KUSTOMIZE)][-1] == "c"


@pytest.mark.parametrize(
    ("files", "path", "reason", "words"),
    [
        ({"apps/x.yaml": "a: [1,\n"}, "apps", "RenderFailed", "apps/x.yaml: line 2"),
        ({"apps/x.yaml": "- just\n- a list\n"}, "apps", "RenderFailed", "document 1 is not a Kubernetes object"),
        ({"apps/x.yaml": "apiVersion: v1\nmetadata: {name: x}\n"}, "apps", "RenderFailed", "kind is missing"),
        ({"apps/x.yaml": CONFIGMAP.format(name="d"), "apps/y.yaml": CONFIGMAP.format(name="d")}, "apps",
         "RenderFailed", "apps/y.yaml: ConfigMap 'd' is also declared in apps/x.yaml"),
        ({"apps/x.yaml": CONFIGMAP.format(name="x")}, "../outside", "InvalidPath", "must be relative"),
        ({"apps/x.yaml": CONFIGMAP.format(name="x")}, "./missing", "InvalidPath", "is not a folder"),
    ],
    ids=["yaml-syntax", "not-an-object", "no-kind", "duplicate", "escapes-the-repo", "missing-folder"],
)
def test_problems_name_the_file_and_what_is_wrong(tmp_path: Path, files: dict[str, str], path: str, reason: str,
                                                  words: str) -> None:
    write(tmp_path, files)
    with pytest.raises(RenderError) as info:
        render(tmp_path, path, timeout=KUSTOMIZE)
    assert info.value.reason == reason and words in str(info.value)


def test_a_kustomization_without_kubectl_says_so(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    write(tmp_path, {"apps/kustomization.yaml": "resources: [cm.yaml]\n", "apps/cm.yaml": CONFIGMAP.format(name="x")})
    monkeypatch.setenv("PATH", str(tmp_path / "empty"))
    with pytest.raises(RenderError) as info:
        render(tmp_path, "apps", timeout=KUSTOMIZE)
    assert info.value.reason == "KubectlMissing" and "kubectl" in str(info.value)
    assert info.value.file == "apps/kustomization.yaml"


def test_the_applied_object_carries_its_origin_and_keeps_a_releases_replicas() -> None:
    obj = {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "web"}, "spec": {"replicas": 3}}
    live = {"spec": {"replicas": 0}}
    desired = desired_object(obj, path="apps/web.yaml", revision="abc", source="ns/src", namespace="ns", live=live,
                             keep_replicas=True)
    assert desired["metadata"]["namespace"] == "ns" and desired["spec"]["replicas"] == 0
    assert desired["metadata"]["annotations"] == {"rollout.gitops.dev/revision": "abc",
                                                  "rollout.gitops.dev/source-path": "apps/web.yaml",
                                                  "rollout.gitops.dev/source": "ns/src"}
    assert obj["spec"]["replicas"] == 3  # the manifest itself is untouched
    assert desired_object(obj, path="p", revision="r", source="s", namespace=None, live=live,
                          keep_replicas=False)["spec"]["replicas"] == 3


def test_the_applied_object_carries_its_commit_time_when_known() -> None:
    obj = {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "web", "annotations": {"a": "b"}}}
    desired = desired_object(obj, path="p", revision="abc", source="ns/src", namespace="ns", live=None,
                             keep_replicas=False, committed_at="2026-01-01T10:00:00Z")
    assert desired["metadata"]["annotations"]["rollout.gitops.dev/committed-at"] == "2026-01-01T10:00:00Z"
    assert desired["metadata"]["annotations"]["a"] == "b"
    # An object applied before commit times were annotated has not drifted for lack of one.
    live = {**obj, "metadata": {"name": "web", "namespace": "ns", "annotations": {
        k: v for k, v in desired["metadata"]["annotations"].items() if k != "rollout.gitops.dev/committed-at"}}}
    assert not drifted(desired, live)
    assert drifted(desired, {**live, "metadata": {"name": "web", "namespace": "ns"}})


def test_drift_is_what_git_sets_and_the_cluster_lost() -> None:
    want = {"spec": {"template": {"spec": {"containers": [{"name": "a", "image": "x:1"}]}}, "replicas": 2}}
    have = {"spec": {"template": {"spec": {"containers": [{"name": "a", "image": "x:1", "imagePullPolicy": "Always"
                                                          }]}}, "replicas": 2.0}, "status": {"ready": 1}}
    assert matches(want, have) and not drifted(want, have)
    assert drifted(want, {**have, "spec": {**have["spec"], "replicas": 5}})
    assert drifted(want, None)
    assert not matches({"a": True}, {"a": 1})


def test_prune_is_by_group_kind_namespace_and_name_not_version() -> None:
    before = [{"apiVersion": "apps/v1", "kind": "Deployment", "namespace": "a", "name": "web"},
              {"apiVersion": "v1", "kind": "Service", "namespace": "a", "name": "web"}]
    now = [{"apiVersion": "apps/v1beta2", "kind": "Deployment", "namespace": "a", "name": "web"}]
    assert to_prune(before, now) == [before[1]]


def test_a_malformed_release_does_not_stop_the_sync_of_the_others() -> None:
    releases = [
        {"metadata": {"namespace": "a"}, "spec": {"targetRef": {"kind": "Deployment", "name": "web"}}},
        {"metadata": {"namespace": "b"}, "spec": True},
        {"metadata": "x", "spec": {"targetRef": ["web"]}},
        {"metadata": {"namespace": "c"}, "spec": {"targetRef": {"name": 7}}},
        "not an object",
    ]
    assert release_targets(releases) == {("a", "web")}  # type: ignore[arg-type]
