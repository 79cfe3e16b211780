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
