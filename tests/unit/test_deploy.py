"""deploy/ (a kustomize base, overlays and components) and the Dockerfile install an operator that
can start and do its work.

Every overlay and component is rendered with the real `kubectl kustomize`, and every object it
yields passes a real Kubernetes schema validator (the ServiceMonitor: the Prometheus Operator's own
CRD schema); the Deployment's command line parses with the real CLI parser and writes only where a
writable volume is mounted; its probes and Service reach the one HTTP port; the kubeconfig it is
given loads with the operator's own loader; and the `rollout-releases` role grants exactly the API
calls the operator makes: the table below is read off the code, and an AST scan of the code makes
sure no typed client call, cluster-wide call or router kind is missing from it.
"""

from __future__ import annotations

import argparse
import ast
import copy
import functools
import json
import os
import re
import shlex
import shutil
import subprocess
import tempfile
import textwrap
from collections.abc import Iterator, Mapping, Sequence
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import kubernetes_validate
import pytest
import yaml
from jsonschema import Draft202012Validator
from kubernetes.config import incluster_config

import rollout
from rollout.api.schema import crd_documents, to_json_schema
from rollout.cli import build_parser
from rollout.engine.kube import SERVICE_ACCOUNT as POD_SERVICE_ACCOUNT
from rollout.engine.kube import api_client, connection
from rollout.routers import appmesh, gatewayapi, istio, knative, kuma, linkerd, objects, smi
from tests.prom import require_prometheus
from tests.tools import missing_tool

ROOT = Path(__file__).resolve().parents[2]
DEPLOY = ROOT / "deploy"
OVERLAYS = {
    "base": DEPLOY / "base",
    "namespaced": DEPLOY / "overlays" / "namespaced",
    "single-replica": DEPLOY / "overlays" / "single-replica",
}
COMPONENTS = {
    "servicemonitor": DEPLOY / "components" / "servicemonitor",
    "grafana-dashboard": DEPLOY / "components" / "grafana-dashboard",
}
DASHBOARD = DEPLOY / "grafana" / "rollout.json"
CRDS = ROOT / "crds"
# The Prometheus Operator's ServiceMonitor CRD (its origin is named at the top of the file).
SERVICEMONITOR_CRD = ROOT / "tests" / "data" / "prometheus-operator" / "servicemonitors.yaml"
DOCKERFILE = ROOT / "Dockerfile"
README = ROOT / "README.md"
NAMESPACE = "rollout-system"
SERVICE_ACCOUNT = "rollout"
RBAC_GROUP = "rbac.authorization.k8s.io"
SA_DIR = "/var/run/secrets/kubernetes.io/serviceaccount"
CLUSTER_SCOPED = {"Namespace", "CustomResourceDefinition", "ClusterRole", "ClusterRoleBinding"}
METRICS_PORT = 8080

Rule = Mapping[str, Any]
Need = tuple[str, str, str]  # (apiGroup, resource, verb)
Doc = dict[str, Any]


def each(group: str, resources: tuple[str, ...], verbs: tuple[str, ...]) -> set[Need]:
    return {(group, r, v) for r in resources for v in verbs}


