"""The built-in metrics of traefik, apisix and skipper select what Flagger's observers select
(fluxcd/flagger pkg/metrics/observers/traefik.go, apisix.go, skipper.go, quoted below with the
template model rendered: namespace `test`, target `podinfo`, interval `1m`, ingress and route `web`)."""

from __future__ import annotations

import re

import pytest

from analysis.templates import (
    TemplateError,
    builtin_counts_queries,
    builtin_query,
    render_template,
    template_variables,
)

FLAGGER = {
    ("traefik", "request-success-rate"):
        'sum(rate(traefik_service_request_duration_seconds_bucket{service=~"test-podinfo-canary-[0-9a-zA-Z-]+'
        '@kubernetescrd",code!~"5..",le="+Inf"}[1m])) / sum(rate(traefik_service_request_duration_seconds_bucket{'
        'service=~"test-podinfo-canary-[0-9a-zA-Z-]+@kubernetescrd",le="+Inf"}[1m])) * 100',
    ("traefik", "request-duration"):
        'histogram_quantile(0.99, sum(rate(traefik_service_request_duration_seconds_bucket{'
        'service=~"test-podinfo-canary-[0-9a-zA-Z-]+@kubernetescrd"}[1m])) by (le)) * 1000',
    ("apisix", "request-success-rate"):
        'sum(rate(apisix_http_status{route=~"test_web-podinfo-canary_.+",code!~"5.."}[1m])) / '
        'sum(rate(apisix_http_status{route=~"test_web-podinfo-canary_.+"}[1m])) * 100',
    ("apisix", "request-duration"):
        'histogram_quantile(0.99, sum(rate(apisix_http_latency_bucket{type=~"request",'
        'route=~"test_web-podinfo-canary_.+"}[1m])) by (le))',
    ("skipper", "request-success-rate"):
        'sum(rate(skipper_response_duration_seconds_bucket{route=~"kube(ew)?_test__web_canary__.*__podinfo_canary'
        '(_[0-9]+)?",code!~"5..",le="+Inf"}[1m])) / sum(rate(skipper_response_duration_seconds_bucket{'
        'route=~"kube(ew)?_test__web_canary__.*__podinfo_canary(_[0-9]+)?",le="+Inf"}[1m])) * 100',
    ("skipper", "request-duration"):
        'sum(rate(skipper_serve_route_duration_seconds_sum{route=~"kube(ew)?_test__web_canary__.*__podinfo_canary'
        '(_[0-9]+)?"}[1m])) / sum(rate(skipper_serve_route_duration_seconds_count{'
        'route=~"kube(ew)?_test__web_canary__.*__podinfo_canary(_[0-9]+)?"}[1m])) * 1000',
}
SELECTOR = re.compile(r"([a-z_]+)\{((?:[^}\"]|\"(?:[^\"\\]|\\.)*\")*)\}\[")
MATCHER = re.compile(r'\s*([a-z_]+)\s*(=~|!~|!=|=)\s*"((?:[^"\\]|\\.)*)"\s*')


def selectors(query: str) -> list[tuple[str, frozenset[tuple[str, str, str]]]]:
    """Each series selector of `query`: the metric and its matchers (order does not matter to PromQL),
    with regex escapes read as PromQL reads a double-quoted string."""
    out = []
    for metric, body in SELECTOR.findall(query):
        matchers = frozenset((k, op, v.replace("\\\\", "\\")) for k, op, v in MATCHER.findall(body))
        out.append((metric, matchers))
    return out


@pytest.mark.parametrize(("provider", "metric"), sorted(FLAGGER))
def test_the_canary_arm_selects_what_flaggers_observer_does(provider: str, metric: str) -> None:
    ours = builtin_query(metric, provider, "test", "podinfo", "1m", ingress="web", route="web")
    flagger = FLAGGER[(provider, metric)]
    assert selectors(ours) == selectors(flagger) and len(selectors(ours)) == (1 if "histogram" in flagger else 2)
    assert ours.endswith("* 1000") == flagger.endswith("* 1000")
    assert ours.startswith("histogram_quantile(0.99,") == flagger.startswith("histogram_quantile(0.99,")


@pytest.mark.parametrize("provider", ["traefik", "skipper"])
def test_the_primary_arm_is_the_primarys_service(provider: str) -> None:
    primary = builtin_query("request-success-rate", provider, "test", "podinfo", "1m", "primary", ingress="web")
    canary = builtin_query("request-success-rate", provider, "test", "podinfo", "1m", ingress="web")
    assert primary == canary.replace("podinfo-canary", "podinfo-primary").replace("podinfo_canary", "podinfo_primary")
    assert primary != canary


def test_apisix_has_no_primary_only_series() -> None:
    with pytest.raises(TemplateError, match="the primary's requests alone"):
        builtin_query("request-success-rate", "apisix", "test", "podinfo", "1m", "primary", route="web")


def test_skipper_names_the_apex_service_and_encodes_like_skipper() -> None:
    query = builtin_query("request-duration", "skipper", "my-ns", "podinfo", "1m", ingress="web.v2",
                          service="front-end")
    assert 'route=~"kube(ew)?_my_ns__web_v2_canary__.*__front_end_canary(_[0-9]+)?"' in query


def test_counts_queries_count_the_inf_bucket() -> None:
    counts = builtin_counts_queries("traefik", "test", "podinfo", "1m")
    assert 'le="+Inf"' in counts.requests and 'le="+Inf", code=~"5.."' in counts.errors
    assert 'le="+Inf"' not in counts.latency_buckets and counts.bucket_to_ms == 1000.0
    apisix = builtin_counts_queries("apisix", "test", "podinfo", "1m", route="web")
    assert 'type=~"request"' in apisix.latency_buckets and "type" not in apisix.requests


def test_traefik_values_stay_inside_the_regex() -> None:
    query = builtin_query("request-success-rate", "traefik", 'a"b', "x.y", "1m")
    assert 'service=~"a\\"b-x\\\\.y-canary-[0-9a-zA-Z-]+@kubernetescrd"' in query


def test_templates_get_flaggers_route_variable() -> None:
    variables = template_variables("podinfo", "test", "podinfo", "1m", route="web")
    assert render_template('apisix_http_status{route=~"{{ namespace }}_{{ route }}-{{ target }}-canary_.+"}',
                           variables) == 'apisix_http_status{route=~"test_web-podinfo-canary_.+"}'
    assert template_variables("podinfo", "test", "podinfo", "1m")["route"] == "podinfo"  # Flagger's default
