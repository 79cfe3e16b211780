"""Built-in metric queries and MetricTemplate rendering, injection attempts included."""

from __future__ import annotations

import json
import re

import pytest

from analysis.templates import (
    BUILTIN_METRICS,
    PROVIDERS,
    TemplateError,
    UnknownBuiltinError,
    builtin_counts_queries,
    builtin_query,
    escape_label_value,
    escape_regex,
    normalize_provider,
    render_template,
    template_variables,
)

VARS = template_variables("podinfo", "test", "podinfo", "1m", {"reporter": "destination", "q": "0.99"})
DOUBLE_QUOTED = re.compile(r'"(?:[^"\\]|\\.)*"')

HOSTILE = [
    'podinfo"} or vector(1) or up{a="',
    "podinfo\\",  # a trailing backslash would escape the closing quote
    'x",namespace=~".*',
    "line\nbreak",
    "tab\tand\rcr\x00nul\x1bEsc\x7f",
    "unicode ✓ \u2028",
    "'single' `back`",
]


def literals(query: str) -> list[str]:
    """Decode every double-quoted literal the way PromQL does (its escapes are a subset of JSON's)."""
    return [json.loads(m) for m in DOUBLE_QUOTED.findall(query)]


def test_renders_flagger_variables_whitespace_tolerant() -> None:
    query = (
        'rate(x{ns="{{namespace}}", w="{{   target }}", n="{{ name  }}", '
        'r="{{ variables.reporter }}"}[{{interval}}])'
    )
    assert render_template(query, VARS) == 'rate(x{ns="test", w="podinfo", n="podinfo", r="destination"}[1m])'


def test_service_and_ingress_default_to_target() -> None:
    assert render_template('{a="{{ service }}", b="{{ ingress }}"}', VARS) == '{a="podinfo", b="podinfo"}'
    values = template_variables("c", "ns", "t", "30s", service="svc", ingress="ing")
    assert render_template('{a="{{ service }}", b="{{ ingress }}"}', values) == '{a="svc", b="ing"}'


def test_unknown_variable_is_a_clear_error() -> None:
    with pytest.raises(TemplateError, match=r"unknown template variable 'variables.missing' on line 2.*known"):
        render_template('up\n{a="{{ variables.missing }}"}', VARS)
    with pytest.raises(TemplateError, match="unknown template variable 'nmespace'"):
        render_template('{a="{{ nmespace }}"}', VARS)


@pytest.mark.parametrize("expr", ["{{ .Name }}", "{{ target | upper }}", "{{ }}", '{{ printf "%s" 1 }}'])
def test_unsupported_expressions_are_rejected(expr: str) -> None:
    with pytest.raises(TemplateError, match="unsupported template expression"):
        render_template(f'up{{a="{expr}"}}', VARS)


def test_unclosed_placeholder() -> None:
    with pytest.raises(TemplateError, match="unclosed"):
        render_template('up{a="{{ target "}', VARS)


@pytest.mark.parametrize("value", HOSTILE)
def test_value_in_double_quotes_cannot_leave_its_string(value: str) -> None:
    template = 'sum(rate(req{namespace="{{ namespace }}", workload="{{ target }}", code!~"5.*"}[{{ interval }}]))'
    query = render_template(template, template_variables("n", "test", value, "1m"))
    assert literals(query) == ["test", value, "5.*"]
    # Outside the literals the query is exactly the template's.
    assert DOUBLE_QUOTED.sub('""', query) == 'sum(rate(req{namespace="", workload="", code!~""}[1m]))'
    assert "\n" not in query


@pytest.mark.parametrize("value", HOSTILE)
def test_value_in_single_quotes_cannot_leave_its_string(value: str) -> None:
    query = render_template("up{w='{{ target }}', x='y'}", template_variables("n", "ns", value, "1m"))
    single = re.compile(r"'(?:[^'\\]|\\.)*'")
    assert single.sub("''", query) == "up{w='', x=''}"


