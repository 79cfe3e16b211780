"""Parsing of our custom resources: Flagger's defaults and meaning, steps, and every refusal.

Each invalid spec in the tables names the exact field path and message a user will read, so a
change of wording is a deliberate change of the user interface.
"""

from __future__ import annotations

import copy
import re
from pathlib import Path
from typing import Any

import pytest
import yaml

from analysis.providers.rules import RULES
from rollout.api.errors import FieldError, ValidationError
from rollout.api.manifests import check_object
from rollout.api.parse import (
    API_VERSION,
    FLAGGER_API_VERSION,
    parse_bluegreen,
    parse_canary,
    parse_gitsource,
    parse_metric_template,
    parse_resource,
)
from rollout.api.spec import (
    BlueGreen,
    Canary,
    Direction,
    GitHost,
    GitSource,
    Judge,
    MetricTemplate,
    ObjectRef,
    Provider,
    PullRequestSpec,
    PushMode,
    RevertMode,
    ThresholdRange,
    WebhookType,
)

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"
DELETE = object()


def canary(**analysis: Any) -> dict[str, Any]:
    return {
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
                "metrics": [
                    {"name": "request-success-rate", "thresholdRange": {"min": 99}},
                    {"name": "request-duration", "thresholdRange": {"max": 500}},
                ],
                "webhooks": [{"name": "load-test", "url": "http://loadtester.test/"}],
                **analysis,
            },
        },
    }


def bluegreen() -> dict[str, Any]:
    obj = canary()
    obj["kind"] = "BlueGreen"
    analysis = obj["spec"]["analysis"]
    for key in ("maxWeight", "stepWeight"):
        del analysis[key]
    analysis["iterations"] = 5
    return obj


def metric_template() -> dict[str, Any]:
    return {
        "apiVersion": API_VERSION,
        "kind": "MetricTemplate",
        "metadata": {"name": "error-rate"},
        "spec": {"provider": {"type": "prometheus", "address": "http://prometheus:9090"}, "query": "sum(up)"},
    }


def git_source() -> dict[str, Any]:
    return {
        "apiVersion": API_VERSION,
        "kind": "GitSource",
        "metadata": {"name": "config"},
        "spec": {"url": "https://git.example.com/org/config.git", "interval": "1m"},
    }


BASES = {"Canary": canary, "BlueGreen": bluegreen, "MetricTemplate": metric_template, "GitSource": git_source}
_STEP = re.compile(r"([^.\[\]]+)|\[(\d+)\]")


def mutate(obj: dict[str, Any], path: str, value: Any) -> dict[str, Any]:
    """A copy of `obj` with the field at `path` (dotted, `[i]` for list items) set, or removed with DELETE."""
    out = copy.deepcopy(obj)
    keys: list[str | int] = [k if k else int(i) for k, i in _STEP.findall(path)]
    node: Any = out
    for key in keys[:-1]:
        node = node[key]
    if value is DELETE:
        del node[keys[-1]]
    else:
        node[keys[-1]] = value
    return out


def errors_of(obj: dict[str, Any]) -> list[FieldError]:
    with pytest.raises(ValidationError) as caught:
        parse_resource(obj)
    return caught.value.errors


# --- defaults and meaning ------------------------------------------------------------------------------


def test_flagger_defaults_apply_to_a_minimal_canary() -> None:
    obj = {
        "apiVersion": API_VERSION,
        "kind": "Canary",
        "metadata": {"name": "podinfo"},
        "spec": {
            "targetRef": {"name": "podinfo"},
            "service": {"port": 9898},
            "analysis": {
                "stepWeight": 20,
                "metrics": [{"name": "request-success-rate", "thresholdRange": {"min": 99}}],
                "webhooks": [{"name": "load", "url": "http://loadtester/"}],
            },
        },
    }
    c = parse_canary(obj)
    a = c.spec.analysis
    assert (a.interval, a.threshold, a.max_weight, a.judge, a.alpha) == (60.0, 1, 100, Judge.THRESHOLD, 0.05)
    assert a.metrics[0].interval == 60.0
    assert (a.webhooks[0].type, a.webhooks[0].timeout) == (WebhookType.ROLLOUT, 10.0)
    assert c.spec.progress_deadline_seconds == 600
    assert c.spec.provider == Provider.ISTIO  # Flagger's -mesh-provider default
    assert c.spec.service.port_name == "http"
    assert c.spec.target_ref == ObjectRef(api_version="apps/v1", kind="Deployment", name="podinfo")
    assert c.metadata.namespace == "default"
    assert a.steps == (20, 40, 60, 80, 100)


@pytest.mark.parametrize(
    ("written", "provider"),
    [
        ("gatewayapi:v1", Provider.GATEWAYAPI),
        ("gatewayapi:v1beta1", Provider.GATEWAYAPI),
        ("smi:v1alpha3", Provider.SMI),
        ("linkerd", Provider.LINKERD),
        ("nginx", Provider.NGINX),
    ],
)
def test_provider_spellings_map_to_one_router(written: str, provider: Provider) -> None:
    obj = mutate(canary(), "spec.provider", written)
    if provider == Provider.NGINX:
        obj = mutate(obj, "spec.ingressRef", {"apiVersion": "networking.k8s.io/v1", "kind": "Ingress", "name": "web"})
    if provider == Provider.GATEWAYAPI:
        obj = mutate(obj, "spec.service.gatewayRefs", [{"name": "public", "namespace": "gateway-system"}])
    assert parse_canary(obj).spec.provider == provider


_BLUE_GREEN = {"iterations": 5, "stepWeight": DELETE, "maxWeight": DELETE}
_AB = {**_BLUE_GREEN, "match": [{"headers": {"x-canary": {"exact": "insider"}}}]}
_DEFAULTED = ("the operator's default provider '{}' (spec.provider is not set; the default is rollout run "
              "--mesh-provider or ROLLOUT_MESH_PROVIDER)")
_NO_STEPS = (" switches all traffic at once and cannot shift it in steps: remove stepWeight and set iterations for "
             "a blue/green release, or set spec.provider to a mesh or gateway provider (gatewayapi, istio, linkerd, "
             "nginx, smi)")
_NO_AB = (" cannot route A/B tests (analysis.match) by header or cookie: set spec.provider to one of "
          "appmesh, contour, gatewayapi, gloo, istio, linkerd, nginx")


def _with(obj: dict[str, Any], changes: dict[str, Any]) -> dict[str, Any]:
    for key, value in changes.items():
        obj = mutate(obj, f"spec.analysis.{key}", value)
    return obj


