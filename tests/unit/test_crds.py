"""The CRDs are valid Kubernetes objects with structural schemas, and `schema_errors` enforces them.

The CRD files are checked by a real Kubernetes schema validator (kubernetes-validate), by the
structural-schema rules the API server applies, and against the enums the Python API uses, so
the operator never writes a status field the server would prune or a phase it would reject.
"""

from __future__ import annotations

import copy
import shutil
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import jsonschema
import kubernetes_validate
import pytest
import yaml

from analysis.providers.rules import RULES
from rollout.api import spec as api_spec
from rollout.api import status as api_status
from rollout.api.errors import FieldError
from rollout.api.kinds import GROUP
from rollout.api.schema import crd_documents, crds_dir, known_kinds, schema_errors, to_json_schema

API = f"{GROUP}/v1alpha1"
K8S_VERSION = kubernetes_validate.latest_version()

EXPECTED = {
    "Canary": ("canaries", "rcanary"),
    "BlueGreen": ("bluegreens", "bg"),
    "MetricTemplate": ("metrictemplates", "rmt"),
    "GitSource": ("gitsources", "gsrc"),
    "AlertProvider": ("alertproviders", "ralert"),
}


def crds() -> dict[str, dict[str, Any]]:
    return {d["spec"]["names"]["kind"]: d for d in crd_documents()}


def openapi(kind: str) -> dict[str, Any]:
    schema: dict[str, Any] = crds()[kind]["spec"]["versions"][0]["schema"]["openAPIV3Schema"]
    return schema


def node(kind: str, dotted: str) -> dict[str, Any]:
    """The schema node at a dotted path; `[]` steps into array items."""
    cur = openapi(kind)
    for part in dotted.split("."):
        cur = cur["items"] if part == "[]" else cur["properties"][part]
    return cur


# --- the CRD manifests ---------------------------------------------------------------------------


def test_each_kind_has_its_own_file_and_nothing_else_is_there() -> None:
    files = sorted(p.name for p in crds_dir().glob("*.yaml"))
    assert files == ["alertproviders.yaml", "bluegreens.yaml", "canaries.yaml", "gitsources.yaml",
                     "metrictemplates.yaml"]
    for name in files:
        docs = [d for d in yaml.safe_load_all((crds_dir() / name).read_text()) if d]
        assert len(docs) == 1
        assert docs[0]["spec"]["names"]["plural"] + ".yaml" == name


@pytest.mark.parametrize("kind", sorted(EXPECTED))
def test_crd_passes_kubernetes_validate_strict(kind: str) -> None:
    kubernetes_validate.validate(crds()[kind], K8S_VERSION, strict=True)


def test_kubernetes_validate_catches_a_broken_crd() -> None:
    """Guards the test above: the validator really looks at our documents."""
    broken = copy.deepcopy(crds()["Canary"])
    broken["spec"]["versions"][0]["servd"] = True
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(broken, K8S_VERSION, strict=True)


@pytest.mark.parametrize("kind", sorted(EXPECTED))
def test_names_scope_version_subresource_categories(kind: str) -> None:
    crd = crds()[kind]
    plural, short = EXPECTED[kind]
    assert crd["apiVersion"] == "apiextensions.k8s.io/v1"
    assert crd["metadata"]["name"] == f"{plural}.{GROUP}"
    spec = crd["spec"]
    assert spec["group"] == GROUP
    assert spec["scope"] == "Namespaced"
    names = spec["names"]
    assert (names["kind"], names["plural"], names["singular"], names["listKind"]) == (
        kind,
        plural,
        kind.lower(),
        f"{kind}List",
    )
    assert names["shortNames"] == [short]
    assert names["categories"] == ["rollout-gitops"]
    [version] = spec["versions"]
    assert (version["name"], version["served"], version["storage"]) == ("v1alpha1", True, True)
    assert version["subresources"] == {"status": {}}
    assert openapi(kind)["properties"]["spec"]["type"] == "object"


def test_known_kinds_are_the_five_kinds_of_the_group() -> None:
    assert known_kinds() == {(GROUP, k) for k in EXPECTED}


def _walk(schema: dict[str, Any], path: str = "") -> Iterator[tuple[str, dict[str, Any]]]:
    yield path, schema
    for key, child in schema.get("properties", {}).items():
        yield from _walk(child, f"{path}.{key}")
    if isinstance(schema.get("items"), dict):
        yield from _walk(schema["items"], f"{path}[]")
    if isinstance(schema.get("additionalProperties"), dict):
        yield from _walk(schema["additionalProperties"], f"{path}{{}}")


def _branches(schema: dict[str, Any]) -> Iterator[dict[str, Any]]:
    for key in ("oneOf", "anyOf", "allOf"):
        for branch in schema.get(key, []):
            yield branch
            yield from _branches(branch)
    if "not" in schema:
        yield schema["not"]
        yield from _branches(schema["not"])