def test_raw_string_refuses_backticks() -> None:
    assert render_template("up{w=`{{ target }}`}", VARS) == "up{w=`podinfo`}"
    with pytest.raises(TemplateError, match="backtick"):
        render_template("up{w=`{{ target }}`}", template_variables("n", "ns", "a`} or up{b=`", "1m"))


@pytest.mark.parametrize("interval", ["1m] or up[1m", "5", "1 m", "-1m", "1m\n", ""])
def test_interval_must_be_a_duration(interval: str) -> None:
    with pytest.raises(TemplateError, match="not a PromQL duration"):
        template_variables("n", "ns", "t", interval)
    values = {**VARS, "interval": interval}
    with pytest.raises(TemplateError, match="not a PromQL duration"):
        render_template("rate(up[{{ interval }}])", values)


@pytest.mark.parametrize("interval", ["30s", "1m", "1h30m", "500ms", "2d"])
def test_durations_pass(interval: str) -> None:
    assert render_template("rate(up[{{ interval }}])", template_variables("n", "ns", "t", interval)) == (
        f"rate(up[{interval}])"
    )


def test_bare_values_must_be_plain_tokens() -> None:
    template = "histogram_quantile({{ variables.q }}, sum by (le) (rate({{ variables.m }}[1m])))"
    ok = template_variables("n", "ns", "t", "1m", {"q": "0.95", "m": "http_bucket"})
    assert render_template(template, ok) == "histogram_quantile(0.95, sum by (le) (rate(http_bucket[1m])))"
    for bad in ['up{a="b"}', "or", "1) or vector(1", "a b", "x\ny", ""]:
        values = template_variables("n", "ns", "t", "1m", {"q": "0.9", "m": bad})
        with pytest.raises(TemplateError, match="outside a quoted string"):
            render_template(template, values)


def test_quote_state_follows_escapes_and_comments() -> None:
    hostile = template_variables("n", "ns", 'a"b', "1m")
    # An escaped quote before the placeholder keeps us inside the string.
    assert render_template('up{w="x\\"{{ target }}"}', hostile) == 'up{w="x\\"a\\"b"}'
    # An apostrophe in a comment opens no string.
    query = render_template("# the target's rate\nup{w=\"{{ target }}\"}", hostile)
    assert query.endswith('up{w="a\\"b"}')


def test_escape_functions() -> None:
    assert escape_label_value('a\\b"c\nd') == 'a\\\\b\\"c\\nd'
    assert escape_label_value("it's", "'") == "it\\'s"
    assert escape_regex("a.b-c+d") == "a\\.b-c\\+d"
    with pytest.raises(ValueError):
        escape_label_value("x", "`")


# -------------------------------------------------------------------------------- built-in queries


@pytest.mark.parametrize("provider", PROVIDERS)
@pytest.mark.parametrize("metric", BUILTIN_METRICS)
def test_builtin_queries_select_each_arm(provider: str, metric: str) -> None:
    # knative's arms are Revisions, which the caller names (read from the Knative Service)
    canary_of, primary_of = ("podinfo-00002", "podinfo-00001") if provider == "knative" else ("podinfo", "podinfo")
    canary = builtin_query(metric, provider, "test", canary_of, "2m", "canary")
    primary = builtin_query(metric, provider, "test", primary_of, "2m", "primary")
    assert canary != primary and "[2m]" in canary and "[2m]" in primary
    assert "podinfo-primary" in primary or provider in ("nginx", "knative")
    assert "podinfo-primary" not in canary
    assert canary.count("(") == canary.count(")") and canary.count("{") == canary.count("}")
    if metric == "request-duration":
        assert canary.startswith("histogram_quantile(0.99, sum by (le) (rate(")
        # nginx and application (kubernetes) buckets are in seconds
        assert canary.endswith("* 1000") == (provider in ("nginx", "kubernetes"))
    else:
        assert canary.endswith("* 100")
        assert ('!~"5.*"' in canary) != (provider in ("linkerd", "smi"))


