"""Every field of Flagger's Canary schema either works here or is refused by name: none is dropped.

Flagger's published Canary CRD is kept in `tests/data/flagger/canary-crd.yaml` (its origin is in
its header). For each field path of its `spec` schema, a valid Canary gets that field with a
sample value of the schema's type, and validation (schema + parser, as `rollout validate` and the
operator run it) must either accept it cleanly (the parser read it: an unread field is an error)
or refuse it with an error at that field or at the object holding it, and nowhere else.
"""

from __future__ import annotations

import copy
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from rollout.api.errors import FieldError
from rollout.api.kinds import API_VERSION
from rollout.api.manifests import check_object
from rollout.api.schema import crd_documents

FLAGGER_CRD = Path(__file__).resolve().parents[1] / "data" / "flagger" / "canary-crd.yaml"

BASE: dict[str, Any] = {
    "apiVersion": API_VERSION,
    "kind": "Canary",
    "metadata": {"name": "podinfo", "namespace": "test"},
    "spec": {
        "provider": "istio",
        "targetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": "podinfo"},
        "service": {"port": 9898},
        "analysis": {
            "interval": "1m",
            "threshold": 5,
            "maxWeight": 50,
            "stepWeight": 10,
            "metrics": [{"name": "probe", "query": "up", "thresholdRange": {"max": 1}}],
            "webhooks": [{"name": "load-test", "url": "http://loadtester.test/"}],
        },
    },
}

# Sample values where a field's name says more than its type (patterns, bounds, URLs).
SAMPLES: dict[str, Any] = {
    "interval": "1m",
    "timeout": "30s",
    "perTryTimeout": "2s",
    "url": "http://hook.test/",
    "metricsServer": "http://prometheus.test:9090",
    "port": 9898,
    "targetPort": 9898,
    "maxWeight": 50,
    "stepWeight": 10,
    "stepWeights": [10, 20],
    "stepWeightPromotion": 10,
    "iterations": 10,
    "threshold": 5,
    "mirrorWeight": 10,
    "progressDeadlineSeconds": 60,
    "apiVersion": "apps/v1",
    "group": "gateway.networking.k8s.io",
    "namespace": "test",
    "sectionName": "http",
    "name": "podinfo",
    "query": "up",
}


def flagger_spec() -> dict[str, Any]:
    crd = yaml.safe_load(FLAGGER_CRD.read_text())
    spec: dict[str, Any] = crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"]["properties"]["spec"]
    return spec


def paths(node: dict[str, Any], path: str = "spec") -> Iterator[tuple[str, dict[str, Any]]]:
    """(path, schema) of every field under `node`; list items are shown as `[]`."""
    for key, child in (node.get("properties") or {}).items():
        yield f"{path}.{key}", child
        yield from paths(child, f"{path}.{key}")
    if isinstance(node.get("items"), dict):
        yield from paths(node["items"], f"{path}[]")


def sample(node: dict[str, Any], key: str) -> Any:
    """A plausible value of the schema `node` for a field called `key`."""
    if node.get("enum"):
        return node["enum"][0]
    if key in SAMPLES and not node.get("properties"):
        return copy.deepcopy(SAMPLES[key])
    kind = node.get("type")
    if node.get("x-kubernetes-int-or-string"):
        return 9898
    if kind == "object":
        props = node.get("properties") or {}
        if props:
            # the required fields, else the first one (a StringMatch wants one of exact, prefix, regex)
            keys = node.get("required") or list(props)[:1]
            return {k: sample(props[k], k) for k in keys}
        extra = node.get("additionalProperties")
        return {"app.example.com/key": sample(extra, "value") if isinstance(extra, dict) else "value"}
    if kind == "array":
        return [sample(node.get("items") or {"type": "string"}, key)]
    if kind in ("number", "integer"):
        return 1
    if kind == "boolean":
        return True
    return "sample"


def base_for(path: str) -> dict[str, Any]:
    """The valid Canary a field is added to; a few fields need a base that allows them."""
    obj = copy.deepcopy(BASE)
    analysis = obj["spec"]["analysis"]
    if path.startswith(("spec.analysis.iterations", "spec.analysis.match")):
        del analysis["stepWeight"], analysis["maxWeight"]
        analysis["iterations"] = 10
    if path.startswith("spec.analysis.stepWeights"):
        del analysis["stepWeight"]
    if "metrics[].templateRef" in path:
        del analysis["metrics"][0]["query"]
    if path == "spec.provider":
        # the sample is Flagger's first provider, apisix, which splits the ApisixRoute routeRef names
        obj["spec"]["routeRef"] = {"apiVersion": "apisix.apache.org/v2", "kind": "ApisixRoute", "name": "podinfo"}
    if path.startswith("spec.canaryAnalysis"):
        obj["spec"]["canaryAnalysis"] = obj["spec"].pop("analysis")
    if path.startswith("spec.autoscalerRef"):
        # trigger queries are a ScaledObject's; every other autoscaler field fits an HPA
        obj["spec"]["autoscalerRef"] = (
            {"apiVersion": "keda.sh/v1alpha1", "kind": "ScaledObject", "name": "podinfo-so"}
            if "primaryScalerQueries" in path else
            {"apiVersion": "autoscaling/v2", "kind": "HorizontalPodAutoscaler", "name": "podinfo"})
    return obj


