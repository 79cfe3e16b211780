"""`rollout analyze` replays a Canary whose metric lives at a vendor, over a documented fake of its API.

Datadog, New Relic, Dynatrace, Google Cloud Monitoring and Splunk Observability cannot run here:
each is a fake in `tests.vendor_fakes` answering with the response shapes of the vendor's API
documentation (the page is named on each fake's class). Each serves a window where podinfo's canary
success rate falls from 99.5 to 90 at a known minute while its primary (and the `stable` canary)
stay at 99.5. The replay, given only `--provider-secret` for the template's Secret, must promote
`stable` and roll `podinfo` back when two checks have failed, at the tick that the provider's
Flagger semantics predict: Datadog reads the OLDEST point of ten intervals, so it sees the
regression ten minutes late; the others read the newest value.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import yaml

from rollout.api.status import format_time
from rollout.cli import main
from tests.component.test_provider_stackdriver import PUBLIC, service_account_key
from tests.vendor_fakes import (
    Datadog,
    Dynatrace,
    FakeServer,
    GoogleMonitoring,
    NewRelic,
    Splunk,
    Vendor,
    WebJson,
    constant,
    serving,
    step_change,
)

pytestmark = pytest.mark.component

API = "rollout.gitops.dev/v1alpha1"
# The release starts at a whole minute an hour ago; the canary regresses five minutes in.
START = (int(time.time()) // 60) * 60 - 3600
BAD_AT = START + 300
END = START + 2400


@dataclass(frozen=True)
class Case:
    """One vendor: its fake, the template's provider and query (with {{ target }}), and its Secret."""

    vendor: Callable[[], Vendor]
    query: str
    secret: Callable[[FakeServer], dict[str, str]]
    # Seconds after the regression at which the provider's instant value first shows it.
    lag: int = 0


CASES = {
    "datadog": Case(Datadog, "avg:istio.mesh.success_rate{destination_workload:{{ target }}}",
                    lambda _: {"datadog_api_key": Datadog.API_KEY, "datadog_application_key": Datadog.APP_KEY},
                    lag=600),
    "newrelic": Case(NewRelic, "SELECT percentage(count(*), WHERE status < 500) FROM Transaction "
                               "WHERE appName = '{{ target }}'",
                     lambda _: {"newrelic_account_id": NewRelic.ACCOUNT, "newrelic_query_key": NewRelic.QUERY_KEY}),
    "dynatrace": Case(Dynatrace, "builtin:service.successRate:filter(eq(service.name,{{ target }}))",
                      lambda _: {"dynatrace_token": Dynatrace.TOKEN}),
    "stackdriver": Case(lambda: GoogleMonitoring(public_key_pem=PUBLIC),
                        "fetch k8s_container | metric 'istio.io/service/server/success_rate' "
                        "| filter metric.destination_service_name == '{{ target }}' | every 1m",
                        lambda fake: {"project": GoogleMonitoring.PROJECT,
                                      "serviceAccountKey": service_account_key(f"{fake.url}/token")}),
    "splunk": Case(Splunk, "data('success.rate', filter=filter('sf_service', '{{ target }}')).mean().publish()",
                   lambda _: {"sf_token_key": Splunk.TOKEN}),
}


def rendered(query: str, target: str) -> str:
    return query.replace("{{ target }}", target)


@contextmanager
def fake_for(case: Case) -> Iterator[FakeServer]:
    vendor = case.vendor()
    vendor.data = {rendered(case.query, "podinfo"): [step_change(99.5, 90.0, BAD_AT)],
                   rendered(case.query, "podinfo-primary"): [constant(99.5)],
                   rendered(case.query, "stable"): [constant(99.5)],
                   rendered(case.query, "stable-primary"): [constant(99.5)]}
    with serving(vendor) as server:
        yield server


def manifests(kind: str, address: str, query: str, target: str) -> str:
    meta = {"namespace": "test"}
    docs: list[dict[str, Any]] = [
        {"apiVersion": API, "kind": "MetricTemplate", "metadata": {"name": "success-rate", **meta},
         "spec": {"provider": {"type": kind, "address": address, "secretRef": {"name": "vendor-creds"}},
                  "query": query}},
        {"apiVersion": API, "kind": "Canary", "metadata": {"name": target, **meta},
         "spec": {"provider": "istio", "targetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": target},
                  "service": {"port": 9898},
                  "analysis": {"interval": "1m", "threshold": 2, "maxWeight": 50, "stepWeight": 2,
                               "metrics": [{"name": "success-rate", "templateRef": {"name": "success-rate"},
                                            "thresholdRange": {"min": 99}, "interval": "1m"}]}}},
    ]
    return yaml.safe_dump_all(docs, sort_keys=False, width=1000)