@pytest.mark.parametrize(
    ("kind", "written", "mesh_provider", "analysis", "effective", "error"),
    [
        # A Canary without spec.provider routes with the operator's default: Flagger's istio unless told.
        ("Canary", None, None, {}, Provider.ISTIO, None),
        ("Canary", None, Provider.LINKERD, {}, Provider.LINKERD, None),
        ("Canary", None, Provider.KUBERNETES, _BLUE_GREEN, Provider.KUBERNETES, None),
        ("Canary", None, Provider.ISTIO, _AB, Provider.ISTIO, None),
        # spec.provider wins over the default.
        ("Canary", "smi", Provider.LINKERD, {}, Provider.SMI, None),
        ("Canary", "kubernetes", Provider.ISTIO, _BLUE_GREEN, Provider.KUBERNETES, None),
        # Flagger's blue/green Canary: kubernetes with iterations, explicit or defaulted.
        ("Canary", "kubernetes", None, {"iterations": 3, "stepWeight": DELETE}, Provider.KUBERNETES, None),
        # A BlueGreen (our kind) without provider switches the Service selector, whatever the default.
        ("BlueGreen", None, Provider.ISTIO, {}, Provider.KUBERNETES, None),
        # What the provider cannot do is refused naming the field, and the default when it applied.
        ("Canary", "kubernetes", None, {}, None, ("spec.analysis.stepWeight", "provider 'kubernetes'" + _NO_STEPS)),
        ("Canary", "kubernetes", None, {**_BLUE_GREEN, "stepWeightPromotion": 50}, None,
         ("spec.analysis.stepWeightPromotion",
          "provider 'kubernetes'" + _NO_STEPS.replace("stepWeight", "stepWeightPromotion", 1))),
        ("Canary", None, Provider.KUBERNETES, {}, None,
         ("spec.analysis.stepWeight", _DEFAULTED.format("kubernetes") + _NO_STEPS)),
        ("Canary", "smi", None, _AB, None, ("spec.provider", "provider 'smi'" + _NO_AB)),
        ("Canary", None, Provider.KUBERNETES, _AB, None, ("spec.provider", _DEFAULTED.format("kubernetes") + _NO_AB)),
        ("Canary", None, Provider.SMI, _AB, None, ("spec.provider", _DEFAULTED.format("smi") + _NO_AB)),
    ],
)
def test_provider_of_a_release_without_one_is_the_mesh_default(
    kind: str, written: str | None, mesh_provider: Provider | None, analysis: dict[str, Any],
    effective: Provider | None, error: tuple[str, str] | None,
) -> None:
    obj = _with(canary(), analysis) if kind == "Canary" else bluegreen()
    obj = mutate(obj, "spec.provider", written if written is not None else DELETE)
    given = {} if mesh_provider is None else {"mesh_provider": mesh_provider}
    if error is None:
        assert parse_resource(obj, **given).spec.provider == effective  # type: ignore[union-attr]
        assert check_object(obj, **given) == []
    else:
        with pytest.raises(ValidationError) as caught:
            parse_resource(obj, **given)
        assert caught.value.errors == [FieldError(*error)]
        assert check_object(obj, **given) == [FieldError(*error)]


def test_gatewayapi_needs_gateway_refs() -> None:
    with pytest.raises(ValidationError) as e:
        parse_canary(mutate(canary(), "spec.provider", "gatewayapi"))
    assert [str(x) for x in e.value.errors] == [
        "spec.service.gatewayRefs: is required with provider gatewayapi: name the Gateways to attach to"
    ]


@pytest.mark.parametrize(
    ("metric", "expected"),
    [
        # Flagger's deprecated `threshold`: a floor for the success rate ...
        ({"name": "request-success-rate", "threshold": 99}, ThresholdRange(min=99.0)),
        # ... a ceiling (milliseconds) for the duration ...
        ({"name": "request-duration", "threshold": 500}, ThresholdRange(max=500.0)),
        # ... and a ceiling for any custom query, even one named like a built-in.
        ({"name": "errors", "query": "sum(rate(e[1m]))", "threshold": 2.5}, ThresholdRange(max=2.5)),
        ({"name": "request-success-rate", "query": "sum(up)", "threshold": 1}, ThresholdRange(max=1.0)),
        # thresholdRange wins over the deprecated form, as in Flagger.
        ({"name": "request-duration", "threshold": 1, "thresholdRange": {"min": 5, "max": 9}}, ThresholdRange(5, 9)),
    ],
)
def test_deprecated_threshold_keeps_flaggers_meaning(metric: dict[str, Any], expected: ThresholdRange) -> None:
    c = parse_canary(canary(metrics=[metric]))
    assert c.spec.analysis.metrics[0].threshold_range == expected


def test_a_flagger_canary_means_the_same_once_its_api_version_changes() -> None:
    docs = list(yaml.safe_load_all((EXAMPLES / "flagger-podinfo.yaml").read_text()))
    ours = next(d for d in docs if d["kind"] == "Canary")
    flagger = {**ours, "apiVersion": FLAGGER_API_VERSION}
    assert parse_canary(flagger) == parse_canary(ours)
    errors = errors_of(flagger)
    assert errors == [
        FieldError(
            "apiVersion",
            "this is a Flagger Canary: change apiVersion from flagger.app/v1beta1 to rollout.gitops.dev/v1alpha1 "
            "(the spec keeps its meaning)",
        )
    ]
    c = parse_resource(ours, Provider.GATEWAYAPI)  # the tutorial's -mesh-provider
    assert isinstance(c, Canary)
    assert c.spec.provider == Provider.GATEWAYAPI
    a = c.spec.analysis
    assert a.steps == (10, 20, 30, 40, 50)
    assert [(m.name, m.interval, m.threshold_range) for m in a.metrics] == [
        ("error-rate", 60.0, ThresholdRange(max=1.0)),
        ("latency", 30.0, ThresholdRange(max=0.5)),
    ]
    assert a.metrics[0].template_ref == ObjectRef("", "MetricTemplate", "error-rate", "flagger-system")
    assert [(w.name, w.type, w.timeout) for w in a.webhooks] == [
        ("smoke-test", WebhookType.PRE_ROLLOUT, 15.0),
        ("load-test", WebhookType.ROLLOUT, 5.0),
    ]
    assert c.spec.progress_deadline_seconds == 60


def test_deprecated_canary_analysis_is_read_when_analysis_is_absent() -> None:
    obj = canary()
    obj["spec"]["canaryAnalysis"] = obj["spec"].pop("analysis")
    assert parse_canary(obj).spec.analysis.steps == (10, 20, 30, 40, 50)