@pytest.mark.parametrize("kind", sorted(EXPECTED))
def test_schema_is_structural(kind: str) -> None:
    """The rules the API server applies to apiextensions.k8s.io/v1 schemas (a structural schema)."""
    for path, sub in _walk(openapi(kind)):
        special = sub.get("x-kubernetes-int-or-string") or sub.get("x-kubernetes-preserve-unknown-fields")
        assert "type" in sub or special, f"{kind}{path}: no type"
        assert not ("properties" in sub and "additionalProperties" in sub), f"{kind}{path}"
        if sub.get("type") == "array":
            assert "items" in sub, f"{kind}{path}: array without items"
        for branch in _branches(sub):
            for banned in ("type", "description", "default", "additionalProperties", "nullable"):
                assert banned not in branch, f"{kind}{path}: {banned} inside oneOf/anyOf/allOf/not"
            for name in branch.get("required", []):
                assert name in sub.get("properties", {}), f"{kind}{path}: oneOf requires undeclared {name}"
        for name in sub.get("required", []):
            assert name in sub.get("properties", {}), f"{kind}{path}: requires undeclared {name}"
        if "default" in sub:
            jsonschema.validate(sub["default"], to_json_schema(sub))


@pytest.mark.parametrize("kind", sorted(EXPECTED))
def test_printer_columns_point_at_declared_fields(kind: str) -> None:
    columns = crds()[kind]["spec"]["versions"][0]["additionalPrinterColumns"]
    assert len({c["name"] for c in columns}) == len(columns)
    for column in columns:
        path = column["jsonPath"].split("[")[0].strip(".")
        node(kind, path)  # KeyError when the column shows a field that does not exist
        assert column["type"] in {"string", "integer", "number", "boolean", "date"}


@pytest.mark.parametrize("kind", ["Canary", "BlueGreen"])
def test_release_printer_columns(kind: str) -> None:
    columns = crds()[kind]["spec"]["versions"][0]["additionalPrinterColumns"]
    default = [(c["name"], c["jsonPath"]) for c in columns if not c.get("priority")]
    assert default == [
        ("Status", ".status.phase"),
        ("Weight", ".status.canaryWeight"),
        ("FailedChecks", ".status.failedChecks"),
        ("LastTransitionTime", ".status.lastTransitionTime"),
    ]
    wide = {c["name"] for c in columns if c.get("priority") == 1}
    assert {"Suspended", "Interval", "Judge"} <= wide
    if kind == "Canary":
        assert {"Mirror", "StepWeight", "StepWeights", "MaxWeight"} <= wide


def test_enums_match_the_python_api() -> None:
    """One source of truth per enum: the CRD must accept exactly what the Python API can hold."""
    providers = set(node("Canary", "spec.provider")["enum"])
    assert providers == {p.value for p in api_spec.Provider} | set(api_spec.PROVIDER_ALIASES)
    assert node("BlueGreen", "spec.provider")["enum"] == node("Canary", "spec.provider")["enum"]
    for kind in ("Canary", "BlueGreen"):
        assert node(kind, "spec.analysis.judge")["enum"] == [j.value for j in api_spec.Judge]
        assert node(kind, "spec.git.revert")["enum"] == [m.value for m in api_spec.RevertMode]
        assert node(kind, "spec.git.push")["enum"] == [m.value for m in api_spec.PushMode]
        assert node(kind, "spec.analysis.metrics.[].compare.direction")["enum"] == [d.value for d in api_spec.Direction]
        assert set(node(kind, "spec.analysis.webhooks.[].type")["enum"]) == {"", *api_spec.WebhookType}
        assert node(kind, "status.phase")["enum"] == [p.value for p in api_status.Phase]
        assert node(kind, "status.revert.state")["enum"] == [s.value for s in api_status.RevertState]
        assert node(kind, "status.history.[].outcome")["enum"] == [o.value for o in api_status.RunOutcome]
        assert node(kind, "status.history")["maxItems"] == api_status.HISTORY_LIMIT


def test_metric_provider_types_and_fields_reach_the_parser() -> None:
    """The provider's type has no enum (the parser refuses an unknown type naming the known ones, so
    adding a provider needs no CRD change), and a type's own fields are kept by the server
    (preserve-unknown-fields) for the parser to check against that type."""
    assert "enum" not in node("MetricTemplate", "spec.provider.type")
    assert node("MetricTemplate", "spec.provider")["x-kubernetes-preserve-unknown-fields"] is True
    for key in ("address", "secretRef", "insecureSkipVerify", "region"):
        assert key in node("MetricTemplate", "spec.provider")["properties"]
    for key in ("query", "canaryQuery", "primaryQuery"):
        assert node("MetricTemplate", f"spec.{key}")["type"] == "string"
    for rules in RULES.values():
        own = {field: "x" for field in rules.fields}
        obj = {"apiVersion": API, "kind": "MetricTemplate", "metadata": {"name": "t"},
               "spec": {"provider": {"type": rules.type, **own}, "query": "q"}}
        assert schema_errors(obj) == []