def test_istio_query_has_flagger_meaning() -> None:
    query = builtin_query("request-success-rate", "istio", "test", "podinfo", "1m")
    assert query == (
        'sum(rate(istio_requests_total{reporter="destination", destination_workload_namespace="test", '
        'destination_workload="podinfo", response_code!~"5.*"}[1m])) / '
        'sum(rate(istio_requests_total{reporter="destination", destination_workload_namespace="test", '
        'destination_workload="podinfo"}[1m])) * 100'
    )


def test_osm_query_has_flagger_meaning() -> None:
    """Flagger's pkg/metrics/observers/osm.go: OSM's Envoy sidecars, by destination Deployment."""
    query = builtin_query("request-success-rate", "osm", "test", "podinfo", "1m")
    assert query == (
        'sum(rate(osm_request_total{destination_namespace="test", destination_kind="Deployment", '
        'destination_name="podinfo", response_code!~"5.*"}[1m])) / '
        'sum(rate(osm_request_total{destination_namespace="test", destination_kind="Deployment", '
        'destination_name="podinfo"}[1m])) * 100'
    )
    duration = builtin_query("request-duration", "osm", "test", "podinfo", "1m")
    assert "osm_request_duration_ms_bucket" in duration and 'destination_name="podinfo"' in duration


def test_nginx_arms_use_the_canary_label_on_the_ingress() -> None:
    canary = builtin_query("request-success-rate", "nginx", "test", "podinfo", "1m", ingress="web")
    primary = builtin_query("request-success-rate", "nginx", "test", "podinfo", "1m", "primary", ingress="web")
    assert 'ingress="web", canary!=""' in canary and 'ingress="web", canary=""' in primary


def test_gatewayapi_cluster_regex_is_escaped() -> None:
    query = builtin_query("request-duration", "gatewayapi:v1beta1", "te.st", "pod.info", "1m", "primary")
    assert 'envoy_cluster_name=~"te\\\\.st_pod\\\\.info-primary_[0-9a-zA-Z-]+"' in query
    assert literals(query)[0] == "te\\.st_pod\\.info-primary_[0-9a-zA-Z-]+"


@pytest.mark.parametrize("provider", PROVIDERS)
@pytest.mark.parametrize("metric", BUILTIN_METRICS)
@pytest.mark.parametrize("value", HOSTILE)
def test_builtin_values_are_escaped(provider: str, metric: str, value: str) -> None:
    benign = builtin_query(metric, provider, "ns", "t", "1m", ingress="i")
    hostile = builtin_query(metric, provider, value, value, "1m", ingress=value)
    # The same expression with the same number of literals: values changed only inside strings.
    assert DOUBLE_QUOTED.sub('""', hostile) == DOUBLE_QUOTED.sub('""', benign)
    assert len(literals(hostile)) == len(literals(benign))
    # regex matchers of a name Flagger builds from several values (an Envoy cluster, a Kuma service tag)
    assert value in literals(hostile) or provider in ("gatewayapi", "kuma", "contour", "gloo", "knative")


@pytest.mark.parametrize("provider", PROVIDERS)
def test_counts_queries(provider: str) -> None:
    counts = builtin_counts_queries(provider, "test", "podinfo", "5m", "primary")
    assert counts.errors.startswith("sum(increase(") and "[5m]" in counts.errors
    assert counts.requests.startswith("sum(increase(") and counts.requests != counts.errors
    assert counts.latency_buckets.startswith("sum by (le) (increase(")
    assert counts.bucket_to_ms == (1000.0 if provider in ("nginx", "kubernetes") else 1.0)


def test_unknown_names_are_clear_errors() -> None:
    with pytest.raises(UnknownBuiltinError, match=r"no built-in metrics for provider 'mesh9'.*MetricTemplate"):
        builtin_query("request-success-rate", "mesh9", "ns", "t", "1m")
    with pytest.raises(UnknownBuiltinError, match="unknown built-in metric 'error-rate'"):
        builtin_query("error-rate", "istio", "ns", "t", "1m")
    with pytest.raises(TemplateError):
        builtin_query("request-duration", "istio", "ns", "t", "1 minute")
    with pytest.raises(ValueError, match="arm"):
        builtin_query("request-duration", "istio", "ns", "t", "1m", "blue")  # type: ignore[arg-type]
    assert normalize_provider("GatewayAPI:v1") == "gatewayapi" and normalize_provider("Contour") == "contour"


