"""deploy/rollout.yaml and the Dockerfile install an operator that can start and do its work.

Every document passes a real Kubernetes schema validator; the Deployment's command line parses
with the real CLI parser and writes only where a writable volume is mounted; the kubeconfig it is
given loads with the operator's own loader; and the `rollout-releases` ClusterRole grants exactly
the API calls the operator makes: the table below is read off the code, and an AST scan of the
code makes sure no typed client call or router kind is missing from it.
"""

from __future__ import annotations

import ast
import json
import re
import shlex
from collections.abc import Iterator, Mapping
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import kubernetes_validate
import pytest
import yaml
from kubernetes.config import incluster_config

import rollout
from rollout.cli import build_parser
from rollout.engine.kube import SERVICE_ACCOUNT as POD_SERVICE_ACCOUNT
from rollout.engine.kube import api_client, connection
from rollout.routers import gatewayapi, istio, linkerd, objects, smi
from rollout.settings import Settings, described

ROOT = Path(__file__).resolve().parents[2]
MANIFEST = ROOT / "deploy" / "rollout.yaml"
DOCKERFILE = ROOT / "Dockerfile"
NAMESPACE = "rollout-system"
SERVICE_ACCOUNT = "rollout"
RBAC_GROUP = "rbac.authorization.k8s.io"
SA_DIR = "/var/run/secrets/kubernetes.io/serviceaccount"

Rule = Mapping[str, Any]
Need = tuple[str, str, str]  # (apiGroup, resource, verb)



def each(group: str, resources: tuple[str, ...], verbs: tuple[str, ...]) -> set[Need]:
    return {(group, r, v) for r in resources for v in verbs}


# What the operator calls, by the module that makes the call. rollout.gitops.apply (the dynamic
# client of GitSource sync) is left out on purpose: it may touch any kind, and has its own role.
NEEDED: frozenset[Need] = frozenset({
    # rollout.handlers (kopf): watches releases and GitSources cluster-wide, patches them for its
    # finalizer and progress annotations; lists/watches CRDs to notice new resources at run time.
    *each("rollout.gitops.dev", ("canaries", "bluegreens", "gitsources"), ("list", "watch", "patch")),
    ("apiextensions.k8s.io", "customresourcedefinitions", "list"),
    ("apiextensions.k8s.io", "customresourcedefinitions", "watch"),
    # rollout.engine.operator: reads the release each tick, writes its status, reads MetricTemplates.
    ("rollout.gitops.dev", "canaries", "get"),
    ("rollout.gitops.dev", "bluegreens", "get"),
    ("rollout.gitops.dev", "canaries/status", "patch"),
    ("rollout.gitops.dev", "bluegreens/status", "patch"),
    ("rollout.gitops.dev", "metrictemplates", "get"),
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
})

# rollout.engine.leader: the Lease of leader election, read, created when absent, updated to take or
# renew the lead. Granted by the Role rollout-leader-election in rollout-system only, not cluster-wide.
LEADER_ELECTION: frozenset[Need] = frozenset(each("coordination.k8s.io", ("leases",), ("get", "create", "update")))

# Typed client calls (CoreV1Api, AppsV1Api, NetworkingV1Api, CoordinationV1Api): object name -> (group, resource).
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
        "Objects.delete is generic; only nginx (Ingress) and linkerd (TrafficSplit, HTTPRoute) call it",
}
SCANNED = [
    *(path for package in ("engine", "workloads", "routers", "gitops")
      for path in sorted((ROOT / "rollout" / package).glob("*.py"))),
    ROOT / "rollout" / "handlers.py",
    ROOT / "rollout" / "cli" / "releases.py",
]


def documents() -> list[dict[str, Any]]:
    return [d for d in yaml.safe_load_all(MANIFEST.read_text()) if d]


def one(kind: str, name: str) -> dict[str, Any]:
    found = [d for d in documents() if d["kind"] == kind and d["metadata"]["name"] == name]
    assert len(found) == 1, f"{kind} {name}: {len(found)} documents"
    return found[0]


def container() -> dict[str, Any]:
    containers: list[dict[str, Any]] = one("Deployment", "rollout")["spec"]["template"]["spec"]["containers"]
    assert len(containers) == 1
    return containers[0]


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


# --- the manifest is valid ----------------------------------------------------------------------


@pytest.mark.parametrize("index", range(len(documents())))
def test_every_document_passes_kubernetes_validate_strict(index: int) -> None:
    kubernetes_validate.validate(documents()[index], kubernetes_validate.latest_version(), strict=True)


def test_the_validator_rejects_a_misspelt_field() -> None:
    """Guards the test above: strict validation does look into our documents."""
    deployment = one("Deployment", "rollout")
    deployment["spec"]["template"]["spec"]["containers"][0]["volumeMount"] = []
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(deployment, kubernetes_validate.latest_version(), strict=True)


