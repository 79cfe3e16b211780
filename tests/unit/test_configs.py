"""Tracked configs (`rollout.workloads.configs`): references in every place Flagger looks, the
primary's template rewritten to the copies, the hash following content, and the opt-outs. Pure: no
cluster (the sandbox tests are in tests/e2e/test_configs_sandbox.py)."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from rollout.settings import Settings
from rollout.workloads import builders as b
from rollout.workloads import configs, pod_template_hash
from tests.unit.test_workloads import UID, canary, deployment


def template() -> dict[str, Any]:
    """A pod template naming ConfigMaps and Secrets in every place Flagger's ConfigTracker scans."""
    return {
        "metadata": {"labels": {"app": "podinfo"}},
        "spec": {
            "volumes": [
                {"name": "v1", "configMap": {"name": "cm-volume"}},
                {"name": "v2", "secret": {"secretName": "s-volume"}},
                {"name": "v3", "projected": {"sources": [
                    {"configMap": {"name": "cm-projected"}},
                    {"secret": {"name": "s-projected", "optional": True}},
                    {"serviceAccountToken": {"path": "token"}},
                ]}},
                {"name": "v4", "emptyDir": {}},
            ],
            "initContainers": [{
                "name": "init", "image": "busybox",
                "env": [{"name": "I", "valueFrom": {"configMapKeyRef": {"name": "cm-init-env", "key": "k"}}}],
                "envFrom": [{"secretRef": {"name": "s-init-envfrom"}}],
            }],
            "containers": [{
                "name": "app", "image": "podinfo",
                "env": [
                    {"name": "A", "value": "1"},
                    {"name": "B", "valueFrom": {"configMapKeyRef": {"name": "cm-env", "key": "k"}}},
                    {"name": "C", "valueFrom": {"secretKeyRef": {"name": "s-env", "key": "k", "optional": False}}},
                    {"name": "D", "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}},
                ],
                "envFrom": [{"configMapRef": {"name": "cm-envfrom"}}, {"secretRef": {"name": "s-envfrom"}}],
            }],
        },
    }


EVERY_PLACE = [
    ("configmap", "cm-volume", False, "spec.template.spec.volumes[0].configMap"),
    ("secret", "s-volume", False, "spec.template.spec.volumes[1].secret"),
    ("configmap", "cm-projected", False, "spec.template.spec.volumes[2].projected.sources[0].configMap"),
    ("secret", "s-projected", True, "spec.template.spec.volumes[2].projected.sources[1].secret"),
    ("configmap", "cm-env", False, "spec.template.spec.containers[0].env[1].valueFrom.configMapKeyRef"),
    ("secret", "s-env", False, "spec.template.spec.containers[0].env[2].valueFrom.secretKeyRef"),
    ("configmap", "cm-envfrom", False, "spec.template.spec.containers[0].envFrom[0].configMapRef"),
    ("secret", "s-envfrom", False, "spec.template.spec.containers[0].envFrom[1].secretRef"),
    ("configmap", "cm-init-env", False, "spec.template.spec.initContainers[0].env[0].valueFrom.configMapKeyRef"),
    ("secret", "s-init-envfrom", False, "spec.template.spec.initContainers[0].envFrom[0].secretRef"),
]


def test_references_are_found_in_every_place() -> None:
    found = {(r.kind, r.name, r.optional, r.where) for r in configs.references(template())}
    assert found == set(EVERY_PLACE)


def test_an_object_named_twice_is_mandatory_when_any_reference_is() -> None:
    t = template()
    t["spec"]["containers"][0]["envFrom"].append({"secretRef": {"name": "s-projected"}})
    assert not configs.referenced(t)[("secret", "s-projected")].optional
    assert configs.referenced(template())[("secret", "s-projected")].optional


def test_to_copies_renames_only_the_tracked_and_from_copies_takes_it_back() -> None:
    original = template()
    tracked = {("configmap", "cm-volume"), ("secret", "s-projected"), ("configmap", "cm-init-env"),
               ("secret", "s-envfrom"), ("configmap", "s-env")}  # a ConfigMap named like a Secret: not renamed
    renamed = configs.to_copies(original, tracked)
    assert original == template()  # the input is untouched
    names = {(r.kind, r.name) for r in configs.references(renamed)}
    assert names == {
        ("configmap", "cm-volume-primary"), ("secret", "s-volume"), ("configmap", "cm-projected"),
        ("secret", "s-projected-primary"), ("configmap", "cm-env"), ("secret", "s-env"),
        ("configmap", "cm-envfrom"), ("secret", "s-envfrom-primary"), ("configmap", "cm-init-env-primary"),
        ("secret", "s-init-envfrom"),
    }
    copies = {(kind, configs.copy_name(name)) for kind, name in tracked}
    assert configs.from_copies(renamed, copies) == original


def test_every_place_is_renamed() -> None:
    everything = {(kind, name) for kind, name, _, _ in EVERY_PLACE}
    renamed = configs.to_copies(template(), everything)
    assert all(r.name.endswith("-primary") for r in configs.references(renamed))
    # and nothing else moved: the rest of the template is as it was
    back = configs.from_copies(renamed, {(k, n + "-primary") for k, n in everything})
    assert back == template()


def _target(tmpl: dict[str, Any]) -> dict[str, Any]:
    d = deployment()
    d["spec"]["template"] = copy.deepcopy(tmpl)
    return d


def test_the_primary_uses_the_copies_and_hashes_equal_with_equal_content() -> None:
    target = _target(template())
    tracked = {("configmap", "cm-env"), ("secret", "s-volume")}
    primary = b.build_primary(target, canary(), tracked)
    spec = primary["spec"]["template"]["spec"]
    assert spec["containers"][0]["env"][1]["valueFrom"]["configMapKeyRef"]["name"] == "cm-env-primary"
    assert spec["volumes"][1]["secret"]["secretName"] == "s-volume-primary"
    assert spec["volumes"][0]["configMap"]["name"] == "cm-volume"  # not tracked: shared
    assert primary["spec"]["template"]["metadata"]["labels"]["app"] == "podinfo-primary"

    sums = {"configmap/cm-env": "aaa", "secret/s-volume": "bbb"}
    back = configs.from_copies(primary["spec"]["template"], {(k, n + "-primary") for k, n in tracked})
    assert pod_template_hash(back, sums) == pod_template_hash(target, sums)
    assert pod_template_hash(back, {**sums, "configmap/cm-env": "ccc"}) != pod_template_hash(target, sums)

    # promotion rewrites an older primary the same way, and is then done
    old = b.build_primary(_target({"metadata": {"labels": {"app": "podinfo"}}, "spec": {"containers": []}}),
                          canary())
    promoted = b.promoted_primary(old, target, tracked)
    assert promoted is not None and promoted["spec"]["template"] == primary["spec"]["template"]
    assert b.promoted_primary(promoted, target, tracked) is None


def cm(name: str = "cm", data: dict[str, str] | None = None, **meta: Any) -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "ConfigMap",
            "metadata": {"name": name, "namespace": "test", "resourceVersion": "7", **meta},
            "data": data if data is not None else {"k": "v"}}