def test_service_fields_without_a_dataclass_field_are_kept_for_routers() -> None:
    service = {
        "port": 80,
        "targetPort": "http",
        "hosts": ["app.example.com"],
        "gatewayRefs": [{"name": "public", "namespace": "gw"}],
        "retries": {"attempts": 3, "perTryTimeout": "2s"},
        "trafficPolicy": {"tls": {"mode": "ISTIO_MUTUAL"}},
    }
    s = parse_canary(mutate(canary(), "spec.service", service)).spec.service
    assert (s.port, s.target_port, s.hosts) == (80, "http", ("app.example.com",))
    assert s.gateway_refs == ({"name": "public", "namespace": "gw"},)
    assert s.extra == {
        "retries": {"attempts": 3, "perTryTimeout": "2s"},
        "trafficPolicy": {"tls": {"mode": "ISTIO_MUTUAL"}},
    }


def test_template_variables_and_webhook_metadata_become_sorted_pairs() -> None:
    metric = {
        "name": "latency",
        "templateRef": {"name": "latency"},
        "templateVariables": {"route": "/api", "method": "GET", "code": 200},
        "thresholdRange": {"max": 1},
    }
    hook = {"name": "gate", "type": "confirm-promotion", "url": "https://gate/", "metadata": {"z": "1", "a": "2"}}
    a = parse_canary(canary(metrics=[metric], webhooks=[hook])).spec.analysis
    assert a.metrics[0].template_variables == (("code", "200"), ("method", "GET"), ("route", "/api"))
    assert a.webhooks[0].metadata == (("a", "2"), ("z", "1"))
    assert a.hooks(WebhookType.CONFIRM_PROMOTION) == a.webhooks


@pytest.mark.parametrize(
    ("analysis", "steps"),
    [
        ({"stepWeight": 10, "maxWeight": 50}, (10, 20, 30, 40, 50)),
        ({"stepWeight": 30, "maxWeight": 100}, (30, 60, 90, 100)),
        ({"stepWeight": 50, "maxWeight": 50}, (50,)),
        ({"stepWeights": [1, 5, 25, 80], "maxWeight": DELETE, "stepWeight": DELETE}, (1, 5, 25, 80)),
        ({"iterations": 10, "maxWeight": DELETE, "stepWeight": DELETE}, ()),
    ],
)
def test_steps(analysis: dict[str, Any], steps: tuple[int, ...]) -> None:
    obj = canary()
    for key, value in analysis.items():
        obj = mutate(obj, f"spec.analysis.{key}", value)
    assert parse_canary(obj).spec.analysis.steps == steps


def test_compare_judge_needs_no_threshold() -> None:
    metrics = [{"name": "request-duration", "compare": {"direction": "either", "tolerance": 20}}]
    a = parse_canary(canary(metrics=metrics)).spec.analysis
    assert a.metrics[0].compare is not None
    assert (a.metrics[0].compare.direction, a.metrics[0].compare.tolerance) == (Direction.EITHER, 20.0)
    a = parse_canary(canary(judge="sequential", alpha=0.01, metrics=[{"name": "request-duration"}])).spec.analysis
    assert (a.judge, a.alpha, a.metrics[0].threshold_range) == (Judge.SEQUENTIAL, 0.01, None)


def test_other_kinds_parse_with_defaults() -> None:
    bg = parse_resource(bluegreen())
    assert isinstance(bg, BlueGreen)
    assert (bg.spec.analysis.iterations, bg.spec.auto_promotion, bg.spec.scale_down_delay_seconds) == (5, True, 30)
    mt = parse_resource(metric_template())
    assert isinstance(mt, MetricTemplate)
    assert (mt.spec.query, mt.spec.provider.address) == ("sum(up)", "http://prometheus:9090")
    gs = parse_resource(mutate(git_source(), "spec.secretRef", {"name": "creds"}))
    assert isinstance(gs, GitSource)
    assert (gs.spec.branch, gs.spec.path, gs.spec.interval, gs.spec.secret_ref) == ("main", "./", 60.0, "creds")
    for url in ("ssh://git@host/org/repo.git", "git@github.com:org/repo.git", "file:///srv/git/repo.git"):
        assert parse_gitsource(mutate(git_source(), "spec.url", url)).spec.url == url
    assert parse_bluegreen(bluegreen()) == bg
    assert parse_metric_template(metric_template()) == mt


def test_git_spec_in_both_modes() -> None:
    g = parse_canary(mutate(canary(), "spec.git", {"source": "config", "revert": "files"})).spec.git
    assert g is not None and (g.source, g.url, g.revert, g.push) == ("config", None, RevertMode.FILES, PushMode.DIRECT)
    git = {"url": "https://github.com/o/r.git", "branch": "prod", "path": "./apps", "secretRef": {"name": "tok"},
           "push": "branch", "author": {"name": "bot", "email": "bot@example.com"}}  # fmt: skip
    g = parse_canary(mutate(canary(), "spec.git", git)).spec.git
    assert g is not None
    assert (g.url, g.branch, g.path, g.secret_ref, g.push) == ("https://github.com/o/r.git", "prod", "./apps", "tok",
                                                               PushMode.BRANCH)  # fmt: skip
    assert (g.author.name, g.author.email) == ("bot", "bot@example.com")


def test_git_pull_request_fields_and_their_refusals() -> None:
    git = {"source": "config", "push": "pullRequest",
           "pullRequest": {"host": "gitlab", "apiURL": "https://gitlab.example.com/api/v4/", "repository": "g/s/r"}}
    g = parse_canary(mutate(canary(), "spec.git", git)).spec.git
    assert g is not None and g.push is PushMode.PULL_REQUEST
    assert g.pull_request == PullRequestSpec(GitHost.GITLAB, "https://gitlab.example.com/api/v4", "g/s/r")
    inferred = parse_canary(mutate(canary(), "spec.git", {"source": "config", "push": "pullRequest"})).spec.git
    assert inferred is not None and inferred.pull_request == PullRequestSpec()
    bad = {"source": "config", "push": "branch", "pullRequest": {"host": "sourcehut", "apiURL": "ftp://x"}}
    messages = {e.path: e.message for e in errors_of(mutate(canary(), "spec.git", bad))}
    assert "unknown Git host 'sourcehut'" in messages["spec.git.pullRequest.host"]
    assert "http:// or https://" in messages["spec.git.pullRequest.apiURL"]
    assert "only read with push: pullRequest" in messages["spec.git.pullRequest"]


def test_every_problem_is_reported_at_once() -> None:
    obj = canary(interval="5 minutes", stepWeight=60, metrics=[{"name": "error-rate"}])
    paths = {e.path for e in errors_of(obj)}
    assert paths == {"spec.analysis.interval", "spec.analysis.stepWeight", "spec.analysis.metrics[0]"}


# --- semantic refusals (parse) -------------------------------------------------------------------------