def test_bounds_and_defaults() -> None:
    analysis = "spec.analysis"
    for field in ("stepWeight", "maxWeight", "stepWeightPromotion", "stepWeights.[]"):
        sub = node("Canary", f"{analysis}.{field}")
        assert (sub["type"], sub["minimum"], sub["maximum"]) == ("integer", 1, 100), field
    assert node("Canary", f"{analysis}.threshold")["minimum"] == 1
    assert node("Canary", f"{analysis}.iterations")["minimum"] == 1
    assert node("Canary", "spec.progressDeadlineSeconds")["minimum"] == 1
    alpha = node("Canary", f"{analysis}.alpha")
    assert alpha["exclusiveMinimum"] is True and alpha["exclusiveMaximum"] is True
    assert (alpha["minimum"], alpha["maximum"], alpha["default"]) == (0, 1, 0.05)
    assert node("Canary", f"{analysis}.judge")["default"] == "threshold"
    assert node("Canary", f"{analysis}.metrics.[].compare.tolerance")["minimum"] == 0
    assert node("Canary", "spec.git.revert")["default"] == "auto"
    assert node("Canary", "spec.git.push")["default"] == "direct"
    assert node("BlueGreen", "spec.autoPromotion")["default"] is True
    sdd = node("BlueGreen", "spec.scaleDownDelaySeconds")
    assert (sdd["type"], sdd["minimum"], sdd["default"]) == ("integer", 0, 30)
    gs = openapi("GitSource")["properties"]["spec"]
    defaults = {k: v.get("default") for k, v in gs["properties"].items()}
    assert defaults["branch"] == "main" and defaults["path"] == "./" and defaults["interval"] == "1m"
    assert defaults["prune"] is True and defaults["selfHeal"] is True
    assert gs["required"] == ["url"]
    # query, or canaryQuery and primaryQuery: the parser says which is missing.
    assert "required" not in openapi("MetricTemplate")["properties"]["spec"]
    assert node("Canary", "spec.service.targetPort") == {
        "description": "Container port number or name.",
        "x-kubernetes-int-or-string": True,
    }


def test_flagger_canary_fields_are_all_declared() -> None:
    service = set(node("Canary", "spec.service")["properties"])
    assert {
        "name",
        "port",
        "portName",
        "targetPort",
        "match",
        "headers",
        "retries",
        "trafficPolicy",
        "gatewayRefs",
        "hosts",
        "gateways",
        "apex",
        "primary",
        "canary",
        "corsPolicy",
        "rewrite",
        "mirror",
        "timeout",
        "delegation",
    } <= service
    analysis = set(node("Canary", "spec.analysis")["properties"])
    assert {
        "interval",
        "threshold",
        "iterations",
        "maxWeight",
        "stepWeight",
        "stepWeights",
        "stepWeightPromotion",
        "mirror",
        "mirrorWeight",
        "sessionAffinity",
        "alerts",
        "match",
        "canaryReadyThreshold",
        "primaryReadyThreshold",
        "metrics",
        "webhooks",
        "judge",
        "alpha",
        "warmup",
    } <= analysis
    metric = set(node("Canary", "spec.analysis.metrics.[]")["properties"])
    assert metric == {
        "name",
        "interval",
        "threshold",
        "thresholdRange",
        "query",
        "templateRef",
        "templateVariables",
        "compare",
        "dryRun",
        "warmup",
    }
    top = set(node("Canary", "spec")["properties"])
    assert {
        "provider",
        "targetRef",
        "autoscalerRef",
        "ingressRef",
        "upstreamRef",
        "routeRef",
        "service",
        "revertOnDeletion",
        "suspend",
        "skipAnalysis",
        "progressDeadlineSeconds",
        "metricsServer",
        "analysis",
        "git",
    } <= top
    assert set(node("Canary", "spec.git")["properties"]) == {
        "source",
        "url",
        "branch",
        "path",
        "secretRef",
        "revert",
        "push",
        "author",
        "pullRequest",
    }


def test_bluegreen_shares_service_and_git_with_canary() -> None:
    assert node("BlueGreen", "spec.service") == node("Canary", "spec.service")
    assert node("BlueGreen", "spec.git") == node("Canary", "spec.git")
    assert node("BlueGreen", "status") == node("Canary", "status")
    assert set(node("BlueGreen", "spec.analysis")["properties"]) == {
        "interval",
        "iterations",
        "threshold",
        "metrics",
        "webhooks",
        "alerts",
        "judge",
        "alpha",
        "warmup",
        "lookInterval",
        "scoring",
    }
    assert node("BlueGreen", "spec.analysis.alerts") == node("Canary", "spec.analysis.alerts")
    assert node("BlueGreen", "spec.analysis.scoring") == node("Canary", "spec.analysis.scoring")
    assert node("GitSource", "spec.alerts.[]") == node("Canary", "spec.analysis.alerts.[]")