def secret(name: str = "s", type: str | None = "Opaque", data: dict[str, str] | None = None,
           **meta: Any) -> dict[str, Any]:
    obj: dict[str, Any] = {"apiVersion": "v1", "kind": "Secret",
                           "metadata": {"name": name, "namespace": "test", **meta},
                           "data": data if data is not None else {"password": "aHVudGVyMg=="}}
    if type is not None:
        obj["type"] = type
    return obj


def test_checksum_follows_content_only() -> None:
    base = configs.checksum("configmap", cm())
    assert configs.checksum("configmap", cm(data={"k": "w"})) != base
    assert configs.checksum("configmap", cm(data={"k": "v", "k2": "v"})) != base
    assert configs.checksum("configmap", {**cm(), "binaryData": {"b": "AA=="}}) != base
    # metadata (labels, annotations, resourceVersion, owner) is not what pods read
    assert configs.checksum("configmap", cm(labels={"a": "b"}, annotations={"x": "y"}, resourceVersion="9")) == base
    s = configs.checksum("secret", secret())
    assert configs.checksum("secret", secret(data={"password": "b3RoZXI="})) != s
    assert configs.checksum("secret", secret(type=None)) == s  # an absent type is Opaque


def test_the_hash_changes_with_a_tracked_config_and_not_with_an_unrelated_one() -> None:
    target = _target(template())
    plain = pod_template_hash(target)
    assert pod_template_hash(target, {}) == plain  # no tracked configs: the hash before tracking
    one = {"configmap/cm-env": configs.checksum("configmap", cm("cm-env"))}
    changed = {"configmap/cm-env": configs.checksum("configmap", cm("cm-env", {"k": "new"}))}
    assert pod_template_hash(target, one) != plain
    assert pod_template_hash(target, changed) != pod_template_hash(target, one)
    # the checksums are computed only from the objects the template names (unrelated objects
    # never enter the map), so the same map gives the same hash
    assert pod_template_hash(target, dict(one)) == pod_template_hash(target, one)


