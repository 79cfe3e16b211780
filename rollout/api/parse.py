"""Turn custom resource dicts into the typed specs of `rollout.api.spec`, or say everything wrong.

The CRD schema checks shapes and types; this module checks the rules a schema cannot express
(stepWeight <= maxWeight, A/B matching needs a header-routing provider, ...) and applies Flagger's
defaults, so that a Flagger Canary with only its apiVersion changed means the same thing here.
Every problem is collected, never just the first, and each names its field path and what to do;
reading each typed field with its path is `rollout.api.fields`'s job.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, fields
from functools import partial
from typing import Any, TypeVar
from urllib.parse import urlsplit

from analysis.providers.rules import RULES
from rollout.api.durations import parse_duration
from rollout.api.errors import FieldError, ValidationError
from rollout.api.fields import Errors, Fields, Json, names, show, type_name
from rollout.api.kinds import (
    API_VERSION,
    DEPLOYMENT,
    FLAGGER_API_VERSION,
    HPA,
    KEDA_GROUP,
    KEDA_VERSION,
    KNATIVE_API_VERSION,
    SCALED_OBJECT,
    WORKLOAD_KINDS,
    is_knative_service,
)
from rollout.api.limits import (
    MAX_ITERATIONS,
    MAX_PROGRESS_DEADLINE,
    MAX_SCALE_DOWN_DELAY,
    MAX_THRESHOLD,
    MAX_TOLERANCE,
    MAX_WARMUP_ALLOWANCE,
)
from rollout.api.schema import declares
from rollout.api.spec import (
    BUILTIN_METRICS,
    DEFAULT_ALERT_CHANNEL,
    DEFAULT_ALERT_USERNAME,
    DEFAULT_MESH_PROVIDER,
    HEADER_ROUTING_PROVIDERS,
    ROUTE_OPTION_PROVIDERS,
    ROUTE_OPTIONS,
    SHARED_ARM_PROVIDERS,
    AlertProvider,
    AlertProviderSpec,
    AlertProviderType,
    AlertRef,
    AlertSeverity,
    Analysis,
    AutoscalerRef,
    BlueGreen,
    BlueGreenSpec,
    Canary,
    CanarySpec,
    Compare,
    Decryption,
    Direction,
    EffectMeasure,
    EffectSize,
    GitAuthor,
    GitHost,
    GitSource,
    GitSourceSpec,
    GitSpec,
    Judge,
    Metadata,
    Metric,
    MetricTemplate,
    MetricTemplateSpec,
    NanStrategy,
    ObjectRef,
    Outliers,
    PreviewService,
    Provider,
    ProviderRef,
    PullRequestSpec,
    PushMode,
    ReceiverType,
    ReleaseSpec,
    Resource,
    RevertMode,
    Scoring,
    ServiceMetadata,
    ServiceSpec,
    SessionAffinity,
    SourceRef,
    SourceWebhook,
    ThresholdRange,
    Warmup,
    Webhook,
    WebhookType,
    provider_named,
)

# Flagger's defaults (pkg/apis/flagger/v1beta1 and pkg/controller/webhook.go).
DEFAULT_INTERVAL = 60.0
DEFAULT_METRIC_INTERVAL = 60.0
DEFAULT_WEBHOOK_TIMEOUT = 10.0
DEFAULT_PROGRESS_DEADLINE = 600

_BUILTIN_LIST = ", ".join(sorted(BUILTIN_METRICS, reverse=True))  # request-success-rate, request-duration
_COOKIE_NAME = re.compile(r"[!#$%&'*+\-.^_`|~0-9A-Za-z]+")
_SCP_LIKE = re.compile(r"^[A-Za-z0-9._-]+@[A-Za-z0-9._-]+:(?!//)\S+$")
# Flagger's CustomMetadata of the generated Services, by role.
_SERVICE_ROLES = ("apex", "primary", "canary")
# Webhook retries beyond which a gate would hold a tick for minutes (Flagger sets no bound).
MAX_WEBHOOK_RETRIES = 10

S = TypeVar("S", bound=ReleaseSpec)


# --- values with rules of their own -----------------------------------------------------------------


def _secret_name(f: Fields) -> str | None:
    ref = f.map("secretRef")
    return None if ref is None else ref.str("name", required=True)


def _http_url_problem(url: str) -> str | None:
    parts = urlsplit(url)
    if parts.scheme in ("http", "https") and parts.netloc:
        return None
    return f"must be an http:// or https:// URL, got {url!r}"


def _git_url_problem(url: str) -> str | None:
    parts = urlsplit(url)
    if parts.scheme in ("https", "ssh") and parts.netloc:
        return None
    if parts.scheme == "file" and parts.path:
        return None
    if "://" not in url and _SCP_LIKE.match(url):
        return None
    return f"must be an https://, ssh:// or file:// URL, or scp-like user@host:path, got {url!r}"


# What `git check-ref-format --branch` refuses, in short: blanks and control characters, ~^:?*[\,
# "..", "@{", a leading "-" or "/", a trailing "/", "." or ".lock", and empty path components.
_BAD_BRANCH = re.compile(r"[\x00-\x20\x7f~^:?*\[\\]|\.\.|@\{|^[-/]|/$|\.$|\.lock$|//|^@$|(^|/)\.")


def _branch(f: Fields) -> str:
    branch = f.str("branch") or "main"
    if _BAD_BRANCH.search(branch):
        f.error("branch", f"must be a Git branch name like main or release/1.x, got {branch!r}")
    return branch


def _repo_path(f: Fields) -> str:
    folder = f.str("path") or "./"
    parts = folder.replace("\\", "/").split("/")
    if folder.startswith("/") or ".." in parts:
        f.error("path", f"must be a folder inside the repository, relative to its root like ./apps/web, got {folder!r}")
    return folder


# --- shared pieces ----------------------------------------------------------------------------------


def _metadata(root: Fields) -> Metadata:
    meta = root.map("metadata", required=True) or root.blank("metadata")
    return Metadata(
        name=meta.str("name", required=True) or "",
        namespace=meta.str("namespace") or "default",
        generation=meta.int("generation", lo=0) or 0,
        uid=meta.str("uid") or "",
        annotations=meta.string_map("annotations"),
    )


@dataclass(frozen=True)
class _Route:
    """The provider a release routes with, and whether its spec names it (or the default applies)."""

    provider: Provider
    explicit: bool

    @property
    def source(self) -> str:
        """How the provider was chosen, for a message whose cause it is."""
        if self.explicit:
            return f"provider '{self.provider}'"
        return (f"the operator's default provider '{self.provider}' (spec.provider is not set; the default is "
                "rollout run --mesh-provider or ROLLOUT_MESH_PROVIDER)")


def _provider(spec: Fields, default: Provider) -> _Route:
    value = spec.get("provider")
    if value is None or value == "":
        return _Route(default, explicit=False)
    if isinstance(value, str) and (provider := provider_named(value)) is not None:
        return _Route(provider, explicit=True)
    known = ", ".join(sorted(names(Provider)))
    spec.error("provider", f"unknown provider {show(value)}; known: {known}")
    return _Route(default, explicit=True)


def _object_ref(ref: Fields, *, api_version: str = "", kind: str = "") -> ObjectRef:
    return ObjectRef(
        api_version=ref.str("apiVersion") or api_version,
        kind=ref.str("kind") or kind,
        name=ref.str("name", required=True) or "",
        namespace=ref.str("namespace"),
    )


def _target_ref(spec: Fields, provider: Provider, *, blue_green: bool = False) -> ObjectRef:
    ref = spec.map("targetRef", required=True)
    if ref is None:
        return ObjectRef(api_version=WORKLOAD_KINDS[DEPLOYMENT], kind=DEPLOYMENT, name="")
    target = _object_ref(ref, kind=DEPLOYMENT)
    if not target.api_version:
        target = dataclasses.replace(target, api_version=WORKLOAD_KINDS.get(target.kind, ""))
    supported = " or ".join(sorted(WORKLOAD_KINDS))
    knative = is_knative_service(target.api_version, target.kind)
    if knative != (provider == Provider.KNATIVE):
        # Flagger's verifyKnativeCanary: a Knative Service is routed by knative, and knative routes only one.
        if knative:
            spec.error("provider", f"a Knative Service target is routed by provider knative, not {show(str(provider))}")
        else:
            ref.error("kind", f"provider knative releases a Knative Service: set apiVersion {KNATIVE_API_VERSION} "
                              "and kind Service")
    elif target.kind == "Service" and not knative:
        # Flagger's Service targets (other than a Knative Service) route between Services someone else
        # runs; there are no pods to clone into `<name>-primary`, which is all this operator does.
        knative_hint = "" if blue_green else f", or a Knative Service ({KNATIVE_API_VERSION}) with provider knative"
        ref.error("kind", f"a Service target is not supported; name the {supported} behind it "
                          f"(its pods are cloned into <name>-primary){knative_hint}")
    elif target.kind not in WORKLOAD_KINDS and not knative:
        ref.error("kind", f"must be {supported}, got {show(target.kind)}")
    return target


# The apiVersions each autoscaler kind is served under (the API converts between an HPA's versions).
_AUTOSCALER_VERSIONS = {
    HPA: ("autoscaling/v2", "autoscaling/v2beta2", "autoscaling/v2beta1"),
    SCALED_OBJECT: (f"{KEDA_GROUP}/{KEDA_VERSION}",),
}


def _autoscaler_ref(spec: Fields) -> AutoscalerRef | None:
    """Flagger's `autoscalerRef`: kind and apiVersion checked against each other, the primary's
    replica bounds ordered, and `primaryScalerQueries` only where there are triggers to query."""
    ref = spec.map("autoscalerRef")
    if ref is None:
        return None
    kind = ref.str("kind", required=True) or ""
    if kind and kind not in _AUTOSCALER_VERSIONS:
        ref.error("kind", f"unknown autoscaler kind {show(kind)}; known: {', '.join(_AUTOSCALER_VERSIONS)}")
    versions = _AUTOSCALER_VERSIONS.get(kind, ())
    api_version = ref.str("apiVersion") or (versions[0] if versions else "")
    if versions and api_version not in versions:
        ref.error("apiVersion", f"a {kind} is served as {' or '.join(versions)}, got {show(api_version)}")
    low = high = None
    bounds = ref.map("primaryScalerReplicas")
    if bounds is not None:
        low, high = bounds.int("minReplicas", lo=1), bounds.int("maxReplicas", lo=1)
        if low is not None and high is not None and low > high:
            bounds.error("minReplicas", f"must be at most maxReplicas ({high}), got {low}")
    queries = ref.string_map("primaryScalerQueries")
    if queries and kind == HPA:
        ref.error("primaryScalerQueries", "applies to kind ScaledObject only (an HPA has no trigger queries); "
                  "remove it")
    return AutoscalerRef(api_version=api_version, kind=kind, name=ref.str("name", required=True) or "",
                         primary_min_replicas=low, primary_max_replicas=high, primary_queries=queries)


def _service_metadata(svc: Fields) -> tuple[tuple[str, ServiceMetadata], ...]:
    out = []
    for role in _SERVICE_ROLES:
        m = svc.map(role)
        if m is not None:
            out.append((role, ServiceMetadata(labels=m.string_map("labels"), annotations=m.string_map("annotations"))))
    return tuple(out)


def _service(spec: Fields, provider: Provider) -> ServiceSpec:
    if provider == Provider.KNATIVE:
        # Knative routes to its Revisions through its own Service's spec.traffic: no Services are made.
        if "service" in spec:
            spec.error("service", "is not used with provider knative (the Knative Service's spec.traffic splits "
                                  "traffic between its revisions): remove it")
            if (svc := spec.map("service")) is not None:
                svc.free()  # refused whole, not field by field
        return ServiceSpec(port=0)
    svc = spec.map("service", required=True)
    if svc is None:
        return ServiceSpec(port=0)
    port = svc.int("port", lo=1, hi=65535)
    if "port" not in svc:
        svc.error("port", "is required: the port the generated Services expose")
    target_port: int | str | None = None
    raw_target = svc.value("targetPort")
    if isinstance(raw_target, str) and raw_target:
        target_port = raw_target
    elif raw_target is not None:
        target_port = svc.int("targetPort", lo=1, hi=65535)
    gateway_refs = []
    for i, ref in enumerate(svc.list("gatewayRefs")):
        if isinstance(ref, Mapping) and isinstance(ref.get("name"), str) and ref["name"]:
            gateway_refs.append(dict(ref))
        else:
            svc.error(f"gatewayRefs[{i}]", "must be an object with a name (and optional namespace)")
    return ServiceSpec(
        port=port or 0,
        name=svc.str("name"),
        target_port=target_port,
        port_name=svc.str("portName") or "http",
        hosts=tuple(svc.strings("hosts")),
        gateways=tuple(svc.strings("gateways")),
        gateway_refs=tuple(gateway_refs),
        port_discovery=svc.bool("portDiscovery", False),
        app_protocol=svc.str("appProtocol"),
        metadata=_service_metadata(svc),
        extra={k: svc.value(k) for k in sorted(ROUTE_OPTIONS.get(provider, ())) if k in svc},
    )


# --- analysis ---------------------------------------------------------------------------------------


def _threshold_range(m: Fields) -> ThresholdRange | None:
    tr = m.map("thresholdRange")
    if tr is None:
        return None
    lo, hi = tr.number("min"), tr.number("max")
    if "min" not in tr and "max" not in tr:
        tr.error("", "set min, max or both")
    if lo is not None and hi is not None and lo > hi:
        tr.error("", f"min ({show(lo)}) must not exceed max ({show(hi)})")
    return ThresholdRange(min=lo, max=hi)


def _compare(m: Fields, sequential: bool) -> Compare | None:
    """`compare`: direction and tolerance, and Kayenta's optional rules. `sequential`: the metric gets
    the sequential judge, where the rules on samples (effectSize, nanStrategy, outliers) do not apply."""
    c = m.map("compare")
    if c is None:
        return None
    direction = c.enum("direction", Direction, "direction", Direction.INCREASE)
    tolerance = c.number("tolerance", limit=MAX_TOLERANCE)
    if tolerance is not None and tolerance < 0:
        c.error("tolerance", f"must be zero or more, got {show(tolerance)}")
        tolerance = None
    if sequential:
        for key in ("effectSize", "nanStrategy", "outliers"):
            if key in c:
                c.error(key, "is a rule of the compare judge (Mann-Whitney on samples); under the sequential "
                             "judge the built-in metrics are judged on raw counts: remove it")
    weight = c.number("weight")
    if weight is not None and not 0 <= weight <= 100:
        c.error("weight", f"must be between 0 and 100 (a share of the 0-100 score), got {show(weight)}")
        weight = None
    nan = c.get("nanStrategy")
    return Compare(
        direction=direction,
        tolerance=tolerance or 0.0,
        effect_size=_effect_size(c),
        critical=c.bool("critical", False),
        must_have_data=c.bool("mustHaveData", False),
        nan_strategy=None if nan is None else c.enum("nanStrategy", NanStrategy, "nanStrategy", NanStrategy.REMOVE),
        outliers=_outliers(c),
        weight=weight,
    )


def _effect_size(c: Fields) -> EffectSize | None:
    """Kayenta's `effectSize {measure, allowedIncrease, allowedDecrease, criticalIncrease, criticalDecrease}`."""
    e = c.map("effectSize")
    if e is None:
        return None
    measure = e.enum("measure", EffectMeasure, "measure", EffectMeasure.MEAN_RATIO)
    limits: dict[str, float | None] = {}
    for key in ("allowedIncrease", "allowedDecrease", "criticalIncrease", "criticalDecrease"):
        value = e.number(key)
        if value is not None and measure == EffectMeasure.CLES and not 0 <= value <= 1:
            e.error(key, f"a cles limit is a probability between 0 and 1 (0.5: no effect), got {show(value)}")
            value = None
        elif value is not None and measure == EffectMeasure.MEAN_RATIO and value <= 0:
            e.error(key, f"a meanRatio limit is a ratio of means above 0 (1: no effect), got {show(value)}")
            value = None
        limits[key] = value
    return EffectSize(measure=measure, allowed_increase=limits["allowedIncrease"],
                      allowed_decrease=limits["allowedDecrease"], critical_increase=limits["criticalIncrease"],
                      critical_decrease=limits["criticalDecrease"])