HEADER_PROVIDERS = "appmesh, contour, gatewayapi, gloo, istio, linkerd, nginx"
NOT_BUILTIN = "is not a built-in metric (request-success-rate, request-duration); add a query or a templateRef"
NO_STEPS = (
    "set stepWeight (with maxWeight) or stepWeights to shift traffic progressively, or iterations for A/B testing "
    "and blue/green"
)
NO_THRESHOLD = (
    "add a thresholdRange (min and/or max), or a compare block to judge the canary against the primary "
    "(or set analysis.judge to compare or sequential)"
)
BG_SWITCH = "blue/green switches all traffic at once after the iterations pass; remove "
WEBHOOK_TYPES = (
    "confirm-rollout, pre-rollout, rollout, confirm-traffic-increase, confirm-promotion, post-rollout, rollback, event"
)
GIT_URL = "must be an https://, ssh:// or file:// URL, or scp-like user@host:path, got "
DURATION = "must be a duration like 30s, 1m30s or 2h, got "

SEMANTIC: list[tuple[str, str, list[tuple[str, Any]], str, str]] = [
    # (id, kind, [(path, value)...], expected path, expected message)
    ("step-over-max", "Canary", [("spec.analysis.stepWeight", 60)],
     "spec.analysis.stepWeight", "must not exceed maxWeight (50), got 60"),
    ("steps-not-increasing", "Canary",
     [("spec.analysis.stepWeight", DELETE), ("spec.analysis.stepWeights", [10, 30, 20])],
     "spec.analysis.stepWeights[2]", "must be greater than the previous step (30), got 20"),
    ("steps-repeat", "Canary", [("spec.analysis.stepWeight", DELETE), ("spec.analysis.stepWeights", [10, 10])],
     "spec.analysis.stepWeights[1]", "must be greater than the previous step (10), got 10"),
    ("step-out-of-range", "Canary", [("spec.analysis.stepWeight", DELETE), ("spec.analysis.stepWeights", [5, 101])],
     "spec.analysis.stepWeights[1]", "must be between 1 and 100, got 101"),
    ("no-steps", "Canary", [("spec.analysis.stepWeight", DELETE)], "spec.analysis", NO_STEPS),
    ("steps-and-iterations", "Canary", [("spec.analysis.iterations", 10)], "spec.analysis.iterations",
     "iterations cannot be combined with stepWeight or stepWeights: use step weights to shift traffic "
     "progressively, or iterations for A/B testing and blue/green"),
    ("step-and-steps", "Canary", [("spec.analysis.stepWeights", [10, 20])],
     "spec.analysis.stepWeights", "use either stepWeight (with maxWeight) or stepWeights, not both"),
    ("min-over-max", "Canary", [("spec.analysis.metrics[0].thresholdRange", {"min": 99, "max": 50})],
     "spec.analysis.metrics[0].thresholdRange", "min (99) must not exceed max (50)"),
    ("empty-range", "Canary", [("spec.analysis.metrics[0].thresholdRange", {})],
     "spec.analysis.metrics[0].thresholdRange", "set min, max or both"),
    ("not-builtin", "Canary", [("spec.analysis.metrics[1]", {"name": "error-rate", "thresholdRange": {"max": 1}})],
     "spec.analysis.metrics[1]", f"'error-rate' {NOT_BUILTIN}"),
    ("no-threshold", "Canary", [("spec.analysis.metrics[0].thresholdRange", DELETE)],
     "spec.analysis.metrics[0]", NO_THRESHOLD),
    ("query-and-template", "Canary",
     [("spec.analysis.metrics[1]", {"name": "x", "query": "up", "templateRef": {"name": "t"}, "threshold": 1})],
     "spec.analysis.metrics[1]", "use either query or templateRef, not both"),
    ("duplicate-metric", "Canary", [("spec.analysis.metrics[1].name", "request-success-rate")],
     "spec.analysis.metrics[1].name",
     "duplicate metric name 'request-success-rate'; metric names must be unique"),
    ("bad-interval", "Canary", [("spec.analysis.interval", "5 minutes")],
     "spec.analysis.interval", f"{DURATION}'5 minutes'"),
    ("bad-metric-interval", "Canary", [("spec.analysis.metrics[0].interval", "1 hour")],
     "spec.analysis.metrics[0].interval", f"{DURATION}'1 hour'"),
    ("bad-webhook-timeout", "Canary", [("spec.analysis.webhooks[0].timeout", "10")],
     "spec.analysis.webhooks[0].timeout", f"{DURATION}'10'"),
    ("match-needs-header-provider", "Canary",
     [("spec.provider", "smi"), ("spec.analysis.stepWeight", DELETE), ("spec.analysis.iterations", 10),
      ("spec.analysis.match", [{"headers": {"x-canary": {"exact": "insider"}}}])],
     "spec.provider",
     f"provider 'smi' cannot route A/B tests (analysis.match) by header or cookie: set spec.provider to one of "
     f"{HEADER_PROVIDERS}"),
    ("kuma-cannot-match", "Canary",
     [("spec.provider", "kuma"), ("spec.analysis.stepWeight", DELETE), ("spec.analysis.iterations", 10),
      ("spec.analysis.match", [{"headers": {"x-canary": {"exact": "insider"}}}])],
     "spec.provider",
     f"provider 'kuma' cannot route A/B tests (analysis.match) by header or cookie: set spec.provider to one of "
     f"{HEADER_PROVIDERS}"),
    ("kuma-cannot-mirror", "Canary", [("spec.provider", "kuma"), ("spec.analysis.mirror", True)],
     "spec.analysis.mirror", "is not supported for provider 'kuma': only a Canary with provider gatewayapi or "
                             "istio can do it"),
    ("appmesh-cannot-set-cookies", "Canary",
     [("spec.provider", "appmesh"), ("spec.analysis.sessionAffinity", {"cookieName": "flagger-cookie"})],
     "spec.analysis.sessionAffinity", "is not supported for provider 'appmesh': only a Canary with provider "
                                      "gatewayapi or istio can do it"),
    ("appmesh-matches-headers-only", "Canary",
     [("spec.provider", "appmesh:v1beta2"), ("spec.analysis.stepWeight", DELETE), ("spec.analysis.iterations", 10),
      ("spec.analysis.match", [{"headers": {"x-canary": {"exact": "insider"}}, "queryParams": {"a": {"exact": "1"}}}])],
     "spec.analysis.match[0].queryParams",
     "is not supported for provider 'appmesh': App Mesh routes match headers (and cookies, by the Cookie header) "
     "only"),
    ("appmesh-one-header-test", "Canary",
     [("spec.provider", "appmesh"), ("spec.analysis.stepWeight", DELETE), ("spec.analysis.iterations", 10),
      ("spec.analysis.match", [{"headers": {"x-canary": {"exact": "insider", "prefix": "in"}}}])],
     "spec.analysis.match[0].headers.x-canary",
     "must test the header by exactly one of exact, prefix, suffix, regex with provider 'appmesh'"),
    ("appmesh-one-condition", "Canary",
     [("spec.provider", "appmesh"), ("spec.analysis.stepWeight", DELETE), ("spec.analysis.iterations", 10),
      ("spec.analysis.match", [{"headers": {"x-a": {"exact": "1"}}}, {"headers": {"x-b": {"exact": "2"}}}])],
     "spec.analysis.match[1]",
     "provider 'appmesh' routes one condition (its headers must all match): put the headers into match[0], or use "
     "a provider that routes any of several conditions"),
    ("appmesh-timeout", "Canary", [("spec.provider", "appmesh"), ("spec.service.timeout", "15 seconds")],
     "spec.service.timeout", "must be a duration like 15s or 250ms (App Mesh counts milliseconds), got '15 seconds'"),
    ("appmesh-retry-on", "Canary",
     [("spec.provider", "appmesh"), ("spec.service.retries", {"attempts": 3, "retryOn": "gateway-error,5xx"})],
     "spec.service.retries.retryOn",
     "App Mesh retries HTTP requests on server-error, gateway-error, client-error, stream-error; got '5xx'"),
    ("appmesh-uri-prefix-only", "Canary",
     [("spec.provider", "appmesh"), ("spec.service.match", [{"uri": {"regex": "/api/.*"}}])],
     "spec.service.match[0]", "provider 'appmesh' routes by one URI prefix only: match: [{uri: {prefix: /path}}]"),
    ("kuma-no-timeout", "Canary", [("spec.provider", "kuma"), ("spec.service.timeout", "15s")],
     "spec.service.timeout", "is not supported for provider 'kuma': only appmesh, contour, gatewayapi and istio "
                             "write it into the route"),
    ("kubernetes-steps", "Canary", [("spec.provider", "kubernetes")],
     "spec.analysis.stepWeight",
     "provider 'kubernetes' switches all traffic at once and cannot shift it in steps: remove stepWeight and set "
     "iterations for a blue/green release, or set spec.provider to a mesh or gateway provider (gatewayapi, istio, "
     "linkerd, nginx, smi)"),
    ("match-needs-iterations", "Canary", [("spec.analysis.match", [{"headers": {"x-canary": {"exact": "1"}}}])],
     "spec.analysis.match",
     "A/B matching needs iterations (how many checks to run on the matched traffic) instead of step weights"),
    ("unknown-provider", "Canary", [("spec.provider", "ambassador")],
     "spec.provider", "unknown provider 'ambassador'; known: apisix, appmesh, contour, gatewayapi, gloo, istio, "
     "knative, kubernetes, kuma, linkerd, nginx, osm, skipper, smi, traefik"),
    ("nginx-needs-ingress", "Canary", [("spec.provider", "nginx")],
     "spec.ingressRef", "is required with provider nginx: name the Ingress whose traffic is split"),
    ("target-kind", "Canary", [("spec.targetRef.kind", "StatefulSet")],
     "spec.targetRef.kind", "must be DaemonSet or Deployment, got 'StatefulSet'"),
    ("target-service", "BlueGreen", [("spec.targetRef.kind", "Service")],
     "spec.targetRef.kind", "a Service target is not supported; name the DaemonSet or Deployment behind it "
                            "(its pods are cloned into <name>-primary)"),
    ("webhook-scheme", "Canary", [("spec.analysis.webhooks[0].url", "ftp://loadtester/")],
     "spec.analysis.webhooks[0].url", "must be an http:// or https:// URL, got 'ftp://loadtester/'"),
    ("webhook-type", "Canary", [("spec.analysis.webhooks[0].type", "pre")],
     "spec.analysis.webhooks[0].type", f"unknown webhook type 'pre'; known: {WEBHOOK_TYPES}"),
    ("alpha-range", "Canary", [("spec.analysis.alpha", 1.5)],
     "spec.analysis.alpha", "must be between 0 and 1 (exclusive), got 1.5"),
    ("alpha-zero", "Canary", [("spec.analysis.alpha", 0)],
     "spec.analysis.alpha", "must be between 0 and 1 (exclusive), got 0"),
    ("judge", "Canary", [("spec.analysis.judge", "bayes")],
     "spec.analysis.judge", "unknown judge 'bayes'; known: threshold, compare, sequential"),
    ("compare-direction", "Canary", [("spec.analysis.metrics[0].compare", {"direction": "up"})],
     "spec.analysis.metrics[0].compare.direction", "unknown direction 'up'; known: increase, decrease, either"),
    ("git-both", "Canary", [("spec.git", {"source": "cfg", "url": "https://g/r.git"})], "spec.git",
     "set either source (a GitSource this operator syncs) or url (a repository Flux or Argo CD syncs), not both"),
    ("git-neither", "Canary", [("spec.git", {"branch": "main"})], "spec.git",
     "set source to the name of a GitSource, or url (with branch and path) when Flux or Argo CD syncs the manifests"),
    ("git-url-scheme", "Canary", [("spec.git", {"url": "http://g/r.git"})], "spec.git.url", f"{GIT_URL}'http://g/r.git'"),
    ("git-source-branch", "Canary", [("spec.git", {"source": "cfg", "branch": "prod"})], "spec.git.branch",
     "branch comes from the GitSource 'cfg'; remove it here, or use url instead of source"),
    ("git-revert-mode", "Canary", [("spec.git", {"source": "cfg", "revert": "reset"})], "spec.git.revert",
     "unknown revert mode 'reset'; known: auto, commit, files, off"),
    ("name-missing", "Canary", [("metadata.name", DELETE)], "metadata.name", "is required"),
    ("bg-iterations", "BlueGreen", [("spec.analysis.iterations", DELETE)], "spec.analysis.iterations",
     "is required: the number of checks the new version must pass before all traffic switches to it"),
    ("bg-step-weight", "BlueGreen", [("spec.analysis.stepWeight", 10)], "spec.analysis.stepWeight",
     f"{BG_SWITCH}stepWeight"),
    ("bg-step-weights", "BlueGreen", [("spec.analysis.stepWeights", [10, 50])], "spec.analysis.stepWeights",
     f"{BG_SWITCH}stepWeights"),
    ("bg-match", "BlueGreen", [("spec.analysis.match", [{"headers": {"a": {"exact": "b"}}}])], "spec.analysis.match",
     "blue/green switches all traffic at once; for A/B testing use a Canary with iterations and match"),
    ("gs-url-scheme", "GitSource", [("spec.url", "http://git.example.com/r.git")], "spec.url",
     f"{GIT_URL}'http://git.example.com/r.git'"),
    ("gs-url-missing", "GitSource", [("spec.url", DELETE)], "spec.url", "is required"),
    ("gs-interval", "GitSource", [("spec.interval", "often")], "spec.interval", f"{DURATION}'often'"),
    ("gs-path-up", "GitSource", [("spec.path", "../other-team")], "spec.path",
     "must be a folder inside the repository, relative to its root like ./apps/web, got '../other-team'"),
    ("gs-path-absolute", "GitSource", [("spec.path", "/etc")], "spec.path",
     "must be a folder inside the repository, relative to its root like ./apps/web, got '/etc'"),
    ("gs-branch", "GitSource", [("spec.branch", "main branch")], "spec.branch",
     "must be a Git branch name like main or release/1.x, got 'main branch'"),
    ("git-url-path", "Canary", [("spec.git", {"url": "https://g/r.git", "path": "apps/../../x"})], "spec.git.path",
     "must be a folder inside the repository, relative to its root like ./apps/web, got 'apps/../../x'"),
    ("git-url-branch", "Canary", [("spec.git", {"url": "https://g/r.git", "branch": "--force"})], "spec.git.branch",
     "must be a Git branch name like main or release/1.x, got '--force'"),
    ("mt-provider", "MetricTemplate", [("spec.provider.type", "keptn")], "spec.provider.type",
     f"unknown metric provider 'keptn'; known: {', '.join(sorted(RULES))}"),
    ("mt-address", "MetricTemplate", [("spec.provider.address", "prometheus:9090")], "spec.provider.address",
     "must be an http:// or https:// URL, got 'prometheus:9090'"),
    ("mt-query", "MetricTemplate", [("spec.query", "  \n")], "spec.query",
     "is required: a query that returns one number (or canaryQuery and primaryQuery)"),
    ("unknown-kind", "Canary", [("kind", "Rollout")], "kind",
     "unknown kind 'Rollout'; known: AlertProvider, BlueGreen, Canary, GitSource, MetricTemplate"),
    ("api-version", "Canary", [("apiVersion", "rollout.gitops.dev/v2")], "apiVersion",
     "must be rollout.gitops.dev/v1alpha1, got 'rollout.gitops.dev/v2'"),
]  # fmt: skip