def test_alert_enums_match_the_python_api() -> None:
    assert node("AlertProvider", "spec.type")["enum"] == [t.value for t in api_spec.AlertProviderType]
    assert node("Canary", "spec.analysis.alerts.[].severity")["enum"] == ["", *api_spec.AlertSeverity]


def test_status_declares_everything_the_operator_writes() -> None:
    """The status has no preserve-unknown-fields: an undeclared field would be pruned by the server."""
    status_schema = node("Canary", "status")
    assert "x-kubernetes-preserve-unknown-fields" not in status_schema
    assert node("Canary", "status.analysis.metrics.[]")["x-kubernetes-preserve-unknown-fields"] is True
    t = datetime(2025, 1, 2, 3, 4, 5, tzinfo=UTC)
    full = api_status.ReleaseStatus(
        phase=api_status.Phase.REVERTED,
        canary_weight=10,
        failed_checks=2,
        iterations=3,
        last_applied_spec="abc",
        last_promoted_spec="def",
        last_transition_time=t,
        observed_generation=4,
        candidate=api_status.Candidate(spec="abc", revision="1234", started_at=t, committed_at=t, failed_at=t,
                                       restored_at=t),
        revert=api_status.RevertStatus(
            state=api_status.RevertState.PUSHED, commit="c0ffee", reverts=("1234",), message="m", branch="b"
        ),
        analysis=api_status.AnalysisStatus(
            verdict="fail",
            checked_at=t,
            metrics=(api_status.MetricStatus(name="m", verdict="fail", value=1.5, primary=1.0, limit="<1"),),
        ),
        conditions=(api_status.Condition(type="Promoted", status="False", reason="Reverted", last_transition_time=t),),
        switched_at=t,
        intent=api_status.Intent(seq=3, phase="Finalising", checksum="abc",
                                 actions=({"kind": "Emit", "reason": "Succeeded", "message": "m", "warning": False},)),
        intents=3,
        command="retry",
        history=(api_status.RunRecord(outcome=api_status.RunOutcome.REVERTED, spec="abc", started_at=t, ended_at=t,
                                      revision="1234", committed_at=t, failed_at=t, restored_at=t, reverted_at=t,
                                      revert_commit="c0ffee"),),
    )
    written = {k: v for k, v in full.to_dict().items() if v is not None}
    strict = to_json_schema(status_schema)
    assert list(jsonschema.Draft202012Validator(strict).iter_errors(written)) == []
    written["madeUp"] = 1
    assert list(jsonschema.Draft202012Validator(strict).iter_errors(written)) != []


# --- schema_errors ------------------------------------------------------------------------------


def canary(**spec: Any) -> dict[str, Any]:
    base: dict[str, Any] = {
        "apiVersion": API,
        "kind": "Canary",
        "metadata": {"name": "podinfo", "namespace": "test"},
        "spec": {
            "provider": "gatewayapi:v1",
            "targetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": "podinfo"},
            "service": {"port": 9898, "targetPort": "http"},
            "analysis": {"interval": "1m", "threshold": 5, "maxWeight": 50, "stepWeight": 10},
        },
    }
    base["spec"].update(spec)
    return base


def with_analysis(**fields: Any) -> dict[str, Any]:
    obj = canary()
    obj["spec"]["analysis"].update(fields)
    return obj


