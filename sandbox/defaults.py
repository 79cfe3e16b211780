"""Field defaulting that a real API server performs on every write of some built-in kinds.

Code that compares what it applied with what it reads back (drift detection, pod-template
hashing) sees these server-set fields on a real cluster, so the sandbox sets the common
ones too: Deployment strategy, DaemonSet updateStrategy and pod-template defaults, Service
cluster IPs and port protocols, the Namespace finalizer and name label, and the container names
Knative's webhook gives a Knative Service's template.
"""

from __future__ import annotations

import itertools
from typing import Any

__all__ = ["apply_defaults"]

_cluster_ips = itertools.count(10)


def _container_defaults(container: dict[str, Any]) -> None:
    container.setdefault("terminationMessagePath", "/dev/termination-log")
    container.setdefault("terminationMessagePolicy", "File")
    image = str(container.get("image", ""))
    tag = image.rsplit("/", 1)[-1]
    latest = "@" not in tag and (":" not in tag or tag.endswith(":latest"))
    container.setdefault("imagePullPolicy", "Always" if latest else "IfNotPresent")
    container.setdefault("resources", {})
    for port in container.get("ports") or []:
        if isinstance(port, dict):
            port.setdefault("protocol", "TCP")


def _pod_template_defaults(template: dict[str, Any]) -> None:
    pod = template.setdefault("spec", {})
    if not isinstance(pod, dict):
        return
    pod.setdefault("restartPolicy", "Always")
    pod.setdefault("terminationGracePeriodSeconds", 30)
    pod.setdefault("dnsPolicy", "ClusterFirst")
    pod.setdefault("schedulerName", "default-scheduler")
    pod.setdefault("securityContext", {})
    for container in itertools.chain(pod.get("containers") or [], pod.get("initContainers") or []):
        if isinstance(container, dict):
            _container_defaults(container)


def _deployment_defaults(obj: dict[str, Any]) -> None:
    spec = obj.setdefault("spec", {})
    if not isinstance(spec, dict):
        return
    spec.setdefault("replicas", 1)
    spec.setdefault("revisionHistoryLimit", 10)
    spec.setdefault("progressDeadlineSeconds", 600)
    strategy = spec.setdefault("strategy", {})
    if isinstance(strategy, dict):
        strategy.setdefault("type", "RollingUpdate")
        if strategy["type"] == "RollingUpdate":
            rolling = strategy.setdefault("rollingUpdate", {})
            rolling.setdefault("maxSurge", "25%")
            rolling.setdefault("maxUnavailable", "25%")
    template = spec.get("template")
    if isinstance(template, dict):
        _pod_template_defaults(template)


def _daemonset_defaults(obj: dict[str, Any]) -> None:
    spec = obj.setdefault("spec", {})
    if not isinstance(spec, dict):
        return
    spec.setdefault("revisionHistoryLimit", 10)
    strategy = spec.setdefault("updateStrategy", {})
    if isinstance(strategy, dict):
        strategy.setdefault("type", "RollingUpdate")
        if strategy["type"] == "RollingUpdate":
            rolling = strategy.setdefault("rollingUpdate", {})
            rolling.setdefault("maxUnavailable", 1)
            rolling.setdefault("maxSurge", 0)
    template = spec.get("template")
    if isinstance(template, dict):
        _pod_template_defaults(template)


def _service_defaults(obj: dict[str, Any], old: dict[str, Any] | None) -> None:
    spec = obj.setdefault("spec", {})
    if not isinstance(spec, dict):
        return
    spec.setdefault("type", "ClusterIP")
    spec.setdefault("sessionAffinity", "None")
    if spec["type"] != "ExternalName":
        old_ip = ((old or {}).get("spec") or {}).get("clusterIP")
        if not spec.get("clusterIP"):
            n = next(_cluster_ips)
            spec["clusterIP"] = old_ip or f"10.96.{n // 250 % 250}.{n % 250 + 1}"
        spec.setdefault("clusterIPs", [spec["clusterIP"]])
        spec.setdefault("ipFamilies", ["IPv4"])
        spec.setdefault("ipFamilyPolicy", "SingleStack")
        spec.setdefault("internalTrafficPolicy", "Cluster")
    for port in spec.get("ports") or []:
        if isinstance(port, dict):
            port.setdefault("protocol", "TCP")
            if "port" in port:
                port.setdefault("targetPort", port["port"])


def _knative_service_defaults(obj: dict[str, Any]) -> None:
    """Knative's defaulting webhook: a template's containers are named (`user-container`), as its
    Revisions' pods need, and a Revision gets the same."""
    spec: dict[str, Any] = obj["spec"] if isinstance(obj.get("spec"), dict) else {}
    template = spec.get("template")
    pod = template.get("spec") if isinstance(template, dict) else spec  # a Service's template, or a Revision's spec
    for i, container in enumerate((pod if isinstance(pod, dict) else {}).get("containers") or []):
        if isinstance(container, dict) and not container.get("name"):
            container["name"] = "user-container" if i == 0 else f"user-container-{i}"


def apply_defaults(group: str, plural: str, obj: dict[str, Any], old: dict[str, Any] | None) -> None:
    """Set server-side defaults in place, as the API server does before storing."""
    if (group, plural) == ("apps", "deployments"):
        _deployment_defaults(obj)
    elif (group, plural) == ("apps", "daemonsets"):
        _daemonset_defaults(obj)
    elif (group, plural) == ("", "services"):
        _service_defaults(obj, old)
    elif (group, plural) in (("serving.knative.dev", "services"), ("serving.knative.dev", "revisions")):
        _knative_service_defaults(obj)
    elif (group, plural) == ("", "namespaces"):
        name = obj.get("metadata", {}).get("name")
        obj["metadata"].setdefault("labels", {})["kubernetes.io/metadata.name"] = name
        obj.setdefault("spec", {}).setdefault("finalizers", ["kubernetes"])