# What the operator calls, by the module that makes the call. rollout.gitops.apply (the dynamic
# client of GitSource sync) is left out on purpose: it may touch any kind, and has its own role.
NEEDED: frozenset[Need] = frozenset({
    # rollout.handlers (kopf): watches releases and GitSources, patches them for its finalizer and
    # progress annotations; lists/watches CRDs to notice new resources at run time.
    *each("rollout.gitops.dev", ("canaries", "bluegreens", "gitsources"), ("list", "watch", "patch")),
    ("apiextensions.k8s.io", "customresourcedefinitions", "list"),
    ("apiextensions.k8s.io", "customresourcedefinitions", "watch"),
    # rollout.engine.operator: reads the release each tick, writes its status, reads MetricTemplates.
    ("rollout.gitops.dev", "canaries", "get"),
    ("rollout.gitops.dev", "bluegreens", "get"),
    ("rollout.gitops.dev", "canaries/status", "patch"),
    ("rollout.gitops.dev", "bluegreens/status", "patch"),
    ("rollout.gitops.dev", "metrictemplates", "get"),
    # rollout.engine.alerts: the AlertProvider an alert names, read when it is sent (and the Secret
    # holding its address: the secrets `get` below).
    ("rollout.gitops.dev", "alertproviders", "get"),
    # rollout.gitops.source: reads the GitSource, writes its status, lists releases (rollout.cli.releases
    # lists and patches the same for `rollout status|promote|abort|retry`).
    ("rollout.gitops.dev", "gitsources", "get"),
    ("rollout.gitops.dev", "gitsources/status", "patch"),
    # rollout.workloads.builders / rollout.routers.objects: owned objects carry blockOwnerDeletion,
    # which the OwnerReferencesPermissionEnforcement admission plugin checks on the owner.
    ("rollout.gitops.dev", "canaries/finalizers", "update"),
    ("rollout.gitops.dev", "bluegreens/finalizers", "update"),
    # rollout.workloads.deployments (and rollout.gitops.writer reads the target and primary):
    # read, create the primary, replace on promote/orphan, merge-patch spec.replicas to scale
    # (a DaemonSet: its scale-to-zero node selector).
    *each("apps", ("deployments", "daemonsets"), ("get", "create", "update", "patch")),
    # rollout.workloads.deployments and rollout.routers.kubernetes (via routers.objects): Services.
    *each("", ("services",), ("get", "create", "update")),
    # rollout.workloads.autoscalers: the canary's HPA or ScaledObject (read; a ScaledObject paused by a
    # merge patch) and the primary's clone (created, replaced on promotion and orphan).
    *each("autoscaling", ("horizontalpodautoscalers",), ("get", "create", "update")),
    *each("keda.sh", ("scaledobjects",), ("get", "create", "update", "patch")),
    # rollout.engine.events: the engine's own Events.
    ("", "events", "create"),
    # rollout.gitops.credentials: the secretRef of spec.git or of a GitSource; rollout.workloads
    # (config tracking): the ConfigMaps and Secrets the target uses, and their `-primary` copies.
    *each("", ("configmaps", "secrets"), ("get", "create", "update", "delete")),
    # rollout.routers.nginx (via routers.objects): the canary Ingress, deleted on finalize.
    *each("networking.k8s.io", ("ingresses",), ("get", "create", "update", "delete")),
    # rollout.routers.gatewayapi (via routers.route): HTTPRoute weights.
    *each("gateway.networking.k8s.io", ("httproutes",), ("get", "create", "update")),
    # The gatewayapi router checks that the Gateways a route attaches to exist.
    *each("gateway.networking.k8s.io", ("gateways",), ("get",)),
    # rollout.routers.istio: VirtualService weights and the DestinationRules of the subsets.
    *each("networking.istio.io", ("virtualservices", "destinationrules"), ("get", "create", "update")),
    # rollout.routers.smi and rollout.routers.linkerd: TrafficSplit or (A/B) HTTPRoute; linkerd
    # deletes the one a release no longer uses.
    *each("split.smi-spec.io", ("trafficsplits",), ("get", "create", "update", "delete")),
    *each("policy.linkerd.io", ("httproutes",), ("get", "create", "update", "delete")),
    # rollout.routers.kuma: the cluster-scoped TrafficRoute, unowned, so deleted on finalize.
    *each("kuma.io", ("trafficroutes",), ("get", "create", "update", "delete")),
    # rollout.routers.appmesh: VirtualNodes, VirtualRouters and VirtualServices.
    *each("appmesh.k8s.aws", ("virtualnodes", "virtualrouters", "virtualservices"), ("get", "create", "update")),
    # rollout.routers.contour: HTTPProxy weights; rollout.routers.gloo: RouteTable weights and the Upstreams.
    *each("projectcontour.io", ("httpproxies",), ("get", "create", "update")),
    *each("gateway.solo.io", ("routetables",), ("get", "create", "update")),
    *each("gloo.solo.io", ("upstreams",), ("get", "create", "update")),
    # rollout.routers.knative and rollout.workloads.knative: the target Knative Service's spec.traffic
    # and annotations (read-modify-write, never created); its Revisions are read (and by the writer).
    *each("serving.knative.dev", ("services",), ("get", "update")),
    *each("serving.knative.dev", ("revisions",), ("get",)),
    # rollout.routers.traefik: the TraefikService; rollout.routers.apisix: the canary ApisixRoute, deleted
    # on finalize (rollout.routers.skipper's canary Ingress is among the ingresses above).
    *each("traefik.io", ("traefikservices",), ("get", "create", "update")),
    *each("apisix.apache.org", ("apisixroutes",), ("get", "create", "update", "delete")),
    # rollout.engine.cache (--watch-cache): every kind read with `get` above is listed and watched, and
    # its reads answered from memory.
    *each("rollout.gitops.dev", ("metrictemplates", "alertproviders"), ("list", "watch")),
    *each("apps", ("deployments", "daemonsets"), ("list", "watch")),
    *each("", ("services", "configmaps", "secrets"), ("list", "watch")),
    *each("autoscaling", ("horizontalpodautoscalers",), ("list", "watch")),
    *each("keda.sh", ("scaledobjects",), ("list", "watch")),
    *each("networking.k8s.io", ("ingresses",), ("list", "watch")),
    *each("gateway.networking.k8s.io", ("httproutes", "gateways"), ("list", "watch")),
    *each("networking.istio.io", ("virtualservices", "destinationrules"), ("list", "watch")),
    *each("split.smi-spec.io", ("trafficsplits",), ("list", "watch")),
    *each("policy.linkerd.io", ("httproutes",), ("list", "watch")),
    *each("appmesh.k8s.aws", ("virtualnodes", "virtualrouters", "virtualservices"), ("list", "watch")),
    *each("projectcontour.io", ("httpproxies",), ("list", "watch")),
    *each("gateway.solo.io", ("routetables",), ("list", "watch")),
    *each("gloo.solo.io", ("upstreams",), ("list", "watch")),
    *each("serving.knative.dev", ("services", "revisions"), ("list", "watch")),
    *each("traefik.io", ("traefikservices",), ("list", "watch")),
    *each("apisix.apache.org", ("apisixroutes",), ("list", "watch")),
})
# Cluster-scoped resources in the table: a namespaced operator's Role cannot grant them.
CLUSTER_RESOURCES = {("apiextensions.k8s.io", "customresourcedefinitions"), ("kuma.io", "trafficroutes")}

# Leader election: the Lease in the operator's own namespace (rollout.engine.leader), granted by
# the Role rollout-leader-election.
LEADER_NEEDED: frozenset[Need] = frozenset(each("coordination.k8s.io", ("leases",), ("get", "create", "update")))

# Calls that read every namespace, by the operator module that makes them: a namespaced operator
# still needs a ClusterRole for these (deploy/overlays/namespaced: rollout-gitsource-releases).
CLUSTER_WIDE: Mapping[str, frozenset[Need]] = {
    # GitSource sync lists every release so that it leaves the replicas of their targets alone.
    "rollout/gitops/source.py": frozenset(each("rollout.gitops.dev", ("canaries", "bluegreens"), ("list",))),
    # --max-concurrent-releases lists every release once, to learn which run (per namespace under -n).
    "rollout/engine/admission.py": frozenset(each("rollout.gitops.dev", ("canaries", "bluegreens"), ("list",))),
    # The dashboard (--dashboard-addr) lists every release, or those of the operator's namespaces under -n.
    "rollout/engine/dashboard/__init__.py": frozenset(each("rollout.gitops.dev", ("canaries", "bluegreens"),
                                                           ("list",))),
}
CLUSTER_CALL = re.compile(r"^(list|watch)_cluster_custom_object$|_for_all_namespaces$")

# Typed client calls (CoreV1Api, AppsV1Api, NetworkingV1Api, CoordinationV1Api): object -> (group, resource).
TYPED_RESOURCES = {
    "deployment": ("apps", "deployments"),
    "daemon_set": ("apps", "daemonsets"),
    "service": ("", "services"),
    "event": ("", "events"),
    "secret": ("", "secrets"),
    "config_map": ("", "configmaps"),
    "ingress": ("networking.k8s.io", "ingresses"),
    "lease": ("coordination.k8s.io", "leases"),
}
TYPED_VERBS = {"read": "get", "list": "list", "create": "create", "patch": "patch", "replace": "update",
               "delete": "delete"}
