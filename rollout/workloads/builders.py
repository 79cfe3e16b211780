"""Pure builders: the primary Deployment, the three Services, readiness, replica counts.

Everything that decides what an object should look like lives here, as functions of plain dicts
(the API's JSON, camelCase), so it is tested without a cluster; `deployments.Workloads` only
reads, calls these, and writes.

Flagger's model: the release's target Deployment `<t>` is the canary; `<t>-primary` is a clone
that serves. The clone selects on `<label>: <v>-primary` where the target selects on
`<label>: <v>`, `<label>` being the first of `SELECTOR_LABELS` in the target's
`spec.selector.matchLabels`. Services: `<svc>-primary` selects the primary, `<svc>-canary` the
target, and the apex `<svc>` (what clients call) the primary until a router switches it.
"""

from __future__ import annotations

import copy
import json
from collections.abc import Collection, Mapping
from typing import Any

from rollout.api.annotations import ANNOTATION_DOMAIN, REVISION_ANNOTATION
from rollout.api.kinds import API_VERSION, GROUP
from rollout.api.spec import BlueGreenSpec, Release

from . import configs
from .errors import WorkloadError
from .hashing import PRIMARY_SUFFIX, SELECTOR_LABELS, is_own_annotation

Json = dict[str, Any]

# The target's replica count before it was scaled to zero, so scaling up restores it.
REPLICAS_ANNOTATION = f"{ANNOTATION_DOMAIN}/replicas"
# The selector an adopted (pre-existing, not ours) apex Service had, restored on finalize.
ORIGINAL_SELECTOR_ANNOTATION = f"{ANNOTATION_DOMAIN}/original-selector"
# Deployment annotations that belong to the object they are on (tooling, controllers, this project's
# own bookkeeping), never copied to the primary; the revision is then set explicitly.
_NOT_COPIED_ANNOTATIONS = (
    "kubectl.kubernetes.io/last-applied-configuration",
    "deployment.kubernetes.io/revision",
    "deprecated.daemonset.template.generation",  # the DaemonSet controller's, as the line above
)
_NOT_COPIED_PREFIXES = ("argocd.argoproj.io/", "kustomize.toolkit.fluxcd.io/")
# Deployment spec fields the primary takes from the target (Flagger copies the same ones).
_COPIED_SPEC_FIELDS = ("minReadySeconds", "revisionHistoryLimit", "progressDeadlineSeconds", "strategy")


# -- names ------------------------------------------------------------------------------------


def target_name(release: Release) -> str:
    return release.spec.target_ref.name


def primary_name(release: Release) -> str:
    return f"{target_name(release)}{PRIMARY_SUFFIX}"


def service_names(release: Release) -> tuple[str, str, str]:
    """(apex, primary, canary) Service names: `spec.service.name` or the target's name."""
    apex = release.spec.service.name or target_name(release)
    return apex, f"{apex}-primary", f"{apex}-canary"


def owner_reference(release: Release) -> Json | None:
    """The controller reference that makes the release own what it creates (None without a uid)."""
    if not release.metadata.uid:
        return None
    return {
        "apiVersion": API_VERSION,
        "kind": release.kind,
        "name": release.metadata.name,
        "uid": release.metadata.uid,
        "controller": True,
        "blockOwnerDeletion": True,
    }


def owned_by(obj: Mapping[str, Any], release: Release) -> bool:
    """Whether `obj` has a controller reference to this release (by uid, or by kind and name)."""
    for ref in (obj.get("metadata") or {}).get("ownerReferences") or []:
        if not ref.get("controller"):
            continue
        if release.metadata.uid and ref.get("uid") == release.metadata.uid:
            return True
        if ref.get("kind") == release.kind and ref.get("name") == release.metadata.name:
            return True
    return False


# -- the selector label -----------------------------------------------------------------------


