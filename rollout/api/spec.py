"""Typed, frozen views of the spec of every kind this operator serves.

Parsing (`rollout.api.parse`) turns a custom resource dict into these; everything downstream —
the planner, the engine, the CLI — works on these types, never on raw dicts. Defaults are
Flagger's where Flagger has one.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from analysis.verdicts import Direction as Direction  # one definition, shared with the compare judge
from analysis.verdicts import EffectMeasure as EffectMeasure  # Kayenta's names, shared with the judge
from analysis.verdicts import NanStrategy as NanStrategy


class Provider(StrEnum):
    GATEWAYAPI = "gatewayapi"
    ISTIO = "istio"
    NGINX = "nginx"
    SMI = "smi"
    OSM = "osm"  # Open Service Mesh: routed by an SMI TrafficSplit, as Flagger does
    LINKERD = "linkerd"
    KUBERNETES = "kubernetes"
    KUMA = "kuma"  # a Kuma TrafficRoute, as Flagger's kuma router
    APPMESH = "appmesh"  # AWS App Mesh VirtualNodes, VirtualRouter and VirtualService (appmesh.k8s.aws/v1beta2)
    CONTOUR = "contour"
    GLOO = "gloo"
    KNATIVE = "knative"  # the target is a Knative Service; its spec.traffic splits between revisions
    TRAEFIK = "traefik"  # a weighted TraefikService, as Flagger's traefik router
    APISIX = "apisix"  # a canary ApisixRoute with weighted backends (spec.routeRef), as Flagger's
    SKIPPER = "skipper"  # a canary Ingress with Skipper's backend-weights (spec.ingressRef), as Flagger's


# Flagger spells some providers with an API version; they mean the same router here.
PROVIDER_ALIASES: dict[str, Provider] = {
    "gatewayapi:v1": Provider.GATEWAYAPI,
    "gatewayapi:v1beta1": Provider.GATEWAYAPI,
    "smi:v1alpha1": Provider.SMI,
    "smi:v1alpha2": Provider.SMI,
    "smi:v1alpha3": Provider.SMI,
    # Flagger's `appmesh` writes the retired v1beta1 kinds; both spellings write v1beta2 here
    "appmesh:v1beta2": Provider.APPMESH,
}

# Service fields a router takes verbatim from `spec.service`, by provider (Flagger's meaning for
# that provider). A field not listed for the release's provider is refused by validation, never
# accepted and dropped.
ROUTE_OPTIONS: dict[Provider, frozenset[str]] = {
    Provider.ISTIO: frozenset({"match", "retries", "timeout", "headers", "corsPolicy", "rewrite", "trafficPolicy",
                               "delegation"}),
    # timeouts, header and URL-rewrite, CORS and RequestMirror filters of the HTTPRoute
    Provider.GATEWAYAPI: frozenset({"match", "timeout", "backendTimeout", "headers", "rewrite", "corsPolicy",
                                    "mirror"}),
    # the route's path prefix (first service.match URI prefix), timeoutPolicy and retryPolicy of the HTTPProxy
    Provider.CONTOUR: frozenset({"match", "timeout", "retries"}),
}

# App Mesh (Flagger's appmesh router): the route's per-request timeout (and the listeners'), its retry
# policy, and the URI prefix of `service.match[0]`.
ROUTE_OPTIONS[Provider.APPMESH] = frozenset({"timeout", "retries", "match"})

# Flagger's `-mesh-provider` default: the provider of a Canary without `spec.provider`, unless the
# operator is told otherwise (`rollout run --mesh-provider`). A BlueGreen without one switches the
# Service selector (kubernetes), which works with or without a mesh.
DEFAULT_MESH_PROVIDER = Provider.ISTIO


def provider_named(name: str) -> Provider | None:
    """The provider `name` spells (ours or one of Flagger's versioned aliases); None if unknown."""
    if name in PROVIDER_ALIASES:
        return PROVIDER_ALIASES[name]
    return Provider(name) if name in {p.value for p in Provider} else None


def provider_names() -> list[str]:
    """Every accepted spelling of a provider, for error messages."""
    return [*(p.value for p in Provider), *PROVIDER_ALIASES]


# Providers whose routes can match on headers or cookies, so A/B (`analysis.match`) works.
HEADER_ROUTING_PROVIDERS = frozenset({Provider.GATEWAYAPI, Provider.ISTIO, Provider.NGINX, Provider.LINKERD})
HEADER_ROUTING_PROVIDERS |= {Provider.APPMESH}  # App Mesh routes match headers (not query parameters)
HEADER_ROUTING_PROVIDERS |= {Provider.CONTOUR, Provider.GLOO}
# Providers whose routers mirror requests (`analysis.mirror`), set affinity cookies
# (`analysis.sessionAffinity`) and write the service's route options (headers, rewrite, corsPolicy,
# timeout), as Flagger's istio and gatewayapi routers do.
ROUTE_OPTION_PROVIDERS = frozenset({Provider.GATEWAYAPI, Provider.ISTIO})
# Providers whose data plane counts both arms in one series (APISIX counts by route, and the canary
# route carries the primary's backend too): their built-in metrics have no primary-only query, so
# only a threshold can judge them.
SHARED_ARM_PROVIDERS = frozenset({Provider.APISIX})


class Judge(StrEnum):
    THRESHOLD = "threshold"
    COMPARE = "compare"
    SEQUENTIAL = "sequential"


class WebhookType(StrEnum):
    CONFIRM_ROLLOUT = "confirm-rollout"
    PRE_ROLLOUT = "pre-rollout"
    ROLLOUT = "rollout"
    CONFIRM_TRAFFIC_INCREASE = "confirm-traffic-increase"
    CONFIRM_PROMOTION = "confirm-promotion"
    POST_ROLLOUT = "post-rollout"
    ROLLBACK = "rollback"
    EVENT = "event"


class AlertSeverity(StrEnum):
    """Flagger's alert severities. An alert subscribed at one level receives the messages of that
    level and above: info receives everything, warn receives warn and error, error only error."""

    INFO = "info"
    WARN = "warn"
    ERROR = "error"

    def receives(self, message: AlertSeverity) -> bool:
        """Whether an alert subscribed at this severity receives a message of severity `message`."""
        order = list(AlertSeverity)
        return order.index(message) >= order.index(self)


class AlertProviderType(StrEnum):
    """Flagger's AlertProvider types, plus `generic`: Flagger's event webhook JSON to any URL."""

    SLACK = "slack"
    MSTEAMS = "msteams"
    DISCORD = "discord"
    ROCKET = "rocket"
    GCHAT = "gchat"
    GENERIC = "generic"


class RevertMode(StrEnum):
    AUTO = "auto"
    COMMIT = "commit"
    FILES = "files"
    OFF = "off"


class PushMode(StrEnum):
    DIRECT = "direct"
    BRANCH = "branch"
    PULL_REQUEST = "pullRequest"  # a revert branch and a pull/merge request from it


class GitHost(StrEnum):
    """The Git hosts a revert pull request can be opened on, through their REST APIs."""

    GITHUB = "github"
    GITLAB = "gitlab"
    GITEA = "gitea"  # Forgejo (Codeberg) speaks the same API
    BITBUCKET = "bitbucket"
    AZURE = "azure"


BUILTIN_METRICS = frozenset({"request-success-rate", "request-duration"})


@dataclass(frozen=True)
class ObjectRef:
    api_version: str
    kind: str
    name: str
    namespace: str | None = None


@dataclass(frozen=True)
class AutoscalerRef:
    """`spec.autoscalerRef`: the target's HorizontalPodAutoscaler or KEDA ScaledObject, cloned for the
    primary; `primary_*` are Flagger's `primaryScalerReplicas` and `primaryScalerQueries`."""

    api_version: str
    kind: str
    name: str
    primary_min_replicas: int | None = None
    primary_max_replicas: int | None = None
    # (trigger name, query) pairs, sorted: the queries of the primary ScaledObject's named triggers.
    primary_queries: tuple[tuple[str, str], ...] = ()


@dataclass(frozen=True)
class ServiceMetadata:
    """Flagger's CustomMetadata: labels and annotations put on one generated Service."""

    labels: tuple[tuple[str, str], ...] = ()
    annotations: tuple[tuple[str, str], ...] = ()


@dataclass(frozen=True)
class ServiceSpec:
    port: int
    name: str | None = None
    target_port: int | str | None = None
    port_name: str = "http"
    hosts: tuple[str, ...] = ()
    gateways: tuple[str, ...] = ()
    gateway_refs: tuple[dict[str, Any], ...] = ()
    # Add the target's other container ports to the generated Services (Flagger's portDiscovery).
    port_discovery: bool = False
    app_protocol: str | None = None
    # Labels and annotations of the generated Services, by role: apex, primary, canary.
    metadata: tuple[tuple[str, ServiceMetadata], ...] = ()
    # The provider's ROUTE_OPTIONS that are set, verbatim, for its router.
    extra: dict[str, Any] = field(default_factory=dict, compare=False, hash=False)

    def metadata_of(self, role: str) -> ServiceMetadata:
        return dict(self.metadata).get(role, ServiceMetadata())


@dataclass(frozen=True)
class ThresholdRange:
    min: float | None = None
    max: float | None = None


@dataclass(frozen=True)
class EffectSize:
    """Kayenta's `effectSize`: how large a significant difference must be to fail (`allowed*`) or to fail
    critically (`critical*`), as a ratio of means or a common-language effect size; None is Kayenta's
    default (1 for meanRatio, 0.5 for cles)."""

    measure: EffectMeasure = EffectMeasure.MEAN_RATIO
    allowed_increase: float | None = None
    allowed_decrease: float | None = None
    critical_increase: float | None = None
    critical_decrease: float | None = None


@dataclass(frozen=True)
class Outliers:
    """Kayenta's `outliers`: remove (or keep) values beyond `factor` interquartile ranges."""

    remove: bool = False
    factor: float = 3.0


@dataclass(frozen=True)
class Compare:
    direction: Direction = Direction.INCREASE
    tolerance: float = 0.0
    # Kayenta's NetflixACAJudge rules (analysis.judges.kayenta); None/False: not asked for.
    effect_size: EffectSize | None = None
    critical: bool = False
    must_have_data: bool = False
    nan_strategy: NanStrategy | None = None
    outliers: Outliers | None = None
    weight: float | None = None  # of the metric in `analysis.scoring`'s 0-100 score


@dataclass(frozen=True)
class Scoring:
    """`analysis.scoring`: Kayenta's 0-100 weighted score per check; below `marginal` the check fails,
    from `marginal` to below `pass_at` the step is held for one more interval, from `pass_at` it passes."""

    pass_at: float = 95.0
    marginal: float = 75.0


# A warm-up allowance below this ends: the margin is then exactly 1 (times the tolerance), so the run
# has a definite end of its warm-up.
WARMUP_NEGLIGIBLE = 0.01


@dataclass(frozen=True)
class Warmup:
    """`analysis.warmup`, or a built-in metric's own `warmup`: a benign start the sequential judge
    forgives. At `t` seconds into the run the canary may be `1 + allowance * exp(-t / decay)` times
    worse than its metric's tolerance allows (its error rate that many times the primary's; its latency
    that many times as slow); the allowance fades (after 3 x decay it is 5% of itself) and ends once
    under `WARMUP_NEGLIGIBLE`."""

    allowance: float
    decay: float  # seconds

    def factor(self, elapsed: float) -> float:
        """The multiplier of a metric's margin `elapsed` seconds into the run."""
        extra = self.allowance * math.exp(-max(elapsed, 0.0) / self.decay)
        return 1.0 + extra if extra >= WARMUP_NEGLIGIBLE else 1.0


@dataclass(frozen=True)
class Metric:
    name: str
    interval: float = 60.0
    threshold_range: ThresholdRange | None = None
    query: str | None = None
    template_ref: ObjectRef | None = None
    template_variables: tuple[tuple[str, str], ...] = ()
    compare: Compare | None = None
    # Argo Rollouts' dryRun: queried, judged and reported, but never fails, holds or rolls back a release.
    dry_run: bool = False
    # This built-in metric's own warm-up under the sequential judge (else `analysis.warmup`'s).
    warmup: Warmup | None = None

    @property
    def builtin(self) -> bool:
        return self.query is None and self.template_ref is None and self.name in BUILTIN_METRICS


@dataclass(frozen=True)
class Webhook:
    name: str
    url: str
    type: WebhookType = WebhookType.ROLLOUT
    timeout: float = 10.0
    mute_alert: bool = False
    metadata: tuple[tuple[str, str], ...] = ()
    # Flagger's: extra attempts after a failed call (no answer, 429 or 5xx), and no TLS verification.
    retries: int = 0
    disable_tls: bool = False


@dataclass(frozen=True)
class AlertRef:
    """One of Flagger's `analysis.alerts`: which AlertProvider to tell, and from which severity on.
    `provider_namespace` None means the namespace of the object the alert belongs to."""

    name: str
    provider: str
    provider_namespace: str | None = None
    severity: AlertSeverity = AlertSeverity.INFO


@dataclass(frozen=True)
class SessionAffinity:
    """Flagger's `analysis.sessionAffinity`: a client the weighted route sent to the canary gets the
    cookie `cookie_name` and keeps going to the canary while the release runs."""

    cookie_name: str
    primary_cookie_name: str = ""
    max_age: int = 86400
    domain: str = ""
    path: str = ""
    http_only: bool = False
    secure: bool = False
    partitioned: bool = False
    same_site: str = ""

    def set_cookie(self, pair: str, max_age: int) -> str:
        """The Set-Cookie value for `name=value` (Flagger's SessionAffinity.BuildCookie)."""
        cookie = f"{pair}; Max-Age={max_age}"
        if self.domain:
            cookie += f"; Domain={self.domain}"
        if self.http_only:
            cookie += "; HttpOnly"
        if self.partitioned:
            cookie += "; Partitioned"
        if self.path:
            cookie += f"; Path={self.path}"
        if self.same_site:
            cookie += f"; SameSite={self.same_site}"
        if self.secure:
            cookie += "; Secure"
        return cookie


@dataclass(frozen=True)
class Analysis:
    interval: float = 60.0
    threshold: int = 1
    max_weight: int = 100
    step_weight: int | None = None
    step_weights: tuple[int, ...] = ()
    step_weight_promotion: int | None = None
    iterations: int | None = None
    match: tuple[dict[str, Any], ...] = ()
    metrics: tuple[Metric, ...] = ()
    webhooks: tuple[Webhook, ...] = ()
    judge: Judge = Judge.THRESHOLD
    alpha: float = 0.05
    mirror: bool = False
    mirror_weight: int = 0  # percent of requests mirrored; 0: all (Flagger omits mirrorPercentage)
    session_affinity: SessionAffinity | None = None
    alerts: tuple[AlertRef, ...] = ()
    warmup: Warmup | None = None
    scoring: Scoring | None = None
    # NEW `analysis.lookInterval` (sequential judge only): the judge also looks this often between
    # checks, counting per look, and a look that crosses rolls the release back at once. None: once
    # per `interval`, at the checks.
    look_interval: float | None = None

    @property
    def look(self) -> float:
        """Seconds between the sequential judge's looks (the interval unless `lookInterval` is set)."""
        return self.look_interval or self.interval

    @property
    def steps(self) -> tuple[int, ...]:
        """Canary weights to go through, in order; empty for iteration-based runs (A/B, blue/green)."""
        if self.step_weights:
            return self.step_weights
        if self.iterations is not None or not self.step_weight:
            return ()
        weights = list(range(self.step_weight, self.max_weight, self.step_weight))
        return (*weights, self.max_weight)

    def hooks(self, kind: WebhookType) -> tuple[Webhook, ...]:
        return tuple(w for w in self.webhooks if w.type == kind)

    def warmup_of(self, metric: Metric) -> Warmup | None:
        """The warm-up the sequential judge forgives on `metric`: its own, else the analysis's."""
        return metric.warmup or self.warmup

    def judge_of(self, metric: Metric) -> Judge:
        """The judge of one metric: under `sequential` the built-in metrics get the sequential test (their
        raw counts are known) and custom queries are compared with the primary; otherwise a metric with
        `compare` is compared with the primary and the rest follow `judge`."""
        if self.judge == Judge.SEQUENTIAL:
            return Judge.SEQUENTIAL if metric.builtin else Judge.COMPARE
        return Judge.COMPARE if metric.compare is not None else self.judge


@dataclass(frozen=True)
class GitAuthor:
    name: str = "rollout"
    email: str = "rollout@localhost"


@dataclass(frozen=True)
class PullRequestSpec:
    """Where `push: pullRequest` opens its request; each field is inferred from the repository URL
    when absent (github.com, gitlab.*, bitbucket.org, dev.azure.com, codeberg.org, gitea.*)."""

    host: GitHost | None = None
    api_url: str | None = None  # the API's base, e.g. https://api.github.com or https://gitlab.example/api/v4
    repository: str | None = None  # owner/name (GitLab: the project path; Azure: org/project/repo)


@dataclass(frozen=True)
class GitSpec:
    source: str | None = None
    url: str | None = None
    branch: str = "main"
    path: str = "./"
    secret_ref: str | None = None
    revert: RevertMode = RevertMode.AUTO
    push: PushMode = PushMode.DIRECT
    author: GitAuthor = GitAuthor()
    pull_request: PullRequestSpec = PullRequestSpec()


@dataclass(frozen=True)
class ReleaseSpec:
    """What both release kinds hold: the target, its Service, the analysis, the route and Git.

    The planner, the engine and the routers read these fields whatever the kind; what only one kind
    has (a Canary's Ingress, a BlueGreen's promotion settings) is on its subclass, reached through
    isinstance.
    """

    target_ref: ObjectRef
    service: ServiceSpec
    analysis: Analysis
    provider: Provider = Provider.KUBERNETES
    progress_deadline_seconds: int = 600
    skip_analysis: bool = False
    suspend: bool = False
    git: GitSpec | None = None


@dataclass(frozen=True)
class CanarySpec(ReleaseSpec):
    # Only the Canary kind names an Ingress (the nginx provider splits its traffic); BlueGreen has no such field.
    ingress_ref: ObjectRef | None = None
    # Flagger's `routeRef`: the ApisixRoute whose traffic the apisix provider splits.
    route_ref: ObjectRef | None = None
    autoscaler_ref: AutoscalerRef | None = None
    # gloo: the Upstream whose settings (TLS, circuit breakers, load balancing...) the router's Upstreams copy
    upstream_ref: ObjectRef | None = None


@dataclass(frozen=True)
class PreviewService:
    name: str
    port: int | None = None


@dataclass(frozen=True)
class BlueGreenSpec(ReleaseSpec):
    auto_promotion: bool = True
    scale_down_delay_seconds: int = 30
    preview_service: PreviewService | None = None


@dataclass(frozen=True)
class Metadata:
    name: str
    namespace: str = "default"
    generation: int = 0
    uid: str = ""
    annotations: tuple[tuple[str, str], ...] = ()


@dataclass(frozen=True)
class Canary:
    metadata: Metadata
    spec: CanarySpec
    kind: str = "Canary"


@dataclass(frozen=True)
class BlueGreen:
    metadata: Metadata
    spec: BlueGreenSpec
    kind: str = "BlueGreen"


@dataclass(frozen=True)
class ProviderRef:
    """A MetricTemplate's `provider`: a type of `analysis.providers.rules.RULES`, its address (the
    type's default when the manifest gives none), the Secret its credentials are read from (in the
    template's namespace, as Flagger), and the provider's own fields (`options`, as written)."""

    type: str = "prometheus"
    address: str = "http://prometheus.monitoring:9090"
    secret_ref: str | None = None
    insecure_skip_verify: bool = False
    region: str | None = None
    options: tuple[tuple[str, Any], ...] = ()


@dataclass(frozen=True)
class MetricTemplateSpec:
    """`query` is rendered for each arm (the primary's `{{ target }}` is `<target>-primary`), unless
    NEW `canary_query` and `primary_query` give each arm its own (then `query` is empty)."""

    query: str
    provider: ProviderRef = ProviderRef()
    canary_query: str | None = None
    primary_query: str | None = None


@dataclass(frozen=True)
class MetricTemplate:
    metadata: Metadata
    spec: MetricTemplateSpec
    kind: str = "MetricTemplate"


class ReceiverType(StrEnum):
    """Whose push webhook a GitSource receives, and so how it is verified: GitHub's and Gitea's
    HMAC-SHA256 signature of the body, GitLab's token, or (generic) Flux's generic-hmac signature."""

    GITHUB = "github"
    GITLAB = "gitlab"
    GITEA = "gitea"
    GENERIC = "generic"


@dataclass(frozen=True)
class SourceWebhook:
    """`POST /hook/<namespace>/<name>` on `rollout run --webhook-addr` syncs the GitSource at once,
    when the request is verified with the key `token` of the Secret `secret_ref`."""

    type: ReceiverType
    secret_ref: str


@dataclass(frozen=True)
class SourceRef:
    """Another GitSource (Flux's dependsOn item): `namespace` None is the dependent's own."""

    name: str
    namespace: str | None = None


@dataclass(frozen=True)
class Decryption:
    """Flux's `decryption`: provider sops, with the age identities of the Secret `secret_ref`
    (its keys ending in `.agekey`)."""

    secret_ref: str
    provider: str = "sops"


@dataclass(frozen=True)
class GitSourceSpec:
    url: str
    branch: str = "main"
    path: str = "./"
    interval: float = 60.0
    secret_ref: str | None = None
    prune: bool = True
    self_heal: bool = True
    suspend: bool = False
    # NEW: told when the GitSource stalls or fails to fetch or apply (it has no analysis).
    alerts: tuple[AlertRef, ...] = ()
    # NEW: push webhooks, health-gated and ordered sync, SOPS decryption (Flux's Receiver, and its
    # Kustomization's wait, timeout, dependsOn and decryption).
    webhook: SourceWebhook | None = None
    wait: bool = False
    timeout: float | None = None  # how long `wait` waits; None: the interval, as Flux
    depends_on: tuple[SourceRef, ...] = ()
    decryption: Decryption | None = None


@dataclass(frozen=True)
class GitSource:
    metadata: Metadata
    spec: GitSourceSpec
    kind: str = "GitSource"


# Flagger's defaults for an AlertProvider without channel or username (the bot is named for this operator).
DEFAULT_ALERT_CHANNEL = "general"
DEFAULT_ALERT_USERNAME = "rollout"


@dataclass(frozen=True)
class AlertProviderSpec:
    """Flagger's AlertProvider: a chat service (or any URL, `generic`) and how to reach it. The URL is
    `address`, or the key `address` of the Secret `secret_ref` (which wins, as in Flagger)."""

    type: AlertProviderType
    address: str | None = None
    secret_ref: str | None = None
    channel: str = DEFAULT_ALERT_CHANNEL
    username: str = DEFAULT_ALERT_USERNAME
    proxy: str | None = None


@dataclass(frozen=True)
class AlertProvider:
    metadata: Metadata
    spec: AlertProviderSpec
    kind: str = "AlertProvider"


Release = Canary | BlueGreen
Resource = Canary | BlueGreen | MetricTemplate | GitSource | AlertProvider