FULL_CANARY = """
apiVersion: rollout.gitops.dev/v1alpha1
kind: Canary
metadata:
  name: podinfo
  namespace: test
spec:
  provider: istio
  targetRef: {apiVersion: apps/v1, kind: Deployment, name: podinfo}
  autoscalerRef:
    apiVersion: autoscaling/v2
    kind: HorizontalPodAutoscaler
    name: podinfo
    primaryScalerReplicas: {minReplicas: 2, maxReplicas: 5}
  progressDeadlineSeconds: 120
  skipAnalysis: false
  suspend: false
  revertOnDeletion: true
  service:
    port: 9898
    targetPort: 9898
    portName: http
    gateways: [istio-system/public-gateway]
    hosts: [app.example.com]
    match:
      - uri: {prefix: /api}
        headers: {x-tenant: {exact: blue}}
    retries: {attempts: 3, perTryTimeout: 1s, retryOn: "gateway-error,connect-failure"}
    headers:
      request: {add: {x-release: canary}, remove: [x-debug]}
    trafficPolicy:
      tls: {mode: ISTIO_MUTUAL}
      loadBalancer: {consistentHash: {httpCookie: {name: user, ttl: 0s}}}
    apex: {labels: {team: web}, annotations: {owner: web}}
    primary: {labels: {role: primary}}
    canary: {labels: {role: canary}}
  analysis:
    interval: 30s
    threshold: 3
    stepWeights: [5, 10, 25, 50]
    stepWeightPromotion: 50
    judge: sequential
    alpha: 0.01
    canaryReadyThreshold: 100
    primaryReadyThreshold: 100
    sessionAffinity: {cookieName: flagger-cookie, maxAge: 21600}
    metrics:
      - name: request-success-rate
        interval: 1m
        thresholdRange: {min: 99}
      - name: latency
        templateRef: {name: latency, namespace: istio-system}
        templateVariables: {quantile: "0.99"}
        compare: {direction: increase, tolerance: 0.1}
      - name: errors
        query: sum(rate(errors_total[1m]))
        threshold: 5
    webhooks:
      - {name: gate, type: confirm-rollout, url: "http://loadtester.test/gate/check"}
      - {name: smoke, type: pre-rollout, url: "http://loadtester.test/", timeout: 30s, retries: 2}
      - {name: load, type: rollout, url: "http://loadtester.test/", metadata: {cmd: "hey -z 1m"}}
      - {name: step, type: confirm-traffic-increase, url: "http://loadtester.test/gate/step"}
      - {name: promote, type: confirm-promotion, url: "http://loadtester.test/gate/promote"}
      - {name: notify, type: post-rollout, url: "http://loadtester.test/done", muteAlert: true}
      - {name: abort, type: rollback, url: "http://loadtester.test/rollback/check"}
      - {name: events, type: event, url: "http://events.test/", disableTLS: true}
    alerts:
      - {name: on-call, severity: error, providerRef: {name: slack, namespace: flagger}}
  git:
    source: apps
    branch: main
    path: ./deploy
    secretRef: {name: git-credentials}
    revert: auto
    push: branch
    author: {name: Release Bot, email: bot@example.com}
status:
  phase: Progressing
  canaryWeight: 10
"""

# Flagger's own tutorial canaries (docs/gitbook/tutorials), apiVersion changed.
FLAGGER_CANARIES = {
    "istio-progressive-delivery": """
apiVersion: flagger.app/v1beta1
kind: Canary
metadata:
  name: podinfo
  namespace: test
spec:
  targetRef:
    apiVersion: apps/v1
    kind: Deployment
    name: podinfo
  progressDeadlineSeconds: 60
  autoscalerRef:
    apiVersion: autoscaling/v2beta2
    kind: HorizontalPodAutoscaler
    name: podinfo
  service:
    port: 9898
    targetPort: 9898
    gateways:
    - public-gateway.istio-system.svc.cluster.local
    hosts:
    - app.example.com
    trafficPolicy:
      tls:
        mode: DISABLE
    retries:
      attempts: 3
      perTryTimeout: 1s
      retryOn: "gateway-error,connect-failure,refused-stream"
  analysis:
    interval: 1m
    threshold: 5
    maxWeight: 50
    stepWeight: 10
    metrics:
    - name: request-success-rate
      thresholdRange:
        min: 99
      interval: 1m
    - name: request-duration
      thresholdRange:
        max: 500
      interval: 30s
    webhooks:
      - name: acceptance-test
        type: pre-rollout
        url: http://flagger-loadtester.test/
        timeout: 30s
        metadata:
          type: bash
          cmd: "curl -sd 'test' http://podinfo-canary:9898/token | grep token"
      - name: load-test
        url: http://flagger-loadtester.test/
        timeout: 5s
        metadata:
          cmd: "hey -z 1m -q 10 -c 2 http://podinfo-canary.test:9898/"
""",
    "istio-ab-testing": """
apiVersion: flagger.app/v1beta1
kind: Canary
metadata:
  name: podinfo
  namespace: test
spec:
  targetRef:
    apiVersion: apps/v1
    kind: Deployment
    name: podinfo
  progressDeadlineSeconds: 60
  autoscalerRef:
    apiVersion: autoscaling/v2
    kind: HorizontalPodAutoscaler
    name: podinfo
  service:
    port: 9898
    gateways:
    - istio-system/public-gateway
    hosts:
    - app.example.com
    trafficPolicy:
      tls:
        mode: DISABLE
  analysis:
    interval: 1m
    iterations: 10
    threshold: 2
    match:
      - headers:
          user-agent:
            regex: ".*Firefox.*"
      - headers:
          cookie:
            regex: "^(.*?;)?(type=insider)(;.*)?$"
    metrics:
    - name: request-success-rate
      thresholdRange:
        min: 99
      interval: 1m
    - name: request-duration
      thresholdRange:
        max: 500
      interval: 30s
    webhooks:
      - name: load-test
        url: http://flagger-loadtester.test/
        timeout: 15s
        metadata:
          cmd: "hey -z 1m -q 10 -c 2 -H 'Cookie: type=insider' http://podinfo.test:9898/"
""",
    "gatewayapi-session-affinity": """
apiVersion: flagger.app/v1beta1
kind: Canary
metadata:
  name: podinfo
  namespace: test
spec:
  targetRef:
    apiVersion: apps/v1
    kind: Deployment
    name: podinfo
  progressDeadlineSeconds: 60
  autoscalerRef:
    apiVersion: autoscaling/v2beta2
    kind: HorizontalPodAutoscaler
    name: podinfo
  service:
    port: 9898
    targetPort: 9898
    hosts:
     - localproject.contour.io
    gatewayRefs:
      - name: contour
        namespace: projectcontour
  analysis:
    interval: 1m
    threshold: 5
    maxWeight: 50
    stepWeight: 10
    sessionAffinity:
      cookieName: flagger-cookie
      maxAge: 21600
    metrics:
    - name: error-rate
      templateRef:
        name: error-rate
        namespace: flagger-system
      thresholdRange:
        max: 1
      interval: 1m
    - name: latency
      templateRef:
        name: latency
        namespace: flagger-system
      thresholdRange:
         max: 0.5
      interval: 30s
    webhooks:
      - name: smoke-test
        type: pre-rollout
        url: http://flagger-loadtester.test/
        timeout: 15s
        metadata:
          type: bash
          cmd: "curl -sd 'anon' http://podinfo-canary.test:9898/token | grep token"
      - name: load-test
        url: http://flagger-loadtester.test/
        timeout: 5s
        metadata:
          cmd: "hey -z 2m -q 10 -c 2 -host localproject.contour.io http://envoy.projectcontour/"
""",
    "nginx-progressive-delivery": """
apiVersion: flagger.app/v1beta1
kind: Canary
metadata:
  name: podinfo
  namespace: test
spec:
  provider: nginx
  targetRef:
    apiVersion: apps/v1
    kind: Deployment
    name: podinfo
  ingressRef:
    apiVersion: networking.k8s.io/v1
    kind: Ingress
    name: podinfo
  autoscalerRef:
    apiVersion: autoscaling/v2beta2
    kind: HorizontalPodAutoscaler
    name: podinfo
  progressDeadlineSeconds: 60
  service:
    port: 80
    targetPort: 9898
  analysis:
    interval: 10s
    threshold: 10
    maxWeight: 50
    stepWeight: 5
    metrics:
    - name: request-success-rate
      thresholdRange:
        min: 99
      interval: 1m
    webhooks:
      - name: acceptance-test
        type: pre-rollout
        url: http://flagger-loadtester.test/
        timeout: 30s
        metadata:
          type: bash
          cmd: "curl -sd 'test' http://podinfo-canary/token | grep token"
      - name: load-test
        url: http://flagger-loadtester.test/
        timeout: 5s
        metadata:
          cmd: "hey -z 1m -q 10 -c 2 http://app.example.com/"
""",
}