@pytest.mark.parametrize(
    ("kind", "changes", "path", "message"), [c[1:] for c in SEMANTIC], ids=[c[0] for c in SEMANTIC]
)
def test_semantic_refusals(kind: str, changes: list[tuple[str, Any]], path: str, message: str) -> None:
    obj = BASES[kind]()
    parse_resource(obj)  # the base is valid: only the change below can be the cause
    for field_path, value in changes:
        obj = mutate(obj, field_path, value)
    assert FieldError(path, message) in errors_of(obj)


def test_semantic_table_is_large_and_distinct() -> None:
    assert len({c[0] for c in SEMANTIC}) == len(SEMANTIC) >= 25
    assert len({(c[3], c[4]) for c in SEMANTIC}) == len(SEMANTIC)


# --- refusals the CRD schema makes (through `rollout validate`'s check_object) -------------------------

SCHEMA: list[tuple[str, str, list[tuple[str, Any]], str, str]] = [
    ("misspelt-field", "Canary", [("spec.analysis.stepweight", 5)], "spec.analysis.stepweight",
     "unknown field; did you mean 'stepWeight'?"),
    ("port-type", "Canary", [("spec.service.port", "80")], "spec.service.port", "must be an integer, got string '80'"),
    ("threshold-minimum", "Canary", [("spec.analysis.threshold", 0)], "spec.analysis.threshold",
     "must be at least 1, got 0"),
    ("max-weight-range", "Canary", [("spec.analysis.maxWeight", 120)], "spec.analysis.maxWeight",
     "must be between 1 and 100, got 120"),
    ("gs-url-required", "GitSource", [("spec.url", DELETE)], "spec.url", "is required"),
]  # fmt: skip