def replay(tmp_path: Path, kind: str, fake: FakeServer, case: Case, target: str) -> int:
    secret = tmp_path / "vendor-creds.yaml"
    secret.write_text(yaml.safe_dump({"apiVersion": "v1", "kind": "Secret",
                                      "metadata": {"name": "vendor-creds", "namespace": "test"},
                                      "stringData": case.secret(fake)}))
    canary = tmp_path / f"{target}.yaml"
    canary.write_text(manifests(kind, fake.url, case.query, target))
    return main(["analyze", "-f", str(canary), "--start", str(START), "--end", str(END), "--json",
                 "--provider-secret", f"vendor-creds={secret}"])


def at(t: int) -> str:
    return format_time(datetime.fromtimestamp(t, tz=UTC))


@pytest.mark.parametrize("kind", list(CASES))
def test_the_replay_rolls_back_where_the_providers_value_shows_the_regression(
        kind: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """Documented fake of the vendor's API; the regression starts at BAD_AT."""
    case = CASES[kind]
    with fake_for(case) as fake:
        code = replay(tmp_path, kind, fake, case, "stable")
        captured = capsys.readouterr()
        assert code == 0, captured.err
        assert json.loads(captured.out)["outcome"] == "promote"
        code = replay(tmp_path, kind, fake, case, "podinfo")
        captured = capsys.readouterr()
        # The fake answers nothing but 401/403 without the Secret's credentials in the vendor's header.
        asked = len(fake.requests)
    assert code == 3, captured.err
    result = json.loads(captured.out)
    checks = [(t["at"], c["canary"], c["verdict"]) for t in result["ticks"] for c in t["checks"]]
    first_fail = min(when for when, _, verdict in checks if verdict == "fail")
    # The first failed check is the first tick whose value the provider reads after the regression.
    assert first_fail == at(BAD_AT + case.lag)
    assert all(value == 99.5 and verdict == "pass" for when, value, verdict in checks if when < first_fail)
    assert result["decided_at"] == at(BAD_AT + case.lag + 60)
    assert result["metrics"][0]["last"]["canary"] == 90.0
    assert asked >= len(checks)


def test_a_web_metric_cannot_be_replayed(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    with serving(WebJson({"podinfo": [constant(99.5)]})) as fake:
        path = tmp_path / "web.yaml"
        docs = yaml.safe_load_all(manifests("web", f"{fake.url}/api/v1/measurement", "service={{ target }}",
                                            "podinfo"))
        template, canary = list(docs)
        template["spec"]["provider"]["jsonPath"] = "$.data.successPercent"
        path.write_text(yaml.safe_dump_all([template, canary]))
        code = main(["analyze", "-f", str(path), "--start", str(START), "--end", str(END),
                     "--provider-secret", f"vendor-creds={tmp_path / 'none'}"])
    assert code == 2
    assert "serves no past values, so it cannot be replayed" in capsys.readouterr().err


@pytest.mark.parametrize("kind", ["newrelic", "splunk"])
def test_compare_reads_each_arms_range_series_from_the_vendor(
        kind: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """Documented fake; canaryQuery and primaryQuery, judged by Mann-Whitney on the range series.

    New Relic (TIMESERIES) and Splunk (resolution) serve the judge's step of a tenth of the interval;
    Datadog's rollup, Dynatrace's finest 1m and an MQL `every 1m` give one point a minute, too few
    for the test to conclude within a few intervals.
    """
    case = CASES[kind]
    with fake_for(case) as fake:
        secret = tmp_path / "vendor-creds.yaml"
        secret.write_text(yaml.safe_dump({"apiVersion": "v1", "kind": "Secret",
                                          "metadata": {"name": "vendor-creds", "namespace": "test"},
                                          "stringData": case.secret(fake)}))
        template, canary = yaml.safe_load_all(manifests(kind, fake.url, case.query, "podinfo"))
        del template["spec"]["query"]
        template["spec"]["canaryQuery"] = rendered(case.query, "podinfo")
        template["spec"]["primaryQuery"] = rendered(case.query, "podinfo-primary")
        canary["spec"]["analysis"]["judge"] = "compare"
        metric = canary["spec"]["analysis"]["metrics"][0]
        del metric["thresholdRange"]
        metric["compare"] = {"direction": "decrease", "tolerance": 0.02}
        path = tmp_path / "canary.yaml"
        path.write_text(yaml.safe_dump_all([template, canary]))
        code = main(["analyze", "-f", str(path), "--start", str(START), "--end", str(END), "--json",
                     "--provider-secret", f"vendor-creds={secret}"])
        steps = {r.params.get("resolution") or r.params.get("nrql", "").rpartition("TIMESERIES ")[2]
                 for r in fake.requests}
    captured = capsys.readouterr()
    assert code == 3, captured.err
    result = json.loads(captured.out)
    fails = [t["at"] for t in result["ticks"] for c in t["checks"] if c["verdict"] == "fail"]
    assert at(BAD_AT) < min(fails) <= at(BAD_AT + 180)
    assert result["metrics"][0]["judge"] == "compare"
    assert steps & {"6000", "6 seconds"}