def put(obj: dict[str, Any], path: str, value: Any) -> str:
    """Set the field at `path` (list steps go into the first item), making the objects on the way
    with their required fields; returns the concrete path (`[0]` for `[]`)."""
    parts = re.split(r"\.|(?=\[\])", path)
    cur: Any = obj["spec"]
    walked = parts[0]
    for part in parts[1:-1]:
        walked = f"{walked}{part}" if part == "[]" else f"{walked}.{part}"
        node = NODES[walked]
        if part == "[]":
            if not cur:
                cur.append({k: sample(node["properties"][k], k) for k in node.get("required", [])})
            cur = cur[0]
            continue
        if part not in cur or not isinstance(cur[part], dict | list):
            cur[part] = [] if node.get("type") == "array" else sample(node, part)
        cur = cur[part]
    cur[parts[-1]] = value
    return path.replace("[]", "[0]")


def ancestors(path: str) -> set[str]:
    """`spec.a[0].b` -> {spec.a[0].b, spec.a[0], spec.a}: the field and the objects holding it, below spec."""
    out = {path}
    while True:
        cut = max(path.rfind("."), path.rfind("["))
        if cut <= len("spec"):
            return out
        path = path[:cut]
        out.add(path)


def _nodes(node: dict[str, Any], path: str = "spec") -> Iterator[tuple[str, dict[str, Any]]]:
    yield path, node
    for key, child in (node.get("properties") or {}).items():
        yield from _nodes(child, f"{path}.{key}")
    if isinstance(node.get("items"), dict):
        yield from _nodes(node["items"], f"{path}[]")


FIELDS = list(paths(flagger_spec()))
NODES = dict(_nodes(flagger_spec()))


def outcome(path: str, node: dict[str, Any]) -> tuple[str, list[FieldError]]:
    obj = base_for(path)
    concrete = put(obj, path, sample(node, path.rsplit(".", 1)[-1].removesuffix("[]")))
    return concrete, check_object(obj) or []


def test_the_base_canary_is_valid() -> None:
    assert check_object(copy.deepcopy(BASE)) == []


def test_the_schema_has_all_of_flaggers_fields() -> None:
    """Guards the walk: the kept CRD is the real one, not a stub."""
    found = {p for p, _ in FIELDS}
    assert len(found) > 200
    assert {"spec.autoscalerRef.primaryScalerReplicas.minReplicas", "spec.service.portDiscovery",
            "spec.analysis.webhooks[].retries", "spec.analysis.sessionAffinity.cookieName"} <= found


@pytest.mark.parametrize(("path", "node"), FIELDS, ids=[p for p, _ in FIELDS])
def test_each_flagger_field_is_implemented_or_refused_by_name(path: str, node: dict[str, Any]) -> None:
    concrete, errors = outcome(path, node)
    if not errors:
        return  # parsed cleanly, so it was read: an unread field is an error
    allowed = ancestors(concrete)
    # an error inside the sample value (an object's enum-first kind) names the field too
    assert all(e.path in allowed or e.path.startswith((concrete + ".", concrete + "[")) for e in errors), (
        f"{path}: the errors must name the field, the object holding it or a part of it, got {errors}")


def test_a_refused_field_says_it_is_not_supported() -> None:
    _, errors = outcome("spec.service.headless", {"type": "boolean"})
    assert errors == [FieldError("spec.service.headless", "Flagger's field is not supported by rollout; remove it")]


def our_spec(kind: str) -> dict[str, Any]:
    crd = next(d for d in crd_documents() if d["spec"]["names"]["kind"] == kind)
    spec: dict[str, Any] = crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"]["properties"]["spec"]
    return spec


def declared(spec: dict[str, Any], path: str) -> bool:
    node: Any = spec
    for part in re.split(r"\.|(?=\[\])", path.removeprefix("spec.")):
        node = node.get("items") if part == "[]" else (node.get("properties") or {}).get(part)
        if node is None:
            return False
    return True


def test_our_crd_declares_every_path_of_flaggers() -> None:
    """An API server prunes what a CRD does not declare: a refused Flagger field must reach the
    parser to be refused, so our CRD declares all of Flagger's."""
    ours = our_spec("Canary")
    missing = [p for p, _ in FIELDS if not declared(ours, p)]
    assert missing == []


def test_bluegreen_declares_flaggers_service_fields() -> None:
    ours = our_spec("BlueGreen")
    service = [p for p, _ in FIELDS if p.startswith("spec.service.")]
    assert [p for p in service if not declared(ours, p)] == []