def _outliers(c: Fields) -> Outliers | None:
    """Kayenta's `outliers {strategy: remove | keep, factor}` (IQR fences, factor 3 by default)."""
    o = c.map("outliers")
    if o is None:
        return None
    strategy = o.str("strategy") or "keep"
    if strategy not in ("remove", "keep"):
        o.error("strategy", f"unknown outlier strategy {show(strategy)}; known: remove, keep")
    factor = o.number("factor")
    if factor is not None and factor <= 0:
        o.error("factor", f"must be greater than zero, got {show(factor)}")
        factor = None
    return Outliers(remove=strategy == "remove", factor=3.0 if factor is None else factor)


def _metric(m: Fields, judge: Judge) -> Metric:
    name = m.str("name", required=True) or ""
    interval = m.duration("interval", DEFAULT_METRIC_INTERVAL)
    threshold_range = _threshold_range(m)
    threshold = m.number("threshold")
    query = m.str("query")
    template_ref = None
    ref = m.map("templateRef")
    if ref is not None:
        # Flagger's templateRef is a name and a namespace; the kind is always MetricTemplate.
        template_ref = ObjectRef(api_version="", kind="MetricTemplate", name=ref.str("name", required=True) or "",
                                 namespace=ref.str("namespace"))
    if query is not None and template_ref is not None:
        m.error("", "use either query or templateRef, not both")
    builtin = query is None and template_ref is None
    if builtin and name and name not in BUILTIN_METRICS:
        m.error("", f"{name!r} is not a built-in metric ({_BUILTIN_LIST}); add a query or a templateRef")
    if threshold_range is None and threshold is not None:
        # Flagger's deprecated form: a floor for the success rate, a ceiling for everything else.
        if builtin and name == "request-success-rate":
            threshold_range = ThresholdRange(min=threshold)
        else:
            threshold_range = ThresholdRange(max=threshold)
    compare = _compare(m, sequential=judge == Judge.SEQUENTIAL and builtin)
    if threshold_range is None and compare is None and judge == Judge.THRESHOLD:
        m.error(
            "",
            "add a thresholdRange (min and/or max), or a compare block to judge the canary against the "
            "primary (or set analysis.judge to compare or sequential)",
        )
    return Metric(
        name=name,
        interval=interval,
        threshold_range=threshold_range,
        query=query,
        template_ref=template_ref,
        template_variables=m.string_map("templateVariables"),
        compare=compare,
        dry_run=m.bool("dryRun", False),
        warmup=_metric_warmup(m, judge, builtin),
    )


