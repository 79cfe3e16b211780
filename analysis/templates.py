"""PromQL for the built-in metrics and the rendering of user MetricTemplates.

A Canary names `request-success-rate` or `request-duration` and a provider; this module turns that
into the query Flagger would run (same meaning: percent of non-5xx responses, P99 latency in
milliseconds), once for the canary workload and once for the primary (`<target>-primary`), so a
judge can compare the two arms. Sequential judges need raw counts instead of ratios, which
`builtin_counts_queries` provides.

MetricTemplates use Flagger's variables (`{{ name }}`, `{{ namespace }}`, `{{ target }}`,
`{{ interval }}`, `{{ variables.x }}`, plus `{{ service }}`, `{{ ingress }}` and `{{ route }}`
when given). A value
is never pasted raw: inside a quoted PromQL string it is escaped for that kind of quote, outside a
string it must be a plain token (number, duration or identifier), so no value can close a string
and add a second selector. Values inside a regex matcher (`=~`) still act as regular expressions,
as in Flagger; they simply cannot leave the string.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Literal

Arm = Literal["canary", "primary"]

REQUEST_SUCCESS_RATE = "request-success-rate"
REQUEST_DURATION = "request-duration"
BUILTIN_METRICS = (REQUEST_SUCCESS_RATE, REQUEST_DURATION)
PROVIDERS: tuple[str, ...] = ("istio", "linkerd", "nginx", "gatewayapi", "kubernetes", "smi", "osm")
PROVIDERS += ("kuma", "appmesh")
PROVIDERS += ("contour", "gloo")
PROVIDERS += ("knative",)

_DURATION = re.compile(r"^(?:[0-9]+(?:ms|s|m|h|d|w|y))+$")
_NUMBER = re.compile(r"^[+-]?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)(?:[eE][+-]?[0-9]+)?$")
_IDENTIFIER = re.compile(r"^[A-Za-z_:][A-Za-z0-9_:.-]*$")
# Words that would change the shape of an expression if a value placed outside a string were one.
_PROMQL_KEYWORDS = frozenset(
    {"and", "or", "unless", "by", "without", "on", "ignoring", "group_left", "group_right", "offset",
     "bool", "atan2", "start", "end"}
)
_PLACEHOLDER = re.compile(r"\{\{(.*?)\}\}", re.DOTALL)
_PLACEHOLDER_NAME = re.compile(r"^\s*([A-Za-z_][A-Za-z0-9_]*(?:\.[A-Za-z0-9_][A-Za-z0-9_-]*)?)\s*$")


class TemplateError(ValueError):
    """A query template cannot be rendered: unknown variable, bad syntax or an unsafe value."""


class UnknownBuiltinError(ValueError):
    """A built-in metric or provider name that this module does not know."""


# --------------------------------------------------------------------------------------------------
# Escaping


def escape_label_value(value: str, quote: str = '"') -> str:
    """Escape `value` for the inside of a PromQL string delimited by `quote` (`"` or `'`).

    Backslash, the delimiting quote and control characters (newline first of all) are escaped, so
    the value always ends where the template's own closing quote is.
    """
    if quote not in ('"', "'"):
        raise ValueError(f"cannot escape for quote {quote!r}; use '\"' or \"'\"")
    out: list[str] = []
    for ch in value:
        if ch == "\\":
            out.append("\\\\")
        elif ch == quote:
            out.append("\\" + quote)
        elif ch == "\n":
            out.append("\\n")
        elif ch == "\r":
            out.append("\\r")
        elif ch == "\t":
            out.append("\\t")
        elif ord(ch) < 0x20 or ord(ch) == 0x7F:
            out.append(f"\\u{ord(ch):04x}")
        else:
            out.append(ch)
    return "".join(out)


def escape_regex(value: str) -> str:
    """Escape RE2 metacharacters so `value` matches itself literally inside a regex matcher."""
    return re.sub(r"([\\.+*?()|\[\]{}^$])", r"\\\1", value)


def validate_interval(interval: str) -> str:
    """Return `interval` if it is a PromQL duration (`1m`, `30s`, `1h30m`), else raise TemplateError."""
    if not _DURATION.fullmatch(interval):
        raise TemplateError(f"interval {interval!r} is not a PromQL duration such as 30s, 1m or 1h30m")
    return interval


def _bare_value(name: str, value: str) -> str:
    """Check a value placed outside any string: only a number, duration or plain identifier."""
    if _NUMBER.fullmatch(value) or _DURATION.fullmatch(value):
        return value
    if _IDENTIFIER.fullmatch(value) and value.lower() not in _PROMQL_KEYWORDS:
        return value
    raise TemplateError(
        f"value of {{{{ {name} }}}} is {value!r}, but the template places it outside a quoted string, "
        "where only a number, a duration or a plain identifier is allowed; put the placeholder in quotes"
    )


# --------------------------------------------------------------------------------------------------
# MetricTemplate rendering


def template_variables(
    name: str,
    namespace: str,
    target: str,
    interval: str,
    variables: Mapping[str, str] | None = None,
    *,
    service: str | None = None,
    ingress: str | None = None,
    route: str | None = None,
) -> dict[str, str]:
    """The variables Flagger offers a MetricTemplate, as the flat mapping `render_template` takes.

    `service`, `ingress` and `route` (the ApisixRoute of `spec.routeRef`, or a knative release's Revision)
    default to the target, as in Flagger. `variables` become `variables.<key>`.
    """
    values = {
        "name": name,
        "namespace": namespace,
        "target": target,
        "service": service if service is not None else target,
        "ingress": ingress if ingress is not None else target,
        "route": route if route is not None else target,
        "interval": validate_interval(interval),
    }
    if route is not None:
        values["route"] = route
    for key, value in (variables or {}).items():
        values[f"variables.{key}"] = value
    return values


def render_template(query: str, variables: Mapping[str, str]) -> str:
    """Substitute `{{ var }}` placeholders in `query`, escaping each value for where it stands.

    `variables` is a flat mapping such as `template_variables` returns (`"variables.x"` for
    `{{ variables.x }}`). Whitespace inside the braces does not matter. A placeholder naming a
    variable not in the mapping, an unclosed `{{` and a value that would escape its context all
    raise TemplateError. `{{ interval }}` must be a PromQL duration.
    """
    out: list[str] = []
    quote: str | None = None  # the delimiter of the PromQL string we are in, if any
    pos = 0
    for match in _PLACEHOLDER.finditer(query):
        literal = query[pos : match.start()]
        quote = _scan(literal, quote)
        out.append(literal)
        out.append(_substitute(match.group(1), variables, quote, query, match.start()))
        pos = match.end()
    rest = query[pos:]
    if "{{" in rest:
        line = query.count("\n", 0, pos + rest.index("{{")) + 1
        raise TemplateError(f"unclosed '{{{{' on line {line} of the query template")
    out.append(rest)
    return "".join(out)


def _substitute(inner: str, variables: Mapping[str, str], quote: str | None, query: str, at: int) -> str:
    line = query.count("\n", 0, at) + 1
    parsed = _PLACEHOLDER_NAME.fullmatch(inner)
    if parsed is None:
        raise TemplateError(
            f"unsupported template expression {{{{{inner}}}}} on line {line}; "
            "use {{ name }}, {{ namespace }}, {{ target }}, {{ interval }} or {{ variables.<key> }}"
        )
    name = parsed.group(1)
    if name not in variables:
        known = ", ".join(sorted(variables)) or "none"
        raise TemplateError(f"unknown template variable {name!r} on line {line}; known variables: {known}")
    value = variables[name]
    if name == "interval":
        validate_interval(value)
    if quote in ('"', "'"):
        return escape_label_value(value, quote)
    if quote == "`":
        if "`" in value:
            raise TemplateError(f"value of {{{{ {name} }}}} contains a backtick and stands in a `raw` string")
        return value
    return _bare_value(name, value)


def _scan(text: str, quote: str | None) -> str | None:
    """Follow PromQL string and comment syntax through `text`; return the open string's quote."""
    i = 0
    comment = False
    while i < len(text):
        ch = text[i]
        if comment:
            if ch == "\n":
                comment = False
        elif quote is None:
            if ch in "\"'`":
                quote = ch
            elif ch == "#":
                comment = True
        elif quote != "`" and ch == "\\":
            i += 1  # skip the escaped character
        elif ch == quote:
            quote = None
        i += 1
    if comment:
        # A placeholder inside a comment is harmless, but treat it as bare to stay strict.
        return None
    return quote


# --------------------------------------------------------------------------------------------------
# Built-in metrics


@dataclass(frozen=True)
class _Mesh:
    """Where one provider keeps request counts and latency histograms, and how it labels them."""

    requests: str
    errors: str  # matcher selecting 5xx (failed) responses, appended to the arm's selector
    successes: str  # matcher selecting the complement
    buckets: str
    bucket_to_ms: float  # multiply bucket bounds (`le`) by this to get milliseconds
    counted: str = ""  # added to `requests`' selector: a histogram's `le="+Inf"` bucket counts requests
    timed: str = ""  # added to `buckets`' selector only (APISIX's latency `type`)
    # When set, request-duration is this histogram's mean (`_sum` / `_count`), as Flagger's skipper
    # observer reads it, rather than the P99 of `buckets`.
    mean_of: str = ""

    def selector(self, provider: str, namespace: str, workload: str, arm: Arm, ingress: str,
                 target_kind: str = "Deployment", *, route: str = "", service: str = "") -> str:
        ns = escape_label_value(namespace)
        wl = escape_label_value(workload)
        if provider in _EDGE_SELECTORS:
            return _EDGE_SELECTORS[provider](namespace, workload, arm, ingress, route, service)
        if provider == "istio":
            return (
                f'reporter="destination", destination_workload_namespace="{ns}", '
                f'destination_workload="{wl}"'
            )
        if provider in ("linkerd", "smi"):
            return f'namespace="{ns}", deployment="{wl}", direction="inbound"'
        if provider == "osm":
            return f'destination_namespace="{ns}", destination_kind="Deployment", destination_name="{wl}"'
        if provider == "kubernetes":
            # The application's own metrics, per pod of the Deployment (<deployment>-<replicaset>-<pod>)
            # or of the DaemonSet (<daemonset>-<pod>). Flagger uses the Deployment's pattern for both,
            # which for a DaemonSet `x` matches the pods of `x-primary`, not those of `x`.
            suffix = "-[0-9a-zA-Z]+" if target_kind == "DaemonSet" else "-[0-9a-zA-Z]+(-[0-9a-zA-Z]+)"
            pods = escape_label_value(f"{escape_regex(workload)}{suffix}")
            return f'kubernetes_namespace="{ns}", kubernetes_pod_name=~"{pods}"'
        if provider == "nginx":
            # ingress-nginx labels requests served by the canary backend with `canary=<upstream>`.
            which = 'canary!=""' if arm == "canary" else 'canary=""'
            return f'namespace="{ns}", ingress="{escape_label_value(ingress)}", {which}'
        if provider == "kuma":
            # Kuma's Envoy sidecars label requests with the `kuma.io/service` tag of the Service they
            # reached the pods through, `<service>_<namespace>_svc_<port>` (Flagger's kuma observer).
            tag = escape_label_value(f"{escape_regex(workload)}_{escape_regex(namespace)}_svc_[0-9a-zA-Z-]+")
            return f'service=~"{tag}"'
        if provider == "appmesh":
            # App Mesh's Envoy sidecars, scraped per pod (Flagger's appmesh observer): the Deployment's pods.
            pods = escape_label_value(f"{escape_regex(workload)}-[0-9a-zA-Z]+(-[0-9a-zA-Z]+)")
            return f'kubernetes_namespace="{ns}", kubernetes_pod_name=~"{pods}"'
        if provider == "gloo":
            # Gloo names an Upstream's Envoy cluster <upstream>_<upstream namespace>; Flagger's upstreams
            # are <ns>-<svc>-canaryupstream-<port> (Flagger's gloo observer), and -primaryupstream-.
            cluster = escape_label_value(f"{escape_regex(namespace)}-{escape_regex(workload)}-{arm}upstream-"
                                         "[0-9a-zA-Z-]+_[0-9a-zA-Z-]+")
            return f'envoy_cluster_name=~"{cluster}"'
        if provider == "knative":
            # Knative's Envoy ingress (Kourier) names the upstream cluster <namespace>/<revision>;
            # `workload` is the arm's Revision (Flagger's `{{ route }}`, the latest created one).
            return f'envoy_cluster_name=~"{escape_label_value(f"{escape_regex(namespace)}/{escape_regex(workload)}")}"'
        # Envoy-based Gateway API implementations, and Contour, name the upstream cluster
        # <ns>_<service>_<port> (Flagger's contour observer: <ns>_<service>-canary_<port>).
        cluster = escape_label_value(f"{escape_regex(namespace)}_{escape_regex(workload)}_[0-9a-zA-Z-]+")
        return f'envoy_cluster_name=~"{cluster}"'


_MESHES: dict[str, _Mesh] = {
    "istio": _Mesh(
        "istio_requests_total", 'response_code=~"5.*"', 'response_code!~"5.*"',
        "istio_request_duration_milliseconds_bucket", 1.0,
    ),
    "linkerd": _Mesh(
        "response_total", 'classification="failure"', 'classification!="failure"',
        "response_latency_ms_bucket", 1.0,
    ),
    "nginx": _Mesh(
        "nginx_ingress_controller_requests", 'status=~"5.*"', 'status!~"5.*"',
        "nginx_ingress_controller_request_duration_seconds_bucket", 1000.0,
    ),
    "gatewayapi": _Mesh(
        "envoy_cluster_upstream_rq", 'envoy_response_code=~"5.*"', 'envoy_response_code!~"5.*"',
        "envoy_cluster_upstream_rq_time_bucket", 1.0,
    ),
    # Without a mesh (blue/green by Service selector), Flagger reads the application's own
    # `http_request_duration_seconds` histogram, labelled with the response status.
    "kubernetes": _Mesh(
        "http_request_duration_seconds_count", 'status=~"5.*"', 'status!~"5.*"',
        "http_request_duration_seconds_bucket", 1000.0,
    ),
}
# Open Service Mesh's Envoy sidecars (Flagger's pkg/metrics/observers/osm.go).
_MESHES["osm"] = _Mesh(
    "osm_request_total", 'response_code=~"5.*"', 'response_code!~"5.*"', "osm_request_duration_ms_bucket", 1.0,
)
# Kuma's and App Mesh's Envoy sidecars (Flagger's pkg/metrics/observers/kuma.go and appmesh.go).
_MESHES["kuma"] = _MESHES["gatewayapi"]
_MESHES["appmesh"] = _MESHES["gatewayapi"]
# Contour's and Gloo's Envoy count upstream requests per cluster (Flagger's contour and gloo observers).
_MESHES["contour"] = _MESHES["gloo"] = _MESHES["gatewayapi"]
# Knative (Flagger's pkg/metrics/observers/knative.go): Envoy's upstream clusters, one per Revision.
_MESHES["knative"] = _MESHES["gatewayapi"]
# SMI's TrafficSplit is how Linkerd splits traffic, so SMI canaries read Linkerd's proxy metrics.
_MESHES["smi"] = _MESHES["linkerd"]


# --- edge proxies (Flagger's traefik, apisix and skipper observers) -------------------------------


def _traefik_selector(namespace: str, workload: str, arm: Arm, ingress: str, route: str, service: str) -> str:
    """Traefik names a Kubernetes Service behind a TraefikService `<ns>-<service>-<port>@kubernetescrd`;
    `workload` is the arm's Service (`<target>-canary` or `<target>-primary`)."""
    pattern = f"{escape_regex(namespace)}-{escape_regex(workload)}-[0-9a-zA-Z-]+@kubernetescrd"
    return f'service=~"{escape_label_value(pattern)}"'


def _apisix_selector(namespace: str, workload: str, arm: Arm, ingress: str, route: str, service: str) -> str:
    """APISIX labels requests with its route, `<ns>_<ApisixRoute>_<http rule>`; Flagger's canary route is
    `<routeRef>-<target>-canary`, and it carries both backends, so there is no primary-only series."""
    if arm == "primary":
        raise TemplateError("APISIX counts requests by route, and the canary ApisixRoute carries the primary's "
                            "backend as well as the canary's: there is no series of the primary's requests alone")
    pattern = f"{escape_regex(namespace)}_{escape_regex(route)}-{escape_regex(workload)}-canary_.+"
    return f'route=~"{escape_label_value(pattern)}"'


_NON_WORD = re.compile(r"[^0-9A-Za-z_]")  # Go's \W


def _skipper_selector(namespace: str, workload: str, arm: Arm, ingress: str, route: str, service: str) -> str:
    """Skipper names an Ingress route `kube_<ns>__<ingress>__<host>__<path>__<service>`, every non-word
    character made `_`; the arm's backend is `<service>-canary` or `<service>-primary` on the canary
    Ingress `<ingress>-canary` (Flagger's routePattern)."""
    ns, ing, svc = (_NON_WORD.sub("_", v) for v in (namespace, ingress, service))
    pattern = f"kube(ew)?_{ns}__{ing}_canary__.*__{svc}_{arm}(_[0-9]+)?"
    return f'route=~"{escape_label_value(pattern)}"'


_EDGE_SELECTORS = {"traefik": _traefik_selector, "apisix": _apisix_selector, "skipper": _skipper_selector}
# Flagger's traefik observer counts requests by the +Inf bucket of the duration histogram (seconds).
_MESHES["traefik"] = _Mesh(
    "traefik_service_request_duration_seconds_bucket", 'code=~"5.."', 'code!~"5.."',
    "traefik_service_request_duration_seconds_bucket", 1000.0, counted='le="+Inf"',
)
# APISIX's prometheus plugin: responses by status, and request latency in milliseconds.
_MESHES["apisix"] = _Mesh(
    "apisix_http_status", 'code=~"5.."', 'code!~"5.."', "apisix_http_latency_bucket", 1.0, timed='type=~"request"',
)
# Skipper: responses by code (the +Inf bucket of the response histogram), and the mean time to serve
# the route, as Flagger's skipper observer reads them.
_MESHES["skipper"] = _Mesh(
    "skipper_response_duration_seconds_bucket", 'code=~"5.."', 'code!~"5.."',
    "skipper_serve_route_duration_seconds_bucket", 1000.0, counted='le="+Inf"',
    mean_of="skipper_serve_route_duration_seconds",
)


def normalize_provider(provider: str) -> str:
    """Map a Canary's provider name to one this module knows (`gatewayapi:v1beta1` -> `gatewayapi`)."""
    base = provider.strip().lower()
    if base.startswith("gatewayapi"):
        base = "gatewayapi"
    if base.startswith("appmesh"):
        base = "appmesh"  # appmesh:v1beta2
    if base not in _MESHES:
        raise UnknownBuiltinError(
            f"no built-in metrics for provider {provider!r}; known providers: {', '.join(_MESHES)}. "
            "Use a MetricTemplate with your own query instead."
        )
    return base


def _workload(provider: str, target: str, arm: Arm, service: str | None = None) -> str:
    if arm not in ("canary", "primary"):
        raise ValueError(f"arm must be 'canary' or 'primary', not {arm!r}")
    if provider == "contour":
        # Flagger's contour observer names the apex Service ({{ service }}: service.name, else the target)
        return f"{service or target}-{arm}"
    if provider == "gloo":
        # the Upstreams are named after the apex Service (Flagger's observer says {{ target }}, which is
        # the same name unless service.name differs, when only the apex finds the router's Upstreams)
        return service or target
    if provider == "knative":
        return target  # the caller names the arm's Revision
    if arm == "primary":
        return f"{target}-primary"
    # Gateway API and Traefik route to the Services Flagger creates: <target>-canary and <target>-primary.
    # Kuma's tags name those Services too.
    return f"{target}-canary" if provider in ("gatewayapi", "kuma", "traefik") else target


def _parts(provider: str, namespace: str, target: str, interval: str, arm: Arm, ingress: str | None,
           target_kind: str = "Deployment", route: str | None = None, service: str | None = None
           ) -> tuple[_Mesh, str]:
    name = normalize_provider(provider)
    validate_interval(interval)
    mesh = _MESHES[name]
    sel = mesh.selector(name, namespace, _workload(name, target, arm, service), arm, ingress or target, target_kind,
                        route=route or target, service=service or target)
    return mesh, sel


def _with(sel: str, extra: str) -> str:
    return f"{sel}, {extra}" if extra else sel


def _scaled(expr: str, factor: float) -> str:
    return expr if factor == 1.0 else f"{expr} * {factor:g}"


def builtin_query(
    metric: str,
    provider: str,
    namespace: str,
    target: str,
    interval: str,
    arm: Arm = "canary",
    *,
    ingress: str | None = None,
    target_kind: str = "Deployment",
    route: str | None = None,
    service: str | None = None,
) -> str:
    """The PromQL of a built-in metric for one arm of a release.

    `request-success-rate` is the percent (0-100) of non-5xx responses; `request-duration` is the
    P99 latency in milliseconds, both over `interval`. The canary arm reads workload `target`
    (Service `<target>-canary` for gatewayapi), the primary arm `<target>-primary`. For nginx the
    arms are told apart by ingress-nginx's `canary` label on the ingress `ingress` (default: target).
    For knative, `target` is the arm's Revision (the caller reads it from the Knative Service).
    `target_kind` (Deployment or DaemonSet) says how the `kubernetes` provider's pods are named.
    `service` is the apex Service (`service.name`) where it differs from the target, which contour's
    and skipper's names carry; `route` (apisix: the ApisixRoute of `spec.routeRef`) defaults to the
    target, as Flagger's template model does.
    """
    mesh, sel = _parts(provider, namespace, target, interval, arm, ingress, target_kind, route, service)
    if metric == REQUEST_SUCCESS_RATE:
        counted = _with(sel, mesh.counted)
        ok = f"sum(rate({mesh.requests}{{{counted}, {mesh.successes}}}[{interval}]))"
        total = f"sum(rate({mesh.requests}{{{counted}}}[{interval}]))"
        return f"{ok} / {total} * 100"
    if metric == REQUEST_DURATION:
        if mesh.mean_of:
            mean = (f"sum(rate({mesh.mean_of}_sum{{{sel}}}[{interval}])) / "
                    f"sum(rate({mesh.mean_of}_count{{{sel}}}[{interval}]))")
            return _scaled(mean, mesh.bucket_to_ms)
        timed = _with(sel, mesh.timed)
        p99 = f"histogram_quantile(0.99, sum by (le) (rate({mesh.buckets}{{{timed}}}[{interval}])))"
        return _scaled(p99, mesh.bucket_to_ms)
    raise UnknownBuiltinError(f"unknown built-in metric {metric!r}; known: {', '.join(BUILTIN_METRICS)}")


@dataclass(frozen=True)
class CountsQueries:
    """Raw-count queries for one arm, for judges that test counts rather than ratios.

    `errors` and `requests` give the number of 5xx responses and of all responses in the window;
    `latency_buckets` gives one series per `le` bucket bound with the cumulative count; multiply
    `le` by `bucket_to_ms` for milliseconds.
    """

    errors: str
    requests: str
    latency_buckets: str
    bucket_to_ms: float


def builtin_counts_queries(
    provider: str,
    namespace: str,
    target: str,
    interval: str,
    arm: Arm = "canary",
    *,
    ingress: str | None = None,
    target_kind: str = "Deployment",
    route: str | None = None,
    service: str | None = None,
) -> CountsQueries:
    """Error-count, request-count and latency-bucket queries over `interval` for one arm."""
    mesh, sel = _parts(provider, namespace, target, interval, arm, ingress, target_kind, route, service)
    counted, timed = _with(sel, mesh.counted), _with(sel, mesh.timed)
    return CountsQueries(
        errors=f"sum(increase({mesh.requests}{{{counted}, {mesh.errors}}}[{interval}]))",
        requests=f"sum(increase({mesh.requests}{{{counted}}}[{interval}]))",
        latency_buckets=f"sum by (le) (increase({mesh.buckets}{{{timed}}}[{interval}]))",
        bucket_to_ms=mesh.bucket_to_ms,
    )