TYPED_CALL = re.compile(r"^(read|list|create|patch|replace|delete)_namespaced_([a-z_]+?)(_status|_scale)?$")
# Methods named in the code but never reached for that resource, with the reason.
UNREACHED = {
    ("rollout/routers/objects.py", "delete_namespaced_service"):
        "Objects.delete is generic; only nginx (Ingress), linkerd (TrafficSplit, HTTPRoute) and kuma "
        "(TrafficRoute) call it",
}
OPERATOR_MODULES = [
    *(path for package in ("engine", "workloads", "routers", "gitops")
      for path in sorted((ROOT / "rollout" / package).rglob("*.py"))),
    ROOT / "rollout" / "handlers.py",
]
# `rollout status|promote|abort|retry` run with the user's credentials but ask for the same calls.
SCANNED = [*OPERATOR_MODULES, ROOT / "rollout" / "cli" / "releases.py"]

# `rollout run` flags the Deployment passes, with the number of values each takes.
EXPECTED_FLAGS = {"--leader-elect": 0, "--metrics-addr": 1, "--prometheus": 1, "--reports": 1, "--git-cache": 1}

# The metric names the dashboard covers: Flagger's release metrics and rollout's own.
FLAGGER_METRICS = {
    "flagger_canary_status", "flagger_canary_weight", "flagger_canary_duration_seconds",
    "flagger_canary_metric_analysis", "flagger_canary_successes_total", "flagger_canary_failures_total",
    "flagger_canary_total",
}
ROLLOUT_METRICS = {
    "rollout_reconcile_duration_seconds", "rollout_reconcile_errors_total", "rollout_tick_lag_seconds",
    "rollout_leader", "rollout_gitsource_ready", "rollout_gitsource_applied_revision_info",
    "rollout_gitsource_apply_errors_total", "rollout_gitsource_drift_corrections_total",
    "rollout_gitsource_prunes_total", "rollout_reverts_total", "rollout_judge_evidence", "rollout_alerts_total",
    "rollout_dora_deployments_total", "rollout_dora_change_failures_total", "rollout_dora_lead_time_seconds",
    "rollout_dora_time_to_restore_seconds",
}
# Grafana's variables, replaced by values of their kind before PromQL is parsed.
GRAFANA_VARIABLES = {"$__rate_interval": "1m", "$__range_s": "3600", "$__range": "1h",
                     "$namespace": "(demo|prod)", "$name": "(podinfo|web)"}


# --- rendering ----------------------------------------------------------------------------------


def kubectl() -> str:
    found = shutil.which("kubectl")
    if found is None:
        missing_tool("KUBECTL NOT FOUND - deploy/ is rendered with `kubectl kustomize`. Run `make kubectl` "
                     "(or `make test`, which does).")
    return found


@functools.cache
def _build(folder: str) -> tuple[Doc, ...]:
    done = subprocess.run([kubectl(), "kustomize", folder], capture_output=True, text=True, timeout=60, check=False)
    assert done.returncode == 0, f"kubectl kustomize {folder} failed:\n{done.stderr}"
    return tuple(d for d in yaml.safe_load_all(done.stdout) if d)


def build(folder: Path) -> list[Doc]:
    """The objects `kubectl kustomize folder` renders (copies: safe to change)."""
    return copy.deepcopy(list(_build(str(folder))))


@functools.cache
def _build_kustomization(text: str) -> tuple[Doc, ...]:
    with tempfile.TemporaryDirectory(prefix="rollout-kustomization-") as tmp:
        spec = yaml.safe_load(text)
        # kustomize refuses absolute paths; relative ones may leave the folder.
        for key in ("resources", "components"):
            if key in spec:
                spec[key] = [os.path.relpath(path, tmp) for path in spec[key]]
        (Path(tmp) / "kustomization.yaml").write_text(yaml.safe_dump(spec))
        return tuple(build(Path(tmp)))


def build_kustomization(spec: Mapping[str, Any]) -> list[Doc]:
    """A user's own kustomization (`resources` and `components` as absolute paths), rendered."""
    return copy.deepcopy(list(_build_kustomization(yaml.safe_dump(dict(spec)))))


def build_with(overlay: str, components: Sequence[str] = ()) -> list[Doc]:
    """An overlay with the named components, as a user's own kustomization would combine them."""
    if not components:
        return build(OVERLAYS[overlay])
    return build_kustomization({
        "apiVersion": "kustomize.config.k8s.io/v1beta1", "kind": "Kustomization",
        "resources": [str(OVERLAYS[overlay])], "components": [str(COMPONENTS[c]) for c in components],
    })


def one(kind: str, name: str, docs: list[Doc] | None = None) -> Doc:
    docs = build(OVERLAYS["base"]) if docs is None else docs
    found = [d for d in docs if d["kind"] == kind and d["metadata"]["name"] == name]
    assert len(found) == 1, f"{kind} {name}: {len(found)} documents"
    return found[0]


def kinds(docs: list[Doc]) -> set[tuple[str, str]]:
    return {(d["kind"], d["metadata"]["name"]) for d in docs}


def pod_spec(docs: list[Doc] | None = None) -> dict[str, Any]:
    spec: dict[str, Any] = one("Deployment", "rollout", docs)["spec"]["template"]["spec"]
    return spec


def container(docs: list[Doc] | None = None) -> dict[str, Any]:
    containers: list[dict[str, Any]] = pod_spec(docs)["containers"]
    assert len(containers) == 1
    return containers[0]


def env_values(c: Mapping[str, Any]) -> dict[str, str]:
    return {e["name"]: e["value"] for e in c["env"] if "value" in e}


def allows(rules: list[Rule], group: str, resource: str, verb: str) -> bool:
    """Whether RBAC `rules` allow `verb` on `resource` (`name/subresource` included) in `group`."""

    def has(values: list[str] | None, value: str) -> bool:
        return values is not None and ("*" in values or value in values)

    return any(
        has(rule.get("apiGroups"), group)
        and has(rule.get("resources"), resource)
        and has(rule.get("verbs"), verb)
        and not rule.get("resourceNames")
        for rule in rules
    )


def granted(rules: list[Rule]) -> set[Need]:
    """Every (group, resource, verb) the rules name (the rules must not use `*` for this to be all)."""
    return {
        (g, r, v)
        for rule in rules
        for g in rule.get("apiGroups", [])
        for r in rule.get("resources", [])
        for v in rule.get("verbs", [])
    }


def expand(value: str, env: Mapping[str, str]) -> str:
    """Kubernetes' `$(VAR)` expansion of container args from the container's env."""
    return re.sub(r"\$\((\w+)\)", lambda m: env.get(m.group(1), m.group(0)), value)


def run_parser() -> argparse.ArgumentParser:
    parser = build_parser()
    sub = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    run: argparse.ArgumentParser = sub.choices["run"]
    return run