def _metric_warmup(m: Fields, judge: Judge, builtin: bool) -> Warmup | None:
    """A built-in metric's own `warmup` under the sequential judge (a latency warm-up is a slowdown, an
    error-rate one a ratio, and a new pod's two often differ)."""
    if "warmup" in m and judge == Judge.SEQUENTIAL and not builtin:
        m.error("warmup", "is used on the built-in metrics only (request-success-rate, request-duration), which "
                          "the sequential judge tests on raw counts: remove it")
    return _warmup(m, judge)


def _alerts(parent: Fields) -> tuple[AlertRef, ...]:
    """Flagger's `alerts`: each names an AlertProvider (`providerRef`) and a severity (default info)."""
    out: list[AlertRef] = []
    seen: set[str] = set()
    for a in parent.objects("alerts", "with a name and a providerRef"):
        name = a.str("name", required=True) or ""
        if name and name in seen:
            a.error("name", f"duplicate alert name {name!r}; alert names must be unique")
        seen.add(name)
        ref = a.map("providerRef", required=True)
        out.append(AlertRef(
            name=name,
            provider=(ref.str("name", required=True) or "") if ref is not None else "",
            provider_namespace=ref.str("namespace") if ref is not None else None,
            severity=a.enum("severity", AlertSeverity, "alert severity", AlertSeverity.INFO),
        ))
    return tuple(out)


def _webhook(w: Fields) -> Webhook:
    url = w.str("url", required=True) or ""
    if url and (problem := _http_url_problem(url)):
        w.error("url", problem)
    return Webhook(
        name=w.str("name", required=True) or "",
        url=url,
        # Flagger runs a webhook without a type during the analysis, as a rollout hook.
        type=w.enum("type", WebhookType, "webhook type", WebhookType.ROLLOUT),
        timeout=w.duration("timeout", DEFAULT_WEBHOOK_TIMEOUT),
        mute_alert=w.bool("muteAlert", False),
        metadata=w.string_map("metadata"),
        retries=w.int("retries", lo=0, limit=MAX_WEBHOOK_RETRIES) or 0,
        disable_tls=w.bool("disableTLS", False),
    )


def _step_weights(a: Fields) -> tuple[int, ...]:
    out: list[int] = []
    for i, w in enumerate(a.list("stepWeights")):
        key = f"stepWeights[{i}]"
        if isinstance(w, bool) or not isinstance(w, int):
            a.error(key, f"must be an integer, got {type_name(w)}")
        elif not 1 <= w <= 100:
            a.error(key, f"must be between 1 and 100, got {show(w)}")
        elif out and w <= out[-1]:
            a.error(key, f"must be greater than the previous step ({out[-1]}), got {w}")
        else:
            out.append(w)
    return tuple(out)


