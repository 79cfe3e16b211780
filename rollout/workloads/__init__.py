"""Primary/canary workload management (clone, scale, promote) and the pod-template hash.

Flagger's model: the release's target (a Deployment or a DaemonSet) is the canary;
`<target>-primary` is a clone that serves traffic, using `-primary` copies of the ConfigMaps and
Secrets the target uses (`configs`). `Workloads` carries the engine's workload actions out against
a cluster; `kinds` says what differs per kind; `hashing`, `builders`, `configs` and `daemonsets`
are pure. `autoscalers` clones the target's HPA or KEDA ScaledObject for the primary
(`spec.autoscalerRef`) and pauses the canary's while it is scaled to zero.
"""

from rollout.api.annotations import REVISION_ANNOTATION, SOURCE_PATH_ANNOTATION

from .deployments import Workloads, workload_of
from .errors import NotReady, TargetMissing, WorkloadError
from .hashing import pod_template_hash, revision_of
from .kinds import KINDS, WorkloadKind, kind_of

__all__ = [
    "KINDS",
    "REVISION_ANNOTATION",
    "SOURCE_PATH_ANNOTATION",
    "NotReady",
    "TargetMissing",
    "WorkloadError",
    "WorkloadKind",
    "Workloads",
    "kind_of",
    "pod_template_hash",
    "revision_of",
    "workload_of",
]
