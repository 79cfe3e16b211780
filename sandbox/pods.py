"""How a simulated pod of the sandbox behaves, read from its workload's pod-template annotations.

The data plane runs no containers, so a Deployment (or DaemonSet) says how its pods answer: the
fraction of requests that fail with a 5xx and the median and P99 of a log-normal latency. Tests
and demos set these annotations to make a canary good or bad. Pod names follow Kubernetes':
`<deployment>-<pod template hash>-<suffix>` and `<daemonset>-<suffix>`, which is what the
`kubernetes` provider's built-in queries select.
"""

from __future__ import annotations

import hashlib
import json
import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

__all__ = [
    "ERROR_RATE_ANNOTATION",
    "LATENCY_MEDIAN_ANNOTATION",
    "LATENCY_P99_ANNOTATION",
    "Behaviour",
    "behaviour_of",
    "pod_names",
]

ERROR_RATE_ANNOTATION = "dataplane.sandbox/error-rate"
LATENCY_MEDIAN_ANNOTATION = "dataplane.sandbox/latency-median-ms"
LATENCY_P99_ANNOTATION = "dataplane.sandbox/latency-p99-ms"
DEFAULT_MEDIAN_MS = 20.0
MAX_PODS = 10  # series per Deployment stay few however many replicas it asks for
_Z99 = 2.3263478740408408  # the standard normal's 0.99 quantile


@dataclass(frozen=True)
class Behaviour:
    """A pod's answers: `error_rate` of them 5xx, latency log-normal with this median and P99."""

    error_rate: float = 0.0
    median_ms: float = DEFAULT_MEDIAN_MS
    p99_ms: float = 4 * DEFAULT_MEDIAN_MS

    @property
    def mu(self) -> float:
        """The log-normal's location (log of the median in ms)."""
        return math.log(self.median_ms)

    @property
    def sigma(self) -> float:
        """The log-normal's scale, chosen so that its 0.99 quantile is `p99_ms`."""
        return max(math.log(self.p99_ms / self.median_ms), 0.0) / _Z99


def _float(notes: Mapping[str, Any], key: str) -> float | None:
    try:
        value = float(str(notes[key]).strip())
    except (KeyError, ValueError):
        return None
    return value if math.isfinite(value) else None


def _template(deployment: Mapping[str, Any]) -> Mapping[str, Any]:
    return (deployment.get("spec") or {}).get("template") or {}


def behaviour_of(deployment: Mapping[str, Any]) -> Behaviour:
    """The behaviour a Deployment's pod template asks for; missing or unreadable values take defaults."""
    notes = (_template(deployment).get("metadata") or {}).get("annotations") or {}
    error_rate = min(max(_float(notes, ERROR_RATE_ANNOTATION) or 0.0, 0.0), 1.0)
    median = _float(notes, LATENCY_MEDIAN_ANNOTATION)
    median = median if median is not None and median > 0 else DEFAULT_MEDIAN_MS
    p99 = _float(notes, LATENCY_P99_ANNOTATION)
    p99 = p99 if p99 is not None and p99 >= median else 4 * median
    return Behaviour(error_rate, median, p99)


def version_of(deployment: Mapping[str, Any]) -> str:
    """The version a Deployment runs, as people name it: its first container's image."""
    containers = (_template(deployment).get("spec") or {}).get("containers") or [{}]
    return str(containers[0].get("image", ""))


def pod_names(workload: Mapping[str, Any]) -> list[str]:
    """Names for the ready pods (at most MAX_PODS): stable while the pod template stays the same."""
    name = str((workload.get("metadata") or {}).get("name"))
    status = workload.get("status") or {}
    digest = hashlib.sha256(json.dumps(_template(workload), sort_keys=True, default=str).encode()).hexdigest()
    if workload.get("kind") == "DaemonSet":  # no ReplicaSet between: `<daemonset>-<suffix>`
        ready, prefix = int(status.get("numberReady") or 0), name
    else:
        ready, prefix = int(status.get("readyReplicas") or 0), f"{name}-{digest[:10]}"
    return [f"{prefix}-{hashlib.sha256(f'{digest}/{i}'.encode()).hexdigest()[:5]}" for i in range(min(ready, MAX_PODS))]