def _analysis(a: Fields, spec: Fields, route: _Route, *, blue_green: bool) -> Analysis:
    judge = a.enum("judge", Judge, "judge", Judge.THRESHOLD)
    max_weight = a.int("maxWeight", lo=1, hi=100)
    step_weight = a.int("stepWeight", lo=1, hi=100)
    step_weights = _step_weights(a)
    iterations = a.int("iterations", lo=1, limit=MAX_ITERATIONS)
    alpha = a.number("alpha")
    if alpha is not None and not 0 < alpha < 1:
        a.error("alpha", f"must be between 0 and 1 (exclusive), got {show(alpha)}")
        alpha = None
    conditions = a.objects("match", "(headers, cookies)")
    match = [cond.free() for cond in conditions]
    _edge_match(conditions, route.provider)

    has_steps = "stepWeight" in a or "stepWeights" in a
    if blue_green:
        for key in ("stepWeight", "stepWeights", "stepWeightPromotion"):
            if key in a:
                a.error(key, f"blue/green switches all traffic at once after the iterations pass; remove {key}")
        if "match" in a:
            a.error(
                "match",
                "blue/green switches all traffic at once; for A/B testing use a Canary with iterations and match",
            )
        if "iterations" not in a:
            a.error(
                "iterations",
                "is required: the number of checks the new version must pass before all traffic switches to it",
            )
    else:
        if "stepWeight" in a and "stepWeights" in a:
            a.error("stepWeights", "use either stepWeight (with maxWeight) or stepWeights, not both")
        if has_steps and "iterations" in a:
            a.error(
                "iterations",
                "iterations cannot be combined with stepWeight or stepWeights: use step weights to shift "
                "traffic progressively, or iterations for A/B testing and blue/green",
            )
        elif not has_steps and "iterations" not in a:
            a.error(
                "",
                "set stepWeight (with maxWeight) or stepWeights to shift traffic progressively, or iterations "
                "for A/B testing and blue/green",
            )
        if step_weight is not None and max_weight is not None and step_weight > max_weight:
            a.error("stepWeight", f"must not exceed maxWeight ({max_weight}), got {step_weight}")
        if route.provider == Provider.KUBERNETES:
            for step in ("stepWeight", "stepWeights", "stepWeightPromotion"):
                if step in a and (step != "stepWeights" or "stepWeight" not in a):
                    a.error(
                        step,
                        f"{route.source} switches all traffic at once and cannot shift it in steps: remove {step} "
                        "and set iterations for a blue/green release, or set spec.provider to a mesh or gateway "
                        "provider (gatewayapi, istio, linkerd, nginx, smi)",
                    )
        if "match" in a and route.provider not in HEADER_ROUTING_PROVIDERS:
            known = ", ".join(sorted(str(p) for p in HEADER_ROUTING_PROVIDERS))
            spec.error(
                "provider",
                f"{route.source} cannot route A/B tests (analysis.match) by header or cookie: set spec.provider "
                f"to one of {known}",
            )
        if "match" in a and route.provider == Provider.APPMESH:
            _appmesh_match(a, match)
        if "match" in a and "iterations" not in a:
            a.error(
                "match",
                "A/B matching needs iterations (how many checks to run on the matched traffic) instead of step weights",
            )

    metrics: list[Metric] = []
    seen: set[str] = set()
    for m in a.objects("metrics", "with a name"):
        metric = _metric(m, judge)
        if metric.name and metric.name in seen:
            m.error("name", f"duplicate metric name {metric.name!r}; metric names must be unique")
        seen.add(metric.name)
        metrics.append(metric)
        if route.provider in SHARED_ARM_PROVIDERS and metric.builtin and (
                judge != Judge.THRESHOLD or metric.compare is not None):
            field = f"metrics[{len(metrics) - 1}].compare" if metric.compare is not None else "judge"
            a.error(field, f"{route.source} counts the canary and the primary in one series (by route), so the "
                    f"built-in {metric.name} cannot be compared with the primary: judge it with a thresholdRange")
    webhooks = [_webhook(w) for w in a.objects("webhooks", "with a name and a url")]
    mirror, mirror_weight, affinity = _traffic_options(a, route.provider, blue_green=blue_green)
    return Analysis(
        interval=a.duration("interval", DEFAULT_INTERVAL),
        threshold=a.int("threshold", lo=1, limit=MAX_THRESHOLD) or 1,
        max_weight=max_weight or 100,
        step_weight=step_weight,
        step_weights=step_weights,
        step_weight_promotion=a.int("stepWeightPromotion", lo=1, hi=100),
        iterations=iterations,
        match=tuple(match),
        metrics=tuple(metrics),
        webhooks=tuple(webhooks),
        judge=judge,
        alpha=0.05 if alpha is None else alpha,
        mirror=mirror,
        mirror_weight=mirror_weight,
        session_affinity=affinity,
        alerts=_alerts(a),
        warmup=_warmup(a, judge),
        scoring=_scoring(a, metrics),
        look_interval=_look_interval(a, judge),
    )


def _look_interval(a: Fields, judge: Judge) -> float | None:
    """`analysis.lookInterval`: how often the sequential judge looks, between checks too."""
    if "lookInterval" not in a:
        return None
    look = a.duration("lookInterval", -1.0)
    if look == -1.0 and a.get("lookInterval") not in (None, ""):
        return None  # not a duration: reported
    try:
        interval = parse_duration(str(a.get("interval") or "1m"))
    except ValueError:
        interval = 0.0  # reported with analysis.interval
    if judge != Judge.SEQUENTIAL:
        a.error("lookInterval", "is used by the sequential judge only (its test stays valid however often it "
                                "looks): set analysis.judge to sequential, or remove it")
    elif look < 1:
        a.error("lookInterval", f"must be a duration of at least 1s (and at least twice your Prometheus scrape "
                                f"interval), got {show(a.get('lookInterval'))}")
    elif interval > 0 and look > interval:
        a.error("lookInterval", f"must not be longer than analysis.interval ({show(a.get('interval') or '1m')}), "
                                f"got {show(a.get('lookInterval'))}")
    return look if look >= 1 else None


def _scoring(a: Fields, metrics: list[Metric]) -> Scoring | None:
    """`analysis.scoring {pass, marginal}`: Kayenta's 0-100 score per check, and the metrics' weights."""
    sc = a.map("scoring")
    weighted = [(i, m) for i, m in enumerate(metrics) if m.compare is not None and m.compare.weight is not None]
    if sc is None:
        for i, _ in weighted:
            a.error(f"metrics[{i}].compare.weight", "is a share of analysis.scoring's score: add analysis.scoring "
                                                    "(e.g. {pass: 95, marginal: 75}), or remove it")
        return None
    for i, m in weighted:
        if m.dry_run:
            a.error(f"metrics[{i}].compare.weight", "a dry-run metric is not scored: remove the weight or dryRun")
    scored = [m for m in metrics if not m.dry_run]
    given = [m.compare.weight for m in scored if m.compare is not None and m.compare.weight is not None]
    if sum(given) > 100:
        a.error("metrics", f"the weights of the scored metrics add up to {show(sum(given))}; they must not exceed 100")
    elif scored and len(given) == len(scored) and sum(given) != 100:
        a.error("metrics", f"every scored metric has a weight and they add up to {show(sum(given))}; "
                           "Kayenta's weights total 100")
    values: dict[str, float] = {}
    for key, default in (("pass", 95.0), ("marginal", 75.0)):
        value = sc.number(key)
        if value is not None and not 0 <= value <= 100:
            sc.error(key, f"must be between 0 and 100, got {show(value)}")
            value = None
        values[key] = default if value is None else value
    if values["marginal"] > values["pass"]:
        sc.error("marginal", f"must not exceed pass ({show(values['pass'])}), got {show(values['marginal'])}")
    return Scoring(pass_at=values["pass"], marginal=min(values["marginal"], values["pass"]))


def _warmup(a: Fields, judge: Judge) -> Warmup | None:
    """`warmup {allowance, decay}` of the analysis or of one metric: the sequential judge's forgiveness of
    a benign start."""
    w = a.map("warmup")
    if w is None:
        return None
    if judge != Judge.SEQUENTIAL:
        a.error("warmup", "is used by the sequential judge only: set analysis.judge to sequential, or remove it")
    allowance = w.number("allowance", limit=MAX_WARMUP_ALLOWANCE)
    if "allowance" not in w:
        w.error("allowance", "is required: how many times worse than its tolerance the canary may start (1 = twice)")
    elif allowance is not None and allowance < 0:
        w.error("allowance", f"must be zero or more, got {show(allowance)}")
        allowance = None
    decay = w.duration("decay", -1.0)
    if "decay" not in w:
        w.error("decay", "is required: how fast the allowance fades, a duration like 30s (it shrinks by e each time)")
    elif decay == 0:
        w.error("decay", f"must be longer than zero, got {w.get('decay')!r}")
    return Warmup(allowance=allowance or 0.0, decay=decay if decay > 0 else 1.0)