def selector_label(deployment: Mapping[str, Any]) -> tuple[str, str]:
    """(key, value) of the label the Deployment selects its pods on, of `SELECTOR_LABELS`."""
    spec = deployment.get("spec") or {}
    match = (spec.get("selector") or {}).get("matchLabels") or {}
    for key in SELECTOR_LABELS:
        value = match.get(key)
        if isinstance(value, str) and value:
            return key, value
    name = (deployment.get("metadata") or {}).get("name")
    kind = deployment.get("kind") or "Deployment"
    raise WorkloadError(
        f"{kind} {name} selects on none of the labels {', '.join(SELECTOR_LABELS)} in "
        "spec.selector.matchLabels; add one so the primary and the Services can select its pods",
        temporary=False,
    )


def primary_selector(target: Mapping[str, Any]) -> dict[str, str]:
    key, value = selector_label(target)
    return {key: f"{value}{PRIMARY_SUFFIX}"}


def canary_selector(target: Mapping[str, Any]) -> dict[str, str]:
    key, value = selector_label(target)
    return {key: value}


def _renamed(labels: Mapping[str, Any] | None, key: str, value: str) -> dict[str, Any]:
    out = dict(labels or {})
    out[key] = value
    return out


def primary_template(target: Mapping[str, Any], tracked: Collection[configs.Key] = ()) -> Json:
    """The target's pod template as the primary runs it: the selector label renamed to `-primary`,
    and the tracked ConfigMaps and Secrets to their `-primary` copies."""
    key, value = selector_label(target)
    template: Json = configs.to_copies((target.get("spec") or {}).get("template") or {}, tracked)
    meta = template.setdefault("metadata", {})
    meta["labels"] = _renamed(meta.get("labels"), key, f"{value}{PRIMARY_SUFFIX}")
    return template


def _copied_annotations(target: Mapping[str, Any]) -> dict[str, str]:
    annotations = (target.get("metadata") or {}).get("annotations") or {}
    out = {
        k: v for k, v in annotations.items()
        if k not in _NOT_COPIED_ANNOTATIONS and not k.startswith(_NOT_COPIED_PREFIXES) and not is_own_annotation(k)
    }
    revision = annotations.get(REVISION_ANNOTATION)
    if revision:
        out[REVISION_ANNOTATION] = revision
    return out


# -- replicas ---------------------------------------------------------------------------------


def spec_replicas(deployment: Mapping[str, Any]) -> int:
    """`spec.replicas`, with the API's default of 1 when it is absent."""
    value = (deployment.get("spec") or {}).get("replicas")
    return 1 if value is None else int(value)


def recorded_replicas(deployment: Mapping[str, Any]) -> int | None:
    """The replica count recorded before the Deployment was scaled to zero, if any."""
    value = ((deployment.get("metadata") or {}).get("annotations") or {}).get(REPLICAS_ANNOTATION)
    try:
        count = int(value) if value is not None else None
    except ValueError:
        return None
    return count if count is not None and count > 0 else None


def replicas_for_target(target: Mapping[str, Any], primary: Mapping[str, Any] | None) -> int:
    """How many replicas the target runs when scaled up: the primary's (it serves the same load),
    else the count recorded when it was scaled down, else its own, else 1."""
    if primary is not None and spec_replicas(primary) > 0:
        return spec_replicas(primary)
    recorded = recorded_replicas(target)
    if recorded is not None:
        return recorded
    own = spec_replicas(target)
    return own if own > 0 else 1


def replicas_for_primary(target: Mapping[str, Any]) -> int:
    """The primary's replicas when it is created: the target's, or what it had before it was scaled down."""
    own = spec_replicas(target)
    if own > 0:
        return own
    return recorded_replicas(target) or 1


def scale_patch(target: Mapping[str, Any], primary: Mapping[str, Any] | None, up: bool,
                autoscaled: int | None = None) -> Json | None:
    """The merge patch that scales the target up or to zero; None when it already is.

    Scaling down records the current count in `REPLICAS_ANNOTATION` (never overwriting it with 0);
    scaling up restores `replicas_for_target` (or `autoscaled`, the count its autoscaler starts it
    at, as Flagger does) and removes the record."""
    current = spec_replicas(target)
    recorded = ((target.get("metadata") or {}).get("annotations") or {}).get(REPLICAS_ANNOTATION)
    if up:
        if current > 0 and recorded is None:
            return None
        fallback = autoscaled if autoscaled is not None else replicas_for_target(target, primary)
        replicas = current if current > 0 else fallback
        return {"metadata": {"annotations": {REPLICAS_ANNOTATION: None}}, "spec": {"replicas": replicas}}
    if current == 0:
        return None
    return {"metadata": {"annotations": {REPLICAS_ANNOTATION: str(current)}}, "spec": {"replicas": 0}}