@pytest.mark.parametrize(("obj", "kind", "tracked"), [
    (cm(), "configmap", True),
    (cm(annotations={"flagger.app/config-tracking": "disabled"}), "configmap", False),
    (cm(annotations={"flagger.app/config-tracking": "disable"}), "configmap", False),
    (cm(annotations={"flagger.app/config-tracking": "enabled"}), "configmap", True),
    (secret(), "secret", True),
    (secret(type=None), "secret", True),
    (secret(type="kubernetes.io/tls"), "secret", True),
    (secret(type="kubernetes.io/basic-auth"), "secret", True),
    (secret(type="kubernetes.io/ssh-auth"), "secret", True),
    (secret(type="kubernetes.io/dockerconfigjson"), "secret", False),
    (secret(type="kubernetes.io/service-account-token"), "secret", False),
    (secret(annotations={"flagger.app/config-tracking": "disabled"}), "secret", False),
])
def test_what_is_tracked(obj: dict[str, Any], kind: str, tracked: bool) -> None:
    assert configs.is_tracked(kind, obj) is tracked


def test_the_copy_holds_the_content_and_is_owned_without_labels_or_annotations() -> None:
    owner = b.owner_reference(canary())
    made = configs.build_copy("secret", secret(type="kubernetes.io/tls", labels={"team": "web"},
                                               annotations={"kept": "no"}), owner)
    assert made == {
        "apiVersion": "v1", "kind": "Secret", "type": "kubernetes.io/tls",
        "metadata": {"name": "s-primary", "namespace": "test", "ownerReferences": [owner]},
        "data": {"password": "aHVudGVyMg=="},
    }
    assert owner is not None and owner["uid"] == UID
    binary = {**cm(), "binaryData": {"b": "AA=="}}
    copy_cm = configs.build_copy("configmap", binary, owner)
    assert (copy_cm["data"], copy_cm["binaryData"]) == ({"k": "v"}, {"b": "AA=="})
    assert configs.checksum("configmap", copy_cm) == configs.checksum("configmap", binary)


def test_updating_a_copy_changes_content_keeps_other_owners_and_is_then_done() -> None:
    owner = b.owner_reference(canary())
    assert owner is not None
    other = {"apiVersion": "v1", "kind": "Foo", "name": "x", "uid": "u2", "controller": True}
    existing = {**configs.build_copy("configmap", cm(), owner), "binaryData": {"old": "AA=="}}
    existing["metadata"] = {**existing["metadata"], "resourceVersion": "3", "ownerReferences": [other]}
    desired = configs.build_copy("configmap", cm(data={"k": "new"}), owner)
    new = configs.updated_copy(existing, desired)
    assert new is not None
    assert new["data"] == {"k": "new"} and "binaryData" not in new
    assert new["metadata"]["resourceVersion"] == "3"
    assert new["metadata"]["ownerReferences"] == [owner, {**other, "controller": False}]
    assert configs.updated_copy(new, desired) is None
    assert configs.needs_recreate(configs.build_copy("secret", secret(), owner),
                                  configs.build_copy("secret", secret(type="kubernetes.io/tls"), owner))
    assert not configs.needs_recreate(new, desired)


def test_tracking_is_on_by_default_and_a_setting_turns_it_off() -> None:
    assert Settings().enable_config_tracking is True
    for raw, value in (("false", False), ("0", False), ("no", False), ("true", True), ("On", True)):
        assert Settings.build({"ROLLOUT_ENABLE_CONFIG_TRACKING": raw}).enable_config_tracking is value
    with pytest.raises(ValueError, match="ROLLOUT_ENABLE_CONFIG_TRACKING must be true or false, got 'maybe'"):
        Settings.build({"ROLLOUT_ENABLE_CONFIG_TRACKING": "maybe"})


def test_rollout_run_takes_the_flag() -> None:
    from rollout.cli import build_parser

    parser = build_parser()
    args = parser.parse_args(["run", "--enable-config-tracking=false"])
    assert args.enable_config_tracking is False
    assert parser.parse_args(["run"]).enable_config_tracking is None  # unset: the variable or the default
    with pytest.raises(SystemExit):
        parser.parse_args(["run", "--enable-config-tracking=perhaps"])