def _session_affinity(a: Fields) -> SessionAffinity | None:
    sa = a.map("sessionAffinity")
    if sa is None:
        return None
    name = sa.str("cookieName", required=True) or ""
    primary = sa.str("primaryCookieName") or ""
    for key, value in (("cookieName", name), ("primaryCookieName", primary)):
        if value and not _COOKIE_NAME.fullmatch(value):
            sa.error(key, f"must be a cookie name (letters, digits and !#$%&'*+-.^_`|~), got {value!r}")
    if name and name == primary:
        sa.error("primaryCookieName", "must differ from cookieName")
    max_age = sa.int("maxAge", lo=1)
    same_site = sa.get("sameSite")
    if same_site not in (None, "", "Strict", "Lax", "None"):
        sa.error("sameSite", f"must be Strict, Lax or None, got {show(same_site)}")
        same_site = None
    return SessionAffinity(
        cookie_name=name, primary_cookie_name=primary, max_age=max_age or 86400,
        domain=sa.str("domain") or "", path=sa.str("path") or "", http_only=sa.bool("httpOnly", False),
        secure=sa.bool("secure", False), partitioned=sa.bool("partitioned", False), same_site=same_site or "",
    )


# How App Mesh routes can test a header (HeaderMatchMethod of appmesh.k8s.aws/v1beta2, as Flagger's
# appmesh router fills it from `analysis.match`); App Mesh routes test nothing but headers.
APPMESH_HEADER_TESTS = ("exact", "prefix", "suffix", "regex")


def _appmesh_match(a: Fields, match: list[dict[str, Any]]) -> None:
    if len(match) > 1:
        # Flagger's router puts every condition's headers into one route, where all must match: a
        # second condition would narrow the first instead of adding to it, as it does elsewhere.
        a.error("match[1]", "provider 'appmesh' routes one condition (its headers must all match): put the "
                "headers into match[0], or use a provider that routes any of several conditions")
    for i, condition in enumerate(match):
        for key in sorted(condition):
            if key != "headers":
                a.error(f"match[{i}].{key}", "is not supported for provider 'appmesh': App Mesh routes match "
                        "headers (and cookies, by the Cookie header) only")
        headers = condition.get("headers")
        if not isinstance(headers, Mapping) or not headers:
            a.error(f"match[{i}].headers", "is required for provider 'appmesh': the headers a request must carry")
            continue
        for name, test in headers.items():
            tests = [k for k in (test if isinstance(test, Mapping) else {}) if k in APPMESH_HEADER_TESTS]
            if not isinstance(test, Mapping) or len(tests) != 1 or len(test) != 1:
                a.error(f"match[{i}].headers.{name}", "must test the header by exactly one of "
                        f"{', '.join(APPMESH_HEADER_TESTS)} with provider 'appmesh'")


# The HTTP retry events of an App Mesh route (HTTPRetryPolicyEvent of appmesh.k8s.aws/v1beta2).
APPMESH_RETRY_EVENTS = ("server-error", "gateway-error", "client-error", "stream-error")


def _appmesh_duration(f: Fields, key: str) -> None:
    value = f.get(key)
    if value in (None, ""):
        return
    try:
        parse_duration(str(value))
    except ValueError:
        f.error(key, f"must be a duration like 15s or 250ms (App Mesh counts milliseconds), got {show(value)}")


def _appmesh_service(svc: Fields) -> None:
    """What Flagger's App Mesh router makes of `timeout`, `retries` and `match`, and nothing else."""
    _appmesh_duration(svc, "timeout")
    retries = svc.get("retries")
    if isinstance(retries, Mapping):
        r = svc.child(retries, "retries")
        r.free()  # taken whole by the router, as for istio
        _appmesh_duration(r, "perTryTimeout")
        for event in (e.strip() for e in str(retries.get("retryOn") or "").split(",") if e.strip()):
            if event not in APPMESH_RETRY_EVENTS:
                r.error("retryOn", f"App Mesh retries HTTP requests on {', '.join(APPMESH_RETRY_EVENTS)}; "
                        f"got {show(event)}")
    match = svc.get("match")
    if isinstance(match, list):
        for i, condition in enumerate(match):
            uri = condition.get("uri") if isinstance(condition, Mapping) else None
            if i > 0 or not isinstance(uri, Mapping) or set(condition) != {"uri"} or set(uri) != {"prefix"}:
                svc.error(f"match[{i}]", "provider 'appmesh' routes by one URI prefix only: "
                          "match: [{uri: {prefix: /path}}]")
def _edge_match(conditions: list[Fields], provider: Provider) -> None:
    """What Contour's and Gloo's routes cannot match on (Flagger's contour router writes headers by
    exact, prefix or suffix; its gloo router headers, and ours query parameters and methods too)."""
    for cond in conditions:
        if provider == Provider.CONTOUR:
            for key in ("sourceLabels", "queryParams"):
                if cond.get(key):
                    cond.error(key, "is not supported for provider 'contour': an HTTPProxy route matches headers only")
            headers = cond.get("headers")
            for name, value in (headers.items() if isinstance(headers, Mapping) else ()):
                if isinstance(value, Mapping) and "regex" in value:
                    cond.error(f"headers.{name}.regex", "is not supported for provider 'contour' (Contour matches "
                               "no regex): use exact, prefix or suffix")
        elif provider == Provider.GLOO and cond.get("sourceLabels"):
            cond.error("sourceLabels", "is not supported for provider 'gloo': Gloo Edge cannot tell callers apart "
                       "by their labels")


def _traffic_options(a: Fields, provider: Provider, *, blue_green: bool) -> tuple[bool, int, SessionAffinity | None]:
    """`mirror`, `mirrorWeight` and `sessionAffinity`, refused where Flagger's routers cannot do them."""
    mirror = a.bool("mirror", False)
    mirror_weight = a.int("mirrorWeight", lo=0, hi=100) or 0
    affinity = _session_affinity(a)
    for key in ("mirror", "mirrorWeight", "sessionAffinity"):
        if key in a and a.get(key) not in (False, None) and (blue_green or provider not in ROUTE_OPTION_PROVIDERS):
            where = "a BlueGreen" if blue_green else f"provider '{provider}'"
            a.error(key, f"is not supported for {where}: only a Canary with provider "
                    f"{_either(ROUTE_OPTION_PROVIDERS, 'or')} can do it")
    if provider == Provider.GATEWAYAPI and not blue_green:
        if "mirrorWeight" in a:
            a.error("mirrorWeight", "is applicable to provider istio only (Gateway API mirrors every request)")
        if mirror and "iterations" not in a:
            a.error("mirror", "with provider gatewayapi mirroring is a blue/green stage: use iterations, not "
                    "step weights (only istio mirrors before the first step)")
    if "mirrorWeight" in a and not mirror:
        a.error("mirrorWeight", "needs mirror: true (the share of requests mirrored to the canary)")
    if mirror and "match" in a:
        a.error("mirror", "cannot be combined with match: A/B testing routes matched requests to the canary instead")
    if affinity is not None:
        if "match" in a:
            a.error("sessionAffinity", "cannot be combined with match: A/B testing routes by match, not by cookie")
        elif "iterations" in a:
            a.error("sessionAffinity", "needs step weights: with iterations (blue/green) the weighted route never "
                    "sends users to the canary, so no one gets the cookie")
    return mirror, mirror_weight, affinity