def parse_run(argv: list[str]) -> argparse.Namespace:
    """`rollout <argv>` parsed by the real parser."""
    try:
        return build_parser().parse_args(argv)
    except SystemExit:
        raise AssertionError(f"`rollout {shlex.join(argv)}` does not parse (the error is printed above)") from None


def deployment_args(docs: list[Doc] | None = None) -> tuple[argparse.Namespace, list[str]]:
    c = container(docs)
    env = {**env_values(c), "POD_NAMESPACE": NAMESPACE, "POD_NAME": "rollout-6d4f9-abcde"}
    argv = [expand(a, env) for a in c["args"]]
    return parse_run(argv), argv


def dockerfile_instruction(name: str) -> list[str]:
    lines = [line for line in DOCKERFILE.read_text().splitlines() if line.startswith(f"{name} ")]
    assert len(lines) == 1, f"one {name} expected in the Dockerfile, found {len(lines)}"
    value: list[str] = json.loads(lines[0][len(name) + 1:])  # exec form, a JSON array
    return value


def typed_calls(path: Path) -> Iterator[tuple[str, int, str, str | None]]:
    """(method, line, object, subresource) of every typed-client method named in a module."""
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Attribute) and (m := TYPED_CALL.match(node.attr)):
            yield node.attr, node.lineno, m.group(2), m.group(3)


def cluster_calls(path: Path) -> Iterator[tuple[str, int]]:
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Attribute) and CLUSTER_CALL.search(node.attr):
            yield node.attr, node.lineno


@functools.cache
def _servicemonitor_validator() -> Draft202012Validator:
    crd = next(d for d in yaml.safe_load_all(SERVICEMONITOR_CRD.read_text()) if d)
    version = next(v for v in crd["spec"]["versions"] if v["name"] == "v1")
    schema = to_json_schema(version["schema"]["openAPIV3Schema"])
    schema["properties"]["metadata"] = {"type": "object"}
    return Draft202012Validator(schema)


def validate(doc: Doc) -> None:
    """A real schema check of one rendered object; raises on the first problem."""
    if (doc["apiVersion"], doc["kind"]) == ("monitoring.coreos.com/v1", "ServiceMonitor"):
        errors = [f"{'.'.join(map(str, e.absolute_path))}: {e.message}"
                  for e in _servicemonitor_validator().iter_errors(doc)]
        assert not errors, errors
        return
    kubernetes_validate.validate(doc, kubernetes_validate.latest_version(), strict=True)


# --- every overlay and component renders, and every object is valid ------------------------------

VARIANTS = {
    **{name: (name, ()) for name in OVERLAYS},
    **{f"{name}+components": (name, tuple(COMPONENTS)) for name in OVERLAYS},
}


@pytest.mark.parametrize("variant", sorted(VARIANTS))
def test_every_object_of_every_overlay_and_component_passes_schema_validation(variant: str) -> None:
    overlay, components = VARIANTS[variant]
    docs = build_with(overlay, components)
    assert len(docs) >= 10
    for doc in docs:
        try:
            validate(doc)
        except Exception as e:
            raise AssertionError(f"{variant}: {doc['kind']} {doc['metadata']['name']}: {e}") from e
    if components:
        assert {("ServiceMonitor", "rollout"), ("ConfigMap", "rollout-grafana-dashboard")} <= kinds(docs)


def test_the_validators_reject_a_misspelt_field() -> None:
    """Guards the test above: strict validation does look into our documents."""
    deployment = one("Deployment", "rollout")
    deployment["spec"]["template"]["spec"]["containers"][0]["volumeMount"] = []
    with pytest.raises(kubernetes_validate.ValidationError):
        validate(deployment)
    monitor = one("ServiceMonitor", "rollout", build_with("base", ["servicemonitor"]))
    monitor["spec"]["endpoints"][0]["honourLabels"] = True
    with pytest.raises(AssertionError, match="honourLabels"):
        validate(monitor)


def test_the_base_installs_every_crd_without_a_copy() -> None:
    """deploy/base includes crds/ (its `Kustomization`), and that lists every CRD file there is."""
    listed = yaml.safe_load((CRDS / "Kustomization").read_text())["resources"]
    assert sorted(listed) == sorted(p.name for p in CRDS.glob("*.yaml")), "list the new CRD in crds/Kustomization"
    assert "../../crds" in yaml.safe_load((OVERLAYS["base"] / "kustomization.yaml").read_text())["resources"]
    rendered = [d for d in build(OVERLAYS["base"]) if d["kind"] == "CustomResourceDefinition"]
    assert sorted(d["metadata"]["name"] for d in rendered) == sorted(d["metadata"]["name"] for d in crd_documents())
    for crd in rendered:
        source = next(d for d in crd_documents() if d["metadata"]["name"] == crd["metadata"]["name"])
        assert crd["spec"] == source["spec"]
    # `kubectl apply -k crds` installs them alone (a cluster admin, before namespaced installs).
    assert sorted(d["metadata"]["name"] for d in build(CRDS)) == sorted(d["metadata"]["name"] for d in rendered)
    assert not (DEPLOY / "rollout.yaml").exists()  # one install, the kustomize base


@pytest.mark.parametrize("overlay", sorted(OVERLAYS))
def test_namespaced_objects_live_in_rollout_system_and_the_bindings_name_its_account(overlay: str) -> None:
    docs = build_with(overlay, tuple(COMPONENTS))
    assert {("Namespace", NAMESPACE), ("ServiceAccount", SERVICE_ACCOUNT), ("Deployment", "rollout"),
            ("Service", "rollout-metrics")} <= kinds(docs)
    for d in docs:
        if d["kind"] not in CLUSTER_SCOPED:
            assert d["metadata"].get("namespace") == NAMESPACE, (d["kind"], d["metadata"]["name"])
        else:
            assert "namespace" not in d["metadata"], (d["kind"], d["metadata"]["name"])
        assert d["metadata"]["labels"]["app.kubernetes.io/part-of"] == "rollout", (d["kind"], d["metadata"]["name"])
    subject = {"kind": "ServiceAccount", "name": SERVICE_ACCOUNT, "namespace": NAMESPACE}
    bindings = [d for d in docs if d["kind"] in ("RoleBinding", "ClusterRoleBinding")]
    assert len(bindings) >= 2
    for binding in bindings:
        role_kind = "ClusterRole" if binding["kind"] == "ClusterRoleBinding" else "Role"
        assert binding["roleRef"]["apiGroup"] == RBAC_GROUP
        assert (binding["roleRef"]["kind"], binding["roleRef"]["name"]) in kinds(docs), binding["metadata"]["name"]
        assert binding["roleRef"]["kind"] == role_kind or binding["roleRef"]["kind"] == "ClusterRole"
        assert binding["subjects"] == [subject]
    spec = one("Deployment", "rollout", docs)["spec"]
    assert spec["template"]["spec"]["serviceAccountName"] == SERVICE_ACCOUNT
    assert spec["selector"]["matchLabels"].items() <= spec["template"]["metadata"]["labels"].items()


