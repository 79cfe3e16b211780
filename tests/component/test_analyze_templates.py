"""`rollout analyze` replays a MetricTemplate's metrics over the template's own provider.

The incident of `test_analyze` (podinfo's canary fails 8% of requests from a known time) is held by
a second real Prometheus that asks for basic auth. The Canary's only metrics come from templates
whose `provider.address` is that Prometheus and whose `secretRef` names the credentials, given with
`--provider-secret` or environment variables. No `--prometheus` is given: the numbers can only have
come from the template's provider.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from rollout.cli import main
from tests.component.test_analyze import BAD_AT, END, START, _openmetrics, at
from tests.prom import BASIC_AUTH, RunningPrometheus, running_prometheus

pytestmark = pytest.mark.component

API = "rollout.gitops.dev/v1alpha1"

def rate(target: str, codes: str = "") -> str:
    return ('sum(rate(istio_requests_total{destination_workload_namespace="{{ namespace }}",'
            f'destination_workload="{target}"{codes}}}[{{{{ interval }}}}]))')


NOT_5XX = ',response_code!~"5.*"'
SUCCESS = "100 * " + rate("{{ target }}", NOT_5XX) + " / " + rate("{{ target }}")


def manifests(address: str, target: str, *, judge: str = "threshold") -> str:
    provider = {"type": "prometheus", "address": address, "secretRef": {"name": "prom-auth"}}
    meta = {"namespace": "test"}
    errors = ',response_code="500"'
    metrics: list[dict[str, Any]] = [{"name": "success-rate", "templateRef": {"name": "success-rate"},
                                      "thresholdRange": {"min": 99}, "interval": "1m"}]
    if judge == "compare":
        metrics = [m for m in metrics if m["name"] != "success-rate"]
        metrics.append({"name": "errors-per-second", "templateRef": {"name": "error-rate-per-arm"},
                        "interval": "1m", "compare": {"direction": "increase", "tolerance": 0.5}})
    docs = [
        {"apiVersion": API, "kind": "MetricTemplate", "metadata": {"name": "success-rate", **meta},
         "spec": {"provider": provider, "query": SUCCESS}},
        {"apiVersion": API, "kind": "MetricTemplate", "metadata": {"name": "error-rate-per-arm", **meta},
         "spec": {"provider": provider, "canaryQuery": rate("{{ target }}", errors),
                  "primaryQuery": rate("{{ target }}-primary", errors)}},
        {"apiVersion": API, "kind": "Canary", "metadata": {"name": target, **meta},
         "spec": {"provider": "istio", "targetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": target},
                  "service": {"port": 9898},
                  "analysis": {"interval": "1m", "threshold": 2, "maxWeight": 50,
                               "stepWeight": 10 if judge == "threshold" else 5, "judge": judge,
                               "metrics": metrics}}},
    ]
    return yaml.safe_dump_all(docs, sort_keys=False, width=1000)


@pytest.fixture(scope="module")
def guarded() -> Iterator[RunningPrometheus]:
    with running_prometheus(_openmetrics(), basic_auth=True) as server:
        yield server


def secret_manifest(tmp_path: Path, user: str, password: str) -> Path:
    path = tmp_path / "prom-auth.yaml"
    encode = lambda text: base64.b64encode(text.encode()).decode()  # noqa: E731
    path.write_text(f"apiVersion: v1\nkind: Secret\nmetadata: {{name: prom-auth, namespace: test}}\n"
                    f"data: {{username: {encode(user)}, password: {encode(password)}}}\n")
    return path


def analyze(tmp_path: Path, text: str, *extra: str) -> list[str]:
    path = tmp_path / "canary.yaml"
    path.write_text(text)
    return ["analyze", "-f", str(path), "--start", str(START), "--end", str(END), *extra]


def test_a_templates_own_prometheus_replays_the_incident(
        guarded: RunningPrometheus, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    secret = secret_manifest(tmp_path, *BASIC_AUTH)
    code = main(analyze(tmp_path, manifests(guarded.url, "podinfo"), "--provider-secret", f"prom-auth={secret}"))
    captured = capsys.readouterr()
    out = captured.out.splitlines()
    assert code == 3, captured.err
    assert out[-1].startswith(f"rollback at {at(360)} (") and "success-rate" in out[-1]
    lines = {line.split()[0]: line for line in out[:-1]}
    # The template's query, rendered for each arm, gives what the built-in metric gives on the same data.
    assert "success-rate canary 99.46 primary 99.5 pass" in lines[at(240)]
    assert "success-rate canary 95.58 primary 99.5 fail" in lines[at(300)]
    code = main(analyze(tmp_path, manifests(guarded.url, "stable"), "--provider-secret", f"prom-auth={secret}"))
    assert code == 0 and capsys.readouterr().out.splitlines()[-1] == f"promote at {at(360)}"


def test_compare_reads_each_arms_query_from_the_templates_prometheus(
        guarded: RunningPrometheus, tmp_path: Path, capsys: pytest.CaptureFixture[str],
        monkeypatch: pytest.MonkeyPatch) -> None:
    # Credentials from the environment this time.
    monkeypatch.setenv("ROLLOUT_SECRET_PROM_AUTH_USERNAME", BASIC_AUTH[0])
    monkeypatch.setenv("ROLLOUT_SECRET_PROM_AUTH_PASSWORD", BASIC_AUTH[1])
    code = main(analyze(tmp_path, manifests(guarded.url, "podinfo", judge="compare"), "--json"))
    result = json.loads(capsys.readouterr().out)
    assert code == 3 and result["outcome"] == "rollback"
    decided = result["decided_at"]
    assert decided is not None
    judged = {m["name"]: m for m in result["metrics"]}
    assert {name: m["judge"] for name, m in judged.items()} == {"errors-per-second": "compare"}
    # 16 errors per 15 s scrape on the canary against 2 on the primary, once the regression starts: the
    # numbers of each arm's own query.
    last = judged["errors-per-second"]["last"]
    assert last["canary"] > 4 * last["primary"] > 0
    fails = [t["at"] for t in result["ticks"] for c in t["checks"] if c["verdict"] == "fail"]
    assert fails and min(fails) > at(BAD_AT - START)


def test_wrong_or_missing_credentials_are_said_without_the_secret(
        guarded: RunningPrometheus, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    wrong = secret_manifest(tmp_path, BASIC_AUTH[0], "not-the-password")
    code = main(analyze(tmp_path, manifests(guarded.url, "podinfo"), "--provider-secret", f"prom-auth={wrong}"))
    captured = capsys.readouterr()
    assert code == 2
    assert "refused the credentials (401)" in captured.err and "MetricTemplate test/success-rate (prometheus)" in \
        captured.err
    assert "not-the-password" not in captured.err + captured.out
    code = main(analyze(tmp_path, manifests(guarded.url, "podinfo")))
    err = capsys.readouterr().err
    assert code == 2
    assert ("MetricTemplate test/success-rate (prometheus): no credentials for Secret test/prom-auth "
            "(provider.secretRef): pass --provider-secret prom-auth=FILE") in err
    assert main(analyze(tmp_path, manifests(guarded.url, "podinfo"), "--provider-secret", "prom-auth")) == 2
    assert "--provider-secret takes NAME=FILE" in capsys.readouterr().err