def _analysis_of(spec: Fields, route: _Route, *, blue_green: bool) -> Analysis:
    # Flagger still reads the deprecated spec.canaryAnalysis when spec.analysis is absent.
    key = "analysis" if "analysis" in spec or "canaryAnalysis" not in spec or blue_green else "canaryAnalysis"
    a = spec.map(key, required=True)
    if a is None:
        return Analysis()
    return _analysis(a, spec, route, blue_green=blue_green)


# --- git --------------------------------------------------------------------------------------------


def _git(spec: Fields) -> GitSpec | None:
    g = spec.map("git")
    if g is None:
        return None
    source = g.str("source")
    url = g.str("url")
    if source and url:
        g.error(
            "",
            "set either source (a GitSource this operator syncs) or url (a repository Flux or Argo CD syncs), not both",
        )
    elif not source and not url:
        g.error(
            "",
            "set source to the name of a GitSource, or url (with branch and path) when Flux or Argo CD "
            "syncs the manifests",
        )
    if url and (problem := _git_url_problem(url)):
        g.error("url", problem)
    if source and not url:
        for key in ("branch", "path", "secretRef"):
            if key in g:
                g.error(key, f"{key} comes from the GitSource {source!r}; remove it here, or use url instead of source")
    author = GitAuthor()
    a = g.map("author")
    if a is not None:
        author = GitAuthor(name=a.str("name") or author.name, email=a.str("email") or author.email)
    return GitSpec(
        source=source,
        url=url,
        branch=_branch(g),
        path=_repo_path(g),
        secret_ref=_secret_name(g),
        revert=g.enum("revert", RevertMode, "revert mode", RevertMode.AUTO),
        push=g.enum("push", PushMode, "push mode", PushMode.DIRECT),
        author=author,
        pull_request=_pull_request(g),
    )


def _pull_request(g: Fields) -> PullRequestSpec:
    """`git.pullRequest`: the host, API base and repository of `push: pullRequest` (each inferred from
    the repository URL when absent)."""
    p = g.map("pullRequest")
    if p is None:
        return PullRequestSpec()
    api_url = p.str("apiURL")
    if api_url and (problem := _http_url_problem(api_url)):
        p.error("apiURL", problem)
    repository = p.str("repository")
    if repository is not None and (not repository.strip("/") or ".." in repository.split("/")):
        p.error("repository", f"must be a repository path like owner/name, got {repository!r}")
    host = p.enum("host", GitHost, "Git host", GitHost.GITHUB) if p.get("host") else None
    if g.str("push") != PushMode.PULL_REQUEST.value:
        g.error("pullRequest", "is only read with push: pullRequest; remove it or set push: pullRequest")
    return PullRequestSpec(host=host, api_url=api_url.rstrip("/") if api_url else None,
                           repository=repository.strip("/") if repository else None)


# --- kinds ------------------------------------------------------------------------------------------


def _root(obj: Any) -> Fields:
    if not isinstance(obj, Mapping):
        raise ValidationError(
            [FieldError("", f"must be an object with apiVersion, kind, metadata and spec, got {type_name(obj)}")]
        )
    return Fields(obj, "", Errors())


def _spec(root: Fields) -> Fields:
    """The spec, checked: a field in it that no reader asks for is refused by name."""
    return (root.map("spec", required=True) or root.blank("spec")).check()


def _refuse_unread(root: Fields, kind: str) -> None:
    """Every field of the spec that parsing did not read, as an error saying to remove it."""

    def message(path: str) -> str:
        declared = declares(kind, path)
        if declared is None:
            return "is not supported by rollout; remove it"
        if declared:
            return "Flagger's field is not supported by rollout; remove it"
        return "unknown field; remove it"

    root.errors.unread(message)


def _release(obj: Json, kind: type[S], own: Callable[[Fields, ReleaseSpec], Mapping[str, Any]],
             default_provider: Provider) -> tuple[Metadata, S]:
    """What every release kind reads the same way, then `own(spec, common)`: the fields (and the
    rules) of `kind` alone; `default_provider` routes a release whose spec names none. Raises
    ValidationError listing every problem."""
    root = _root(obj)
    metadata = _metadata(root)
    spec = _spec(root)
    route = _provider(spec, default_provider)
    common = ReleaseSpec(
        target_ref=_target_ref(spec, route.provider, blue_green=issubclass(kind, BlueGreenSpec)),
        service=_service(spec, route.provider),
        analysis=_analysis_of(spec, route, blue_green=issubclass(kind, BlueGreenSpec)),
        provider=route.provider,
        progress_deadline_seconds=(
            spec.int("progressDeadlineSeconds", lo=1, limit=MAX_PROGRESS_DEADLINE) or DEFAULT_PROGRESS_DEADLINE
        ),
        skip_analysis=spec.bool("skipAnalysis", False),
        suspend=spec.bool("suspend", False),
        git=_git(spec),
    )
    shared = {f.name: getattr(common, f.name) for f in fields(ReleaseSpec)}
    release = kind(**shared, **own(spec, common))
    _refuse_unread(root, str(obj.get("kind") or kind.__name__.removesuffix("Spec")))
    root.errors.raise_if_any()
    return metadata, release


def _canary_fields(spec: Fields, common: ReleaseSpec) -> dict[str, Any]:
    if not spec.bool("revertOnDeletion", True):
        # Deleting a release always gives the workload back (see rollout.workloads.deployments).
        spec.error("revertOnDeletion", "rollout always reverts on deletion (the target serves again, or the "
                   "primary is kept when the target is unproven); remove revertOnDeletion: false")
    ingress_ref = None
    ref = spec.map("ingressRef")
    if ref is not None:
        ingress_ref = _object_ref(ref, api_version="networking.k8s.io/v1", kind="Ingress")
    elif common.provider == Provider.NGINX and spec.data:
        spec.error("ingressRef", "is required with provider nginx: name the Ingress whose traffic is split")
    elif common.provider == Provider.SKIPPER and spec.data:
        spec.error("ingressRef", "is required with provider skipper: name the Ingress whose traffic is split")
    route_ref = None
    route = spec.map("routeRef")
    if route is not None:
        route_ref = _object_ref(route, api_version="apisix.apache.org/v2", kind="ApisixRoute")
        if common.provider != Provider.APISIX:
            spec.error("routeRef", f"names an ApisixRoute, which only provider apisix splits; provider "
                       f"'{common.provider}' would ignore it: remove it or set spec.provider to apisix")
    elif common.provider == Provider.APISIX and spec.data:
        spec.error("routeRef", "is required with provider apisix: name the ApisixRoute whose traffic is split")
    if (common.provider == Provider.GATEWAYAPI and isinstance(spec.get("service"), Mapping)
            and not common.service.gateway_refs):
        spec.error("service.gatewayRefs", "is required with provider gatewayapi: name the Gateways to attach to")
    autoscaler_ref = _autoscaler_ref(spec)
    if autoscaler_ref is not None and common.provider == Provider.KNATIVE:
        spec.error("autoscalerRef", "a Knative Service is scaled by Knative's own autoscaler: remove it")
    elif autoscaler_ref is not None and common.target_ref.kind not in ("", "Deployment"):
        spec.error("autoscalerRef", f"scales a Deployment; a {common.target_ref.kind} target has no replicas to "
                   "autoscale: remove it")
    _service_options(spec, common.provider)
    upstream_ref = None
    up = spec.map("upstreamRef")
    if up is not None:
        upstream_ref = _object_ref(up, api_version="gloo.solo.io/v1", kind="Upstream")
        if common.provider != Provider.GLOO:
            spec.error("upstreamRef", f"is supported for provider gloo only (the Gloo Upstream whose settings the "
                       f"router's Upstreams copy), not for provider '{common.provider}'")
    return {"ingress_ref": ingress_ref, "route_ref": route_ref, "autoscaler_ref": autoscaler_ref,
            "upstream_ref": upstream_ref}