# -- readiness --------------------------------------------------------------------------------


def is_ready(deployment: Mapping[str, Any]) -> bool:
    """Rolled out and serving: the controller saw this generation, every replica runs the current
    template, no old replica is left, all are available, and there is at least one.

    A Deployment scaled to zero is not ready: it serves nothing."""
    desired = spec_replicas(deployment)
    if desired <= 0:
        return False
    meta = deployment.get("metadata") or {}
    status = deployment.get("status") or {}
    if int(status.get("observedGeneration") or 0) < int(meta.get("generation") or 0):
        return False
    updated = int(status.get("updatedReplicas") or 0)
    total = int(status.get("replicas") or 0)
    available = int(status.get("availableReplicas") or 0)
    return updated == desired and total == desired and available >= desired


# -- the primary ------------------------------------------------------------------------------


def build_primary(target: Mapping[str, Any], release: Release, tracked: Collection[configs.Key] = ()) -> Json:
    """`<t>-primary`: a clone of the target that selects on the renamed label and serves, using the
    copies of the `tracked` configs."""
    key, value = selector_label(target)
    tmeta = target.get("metadata") or {}
    tspec = target.get("spec") or {}
    meta: Json = {
        "name": primary_name(release),
        "namespace": release.metadata.namespace,
        "labels": _renamed(tmeta.get("labels"), key, f"{value}{PRIMARY_SUFFIX}"),
        "annotations": _copied_annotations(target),
    }
    owner = owner_reference(release)
    if owner is not None:
        meta["ownerReferences"] = [owner]
    spec: Json = {k: copy.deepcopy(tspec[k]) for k in _COPIED_SPEC_FIELDS if tspec.get(k) is not None}
    spec["replicas"] = replicas_for_primary(target)
    spec["selector"] = {"matchLabels": {key: f"{value}{PRIMARY_SUFFIX}"}}
    spec["template"] = primary_template(target, tracked)
    return {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": meta, "spec": spec}


def promoted_primary(primary: Mapping[str, Any], target: Mapping[str, Any],
                     tracked: Collection[configs.Key] = (), *, replicas: bool = True) -> Json | None:
    """The primary with the target's template, spec fields and revision; None when it has them already.

    Replicas follow the target while it is up (a count changed in Git reaches the primary through
    promotion, as in Flagger); a target at zero leaves the primary's count alone, and so does
    `replicas=False` (an autoscaler decides the primary's count)."""
    new: Json = copy.deepcopy(dict(primary))
    spec = new.setdefault("spec", {})
    tspec = target.get("spec") or {}
    spec["template"] = primary_template(target, tracked)
    for k in _COPIED_SPEC_FIELDS:
        if tspec.get(k) is not None:
            spec[k] = copy.deepcopy(tspec[k])
    if replicas and spec_replicas(target) > 0:
        spec["replicas"] = spec_replicas(target)
    meta = new.setdefault("metadata", {})
    annotations = dict(meta.get("annotations") or {})
    revision = ((target.get("metadata") or {}).get("annotations") or {}).get(REVISION_ANNOTATION)
    if revision:
        annotations[REVISION_ANNOTATION] = revision
    else:
        annotations.pop(REVISION_ANNOTATION, None)
    meta["annotations"] = annotations
    new.pop("status", None)
    before = {k: v for k, v in primary.items() if k != "status"}
    return None if new == before else new


# -- services ---------------------------------------------------------------------------------


def service_ports(release: Release, port: int | None = None,
                  target: Mapping[str, Any] | None = None) -> list[Json]:
    """The ports of a release's Services: Flagger's port, targetPort, portName and appProtocol, then,
    with `service.portDiscovery`, every other port of the target's containers (`discovered_ports`)."""
    svc = release.spec.service
    number = port or svc.port
    entry: Json = {
        "name": svc.port_name or "http",
        "port": number,
        "targetPort": svc.target_port if svc.target_port not in (None, 0, "") else number,
        "protocol": "TCP",
    }
    if svc.app_protocol:
        entry["appProtocol"] = svc.app_protocol
    out = [entry]
    if svc.port_discovery and target is not None:
        taken = {entry["name"]}, {number}
        for name, container_port in discovered_ports(release, target):
            if name in taken[0] or container_port in taken[1]:
                continue
            taken[0].add(name)
            taken[1].add(container_port)
            out.append({"name": name, "port": container_port, "targetPort": container_port, "protocol": "TCP"})
    return out


# Mesh proxies whose ports are never discovered (Flagger's pkg/canary/util.go).
_SIDECARS = frozenset({"istio-proxy", "envoy"})


def discovered_ports(release: Release, target: Mapping[str, Any]) -> list[tuple[str, int]]:
    """(name, port) of every container port of the target's pod template except the service's own
    port (its targetPort, by number or name) and the mesh proxies', named as Flagger names them: the
    port's name, else `tcp-<container>-<index>`; in name order."""
    svc = release.spec.service
    template = ((target.get("spec") or {}).get("template") or {}).get("spec") or {}
    found: dict[str, int] = {}
    for container in template.get("containers") or []:
        cname = str(container.get("name") or "")
        if cname in _SIDECARS:
            continue
        for i, p in enumerate(container.get("ports") or []):
            number = p.get("containerPort")
            if not isinstance(number, int) or isinstance(number, bool):
                continue
            tp = svc.target_port
            if tp in (None, 0, ""):
                if number == svc.port:
                    continue
            elif (isinstance(tp, int) and number == tp) or (isinstance(tp, str) and p.get("name") == tp):
                continue
            found[str(p.get("name") or f"tcp-{cname}-{i}")] = number
    return sorted(found.items())


def _custom_metadata(release: Release, which: str) -> tuple[dict[str, str], dict[str, str]]:
    """`spec.service.{apex,primary,canary}.{labels,annotations}` (Flagger's CustomMetadata)."""
    custom = release.spec.service.metadata_of(which)
    return dict(custom.labels), dict(custom.annotations)


def build_service(release: Release, name: str, selector: Mapping[str, str], which: str,
                  key: str, port: int | None = None, target: Mapping[str, Any] | None = None) -> Json:
    """A ClusterIP Service owned by the release; `which` is apex, primary, canary or preview."""
    labels, annotations = _custom_metadata(release, which)
    labels[key] = name
    meta: Json = {"name": name, "namespace": release.metadata.namespace, "labels": labels}
    if annotations:
        meta["annotations"] = annotations
    owner = owner_reference(release)
    if owner is not None:
        meta["ownerReferences"] = [owner]
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": meta,
        "spec": {"type": "ClusterIP", "selector": dict(selector), "ports": service_ports(release, port, target)},
    }