def test_namespaced_objects_live_in_rollout_system_and_the_bindings_name_its_account() -> None:
    kinds = {(d["kind"], d["metadata"]["name"]) for d in documents()}
    assert {
        ("Namespace", NAMESPACE), ("ServiceAccount", SERVICE_ACCOUNT), ("Deployment", "rollout"),
        ("ClusterRole", "rollout-releases"), ("ClusterRole", "rollout-gitsource-apply"),
        ("ClusterRoleBinding", "rollout-releases"), ("ClusterRoleBinding", "rollout-gitsource-apply"),
        ("Role", "rollout-leader-election"), ("RoleBinding", "rollout-leader-election"),
    } <= kinds
    for d in documents():
        if d["kind"] in ("ServiceAccount", "Deployment", "ConfigMap", "Role", "RoleBinding"):
            assert d["metadata"]["namespace"] == NAMESPACE, d["metadata"]["name"]
    for role in ("rollout-releases", "rollout-gitsource-apply"):
        binding = one("ClusterRoleBinding", role)
        assert binding["roleRef"] == {"apiGroup": RBAC_GROUP, "kind": "ClusterRole", "name": role}
        subject = {"kind": "ServiceAccount", "name": SERVICE_ACCOUNT, "namespace": NAMESPACE}
        assert binding["subjects"] == [subject]
    spec = one("Deployment", "rollout")["spec"]
    assert spec["template"]["spec"]["serviceAccountName"] == SERVICE_ACCOUNT
    assert spec["selector"]["matchLabels"].items() <= spec["template"]["metadata"]["labels"].items()


def test_two_replicas_elect_a_leader_named_by_their_pod() -> None:
    """kopf runs standalone (no peering of its own): leader election is what keeps the second replica idle."""
    spec = one("Deployment", "rollout")["spec"]
    assert spec["replicas"] == 2
    env = {e["name"]: e for e in container()["env"]}
    values = {name: e["value"] for name, e in env.items() if "value" in e}
    args = build_parser().parse_args([expand(a, values) for a in container()["args"]])
    settings = Settings.build(values, **{name: getattr(args, name) for name, *_ in described()})
    assert settings.leader_elect is True
    assert env["POD_NAME"]["valueFrom"] == {"fieldRef": {"fieldPath": "metadata.name"}}
    assert env["POD_NAMESPACE"]["valueFrom"] == {"fieldRef": {"fieldPath": "metadata.namespace"}}
    assert "standalone=True" in (ROOT / "rollout" / "handlers.py").read_text()


def test_the_image_tag_is_the_package_version() -> None:
    assert container()["image"].rpartition(":")[2] == rollout.__version__


# --- the Deployment runs `rollout run`, non-root, writing only to its volumes -------------------


def test_the_command_line_parses_with_the_real_cli_and_points_at_the_mounted_volumes() -> None:
    c = container()
    env = {e["name"]: e["value"] for e in c["env"] if "value" in e}
    assert env["ROLLOUT_PROMETHEUS_URL"] == "http://prometheus.monitoring:9090"
    argv = [expand(a, env) for a in c["args"]]
    args = build_parser().parse_args(argv)
    assert args.command == "run"
    assert args.prometheus == env["ROLLOUT_PROMETHEUS_URL"]
    assert (args.namespace, args.all_namespaces) == ([], False)  # cluster-wide, as the roles are
    mounts = {m["mountPath"]: m for m in c["volumeMounts"]}
    volumes = {v["name"]: v for v in one("Deployment", "rollout")["spec"]["template"]["spec"]["volumes"]}
    for path in (args.reports, args.git_cache, Path("/tmp")):
        mount = mounts[str(path)]
        assert not mount.get("readOnly")
        assert "emptyDir" in volumes[mount["name"]], path
    assert env["HOME"].startswith("/tmp") and env["MPLCONFIGDIR"].startswith("/tmp")


def test_the_container_is_non_root_with_a_read_only_root_filesystem() -> None:
    pod = one("Deployment", "rollout")["spec"]["template"]["spec"]
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
    pod = one("Deployment", "rollout")["spec"]["template"]["spec"]["securityContext"]
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
    assert granted(rules) == LEADER_ELECTION
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
    assert not allows(releases, "", "secrets", "list")
    assert not allows(releases, "apps", "deployments", "delete")


def test_gitsource_apply_may_apply_read_and_prune_any_kind() -> None:
    rules = one("ClusterRole", "rollout-gitsource-apply")["rules"]
    anything = [("apps", "statefulsets", "patch"), ("", "namespaces", "create"), ("", "configmaps", "list"),
                ("example.com", "widgets", "get"), (RBAC_GROUP, "clusterroles", "delete")]
    for need in anything:
        assert allows(rules, *need)


def test_every_typed_client_call_in_the_operator_is_in_the_table() -> None:
    """The table is not only trusted: each CoreV1/AppsV1/NetworkingV1 method the operator names
    maps to an entry (a new call fails here until the table and the ClusterRole have it)."""
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
            assert (group, resource + (f"/{sub[1:]}" if sub else ""), verb) in NEEDED | LEADER_ELECTION, where
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
    kinds = {k for module in (objects, gatewayapi, istio, linkerd, smi)
             for k in vars(module).values() if isinstance(k, objects.Kind)}
    assert len(kinds) >= 7
    read_only = {gatewayapi.GATEWAY}  # looked at, never written
    for kind in kinds:
        for verb in ("get",) if kind in read_only else ("get", "create", "update"):
            assert (kind.group, kind.plural, verb) in NEEDED, (kind, verb)