def test_the_image_tag_is_the_package_version() -> None:
    assert container()["image"].rpartition(":")[2] == rollout.__version__


# --- high availability: two replicas, leader election, probes, disruption budget ------------------


def test_the_base_runs_two_replicas_with_leader_election_spread_over_nodes() -> None:
    docs = build(OVERLAYS["base"])
    deployment = one("Deployment", "rollout", docs)
    spec, pod = deployment["spec"], pod_spec(docs)
    labels = spec["template"]["metadata"]["labels"]
    assert spec["replicas"] == 2
    # A new pod starts before an old one stops: a standby stays while the Deployment rolls.
    assert spec["strategy"] == {"type": "RollingUpdate", "rollingUpdate": {"maxSurge": 1, "maxUnavailable": 0}}
    args, _ = deployment_args(docs)
    assert args.leader_elect is True
    (term,) = pod["affinity"]["podAntiAffinity"]["preferredDuringSchedulingIgnoredDuringExecution"]
    assert term["podAffinityTerm"]["topologyKey"] == "kubernetes.io/hostname"
    assert term["podAffinityTerm"]["labelSelector"]["matchLabels"].items() <= labels.items()
    budget = one("PodDisruptionBudget", "rollout", docs)["spec"]
    assert budget["minAvailable"] == 1 and budget["selector"]["matchLabels"].items() <= labels.items()


def test_the_pod_knows_its_name_and_namespace_for_the_lease() -> None:
    fields = {e["name"]: e["valueFrom"]["fieldRef"]["fieldPath"] for e in container()["env"] if "valueFrom" in e}
    assert fields == {"POD_NAME": "metadata.name", "POD_NAMESPACE": "metadata.namespace"}


def test_the_leader_election_role_grants_the_lease_in_the_operators_namespace() -> None:
    docs = build(OVERLAYS["base"])
    role = one("Role", "rollout-leader-election", docs)
    assert role["metadata"]["namespace"] == NAMESPACE
    assert granted(role["rules"]) == LEADER_NEEDED
    binding = one("RoleBinding", "rollout-leader-election", docs)
    assert binding["roleRef"] == {"apiGroup": RBAC_GROUP, "kind": "Role", "name": "rollout-leader-election"}
    # The Lease's namespace is the pod's own: the default of --leader-election-namespace.
    assert "--leader-election-namespace" not in container(docs)["args"]
    assert not any(e["name"] == "ROLLOUT_LEADER_ELECTION_NAMESPACE" for e in container(docs)["env"])


def test_probes_and_the_metrics_service_reach_the_one_http_port() -> None:
    docs = build(OVERLAYS["base"])
    c = container(docs)
    (port,) = c["ports"]
    assert port == {"name": "http-metrics", "containerPort": METRICS_PORT, "protocol": "TCP"}
    args, _ = deployment_args(docs)
    assert args.metrics_addr == f":{METRICS_PORT}"
    probes = {name: c[name]["httpGet"] for name in ("startupProbe", "livenessProbe", "readinessProbe")}
    assert probes == {"startupProbe": {"path": "/healthz", "port": "http-metrics"},
                      "livenessProbe": {"path": "/healthz", "port": "http-metrics"},
                      "readinessProbe": {"path": "/readyz", "port": "http-metrics"}}
    service = one("Service", "rollout-metrics", docs)
    assert service["spec"]["ports"] == [{"name": "http-metrics", "port": METRICS_PORT, "targetPort": "http-metrics",
                                         "protocol": "TCP"}]
    labels = one("Deployment", "rollout", docs)["spec"]["template"]["metadata"]["labels"]
    assert service["spec"]["selector"].items() <= labels.items()


def test_the_servicemonitor_scrapes_the_metrics_service_and_keeps_the_release_labels() -> None:
    docs = build_with("base", ["servicemonitor"])
    monitor = one("ServiceMonitor", "rollout", docs)["spec"]
    service = one("Service", "rollout-metrics", docs)
    assert monitor["selector"]["matchLabels"].items() <= service["metadata"]["labels"].items()
    # Only the metrics Service matches (not, say, a Service of a release in the same namespace).
    assert [s["metadata"]["name"] for s in docs if s["kind"] == "Service"
            and monitor["selector"]["matchLabels"].items() <= s["metadata"]["labels"].items()] == ["rollout-metrics"]
    (endpoint,) = monitor["endpoints"]
    assert endpoint["port"] == service["spec"]["ports"][0]["name"]
    assert endpoint["path"] == "/metrics" and endpoint["honorLabels"] is True


# --- the overlays ---------------------------------------------------------------------------------


def test_single_replica_has_no_leader_election_and_is_replaced_with_recreate() -> None:
    docs = build(OVERLAYS["single-replica"])
    spec = one("Deployment", "rollout", docs)["spec"]
    assert spec["replicas"] == 1
    assert spec["strategy"] == {"type": "Recreate"}
    argv = container(docs)["args"]
    assert "--leader-elect" not in argv and not any(a.startswith("--leader-elect=") for a in argv)
    base = container()["args"]
    assert argv == [a for a in base if a != "--leader-elect"]
    assert deployment_args(docs)[0].leader_elect in (None, False)  # not set: the default, false
    # minAvailable 1 of 1 would block every node drain; no Lease, no Lease Role.
    assert not {k for k in kinds(docs) if k[0] == "PodDisruptionBudget"}
    assert ("Role", "rollout-leader-election") not in kinds(docs)
    assert ("RoleBinding", "rollout-leader-election") not in kinds(docs)


def test_namespaced_watches_only_its_namespace() -> None:
    docs = build(OVERLAYS["namespaced"])
    args, _ = deployment_args(docs)
    assert (args.namespace, args.all_namespaces) == ([NAMESPACE], False)
    assert container(docs)["args"][-2:] == ["--namespace", "$(POD_NAMESPACE)"]