# service fields only some routers write (Flagger's istio and gatewayapi routers): the providers of each
_SERVICE_OPTIONS: dict[str, frozenset[Provider]] = {
    key: frozenset(p for p, keys in ROUTE_OPTIONS.items() if key in keys)
    for key in sorted(set().union(*ROUTE_OPTIONS.values()))
}


def _either(providers: frozenset[Provider], conjunction: str) -> str:
    names = sorted(str(p) for p in providers)
    return names[0] if len(names) == 1 else f"{', '.join(names[:-1])} {conjunction} {names[-1]}"


def _service_options(spec: Fields, provider: Provider) -> None:
    svc = spec.map("service")
    if svc is None:
        return
    for key, providers in _SERVICE_OPTIONS.items():
        if svc.get(key) not in (None, False) and provider not in providers:
            verb = "writes" if len(providers) == 1 else "write"
            svc.error(key, f"is not supported for provider '{provider}': only {_either(providers, 'and')} {verb} "
                      "it into the route")
    if provider == Provider.CONTOUR:
        for i, condition in enumerate(svc.list("match")):
            # Flagger's contour router takes the first condition's URI prefix as the route's path
            uri = condition.get("uri") if isinstance(condition, Mapping) else None
            if i > 0 or not isinstance(condition, Mapping) or set(condition) != {"uri"} \
                    or not isinstance(uri, Mapping) or set(uri) != {"prefix"}:
                svc.error(f"match[{i}]", "with provider contour, service.match is one condition with a URI "
                          "prefix (the HTTPProxy route's path prefix): {uri: {prefix: /path}}")
    delegation = svc.bool("delegation", False)
    if delegation and (svc.get("hosts") or svc.get("gateways")):
        svc.error("delegation", "a delegate VirtualService has no hosts or gateways: remove service.hosts and "
                  "service.gateways (the root VirtualService names them)")
    if provider == Provider.ISTIO and str(svc.get("appProtocol") or "").lower() == "tcp":
        for key in ("headers", "rewrite", "corsPolicy", "timeout", "retries"):
            if key in svc:
                svc.error(key, "is an HTTP route option: with appProtocol tcp the VirtualService has a tcp route")
        analysis = spec.get("analysis") if isinstance(spec.get("analysis"), Mapping) else {}
        for key in ("match", "mirror", "sessionAffinity"):
            if analysis.get(key):
                spec.error(f"analysis.{key}", "needs HTTP routes: with service.appProtocol tcp the VirtualService "
                           "has a tcp route")
    if provider == Provider.APPMESH:
        _appmesh_service(svc)
    rewrite = svc.map("rewrite")
    if rewrite is not None:
        rewrite.free()  # taken whole by the router
    if rewrite is not None and provider == Provider.GATEWAYAPI:
        kind = rewrite.get("type")
        if kind not in (None, "", "ReplaceFullPath", "ReplacePrefixMatch"):
            rewrite.error("type", f"must be ReplaceFullPath or ReplacePrefixMatch, got {show(kind)}")
    cors = svc.map("corsPolicy")
    if cors is not None:
        cors.free()  # taken whole by the router
    if cors is not None and provider == Provider.GATEWAYAPI and cors.get("allowOrigins"):
        cors.error("allowOrigins", "is not supported by Gateway API: use corsPolicy.allowOrigin (a list of origins)")


def _bluegreen_fields(spec: Fields, common: ReleaseSpec) -> dict[str, Any]:
    if common.provider == Provider.KNATIVE:
        spec.error("provider", "a BlueGreen releases a Deployment or DaemonSet: for a Knative Service use a Canary "
                               "with provider knative and iterations (all traffic switches after them)")
    preview = None
    pv = spec.map("previewService")
    if pv is not None:
        preview = PreviewService(name=pv.str("name", required=True) or "", port=pv.int("port", lo=1, hi=65535))
    delay = spec.int("scaleDownDelaySeconds", lo=0, limit=MAX_SCALE_DOWN_DELAY)
    if common.provider in (Provider.APISIX, Provider.SKIPPER):
        ref = "routeRef (an ApisixRoute)" if common.provider == Provider.APISIX else "ingressRef (an Ingress)"
        spec.error("provider", f"provider {common.provider} splits the traffic of a Canary's spec.{ref}, which a "
                   "BlueGreen has no field for: use a Canary with iterations for a blue/green release")
    return {
        "auto_promotion": spec.bool("autoPromotion", True),
        "scale_down_delay_seconds": 30 if delay is None else delay,
        "preview_service": preview,
    }


def parse_canary(obj: Json, mesh_provider: Provider = DEFAULT_MESH_PROVIDER) -> Canary:
    """A Canary (or a Flagger Canary) as typed spec; raises ValidationError listing every problem.

    `mesh_provider` is the provider of a Canary without `spec.provider`: the operator's (and
    `rollout validate`'s) `--mesh-provider`, by default Flagger's."""
    metadata, spec = _release(obj, CanarySpec, _canary_fields, mesh_provider)
    return Canary(metadata=metadata, spec=spec)


def parse_bluegreen(obj: Json) -> BlueGreen:
    """A BlueGreen as typed spec; raises ValidationError listing every problem."""
    metadata, spec = _release(obj, BlueGreenSpec, _bluegreen_fields, Provider.KUBERNETES)
    return BlueGreen(metadata=metadata, spec=spec)


# The fields of a MetricTemplate's `provider` every type shares (Flagger's); the rest are a type's own.
_COMMON_PROVIDER_FIELDS = ("type", "address", "secretRef", "insecureSkipVerify", "region")


def _metric_provider(pr: Fields) -> ProviderRef:
    """`provider`, checked against its type's rules (`analysis.providers.rules.RULES`)."""
    ptype = pr.str("type") or "prometheus"
    rules = RULES.get(ptype)
    if rules is None:
        pr.error("type", f"unknown metric provider {ptype!r}; known: {', '.join(sorted(RULES))}")
    where = f"the {ptype} provider"
    address = pr.str("address") or (rules.default_address if rules else None)
    if address is None and rules is not None:
        pr.error("address", f"is required: {where} has no default address (see {rules.docs})")
    elif address is not None and (problem := _http_url_problem(address)):
        pr.error("address", problem)
    secret_ref = _secret_name(pr)
    if secret_ref is None and rules is not None and rules.secret_required:
        keys = ", ".join(rules.secret_keys)
        pr.error("secretRef", f"is required: {where} reads its credentials from a Secret with the keys {keys} "
                              f"(see {rules.docs})")
    region = pr.str("region")
    if rules is not None:
        if region is not None and not rules.region:
            pr.error("region", f"{where} reads no region; remove it")
            region = None
        elif region is None and rules.region_required:
            pr.error("region", f"is required: {where} needs the region of its API, e.g. us-east-1")
    options: dict[str, Any] = {}
    if rules is None:
        for key in pr.data:  # an unknown type's own fields cannot be judged: the type's error says it all
            pr.value(key)
    else:
        for key in pr.data:
            if key in _COMMON_PROVIDER_FIELDS:
                continue
            if key in rules.fields:
                options[key] = pr.value(key)
            else:
                own = f"; its own fields: {', '.join(rules.fields)}" if rules.fields else ""
                pr.error(key, f"{where} reads no field {key!r}{own}; remove it")
                pr.value(key)
        for path, problem in rules.check_options(options):
            pr.error(path, problem)
    return ProviderRef(
        type=ptype,
        address=address or "",
        secret_ref=secret_ref,
        insecure_skip_verify=pr.bool("insecureSkipVerify", False),
        region=region,
        options=tuple(options.items()),
    )


