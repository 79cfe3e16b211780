"""`rollout validate` on traefik, apisix and skipper releases: each provider's rules (which ref it needs,
what Flagger's router for it cannot do), every refusal naming the field. Flagger's own tutorials and
e2e Canaries for these providers validate cleanly (tests/unit/test_flagger_canaries.py)."""

from __future__ import annotations

import copy
from typing import Any

import pytest
import yaml

from rollout.api.manifests import validate_text

ROUTE_REF = {"apiVersion": "apisix.apache.org/v2", "kind": "ApisixRoute", "name": "podinfo"}
INGRESS_REF = {"apiVersion": "networking.k8s.io/v1", "kind": "Ingress", "name": "podinfo"}


def release(provider: str, kind: str = "Canary", **spec: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "provider": provider,
        "targetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": "podinfo"},
        "service": {"port": 80, "targetPort": 9898},
        "analysis": {"interval": "10s", "threshold": 5, "maxWeight": 50, "stepWeight": 10,
                     "metrics": [{"name": "request-success-rate", "thresholdRange": {"min": 99}, "interval": "1m"},
                                 {"name": "request-duration", "thresholdRange": {"max": 500}, "interval": "1m"}]},
    }
    if kind == "BlueGreen":
        body["analysis"] = {"interval": "10s", "threshold": 5, "iterations": 5}
    elif provider == "apisix":
        body["routeRef"] = ROUTE_REF
    elif provider == "skipper":
        body["ingressRef"] = INGRESS_REF
    body.update(spec)
    return {"apiVersion": "rollout.gitops.dev/v1alpha1", "kind": kind,
            "metadata": {"name": "podinfo", "namespace": "test"}, "spec": body}


def problems(obj: dict[str, Any]) -> list[tuple[str, str]]:
    return [(p.path, p.message) for p in validate_text(yaml.safe_dump(obj), "canary.yaml").problems]


def with_analysis(obj: dict[str, Any], **changes: Any) -> dict[str, Any]:
    out = copy.deepcopy(obj)
    out["spec"]["analysis"].update(changes)
    for key, value in changes.items():
        if value is None:
            del out["spec"]["analysis"][key]
    return out


@pytest.mark.parametrize("provider", ["traefik", "apisix", "skipper"])
def test_a_weighted_canary_is_valid(provider: str) -> None:
    assert problems(release(provider)) == []


@pytest.mark.parametrize("provider", ["traefik", "apisix", "skipper"])
def test_ab_testing_is_refused_naming_the_provider_and_match(provider: str) -> None:
    obj = with_analysis(release(provider), stepWeight=None, maxWeight=None, iterations=10,
                        match=[{"headers": {"x-canary": {"exact": "insider"}}}])
    [(path, message)] = problems(obj)
    assert path == "spec.provider" and f"provider '{provider}' cannot route A/B tests (analysis.match)" in message


@pytest.mark.parametrize("provider", ["traefik", "apisix", "skipper"])
@pytest.mark.parametrize("field, value", [("mirror", True), ("sessionAffinity", {"cookieName": "canary"})])
def test_mirroring_and_session_affinity_are_refused_by_name(provider: str, field: str, value: Any) -> None:
    [(path, message)] = problems(with_analysis(release(provider), **{field: value}))
    assert path == f"spec.analysis.{field}" and f"is not supported for provider '{provider}'" in message


def test_each_provider_needs_its_ref() -> None:
    skipper, apisix = release("skipper"), release("apisix")
    del skipper["spec"]["ingressRef"], apisix["spec"]["routeRef"]
    assert problems(skipper) == [("spec.ingressRef", "is required with provider skipper: name the Ingress whose "
                                                     "traffic is split")]
    assert problems(apisix) == [("spec.routeRef", "is required with provider apisix: name the ApisixRoute whose "
                                                  "traffic is split")]


def test_a_route_ref_without_apisix_is_refused() -> None:
    [(path, message)] = problems(release("traefik", routeRef=ROUTE_REF))
    assert path == "spec.routeRef" and "only provider apisix splits" in message


def test_apisix_builtin_metrics_are_judged_by_threshold_only() -> None:
    compare = with_analysis(release("apisix"), judge="compare")
    assert [p for p, _ in problems(compare)] == ["spec.analysis.judge", "spec.analysis.judge"]
    assert "counts the canary and the primary in one series" in problems(compare)[0][1]
    one = release("apisix")
    one["spec"]["analysis"]["metrics"][1]["compare"] = {"direction": "increase", "tolerance": 0.2}
    assert [p for p, _ in problems(one)] == ["spec.analysis.metrics[1].compare"]
    # a custom query names its own series: the primary's can be compared
    custom = with_analysis(release("apisix"), judge="compare",
                           metrics=[{"name": "errors", "query": "sum(rate(apisix_http_status[1m]))"}])
    assert problems(custom) == []


@pytest.mark.parametrize("provider, field", [("apisix", "routeRef"), ("skipper", "ingressRef")])
def test_a_bluegreen_cannot_name_the_object_they_split(provider: str, field: str) -> None:
    [(path, message)] = problems(release(provider, kind="BlueGreen"))
    assert path == "spec.provider" and f"spec.{field}" in message and "use a Canary" in message
    assert problems(release("traefik", kind="BlueGreen")) == []


def test_the_demo_refuses_a_comparing_judge_with_apisix(capsys: pytest.CaptureFixture[str]) -> None:
    from rollout.cli import main

    assert main(["demo", "--provider", "apisix", "--judge", "sequential"]) == 2
    assert "use --judge threshold with --provider apisix" in capsys.readouterr().err