def test_full_canary_has_no_errors() -> None:
    assert schema_errors(yaml.safe_load(FULL_CANARY)) == []


@pytest.mark.parametrize("name", sorted(FLAGGER_CANARIES))
def test_flagger_tutorial_canary_is_valid_once_its_api_version_changes(name: str) -> None:
    doc = yaml.safe_load(FLAGGER_CANARIES[name])
    assert schema_errors(doc) is None  # flagger.app is not our group
    doc["apiVersion"] = API
    assert schema_errors(doc) == []


def test_other_kinds_are_valid() -> None:
    bluegreen = {
        "apiVersion": API,
        "kind": "BlueGreen",
        "metadata": {"name": "web"},
        "spec": {
            "provider": "kubernetes",
            "targetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": "web"},
            "service": {"port": 80, "targetPort": 8080},
            "analysis": {
                "interval": "30s",
                "threshold": 2,
                "iterations": 5,
                "judge": "compare",
                "metrics": [{"name": "request-success-rate", "compare": {"direction": "decrease"}}],
                "webhooks": [{"name": "smoke", "type": "pre-rollout", "url": "http://t/"}],
            },
            "autoPromotion": False,
            "scaleDownDelaySeconds": 0,
            "previewService": {"name": "web-preview", "port": 80},
            "git": {"url": "file:///srv/git/apps.git", "revert": "files"},
        },
    }
    template = {
        "apiVersion": API,
        "kind": "MetricTemplate",
        "metadata": {"name": "latency"},
        "spec": {
            "provider": {
                "type": "prometheus",
                "address": "http://prometheus:9090",
                "insecureSkipVerify": True,
                "secretRef": {"name": "prom"},
            },
            "query": "histogram_quantile(0.99, rate(x_bucket{ns='{{ namespace }}'}[{{ interval }}]))",
        },
    }
    source = {
        "apiVersion": API,
        "kind": "GitSource",
        "metadata": {"name": "apps"},
        "spec": {
            "url": "ssh://git@example.com/apps.git",
            "branch": "prod",
            "path": "./clusters/prod",
            "interval": "30s",
            "secretRef": {"name": "deploy-key"},
            "prune": False,
            "selfHeal": True,
            "suspend": False,
        },
        "status": {"anything": "goes"},
    }
    for obj in (bluegreen, template, source):
        assert schema_errors(obj) == [], obj["kind"]