def desired_services(release: Release, target: Mapping[str, Any]) -> list[tuple[str, Json]]:
    """(role, Service) for apex, primary, canary, and a BlueGreen's preview Service when it names one."""
    key, _ = selector_label(target)
    apex, primary, canary = service_names(release)
    out = [
        ("apex", build_service(release, apex, primary_selector(target), "apex", key, target=target)),
        ("primary", build_service(release, primary, primary_selector(target), "primary", key, target=target)),
        ("canary", build_service(release, canary, canary_selector(target), "canary", key, target=target)),
    ]
    preview = release.spec.preview_service if isinstance(release.spec, BlueGreenSpec) else None
    if preview is not None and preview.name not in (apex, primary, canary):
        out.append(("preview", build_service(release, preview.name, canary_selector(target), "canary", key,
                                             preview.port)))
    return out


_PORT_KEYS = ("name", "port", "targetPort", "protocol", "appProtocol", "nodePort")


def _port_view(port: Mapping[str, Any]) -> Json:
    view = {k: port.get(k) for k in _PORT_KEYS if port.get(k) is not None}
    view.setdefault("protocol", "TCP")
    view.setdefault("targetPort", view.get("port"))
    return view


def reconciled_service(existing: Mapping[str, Any], desired: Mapping[str, Any], role: str,
                       release: Release, target: Mapping[str, Any]) -> Json | None:
    """The existing Service brought in line with `desired`; None when nothing needs to change.

    Ports are always reconciled (keeping node ports). Selectors too, except the apex's when it
    selects the primary or the canary: which of the two is the router's business (Flagger leaves an
    apex that routes to the canary alone, so a pre-existing Service that serves the target keeps
    serving it until the primary is ready and the router switches it). An apex that was not ours
    has its original selector recorded so `finalize` can give it back. Labels and annotations are
    only managed on Services the release owns."""
    new: Json = copy.deepcopy(dict(existing))
    new.pop("status", None)
    spec = new.setdefault("spec", {})
    meta = new.setdefault("metadata", {})
    owned = owned_by(existing, release)
    node_ports = {p.get("name"): p.get("nodePort") for p in spec.get("ports") or [] if p.get("nodePort")}
    ports = []
    for port in desired["spec"]["ports"]:
        port = dict(port)
        if node_ports.get(port["name"]):
            port["nodePort"] = node_ports[port["name"]]
        ports.append(port)
    if [_port_view(p) for p in spec.get("ports") or []] != [_port_view(p) for p in ports]:
        spec["ports"] = ports
    selector = dict(spec.get("selector") or {})
    wanted = dict(desired["spec"]["selector"])
    if role == "apex":
        if selector not in (primary_selector(target), canary_selector(target)):
            if not owned:
                annotations = dict(meta.get("annotations") or {})
                annotations.setdefault(ORIGINAL_SELECTOR_ANNOTATION, json.dumps(selector, sort_keys=True))
                meta["annotations"] = annotations
            spec["selector"] = wanted
    elif selector != wanted:
        spec["selector"] = wanted
    if owned:
        dmeta = desired["metadata"]
        meta["labels"] = {**(meta.get("labels") or {}), **dmeta.get("labels", {})}
        if dmeta.get("annotations"):
            meta["annotations"] = {**(meta.get("annotations") or {}), **dmeta["annotations"]}
    before = {k: v for k, v in existing.items() if k != "status"}
    return None if new == before else new