@pytest.mark.parametrize(("kind", "changes", "path", "message"), [c[1:] for c in SCHEMA], ids=[c[0] for c in SCHEMA])
def test_schema_refusals(kind: str, changes: list[tuple[str, Any]], path: str, message: str) -> None:
    obj = BASES[kind]()
    assert check_object(obj) == []
    for field_path, value in changes:
        obj = mutate(obj, field_path, value)
    errors = check_object(obj)
    assert errors is not None
    assert FieldError(path, message) in errors
    # Where the schema speaks about a field, its message is the only one for that field.
    assert [e for e in errors if e.path == path] == [FieldError(path, message)]


def test_schema_message_wins_over_the_semantic_one_on_the_same_field() -> None:
    obj = canary(alpha=1.5)
    semantic = FieldError("spec.analysis.alpha", "must be between 0 and 1 (exclusive), got 1.5")
    assert semantic in errors_of(obj)
    errors = check_object(obj)
    assert errors is not None
    on_alpha = [e for e in errors if e.path == "spec.analysis.alpha"]
    assert len(on_alpha) == 1 and on_alpha[0] != semantic


def test_flagger_api_version_is_checked_as_ours_with_a_hint() -> None:
    obj = mutate(canary(), "apiVersion", FLAGGER_API_VERSION)
    obj = mutate(obj, "spec.analysis.stepWeight", 60)
    assert check_object(obj) == [
        FieldError(
            "apiVersion",
            "this is a Flagger Canary: change apiVersion from flagger.app/v1beta1 to rollout.gitops.dev/v1alpha1 "
            "(the spec keeps its meaning)",
        ),
        FieldError("spec.analysis.stepWeight", "must not exceed maxWeight (50), got 60"),
    ]