INVALID: list[tuple[str, dict[str, Any], list[FieldError]]] = [
    (
        "step weight above 100",
        with_analysis(stepWeight=150),
        [FieldError("spec.analysis.stepWeight", "must be between 1 and 100, got 150")],
    ),
    (
        "threshold below 1",
        with_analysis(threshold=0),
        [FieldError("spec.analysis.threshold", "must be at least 1, got 0")],
    ),
    (
        "unknown judge",
        with_analysis(judge="bayes"),
        [FieldError("spec.analysis.judge", "must be one of threshold, compare, sequential, got 'bayes'")],
    ),
    (
        "alpha outside (0, 1)",
        with_analysis(alpha=1),
        [FieldError("spec.analysis.alpha", "must be greater than 0 and less than 1, got 1")],
    ),
    (
        "misspelt field",
        with_analysis(stepweight=10),
        [FieldError("spec.analysis.stepweight", "unknown field; did you mean 'stepWeight'?")],
    ),
    (
        "unknown field with nothing close",
        canary(colour="blue"),
        [FieldError("spec.colour", "unknown field")],
    ),
    (
        "integer given as a string",
        canary(service={"port": "9898"}),
        [FieldError("spec.service.port", "must be an integer, got string '9898'")],
    ),
    (
        "missing targetRef",
        {**canary(), "spec": {k: v for k, v in canary()["spec"].items() if k != "targetRef"}},
        [FieldError("spec.targetRef", "is required")],
    ),
    (
        "metric without a name, range bound as text",
        with_analysis(metrics=[{"name": "ok"}, {"thresholdRange": {"min": "99"}}]),
        [
            FieldError("spec.analysis.metrics[1].name", "is required"),
            FieldError("spec.analysis.metrics[1].thresholdRange.min", "must be a number, got string '99'"),
        ],
    ),
    (
        "unknown webhook type",
        with_analysis(webhooks=[{"name": "w", "url": "http://x/", "type": "pre"}]),
        [
            FieldError(
                "spec.analysis.webhooks[0].type",
                'must be one of "", confirm-rollout, pre-rollout, rollout, confirm-traffic-increase, '
                "confirm-promotion, post-rollout, rollback, event, got 'pre'",
            )
        ],
    ),
    (
        "compare direction and negative tolerance",
        with_analysis(metrics=[{"name": "m", "compare": {"direction": "up", "tolerance": -0.5}}]),
        [
            FieldError(
                "spec.analysis.metrics[0].compare.direction", "must be one of increase, decrease, either, got 'up'"
            ),
            FieldError("spec.analysis.metrics[0].compare.tolerance", "must be at least 0, got -0.5"),
        ],
    ),
    (
        "provider this operator does not route",
        canary(provider="ambassador"),
        [
            FieldError(
                "spec.provider",
                "must be one of gatewayapi, gatewayapi:v1, gatewayapi:v1beta1, istio, nginx, smi, smi:v1alpha1, "
                "smi:v1alpha2, smi:v1alpha3, osm, linkerd, kubernetes, kuma, appmesh, appmesh:v1beta2, contour, gloo, "
                "knative, traefik, apisix, skipper, got 'ambassador'",
            )
        ],
    ),
    (
        "git revert mode and push of the wrong type",
        canary(git={"revert": "always", "push": True, "secretRef": {}}),
        [
            FieldError("spec.git.push", "must be a string, got boolean true"),
            FieldError("spec.git.revert", "must be one of auto, commit, files, off, got 'always'"),
            FieldError("spec.git.secretRef.name", "is required"),
        ],
    ),
    (
        "both stepWeight and iterations",
        with_analysis(iterations=10),
        [
            FieldError(
                "spec.analysis", "must set only one of iterations, stepWeight, stepWeights, got iterations, stepWeight"
            )
        ],
    ),
    (
        "neither stepWeight, stepWeights nor iterations, and no threshold",
        canary(analysis={"interval": "1m"}),
        [
            FieldError("spec.analysis", "must set one of iterations, stepWeight, stepWeights"),
            FieldError("spec.analysis.threshold", "is required"),
        ],
    ),
    (
        "step weights out of range",
        with_analysis(stepWeight=None, stepWeights=[10, 0, 101]),
        [
            FieldError("spec.analysis.stepWeights[1]", "must be between 1 and 100, got 0"),
            FieldError("spec.analysis.stepWeights[2]", "must be between 1 and 100, got 101"),
        ],
    ),
    (
        "Istio string match with two kinds of match",
        canary(service={"port": 80, "match": [{"uri": {"exact": "/a", "prefix": "/"}}]}),
        [FieldError("spec.service.match[0].uri", "must set only one of exact, prefix, regex, got exact, prefix")],
    ),
    (
        "A/B header match with no operator",
        with_analysis(stepWeight=None, iterations=5, match=[{"headers": {"x-canary": {}}}]),
        [
            FieldError("spec.analysis.match[0].headers.x-canary", "must set one of exact, prefix, suffix, regex"),
        ],
    ),
    (
        "targetPort is an int or a string",
        canary(service={"port": 80, "targetPort": True}),
        [FieldError("spec.service.targetPort", "must be an integer or a string, got boolean true")],
    ),
    (
        "misspelt spec, bad metadata",
        {"apiVersion": API, "kind": "Canary", "metadata": [], "specs": {}},
        [
            FieldError("metadata", "must be an object, got a list"),
            FieldError("spec", "is required"),
            FieldError("specs", "unknown field; did you mean 'spec'?"),
        ],
    ),
    (
        "label value that is not a string, under a key with dots",
        canary(service={"port": 80, "apex": {"labels": {"app.kubernetes.io/name": 5}}}),
        [FieldError("spec.service.apex.labels['app.kubernetes.io/name']", "must be a string, got integer 5")],
    ),
    (
        "too many gateway refs",
        canary(service={"port": 80, "gatewayRefs": [{"name": f"g{i}"} for i in range(33)]}),
        [FieldError("spec.service.gatewayRefs", "must have at most 32 items, got 33")],
    ),
    (
        "blue/green scale-down delay negative, preview without name",
        {
            "apiVersion": API,
            "kind": "BlueGreen",
            "spec": {
                "targetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": "web"},
                "service": {"port": 80},
                "analysis": {"interval": "1m", "threshold": 1, "iterations": 0},
                "scaleDownDelaySeconds": -1,
                "previewService": {"port": 80},
            },
        },
        [
            FieldError("spec.analysis.iterations", "must be at least 1, got 0"),
            FieldError("spec.previewService.name", "is required"),
            FieldError("spec.scaleDownDelaySeconds", "must be at least 0, got -1"),
        ],
    ),
    (
        "metric template: provider type of the wrong type",
        {"apiVersion": API, "kind": "MetricTemplate", "spec": {"provider": {"type": 7}, "query": "q"}},
        [FieldError("spec.provider.type", "must be a string, got integer 7")],
    ),
    (
        "git source without url, prune as text",
        {"apiVersion": API, "kind": "GitSource", "spec": {"prune": "yes"}},
        [
            FieldError("spec.prune", "must be a boolean, got string 'yes'"),
            FieldError("spec.url", "is required"),
        ],
    ),
    (
        "version we do not serve",
        {**canary(), "apiVersion": f"{GROUP}/v1beta1"},
        [FieldError("apiVersion", "must be one of rollout.gitops.dev/v1alpha1, got 'rollout.gitops.dev/v1beta1'")],
    ),
]