def released_apex(apex: Mapping[str, Any], release: Release, target: Mapping[str, Any], *,
                  keep_primary: bool = False) -> Json | None:
    """The apex Service handed back on deletion: selecting the target (or its recorded original
    selector; the primary with `keep_primary`) and no longer owned by the release, so garbage
    collection keeps it; None when it is that already."""
    new: Json = copy.deepcopy(dict(apex))
    new.pop("status", None)
    meta = new.setdefault("metadata", {})
    annotations = dict(meta.get("annotations") or {})
    original = annotations.pop(ORIGINAL_SELECTOR_ANNOTATION, None)
    selector = canary_selector(target)
    if keep_primary:
        selector = primary_selector(target)
    elif original:
        try:
            parsed = json.loads(original)
            if isinstance(parsed, dict) and parsed:
                selector = {str(k): str(v) for k, v in parsed.items()}
        except ValueError:
            pass
    if annotations or "annotations" in meta:
        meta["annotations"] = annotations
    refs = [r for r in meta.get("ownerReferences") or [] if not refers_to(r, release)]
    if refs:
        meta["ownerReferences"] = refs
    else:
        meta.pop("ownerReferences", None)
    new.setdefault("spec", {})["selector"] = selector
    before = {k: v for k, v in apex.items() if k != "status"}
    return None if new == before else new


def refers_to(ref: Mapping[str, Any], release: Release) -> bool:
    if release.metadata.uid and ref.get("uid") == release.metadata.uid:
        return True
    return ref.get("apiVersion", "").startswith(f"{GROUP}/") and ref.get("kind") == release.kind \
        and ref.get("name") == release.metadata.name
