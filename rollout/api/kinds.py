"""The API group, version, kinds and plurals this operator serves.

One home for the names that address its custom resources: the CLI, the kopf registrations, the
operator, the GitSource reconciler, the revert writer and the annotations all import them here.
"""

from __future__ import annotations

GROUP = "rollout.gitops.dev"
VERSION = "v1alpha1"
API_VERSION = f"{GROUP}/{VERSION}"
# A Flagger manifest keeps its meaning here once its apiVersion is changed to API_VERSION.
FLAGGER_API_VERSION = "flagger.app/v1beta1"

CANARY, BLUEGREEN, METRIC_TEMPLATE, GIT_SOURCE = "Canary", "BlueGreen", "MetricTemplate", "GitSource"
# Flagger's AlertProvider: where `analysis.alerts` (and a GitSource's `alerts`) send their messages.
ALERT_PROVIDER = "AlertProvider"
RELEASE_KINDS = (CANARY, BLUEGREEN)
PLURALS = {
    CANARY: "canaries",
    BLUEGREEN: "bluegreens",
    METRIC_TEMPLATE: "metrictemplates",
    GIT_SOURCE: "gitsources",
    ALERT_PROVIDER: "alertproviders",
}

# The autoscalers a release's `autoscalerRef` may name (Flagger's kinds), and where the API serves them.
HPA = "HorizontalPodAutoscaler"
SCALED_OBJECT = "ScaledObject"
HPA_GROUP, HPA_VERSION, HPA_PLURAL = "autoscaling", "v2", "horizontalpodautoscalers"
KEDA_GROUP, KEDA_VERSION, KEDA_PLURAL = "keda.sh", "v1alpha1", "scaledobjects"

# The workload kinds a release's `targetRef` may name (Flagger's: a Deployment or a DaemonSet,
# cloned to `<name>-primary`), with the apiVersion each is served at.
DEPLOYMENT, DAEMONSET = "Deployment", "DaemonSet"
WORKLOAD_KINDS = {DEPLOYMENT: "apps/v1", DAEMONSET: "apps/v1"}

# A Knative Service (serving.knative.dev/v1) is the target of a release with provider knative, as in
# Flagger: it is not cloned; Knative keeps each template as a Revision and the primary is one of them.
KNATIVE_GROUP, KNATIVE_VERSION = "serving.knative.dev", "v1"
KNATIVE_API_VERSION = f"{KNATIVE_GROUP}/{KNATIVE_VERSION}"
KNATIVE_SERVICE, KNATIVE_SERVICES, KNATIVE_REVISIONS = "Service", "services", "revisions"
# Flagger's annotation on the Knative Service naming the primary Revision (kept under Flagger's name).
KNATIVE_PRIMARY_REVISION_ANNOTATION = "flagger.app/primary-revision"


def is_knative_service(api_version: str, kind: str) -> bool:
    """Flagger's IsKnativeService: a targetRef of kind Service at serving.knative.dev/v1."""
    return kind == KNATIVE_SERVICE and api_version == KNATIVE_API_VERSION