def test_other_kinds_are_not_ours() -> None:
    assert check_object({"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "x"}}) is None
    assert check_object({"apiVersion": FLAGGER_API_VERSION, "kind": "Rollout"}) is None
    # Flagger's AlertProvider is one of ours now: it is told to change its apiVersion.
    found = check_object({"apiVersion": FLAGGER_API_VERSION, "kind": "AlertProvider"})
    assert found is not None and found[0].path == "apiVersion"


def test_parse_never_crashes_on_wrong_types() -> None:
    weird: list[Any] = [None, 1, "x", [], {}, [1], {"a": 1}, True, 1.5]
    base = canary()
    paths = ["spec", "spec.analysis", "spec.service", "spec.targetRef", "spec.analysis.metrics",
             "spec.analysis.metrics[0]", "spec.analysis.webhooks[0]", "spec.analysis.stepWeights", "metadata",
             "spec.git", "spec.analysis.match", "spec.analysis.metrics[0].thresholdRange"]  # fmt: skip
    for path in paths:
        for value in weird:
            try:
                parse_resource(mutate(base, path, value))
            except ValidationError as e:
                assert e.errors, (path, value)
            assert check_object(mutate(base, path, value)) is not None


# --- no field silently ignored --------------------------------------------------------------------

FLAGGER_FIELD = "Flagger's field is not supported by rollout; remove it"


@pytest.mark.parametrize(("path", "value"), [
    ("spec.service.headless", True),
    ("spec.analysis.alerts", [{"name": "slack", "providerRef": {"name": "on-call"}, "madeUp": 1}]),
    ("spec.analysis.canaryReadyThreshold", 50),
    ("spec.analysis.metrics[0].templateRef.apiVersion", "flagger.app/v1beta1"),
    ("spec.analysis.webhooks", [{"name": "w", "url": "http://hook/", "muteAlert": False, "madeUp": 1}]),
])
def test_a_field_no_reader_asks_for_is_refused_by_name(path: str, value: Any) -> None:
    obj = mutate(canary(), path, value) if "metrics[0]" not in path else mutate(
        mutate(canary(), "spec.analysis.metrics[0]", {"name": "m", "templateRef": {"name": "t"},
                                                     "thresholdRange": {"max": 1}}), path, value)
    where = path if not path.endswith(("webhooks", "alerts")) else f"{path}[0].madeUp"
    errors = errors_of(obj)
    assert [e.path for e in errors] == [where]
    known = {"spec.analysis.metrics[0].templateRef.apiVersion", "spec.analysis.webhooks[0].madeUp",
             "spec.analysis.alerts[0].madeUp"}
    assert errors[0].message == ("unknown field; remove it" if where in known else FLAGGER_FIELD)


def test_the_operator_refuses_what_validate_refuses() -> None:
    """The parser (what the operator runs) and `rollout validate` (schema + parser) agree."""
    obj = mutate(canary(), "spec.service.portDiscovery", True)
    obj = mutate(obj, "spec.service.backendTimeout", "5s")
    only_gatewayapi = "is not supported for provider 'istio': only gatewayapi writes it into the route"
    assert errors_of(obj) == [FieldError("spec.service.backendTimeout", only_gatewayapi)]
    assert check_object(obj) == [FieldError("spec.service.backendTimeout", only_gatewayapi)]


def test_free_content_maps_are_values_not_fields() -> None:
    obj = canary()
    obj["spec"]["analysis"]["iterations"] = 5
    del obj["spec"]["analysis"]["stepWeight"], obj["spec"]["analysis"]["maxWeight"]
    obj["spec"]["analysis"]["match"] = [{"headers": {"x-canary": {"exact": "insider"}}}, {"sourceLabels": {"a": "b"}}]
    obj["spec"]["analysis"]["webhooks"] = [{"name": "w", "url": "http://h/", "metadata": {"anything": "goes"}}]
    obj["spec"]["service"]["apex"] = {"labels": {"any.example.com/label": "x"}, "annotations": {"n": "1"}}
    obj["spec"]["service"]["trafficPolicy"] = {"tls": {"mode": "ISTIO_MUTUAL"}, "madeUpButIstios": 1}
    c = parse_canary(obj)
    assert c.spec.analysis.match[0] == {"headers": {"x-canary": {"exact": "insider"}}}
    assert c.spec.service.metadata_of("apex").labels == (("any.example.com/label", "x"),)


@pytest.mark.parametrize(("provider", "refused"), [
    ("istio", []),
    ("gatewayapi", ["spec.service.retries", "spec.service.trafficPolicy"]),
    ("kubernetes", ["spec.service.corsPolicy", "spec.service.retries", "spec.service.trafficPolicy"]),
])
def test_route_options_are_read_only_by_the_providers_that_route_with_them(provider: str, refused: list[str]) -> None:
    obj = mutate(canary(), "spec.provider", provider)
    obj["spec"]["service"].update({"retries": {"attempts": 3}, "trafficPolicy": {"tls": {"mode": "DISABLE"}},
                                   "corsPolicy": {"allowOrigin": ["*"]},
                                   "gatewayRefs": [{"name": "gw"}]})
    if provider == "kubernetes":
        obj["spec"]["analysis"] = {"interval": "1m", "threshold": 2, "iterations": 3}
    if not refused:
        assert set(parse_canary(obj).spec.service.extra) == {"retries", "trafficPolicy", "corsPolicy"}
        return
    errors = errors_of(obj)
    assert [e.path for e in errors] == refused
    assert all(f"is not supported for provider '{provider}'" in e.message for e in errors)


def test_webhook_retries_and_disable_tls_are_read() -> None:
    obj = canary()
    obj["spec"]["analysis"]["webhooks"] = [{"name": "w", "url": "https://h/", "retries": 3, "disableTLS": True}]
    [hook] = parse_canary(obj).spec.analysis.webhooks
    assert (hook.retries, hook.disable_tls) == (3, True)
    obj["spec"]["analysis"]["webhooks"][0]["retries"] = -1
    assert [e.path for e in errors_of(obj)] == ["spec.analysis.webhooks[0].retries"]


def test_osm_is_its_own_provider() -> None:
    assert parse_canary(mutate(canary(), "spec.provider", "osm")).spec.provider == Provider.OSM


def test_port_discovery_and_service_metadata_are_read() -> None:
    obj = canary()
    obj["spec"]["service"].update({"portDiscovery": True, "primary": {"labels": {"a": "1"}},
                                   "canary": {"annotations": {"b": "2"}}})
    s = parse_canary(obj).spec.service
    assert s.port_discovery is True
    assert s.metadata_of("primary").labels == (("a", "1"),)
    assert s.metadata_of("canary").annotations == (("b", "2"),)
    assert s.metadata_of("apex").labels == ()


def test_a_metric_template_field_not_read_is_refused() -> None:
    obj = mutate(metric_template(), "spec.provider.headers", {"a": "b"})
    assert [e.path for e in errors_of(obj)] == ["spec.provider.headers"]


def test_a_bluegreen_refuses_an_unread_field_too() -> None:
    obj = mutate(bluegreen(), "spec.service.headless", True)
    assert errors_of(obj) == [FieldError("spec.service.headless", FLAGGER_FIELD)]
    obj = mutate(bluegreen(), "spec.service.portDiscovery", True)
    assert parse_bluegreen(obj).spec.service.port_discovery is True


def test_revert_on_deletion_is_what_rollout_always_does() -> None:
    obj = mutate(canary(), "spec.revertOnDeletion", True)
    parse_canary(obj)  # Flagger's opt-in is rollout's only behaviour
    refused = errors_of(mutate(canary(), "spec.revertOnDeletion", False))
    assert [e.path for e in refused] == ["spec.revertOnDeletion"]
    assert "always reverts on deletion" in refused[0].message


def test_a_list_holding_an_integer_too_long_to_print_is_refused_with_a_message() -> None:
    """Python refuses to print integers of more than 4300 digits; a message quoting such a list must
    not raise (found by the spec-mutation property test)."""
    from rollout.api.fields import show

    huge = 10 ** 5000
    assert show([huge]) == "a list holding a number too large to print"
    assert show(huge) == "a 5001-digit number"


def test_dry_run_metric_and_warmup_are_read() -> None:
    metrics = [{"name": "request-success-rate", "dryRun": True}, {"name": "request-duration"}]
    a = parse_canary(canary(judge="sequential", metrics=metrics,
                            warmup={"allowance": 1.5, "decay": "45s"})).spec.analysis
    assert [m.dry_run for m in a.metrics] == [True, False]
    assert a.warmup is not None and (a.warmup.allowance, a.warmup.decay) == (1.5, 45.0)
    assert a.warmup.factor(0) == 2.5 and a.warmup.factor(45) == pytest.approx(1 + 1.5 / 2.718281828)
    assert parse_canary(canary()).spec.analysis.warmup is None


def test_a_metric_may_have_its_own_warm_up() -> None:
    metrics = [{"name": "request-success-rate"},
               {"name": "request-duration", "warmup": {"allowance": 0.35, "decay": "20s"}}]
    a = parse_canary(canary(judge="sequential", metrics=metrics, warmup={"allowance": 1, "decay": "20s"})).spec.analysis
    errors, latency = a.metrics
    assert a.warmup_of(errors) == a.warmup and latency.warmup is not None
    assert a.warmup_of(latency) is latency.warmup and latency.warmup.factor(0) == pytest.approx(1.35)
    alone = parse_canary(canary(judge="sequential", metrics=metrics)).spec.analysis
    assert alone.warmup_of(alone.metrics[0]) is None and alone.warmup_of(alone.metrics[1]) is not None


@pytest.mark.parametrize(("changes", "path", "words"), [
    ({"metrics": [{"name": "request-success-rate", "thresholdRange": {"min": 99}, "dryRun": "yes"}]},
     "spec.analysis.metrics[0].dryRun", "must be true or false, got 'yes'"),
    ({"judge": "sequential", "warmup": {"allowance": -1, "decay": "30s"}}, "spec.analysis.warmup.allowance",
     "must be zero or more"),
    ({"judge": "sequential", "warmup": {"allowance": 1, "decay": "soon"}}, "spec.analysis.warmup.decay",
     "must be a duration"),
    ({"judge": "sequential", "warmup": {"allowance": 1, "decay": "0s"}}, "spec.analysis.warmup.decay",
     "longer than zero"),
    ({"judge": "sequential", "warmup": {"decay": "30s"}}, "spec.analysis.warmup.allowance", "is required"),
    ({"warmup": {"allowance": 1, "decay": "30s"}}, "spec.analysis.warmup", "sequential judge only"),
    ({"judge": "sequential", "warmup": {"allowance": 1, "decay": "30s", "start": "1m"}},
     "spec.analysis.warmup.start", "unknown field"),
    ({"metrics": [{"name": "request-duration", "thresholdRange": {"max": 500},
                   "warmup": {"allowance": 1, "decay": "30s"}}]},
     "spec.analysis.metrics[0].warmup", "sequential judge only"),
    ({"judge": "sequential", "metrics": [{"name": "latency", "query": "sum(up)",
                                          "warmup": {"allowance": 1, "decay": "30s"}}]},
     "spec.analysis.metrics[0].warmup", "built-in metrics only"),
    ({"judge": "sequential", "metrics": [{"name": "request-duration", "warmup": {"allowance": 1}}]},
     "spec.analysis.metrics[0].warmup.decay", "is required"),
])
def test_dry_run_and_warmup_are_refused_by_name(changes: dict[str, Any], path: str, words: str) -> None:
    errors = errors_of(canary(**changes))
    assert any(e.path == path and words in e.message for e in errors), errors


# --- knative (Flagger's verifyKnativeCanary and what its knative router cannot do) --------------------


def knative_canary(**analysis: Any) -> dict[str, Any]:
    obj = canary(**analysis)
    obj["spec"].update(provider="knative",
                       targetRef={"apiVersion": "serving.knative.dev/v1", "kind": "Service", "name": "podinfo"})
    del obj["spec"]["service"]
    return obj


def test_a_knative_canary_targets_a_knative_service() -> None:
    release = parse_canary(knative_canary())
    assert release.spec.provider == Provider.KNATIVE
    assert (release.spec.target_ref.api_version, release.spec.target_ref.kind) == ("serving.knative.dev/v1", "Service")


@pytest.mark.parametrize(("changes", "expected"), [
    ([("spec.provider", "istio"), ("spec.service", {"port": 9898})],
     FieldError("spec.provider", "a Knative Service target is routed by provider knative, not 'istio'")),
    ([("spec.targetRef", {"apiVersion": "apps/v1", "kind": "Deployment", "name": "podinfo"})],
     FieldError("spec.targetRef.kind", "provider knative releases a Knative Service: set apiVersion "
                                       "serving.knative.dev/v1 and kind Service")),
    ([("spec.service", {"port": 9898})],
     FieldError("spec.service", "is not used with provider knative (the Knative Service's spec.traffic splits "
                                "traffic between its revisions): remove it")),
    ([("spec.autoscalerRef", {"apiVersion": "autoscaling/v2", "kind": "HorizontalPodAutoscaler", "name": "podinfo"})],
     FieldError("spec.autoscalerRef", "a Knative Service is scaled by Knative's own autoscaler: remove it")),
    ([("spec.analysis.maxWeight", DELETE), ("spec.analysis.stepWeight", DELETE), ("spec.analysis.iterations", 5),
      ("spec.analysis.match", [{"headers": {"x-canary": {"exact": "insider"}}}])],
     FieldError("spec.provider", "provider 'knative' cannot route A/B tests (analysis.match) by header or cookie: "
                                 "set spec.provider to one of " + HEADER_PROVIDERS)),
    ([("spec.analysis.mirror", True)],
     FieldError("spec.analysis.mirror", "is not supported for provider 'knative': only a Canary with provider "
                                        "gatewayapi or istio can do it")),
    ([("spec.analysis.sessionAffinity", {"cookieName": "flagger-cookie"})],
     FieldError("spec.analysis.sessionAffinity", "is not supported for provider 'knative': only a Canary with "
                                                 "provider gatewayapi or istio can do it")),
])
def test_knative_refusals_name_the_field(changes: list[tuple[str, Any]], expected: FieldError) -> None:
    obj = knative_canary()
    for path, value in changes:
        obj = mutate(obj, path, value)
    assert errors_of(obj) == [expected]


def test_a_knative_service_is_no_bluegreen_target() -> None:
    obj = bluegreen()
    obj["spec"].update(provider="knative",
                       targetRef={"apiVersion": "serving.knative.dev/v1", "kind": "Service", "name": "podinfo"})
    del obj["spec"]["service"]
    assert FieldError("spec.provider", "a BlueGreen releases a Deployment or DaemonSet: for a Knative Service use a "
                                       "Canary with provider knative and iterations (all traffic switches after "
                                       "them)") in errors_of(obj)