def test_namespaced_has_no_cluster_role_for_releases() -> None:
    docs = build(OVERLAYS["namespaced"])
    cluster = {k for k in kinds(docs) if k[0] in ("ClusterRole", "ClusterRoleBinding")}
    assert cluster == {(kind, "rollout-gitsource-releases") for kind in ("ClusterRole", "ClusterRoleBinding")}
    releases = one("Role", "rollout-releases", docs)
    base_rules = one("ClusterRole", "rollout-releases")["rules"]
    namespaced_needs = {n for n in NEEDED if (n[0], n[1]) not in CLUSTER_RESOURCES}
    assert granted(releases["rules"]) == namespaced_needs
    cluster_scoped = {resource for _, resource in CLUSTER_RESOURCES}
    assert releases["rules"] == [r for r in base_rules if not cluster_scoped & set(r["resources"])]
    # A GitSource applies, reads back and prunes anything, but in this namespace only.
    anything = [{"apiGroups": ["*"], "resources": ["*"], "verbs": ["*"]}]
    assert one("Role", "rollout-gitsource-apply", docs)["rules"] == anything
    for name in ("rollout-releases", "rollout-gitsource-apply", "rollout-leader-election"):
        binding = one("RoleBinding", name, docs)
        assert binding["roleRef"] == {"apiGroup": RBAC_GROUP, "kind": "Role", "name": name}


def test_namespaced_keeps_exactly_the_cluster_wide_reads_the_operator_makes() -> None:
    """The AST scan finds every call that reads all namespaces; each is in CLUSTER_WIDE, and the
    namespaced overlay's one ClusterRole grants exactly those."""
    found: dict[str, list[str]] = {}
    for path in OPERATOR_MODULES:
        for method, line in cluster_calls(path):
            found.setdefault(path.relative_to(ROOT).as_posix(), []).append(f"{method}:{line}")
    assert set(found) == set(CLUSTER_WIDE), f"cluster-wide calls: {found}; update CLUSTER_WIDE and the overlay"
    rules = one("ClusterRole", "rollout-gitsource-releases", build(OVERLAYS["namespaced"]))["rules"]
    assert granted(rules) == set().union(*CLUSTER_WIDE.values())


def readme_kustomizations() -> list[dict[str, Any]]:
    """The kustomizations the README shows, with their paths into deploy/ made absolute."""
    found = []
    # Fenced as ```yaml kustomization (tests/unit/test_examples.py checks the ```yaml blocks as releases).
    for block in re.findall(r"```yaml kustomization\n(.*?)```", README.read_text(), flags=re.S):
        docs = list(yaml.safe_load_all(textwrap.dedent(block)))
        if len(docs) != 1 or not isinstance(docs[0], dict) or docs[0].get("kind") != "Kustomization":
            continue
        spec = docs[0]
        for key in ("resources", "components"):
            if key in spec:
                spec[key] = [str(DEPLOY / path.split("/deploy/", 1)[1]) for path in spec[key]]
        found.append(spec)
    return found


def test_every_kustomization_in_the_readme_renders_valid_objects() -> None:
    specs = readme_kustomizations()
    assert len(specs) >= 2
    for spec in specs:
        docs = build_kustomization(spec)
        for d in docs:
            validate(d)
        for image in spec.get("images", []):
            assert container(docs)["image"] == f"{image['newName']}:{image['newTag']}"
        if spec.get("patches"):
            assert env_values(container(docs))["ROLLOUT_PROMETHEUS_URL"] == "http://prometheus.observability:9090"


def test_the_readme_team_overlay_moves_every_object_and_binding_to_the_team_namespace() -> None:
    (team,) = [s for s in readme_kustomizations() if s["resources"] == [str(OVERLAYS["namespaced"])]]
    namespace = team["namespace"]
    docs = build_kustomization(team)
    suffix = team.get("nameSuffix", "")
    for d in docs:
        validate(d)
        if d["kind"] == "Namespace":
            assert d["metadata"]["name"] == namespace
        elif d["kind"] not in CLUSTER_SCOPED:
            assert d["metadata"]["namespace"] == namespace, (d["kind"], d["metadata"]["name"])
    account = {"kind": "ServiceAccount", "name": SERVICE_ACCOUNT + suffix, "namespace": namespace}
    for d in docs:
        if d["kind"] in ("RoleBinding", "ClusterRoleBinding"):
            assert d["subjects"] == [account], d["metadata"]["name"]
            assert (d["roleRef"]["kind"], d["roleRef"]["name"]) in kinds(docs)
    # Cluster-scoped names differ per team, so two teams' installs do not overwrite each other's.
    assert suffix and all(d["metadata"]["name"].endswith(suffix) for d in docs
                          if d["kind"] in ("ClusterRole", "ClusterRoleBinding"))
    (deployment,) = [d for d in docs if d["kind"] == "Deployment"]
    assert deployment["spec"]["template"]["spec"]["serviceAccountName"] == account["name"]


# --- the Deployment runs `rollout run`, non-root, writing only to its volumes -------------------


def test_the_command_line_parses_with_the_real_cli_and_points_at_the_mounted_volumes() -> None:
    c = container()
    env = env_values(c)
    assert env["ROLLOUT_PROMETHEUS_URL"] == "http://prometheus.monitoring:9090"
    args, argv = deployment_args()
    flags = [a.partition("=")[0] for a in argv if a.startswith("--")]
    assert sorted(flags) == sorted(EXPECTED_FLAGS)
    assert args.command == "run"
    assert args.prometheus == env["ROLLOUT_PROMETHEUS_URL"]
    assert (args.namespace, args.all_namespaces) == ([], False)  # cluster-wide, as the roles are
    mounts = {m["mountPath"]: m for m in c["volumeMounts"]}
    volumes = {v["name"]: v for v in pod_spec()["volumes"]}
    for path in (args.reports, args.git_cache, Path("/tmp")):
        mount = mounts[str(path)]
        assert not mount.get("readOnly")
        assert "emptyDir" in volumes[mount["name"]], path
    assert env["HOME"].startswith("/tmp") and env["MPLCONFIGDIR"].startswith("/tmp")


def test_the_container_is_non_root_with_a_read_only_root_filesystem() -> None:
    pod = pod_spec()
    c = container()
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert pod["securityContext"]["runAsUser"] == 65532
    assert c["securityContext"]["readOnlyRootFilesystem"] is True
    assert c["securityContext"]["allowPrivilegeEscalation"] is False
    assert c["securityContext"]["capabilities"]["drop"] == ["ALL"]
    assert c["resources"]["requests"] and c["resources"]["limits"]["memory"]