@pytest.mark.parametrize(("obj", "expected"), [(o, e) for _, o, e in INVALID], ids=[n for n, _, _ in INVALID])
def test_schema_errors_name_the_field_and_the_fix(obj: dict[str, Any], expected: list[FieldError]) -> None:
    assert schema_errors(obj) == sorted(expected)


def test_status_and_metadata_are_only_type_checked() -> None:
    obj = canary()
    obj["metadata"] = {"name": "x", "whatever": {"nested": 1}}
    obj["status"] = {"phase": "NotAPhase", "canaryWeight": "lots"}
    assert schema_errors(obj) == []
    obj["status"] = "broken"
    assert schema_errors(obj) == [FieldError("status", "must be an object, got string 'broken'")]


def test_null_fields_count_as_absent_like_the_api_server_prunes_them() -> None:
    obj = with_analysis(stepWeight=None, iterations=3, judge=None)
    obj["spec"]["git"] = None
    assert schema_errors(obj) == []
    obj["spec"]["targetRef"] = None
    assert schema_errors(obj) == [FieldError("spec.targetRef", "is required")]
    obj = with_analysis(stepWeights=[10, None])
    del obj["spec"]["analysis"]["stepWeight"]
    assert schema_errors(obj) == [FieldError("spec.analysis.stepWeights[1]", "must be an integer, got null")]


def test_foreign_objects_are_not_ours() -> None:
    assert schema_errors({"apiVersion": "apps/v1", "kind": "Deployment", "spec": {"bogus": 1}}) is None
    assert schema_errors({"apiVersion": API, "kind": "Rollout"}) is None
    assert schema_errors({"kind": "Canary"}) is None


def test_crds_dir_can_be_overridden(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    shutil.copy(crds_dir() / "gitsources.yaml", tmp_path / "gitsources.yaml")
    monkeypatch.setenv("ROLLOUT_CRDS_DIR", str(tmp_path))
    assert known_kinds() == {(GROUP, "GitSource")}
    assert schema_errors(canary()) is None
    assert [d["kind"] for d in crd_documents()] == ["CustomResourceDefinition"]
    monkeypatch.setenv("ROLLOUT_CRDS_DIR", str(tmp_path / "missing"))
    with pytest.raises(FileNotFoundError, match="ROLLOUT_CRDS_DIR"):
        known_kinds()
