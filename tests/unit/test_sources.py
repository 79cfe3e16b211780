"""Each metric goes to its own source: a MetricTemplate's provider with its Secret, or the operator-wide
Prometheus; and whatever stands in the way is a check reason naming the template, provider and fix.

The sources are in-memory (`MemorySource` of test_checks) behind the real `Sources` and a test-only
provider type registered in the rules table (`memory`), so each judge, arm and failure is seen end
to end through `MetricChecks`; real Prometheus servers are the component and e2e tests' part.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from datetime import timedelta
from typing import Any

import numpy as np
import pytest

from analysis.providers.base import AuthError, MetricSource, ProviderConfig, UnreachableError
from analysis.providers.rules import RULES, ProviderRules
from analysis.verdicts import Verdict
from rollout.api.parse import parse_metric_template
from rollout.api.spec import MetricTemplate
from rollout.engine.checks import MetricChecks
from rollout.engine.sources import SourceError, Sources
from tests.unit.test_checks import AT, T0, MemorySource, points, release

ONE_MINUTE = timedelta(minutes=1)


@pytest.fixture(autouse=True)
def memory_type() -> Iterator[None]:
    RULES["memory"] = ProviderRules("memory", docs="https://example.com/memory", secret_keys=("api_key",),
                                    optional_secret_keys=("app_key",))
    RULES["norange"] = ProviderRules("norange", docs="https://example.com/norange", range_queries=False)
    yield
    del RULES["memory"], RULES["norange"]


def template(name: str = "errors", ptype: str = "memory", secret: str | None = "creds", **spec: Any) -> MetricTemplate:
    provider: dict[str, Any] = {"type": ptype, "address": "https://metrics.example.com"}
    if secret:
        provider["secretRef"] = {"name": secret}
    return parse_metric_template({
        "apiVersion": "rollout.gitops.dev/v1alpha1", "kind": "MetricTemplate",
        "metadata": {"name": name, "namespace": "test"},
        "spec": {"provider": provider, **(spec or {"query": 'sum(errors{pod=~"{{ target }}-.*"})'})},
    })


class Builder:
    """Builds the one in-memory source per config it is given, and remembers what it built."""

    def __init__(self, source: MetricSource | None = None) -> None:
        self.source = source
        self.configs: list[ProviderConfig] = []
        self.closed = 0

    def __call__(self, config: ProviderConfig) -> MetricSource:
        self.configs.append(config)
        if config.secret.get("api_key", "").startswith("bad"):
            raise ValueError(f"api key {config.secret['api_key']} is not of the right form")
        built = self.source or MemorySource({})
        builder = self

        class Closing:
            def __getattr__(self, name: str) -> Any:
                return getattr(built, name)

            def close(self) -> None:
                builder.closed += 1

        return Closing()


def secrets(data: Mapping[tuple[str, str], Mapping[str, str]]) -> Any:
    def read(namespace: str, name: str) -> Mapping[str, str]:
        if (namespace, name) not in data:
            raise SourceError(f"Secret {namespace}/{name} (provider.secretRef) does not exist")
        return data[(namespace, name)]
    return read


def test_a_template_source_is_built_from_its_provider_and_secret_and_kept_until_either_changes() -> None:
    store = {("test", "creds"): {"api_key": "k1"}}
    builder = Builder()
    sources = Sources(MemorySource({}), secrets(store), timeout=3.0, retries=1, builder=builder)
    first = sources.for_template(template())
    assert sources.for_template(template()) is first
    (config,) = builder.configs
    assert (config.type, config.address, dict(config.secret), config.template, config.timeout, config.retries) == (
        "memory", "https://metrics.example.com", {"api_key": "k1"}, "test/errors", 3.0, 1)
    assert "k1" not in repr(config)
    store[("test", "creds")] = {"api_key": "k2"}  # the Secret is rotated
    second = sources.for_template(template())
    assert second is not first and builder.closed == 1 and dict(builder.configs[-1].secret) == {"api_key": "k2"}
    edited = template(query="sum(other_errors)")  # the query changed, not the provider: kept
    assert sources.for_template(edited) is second
    sources.close()
    assert builder.closed == 2


@pytest.mark.parametrize(("store", "message"), [
    ({}, "MetricTemplate test/errors (memory): Secret test/creds (provider.secretRef) does not exist; "
                     "it must hold the keys the memory provider reads: api_key, app_key"),
    ({("test", "creds"): {"app_key": "a"}},
     "MetricTemplate test/errors (memory): Secret test/creds (provider.secretRef) lacks api_key; add the keys the "
     "memory provider reads: api_key, app_key (see https://example.com/memory)"),
    ({("test", "creds"): {"api_key": "bad-key-123"}},
     "MetricTemplate test/errors (memory): the provider cannot be set up from the template and its Secret: "
     "ValueError: api key *** is not of the right form"),
])
def test_what_keeps_a_source_from_being_built_is_said_with_the_fix(
        store: dict[tuple[str, str], Mapping[str, str]], message: str) -> None:
    sources = Sources(MemorySource({}), secrets(store), builder=Builder())
    with pytest.raises(SourceError) as e:
        sources.for_template(template())
    assert str(e.value) == message and not e.value.temporary


def canary_with(metric: dict[str, Any], judge: str = "threshold") -> Any:
    return release(judge, [{"name": "errors", "templateRef": {"name": "errors"}, **metric}])


def run(tpl: MetricTemplate, metric: dict[str, Any], source: MetricSource, *, judge: str = "threshold",
        store: dict[tuple[str, str], Mapping[str, str]] | None = None) -> tuple[Any, MemorySource]:
    default = MemorySource({})
    sources = Sources(default, secrets(store if store is not None else {("test", "creds"): {"api_key": "k"}}),
                      builder=Builder(source))
    (result,) = MetricChecks(canary_with(metric, judge), sources, {("test", "errors"): tpl}).run(AT, T0)
    return result, default


def test_threshold_asks_the_templates_own_source_not_the_operator_wide_one() -> None:
    own = MemorySource({'sum(errors{pod=~"podinfo-.*"})': points([0.5]),
                        'sum(errors{pod=~"podinfo-primary-.*"})': points([0.2])})
    result, default = run(template(), {"thresholdRange": {"max": 1}}, own)
    assert (result.verdict, result.value, result.primary) == (Verdict.PASS, 0.5, 0.2)
    assert default.asked == [] and len(own.asked) == 2


def test_canary_and_primary_queries_are_each_their_arms() -> None:
    tpl = template(canaryQuery='canary_errors{app="{{ target }}"}', primaryQuery='primary_errors{app="{{ target }}"}')
    own = MemorySource({'canary_errors{app="podinfo"}': points([3.0]), 'primary_errors{app="podinfo"}': points([1.0])})
    result, _ = run(tpl, {"thresholdRange": {"max": 1}}, own)
    assert (result.verdict, result.value, result.primary) == (Verdict.FAIL, 3.0, 1.0)


def test_compare_reads_the_templates_range_series_per_arm() -> None:
    rng = np.random.default_rng(7)
    tpl = template(canaryQuery="canary_latency", primaryQuery="primary_latency")
    own = MemorySource({"canary_latency": points(200 + rng.normal(0, 1, 30)),
                        "primary_latency": points(100 + rng.normal(0, 1, 30))})
    result, default = run(tpl, {"compare": {"direction": "increase"}}, own, judge="compare")
    assert result.verdict == Verdict.FAIL and default.asked == []
    assert own.asked == ["canary_latency", "primary_latency"]


@pytest.mark.parametrize("judge", ["compare", "sequential"])
def test_a_judge_of_ranges_on_a_provider_without_them_cannot_check(judge: str) -> None:
    result, _ = run(template(ptype="norange", secret=None), {"compare": {"direction": "increase"}}
                    if judge == "compare" else {}, MemorySource({}), judge=judge)
    assert result.verdict == Verdict.FAIL
    assert result.reason == ("cannot be checked: MetricTemplate test/errors (norange): metric errors's compare judge "
                             "needs range series, which the norange provider cannot give; judge it with a "
                             "thresholdRange instead")


def test_outcomes_name_the_provider_and_the_template() -> None:
    query = 'sum(errors{pod=~"podinfo-.*"})'
    unreachable = MemorySource({query: UnreachableError("memory at https://metrics.example.com did not answer")})
    result, _ = run(template(), {"thresholdRange": {"max": 1}}, unreachable)
    assert (result.verdict, result.reason) == (Verdict.NO_DATA, "memory unavailable: MetricTemplate test/errors "
                                               "(memory): memory at https://metrics.example.com did not answer")
    refused = MemorySource({query: AuthError("memory at https://m refused the credentials (401)", query, 401)})
    result, _ = run(template(), {"thresholdRange": {"max": 1}}, refused)
    assert (result.verdict, result.reason) == (Verdict.FAIL, "cannot be checked: MetricTemplate test/errors (memory): "
                                               "memory at https://m refused the credentials (401)")
    result, _ = run(template(), {"thresholdRange": {"max": 1}}, MemorySource({}), store={})
    assert result.verdict == Verdict.FAIL and result.reason.startswith(
        "cannot be checked: MetricTemplate test/errors (memory): Secret test/creds (provider.secretRef) does not exist")


def test_a_temporary_secret_read_failure_holds_the_check() -> None:
    def flaky(namespace: str, name: str) -> Mapping[str, str]:
        raise SourceError("reading Secret test/creds (provider.secretRef) failed: 503 Service Unavailable",
                          temporary=True)
    sources = Sources(MemorySource({}), flaky, builder=Builder())
    (result,) = MetricChecks(canary_with({"thresholdRange": {"max": 1}}), sources,
                             {("test", "errors"): template()}).run(AT, T0)
    assert (result.verdict, result.reason) == (Verdict.NO_DATA, "memory unavailable: MetricTemplate test/errors "
                                               "(memory): reading Secret test/creds (provider.secretRef) failed: "
                                               "503 Service Unavailable")


def test_builtin_metrics_and_inline_queries_keep_the_operator_wide_prometheus() -> None:
    default = MemorySource({"up": points([1.0])})
    sources = Sources(default, builder=Builder())
    canary = release("threshold", [{"name": "up", "query": "up", "thresholdRange": {"min": 1}}])
    (result,) = MetricChecks(canary, sources).run(AT, T0)
    assert result.verdict == Verdict.PASS and default.asked[0] == "up"
    (result,) = MetricChecks(canary, Sources(None)).run(AT, T0)
    assert result.reason == ("cannot be checked: built-in metrics and inline queries need a Prometheus, and none "
                             "was given")


def test_templates_are_reloaded_before_each_check_and_an_invalid_one_is_said_so() -> None:
    loads: list[int] = []

    def reload(checks: MetricChecks) -> None:
        loads.append(1)
        checks.unusable[("test", "errors")] = "spec.query: is required"

    checks = MetricChecks(canary_with({"thresholdRange": {"max": 1}}), Sources(MemorySource({})), reload=reload)
    (result,) = checks.run(AT, T0)
    checks.run(AT, T0)
    assert loads == [1, 1]
    assert (result.verdict, result.reason) == (
        Verdict.FAIL, "cannot be checked: MetricTemplate test/errors is invalid: spec.query: is required")


def test_each_metric_interval_gets_the_source_that_looks_back_over_it() -> None:
    builder = Builder()
    sources = Sources(MemorySource({}), secrets({("test", "creds"): {"api_key": "k1"}}), builder=builder)
    one, two = sources.for_template(template(), 60.0), sources.for_template(template(), 120.0)
    assert one is not two and [c.interval for c in builder.configs] == [60.0, 120.0]
    assert sources.for_template(template(), 120.0) is two
    sources.forget("test", "errors")
    assert builder.closed == 2