def test_smi_reads_linkerd_and_kubernetes_reads_the_application_pods() -> None:
    smi = builtin_query("request-success-rate", "smi", "test", "podinfo", "1m")
    assert smi == builtin_query("request-success-rate", "linkerd", "test", "podinfo", "1m")
    app = builtin_query("request-success-rate", "kubernetes", "test", "podinfo", "1m", "primary")
    assert 'kubernetes_pod_name=~"podinfo-primary-[0-9a-zA-Z]+(-[0-9a-zA-Z]+)"' in app
    assert "http_request_duration_seconds_count" in app


# Flagger's contour and gloo observers (fluxcd/flagger pkg/metrics/observers/contour.go and gloo.go,
# v1.44.0), rendered for namespace `test` and service/target `podinfo` over 1m.
FLAGGER_SUCCESS_RATE = """
    sum(
        rate(
            envoy_cluster_upstream_rq{
                envoy_cluster_name=~"CLUSTER",
                envoy_response_code!~"5.*"
            }[1m]
        )
    )
    /
    sum(
        rate(
            envoy_cluster_upstream_rq{
                envoy_cluster_name=~"CLUSTER",
            }[1m]
        )
    )
    * 100"""
FLAGGER_CLUSTERS = {
    "contour": "test_podinfo-canary_[0-9a-zA-Z-]+",
    "gloo": "test-podinfo-canaryupstream-[0-9a-zA-Z-]+_[0-9a-zA-Z-]+",
}


def _squeezed(query: str) -> str:
    return re.sub(r"\s+", "", query).replace(",}", "}")


@pytest.mark.parametrize("provider", ["contour", "gloo"])
def test_contour_and_gloo_query_what_flaggers_observers_query(provider: str) -> None:
    cluster = FLAGGER_CLUSTERS[provider]
    flagger = FLAGGER_SUCCESS_RATE.replace("CLUSTER", cluster)
    assert _squeezed(builtin_query("request-success-rate", provider, "test", "podinfo", "1m")) == _squeezed(flagger)
    duration = builtin_query("request-duration", provider, "test", "podinfo", "1m")
    assert duration == ('histogram_quantile(0.99, sum by (le) (rate(envoy_cluster_upstream_rq_time_bucket'
                        f'{{envoy_cluster_name=~"{cluster}"}}[1m])))')
    # the primary arm reads the primary's cluster; contour's and gloo's names follow the apex Service
    primary = builtin_query("request-success-rate", provider, "test", "podinfo", "1m", "primary", service="web")
    assert cluster.replace("canary", "primary").replace("podinfo", "web") in primary


def test_knative_queries_are_flaggers() -> None:
    """Flagger's pkg/metrics/observers/knative.go: Envoy's upstream cluster `<namespace>/<route>`, the
    route being the arm's Revision (Flagger's `{{ route }}`, the latest created Revision)."""
    rate = builtin_query("request-success-rate", "knative", "test", "podinfo-00002", "1m")
    assert rate == ('sum(rate(envoy_cluster_upstream_rq{envoy_cluster_name=~"test/podinfo-00002", '
                    'envoy_response_code!~"5.*"}[1m])) / '
                    'sum(rate(envoy_cluster_upstream_rq{envoy_cluster_name=~"test/podinfo-00002"}[1m])) * 100')
    duration = builtin_query("request-duration", "knative", "test", "podinfo-00001", "1m", "primary")
    assert duration == ('histogram_quantile(0.99, sum by (le) (rate(envoy_cluster_upstream_rq_time_bucket'
                        '{envoy_cluster_name=~"test/podinfo-00001"}[1m])))')
    # a name is matched literally: `.` does not match another Revision's character
    assert 'envoy_cluster_name=~"test/my\\\\.app-00001"' in builtin_query(
        "request-duration", "knative", "test", "my.app-00001", "1m")