def _query_text(spec: Fields, key: str) -> str | None:
    text = spec.str(key)
    return text if text is not None and text.strip() else None


def parse_metric_template(obj: Json) -> MetricTemplate:
    """A MetricTemplate as typed spec; raises ValidationError listing every problem."""
    root = _root(obj)
    metadata = _metadata(root)
    spec = _spec(root)
    pr = spec.map("provider")
    provider = ProviderRef() if pr is None else _metric_provider(pr)
    query = _query_text(spec, "query")
    canary_query, primary_query = _query_text(spec, "canaryQuery"), _query_text(spec, "primaryQuery")
    if (canary_query is None) != (primary_query is None):
        missing = "primaryQuery" if primary_query is None else "canaryQuery"
        spec.error(missing, "is required with " + ("canaryQuery" if primary_query is None else "primaryQuery")
                   + ": give each arm its query, or one query for both")
    if query is not None and (canary_query is not None or primary_query is not None):
        spec.error("query", "give either query (rendered for each arm) or canaryQuery and primaryQuery, not both")
    elif query is None and canary_query is None and primary_query is None and "spec" in root:
        spec.error("query", "is required: a query that returns one number (or canaryQuery and primaryQuery)")
    _refuse_unread(root, "MetricTemplate")
    root.errors.raise_if_any()
    return MetricTemplate(metadata=metadata, spec=MetricTemplateSpec(
        query=query or "", provider=provider, canary_query=canary_query, primary_query=primary_query))


def parse_gitsource(obj: Json) -> GitSource:
    """A GitSource as typed spec; raises ValidationError listing every problem."""
    root = _root(obj)
    metadata = _metadata(root)
    spec = _spec(root)
    url = spec.str("url", required="spec" in root) or ""
    if url and (problem := _git_url_problem(url)):
        spec.error("url", problem)
    source_spec = GitSourceSpec(
        url=url,
        branch=_branch(spec),
        path=_repo_path(spec),
        interval=spec.duration("interval", 60.0),
        secret_ref=_secret_name(spec),
        prune=spec.bool("prune", True),
        self_heal=spec.bool("selfHeal", True),
        suspend=spec.bool("suspend", False),
        alerts=_alerts(spec),
        **_source_sync(spec, metadata),
    )
    _refuse_unread(root, "GitSource")
    root.errors.raise_if_any()
    return GitSource(metadata=metadata, spec=source_spec)


def _source_sync(spec: Fields, metadata: Metadata) -> dict[str, Any]:
    """A GitSource's webhook, wait, timeout, dependsOn and decryption (issue 19)."""
    out: dict[str, Any] = {"wait": spec.bool("wait", False)}
    if "timeout" in spec:
        out["timeout"] = spec.duration("timeout", 60.0)
    if (hook := spec.map("webhook")) is not None:
        kind = hook.enum("type", ReceiverType, "webhook type", ReceiverType.GENERIC)
        if "type" not in hook:
            hook.error("type", f"is required: one of {', '.join(names(ReceiverType))}")
        ref = hook.map("secretRef", required=True)
        secret = (ref.str("name", required=True) if ref is not None else None) or ""
        out["webhook"] = SourceWebhook(type=kind, secret_ref=secret)
    refs: list[SourceRef] = []
    for i, d in enumerate(spec.objects("dependsOn", "with the name of a GitSource")):
        dep = SourceRef(name=d.str("name", required=True) or "", namespace=d.str("namespace"))
        if (dep.namespace or metadata.namespace, dep.name) == (metadata.namespace, metadata.name):
            spec.error(f"dependsOn[{i}]", "a GitSource cannot depend on itself")
        if dep in refs:
            spec.error(f"dependsOn[{i}]", f"{dep.name!r} is listed twice")
        refs.append(dep)
    out["depends_on"] = tuple(refs)
    if (dec := spec.map("decryption")) is not None:
        provider = dec.str("provider") or "sops"
        if provider != "sops":
            dec.error("provider", f"must be sops (the only provider, as in Flux), got {provider!r}")
        ref = dec.map("secretRef", required=True)
        secret = (ref.str("name", required=True) if ref is not None else None) or ""
        out["decryption"] = Decryption(secret_ref=secret, provider=provider)
    return out


def parse_alert_provider(obj: Json) -> AlertProvider:
    """An AlertProvider (Flagger's, once its apiVersion is ours) as typed spec; raises ValidationError
    listing every problem."""
    root = _root(obj)
    metadata = _metadata(root)
    spec = _spec(root)
    kind = spec.enum("type", AlertProviderType, "alert provider type", AlertProviderType.GENERIC)
    if "type" not in spec and "spec" in root:
        spec.error("type", f"is required: one of {', '.join(names(AlertProviderType))}")
    address = spec.str("address")
    secret_ref = _secret_name(spec)
    if address is None and secret_ref is None and "spec" in root:
        spec.error("", "set address (the webhook URL) or secretRef (a Secret whose key `address` holds it)")
    if address is not None and (problem := _http_url_problem(address)):
        spec.error("address", problem)
    proxy = spec.str("proxy")
    if proxy is not None and (problem := _http_url_problem(proxy)):
        spec.error("proxy", problem)
    provider_spec = AlertProviderSpec(
        type=kind,
        address=address,
        secret_ref=secret_ref,
        channel=spec.str("channel") or DEFAULT_ALERT_CHANNEL,
        username=spec.str("username") or DEFAULT_ALERT_USERNAME,
        proxy=proxy,
    )
    _refuse_unread(root, "AlertProvider")
    root.errors.raise_if_any()
    return AlertProvider(metadata=metadata, spec=provider_spec)


PARSERS: dict[str, Callable[[Json], Resource]] = {
    "Canary": parse_canary,
    "BlueGreen": parse_bluegreen,
    "MetricTemplate": parse_metric_template,
    "GitSource": parse_gitsource,
    "AlertProvider": parse_alert_provider,
}


def parser_for(kind: str, mesh_provider: Provider = DEFAULT_MESH_PROVIDER) -> Callable[[Json], Resource] | None:
    """The parser of `kind`, a Canary's with `mesh_provider` as the provider its spec may leave out."""
    if kind == "Canary":
        return partial(parse_canary, mesh_provider=mesh_provider)
    return PARSERS.get(kind)


def flagger_hint(kind: str) -> str:
    return (
        f"this is a Flagger {kind}: change apiVersion from {FLAGGER_API_VERSION} to {API_VERSION} "
        "(the spec keeps its meaning)"
    )


def parse_resource(obj: Json, mesh_provider: Provider = DEFAULT_MESH_PROVIDER) -> Resource:
    """Any of our kinds, dispatched on kind for apiVersion rollout.gitops.dev/v1alpha1."""
    obj = _root(obj).data
    api_version, kind = obj.get("apiVersion"), obj.get("kind")
    errors: list[FieldError] = []
    if api_version == FLAGGER_API_VERSION and kind in PARSERS:
        errors.append(FieldError("apiVersion", flagger_hint(str(kind))))
    elif api_version != API_VERSION:
        errors.append(FieldError("apiVersion", f"must be {API_VERSION}, got {show(api_version)}"))
    parser = parser_for(kind, mesh_provider) if isinstance(kind, str) else None
    if parser is None:
        errors.append(FieldError("kind", f"unknown kind {show(kind)}; known: {', '.join(sorted(PARSERS))}"))
        raise ValidationError(errors)
    try:
        resource = parser(obj)
    except ValidationError as e:
        raise ValidationError(errors + e.errors) from None
    if errors:
        raise ValidationError(errors)
    return resource