def test_in_the_pod_the_client_uses_the_service_account_and_reads_a_rotated_token(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """No kubeconfig is mounted: rollout.engine.kube falls back to the pod's service account (the files the
    kubelet mounts at SA_DIR, put at a temporary path here), and kopf's login reads the token again
    after the kubelet rotates it."""
    env = {e["name"]: e.get("value") for e in container()["env"]}
    assert "KUBECONFIG" not in env
    (tmp_path / "token").write_text("sa-token-1")
    (tmp_path / "ca.crt").write_text("-----BEGIN CERTIFICATE-----\n")
    pod_env = {"KUBERNETES_SERVICE_HOST": "10.96.0.1", "KUBERNETES_SERVICE_PORT": "443", "HOME": str(tmp_path)}
    api = api_client(environ=pod_env, service_account=tmp_path)
    info = connection(api)
    assert info["server"] == "https://10.96.0.1:443"
    assert info["token"] == "sa-token-1" and info["ca_path"] == str(tmp_path / "ca.crt")
    assert info["insecure"] is False
    (tmp_path / "token").write_text("sa-token-2")

    class AnHourLater:  # the loader's clock, as the module names it (`datetime.datetime.now()`)
        timedelta = timedelta

        class datetime(datetime):
            @classmethod
            def now(cls, tz: Any = None) -> Any:
                return datetime.now(tz) + timedelta(hours=1)

    monkeypatch.setattr(incluster_config, "datetime", AnHourLater)
    assert connection(api)["token"] == "sa-token-2"
    assert Path(SA_DIR) == POD_SERVICE_ACCOUNT


# --- the Dockerfile and the Deployment agree ------------------------------------------------------


def test_the_image_entrypoint_and_the_deployment_run_rollout_run() -> None:
    entrypoint, cmd = dockerfile_instruction("ENTRYPOINT"), dockerfile_instruction("CMD")
    assert (entrypoint, cmd) == (["rollout"], ["run"])
    c = container()
    argv = [*c.get("command", entrypoint), *c["args"]]
    assert argv[:2] == ["rollout", "run"]
    assert build_parser().prog == argv[0]


def test_the_image_user_is_the_deployments_user() -> None:
    users = [line.split()[1] for line in DOCKERFILE.read_text().splitlines() if line.startswith("USER ")]
    assert users == ["65532:65532"]
    pod = pod_spec()["securityContext"]
    assert users[0] == f"{pod['runAsUser']}:{pod['runAsGroup']}"


def test_the_image_has_what_the_operator_runs() -> None:
    text = DOCKERFILE.read_text()
    assert text.startswith("#") and "FROM python:3.11-slim" in text
    install = next(line for line in text.splitlines() if "apt-get install" in line)
    assert {"git", "openssh-client"} <= set(shlex.split(install.rstrip("\\ ")))
    assert "pip install --no-cache-dir ." in text
    ignored = set((ROOT / ".dockerignore").read_text().split())
    assert {".venv", ".cache", "tests", "benchmarks", ".git"} <= ignored


# --- RBAC ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("need", sorted(NEEDED), ids="/".join)
def test_rollout_releases_allows_every_call_the_operator_makes(need: Need) -> None:
    assert allows(one("ClusterRole", "rollout-releases")["rules"], *need)


def test_rollout_releases_grants_nothing_beyond_the_table() -> None:
    rules = one("ClusterRole", "rollout-releases")["rules"]
    assert not any("*" in rule.get(key, []) for rule in rules for key in ("apiGroups", "resources", "verbs"))
    assert granted(rules) - NEEDED == set()


def test_the_leader_election_role_grants_exactly_the_lease_calls_in_its_namespace() -> None:
    rules = one("Role", "rollout-leader-election")["rules"]
    assert granted(rules) == LEADER_NEEDED
    binding = one("RoleBinding", "rollout-leader-election")
    assert binding["roleRef"] == {"apiGroup": RBAC_GROUP, "kind": "Role", "name": "rollout-leader-election"}
    assert binding["subjects"] == [{"kind": "ServiceAccount", "name": SERVICE_ACCOUNT, "namespace": NAMESPACE}]
    assert not allows(one("ClusterRole", "rollout-releases")["rules"], "coordination.k8s.io", "leases", "update")


def test_the_matcher_honours_wildcards_and_refuses_what_is_not_granted() -> None:
    rules: list[Rule] = [{"apiGroups": ["apps"], "resources": ["*"], "verbs": ["get"]},
                         {"apiGroups": ["*"], "resources": ["pods"], "verbs": ["*"]}]
    assert allows(rules, "apps", "deployments/scale", "get")
    assert allows(rules, "metrics.k8s.io", "pods", "list")
    assert not allows(rules, "apps", "deployments", "patch")
    assert not allows(rules, "", "services", "get")
    releases = one("ClusterRole", "rollout-releases")["rules"]
    assert not allows(releases, "", "pods", "list")
    assert not allows(releases, "apps", "deployments", "delete")
    assert not allows(releases, "coordination.k8s.io", "leases", "get")  # only in its own namespace


def test_gitsource_apply_may_apply_read_and_prune_any_kind() -> None:
    rules = one("ClusterRole", "rollout-gitsource-apply")["rules"]
    anything = [("apps", "statefulsets", "patch"), ("", "namespaces", "create"), ("", "configmaps", "list"),
                ("example.com", "widgets", "get"), (RBAC_GROUP, "clusterroles", "delete")]
    for need in anything:
        assert allows(rules, *need)


def test_every_typed_client_call_in_the_operator_is_in_the_table() -> None:
    """The table is not only trusted: each CoreV1/AppsV1/NetworkingV1/CoordinationV1 method the
    operator names maps to an entry (a new call fails here until the table and the role have it)."""
    seen = 0
    for path in SCANNED:
        for method, line, obj, sub in typed_calls(path):
            where = f"{path.relative_to(ROOT)}:{line} {method}"
            if (path.relative_to(ROOT).as_posix(), method) in UNREACHED:
                continue
            if obj in ("custom_object",):
                continue  # custom objects: their kinds are checked by the router test and the table
            assert obj in TYPED_RESOURCES, f"{where}: unknown resource, add it to the table and the role"
            group, resource = TYPED_RESOURCES[obj]
            verb = TYPED_VERBS[method.split("_", 1)[0]]
            assert (group, resource + (f"/{sub[1:]}" if sub else ""), verb) in NEEDED | LEADER_NEEDED, where
            seen += 1
    assert seen >= 10  # the scan found the calls (workloads, routers, events, credentials, writer)


def test_no_router_deletes_a_service() -> None:
    """Keeps the UNREACHED entry above true: `Objects.delete` is never given the Service kind."""
    calls = [
        node for path in sorted((ROOT / "rollout" / "routers").glob("*.py"))
        for node in ast.walk(ast.parse(path.read_text()))
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr == "delete"
        and isinstance(node.func.value, ast.Attribute) and node.func.value.attr == "objects"
    ]
    assert calls, "the scan found no router deletes at all"
    assert not [c for c in calls if isinstance(c.args[0], ast.Name) and c.args[0].id == "SERVICE"]


def test_every_router_kind_is_in_the_table() -> None:
    kinds_ = {k for module in (objects, gatewayapi, istio, linkerd, smi, kuma, appmesh, knative)
              for k in vars(module).values() if isinstance(k, objects.Kind)}
    assert len(kinds_) >= 7
    read_only = {gatewayapi.GATEWAY}  # looked at, never written
    never_created = {knative.KNATIVE_SERVICE_KIND}  # the user's target: only its traffic is written
    for kind in kinds_:
        verbs = ("get",) if kind in read_only else ("get", "update") if kind in never_created else (
            "get", "create", "update")
        for verb in verbs:
            assert (kind.group, kind.plural, verb) in NEEDED, (kind, verb)


# --- the Grafana dashboard ------------------------------------------------------------------------


def dashboard() -> dict[str, Any]:
    value: dict[str, Any] = json.loads(DASHBOARD.read_text())
    return value


def dashboard_expressions() -> list[str]:
    """Every PromQL expression of the dashboard: panel targets and the selectors of its variables."""
    d = dashboard()
    exprs = [t["expr"] for p in d["panels"] for t in p.get("targets", [])]
    for var in d["templating"]["list"]:
        if var["type"] == "query":
            # Grafana's label_values(SELECTOR, LABEL): the selector is PromQL.
            m = re.fullmatch(r"label_values\((.+), *(\w+)\)", var["query"]["query"])
            assert m, var["query"]
            exprs.append(m.group(1))
    return exprs


def promql(expr: str) -> str:
    for variable in sorted(GRAFANA_VARIABLES, key=len, reverse=True):
        expr = expr.replace(variable, GRAFANA_VARIABLES[variable])
    assert "$" not in expr, f"a Grafana variable the test does not know: {expr}"
    return expr


def promtool_check(exprs: list[str], tmp_path: Path) -> subprocess.CompletedProcess[str]:
    """`promtool check rules` on the expressions as recording rules: Prometheus' own parser."""
    _, promtool = require_prometheus()
    rules = [{"record": f"dashboard:expr_{i}", "expr": promql(e)} for i, e in enumerate(exprs)]
    path = tmp_path / "dashboard.rules.yaml"
    path.write_text(yaml.safe_dump({"groups": [{"name": "dashboard", "rules": rules}]}))
    return subprocess.run([str(promtool), "check", "rules", str(path)], capture_output=True, text=True,
                          timeout=60, check=False)


def test_every_dashboard_expression_parses_with_prometheus(tmp_path: Path) -> None:
    exprs = dashboard_expressions()
    assert len(exprs) >= 25
    done = promtool_check(exprs, tmp_path)
    assert done.returncode == 0, done.stdout + done.stderr
    assert f"SUCCESS: {len(exprs)} rules found" in done.stdout


def test_promtool_refuses_a_broken_expression(tmp_path: Path) -> None:
    """Guards the test above: the check does parse the expressions."""
    done = promtool_check(['sum by (kind (rate(rollout_reconcile_errors_total[$__rate_interval]))'], tmp_path)
    assert done.returncode != 0 and "parse error" in done.stdout + done.stderr


def test_the_dashboard_has_a_panel_for_every_metric_and_names_no_other() -> None:
    used = {re.sub(r"_(bucket|count|sum)$", "", m)
            for e in dashboard_expressions() for m in re.findall(r"\b(?:flagger|rollout)_[a-z_]+", e)}
    assert used == FLAGGER_METRICS | ROLLOUT_METRICS


def test_the_dashboard_is_templated_like_flaggers() -> None:
    d = dashboard()
    variables = {v["name"]: v for v in d["templating"]["list"]}
    assert set(variables) == {"datasource", "namespace", "name"}
    assert variables["datasource"]["query"] == "prometheus"
    for p in d["panels"]:
        if p["type"] != "row":
            assert p["datasource"] == {"type": "prometheus", "uid": "${datasource}"}, p["title"]
            assert p["title"] and p["description"], p["id"]
    ids = [p["id"] for p in d["panels"]]
    assert len(ids) == len(set(ids))
    rows = [p["title"] for p in d["panels"] if p["type"] == "row"]
    assert rows == ["Releases", "Judges", "Git", "DORA", "Alerts", "Operator"]


def test_the_dashboard_component_ships_the_json_as_a_labelled_configmap() -> None:
    docs = build_with("base", ["grafana-dashboard"])
    configmap = one("ConfigMap", "rollout-grafana-dashboard", docs)
    assert configmap["metadata"]["labels"]["grafana_dashboard"] == "1"
    assert configmap["metadata"]["namespace"] == NAMESPACE
    assert json.loads(configmap["data"]["rollout.json"]) == dashboard()


# --- the README -----------------------------------------------------------------------------------


def test_the_readme_documents_the_kustomize_install() -> None:
    text = README.read_text()
    section = text[text.index("## Install in a cluster"):]
    section = section[:section.index("\n## ", 3)]
    assert "kubectl apply -k deploy/base" in section
    for path in (*OVERLAYS.values(), *COMPONENTS.values(), DASHBOARD):
        assert path.relative_to(ROOT).as_posix() in section, path
    assert "deploy/rollout.yaml" not in text


def test_every_kind_of_the_group_is_readable() -> None:
    """Each of our kinds is read by name somewhere (releases, templates, GitSources, AlertProviders):
    a kind added to rollout.api.kinds fails here until the table and the ClusterRole have it."""
    from rollout.api.kinds import GROUP, PLURALS

    for plural in PLURALS.values():
        assert (GROUP, plural, "get") in NEEDED, plural
