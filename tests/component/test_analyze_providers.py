"""`rollout analyze` over Graphite, InfluxDB (InfluxQL) and CloudWatch (moto) windows with a known regression.

Each server holds the same story: the canary `podinfo` fails 1% of requests until 4m30s into the
replayed release and 10% from then on; its primary 0.5%. A Canary whose one metric is a
MetricTemplate of that provider type (threshold: at most 5%, two failed checks) must roll back at
the tick the data says, and the same Canary over the primary's numbers only (a healthy canary)
must promote. `rollout analyze` still needs a Prometheus for built-in metrics; VictoriaMetrics
stands in (it answers /-/ready), unused by these templates.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest

from rollout.api.status import format_time
from rollout.cli import main
from tests.metric_servers import (
    Graphite,
    InfluxDB,
    Moto,
    VictoriaMetrics,
    running_graphite,
    running_influxdb,
    running_moto,
    running_victoria_metrics,
)

pytestmark = pytest.mark.component
# The engine's per-template metric sources: without them a template of these types cannot be replayed.
pytest.importorskip("rollout.engine.sources", reason="needs MetricTemplate providers in the engine")

STEP = 10
END = (int(time.time()) // 60) * 60 - 120
FIRST = END - 30 * 60
START = FIRST + 120
BAD_AT = START + 270
REGION = "eu-west-1"


def percent(app: str, t: int) -> float:
    if app == "podinfo":
        return 10.0 if t >= BAD_AT else 1.0
    return 0.5


CANARY = """
apiVersion: rollout.gitops.dev/v1alpha1
kind: Canary
metadata:
  name: {target}
  namespace: test
spec:
  provider: istio
  targetRef:
    apiVersion: apps/v1
    kind: Deployment
    name: {target}
  service:
    port: 9898
  analysis:
    interval: 1m
    threshold: 2
    maxWeight: 50
    stepWeight: 10
    metrics:
      - name: error-percentage
        interval: 1m
        templateRef:
          name: error-percentage
          namespace: test
        thresholdRange:
          max: 5
---
apiVersion: rollout.gitops.dev/v1alpha1
kind: MetricTemplate
metadata:
  name: error-percentage
  namespace: test
spec:
  provider:
{provider}
  query: |
{query}
"""


@pytest.fixture(scope="module")
def graphite() -> Iterator[Graphite]:
    with running_graphite() as server:
        server.send([f"app.{app}.errors {percent(app, t)} {t}" for t in range(FIRST, END + 1, STEP)
                     for app in ("podinfo", "podinfo-primary")] +
                    [f"app.{app}.requests 100 {t}" for t in range(FIRST, END + 1, STEP)
                     for app in ("podinfo", "podinfo-primary")])
        yield server


@pytest.fixture(scope="module")
def influxdb() -> Iterator[InfluxDB]:
    # No Secret files for `rollout analyze` yet: this InfluxDB lets anyone read.
    with running_influxdb(auth=False) as server:
        server.write([f"requests,app={app} total=100,errors={percent(app, t)} {t}"
                      for t in range(FIRST, END + 1, STEP) for app in ("podinfo", "podinfo-primary")])
        yield server


@pytest.fixture(scope="module")
def moto() -> Iterator[Moto]:
    with running_moto() as server:
        server.boto3(f"""
data = []
for t in range({FIRST}, {END} + 1, 60):
    stamp = datetime.datetime.fromtimestamp(t, datetime.timezone.utc)
    for app, value in (('podinfo', 10.0 if t >= {BAD_AT} else 1.0), ('podinfo-primary', 0.5)):
        data.append({{'MetricName': 'ErrorPercent', 'Dimensions': [{{'Name': 'Service', 'Value': app}}],
                     'Timestamp': stamp, 'Value': value}})
client.put_metric_data(Namespace='App', MetricData=data)
""", env={"AWS_ACCESS_KEY_ID": "test", "AWS_SECRET_ACCESS_KEY": "test"})
        yield server


@pytest.fixture(scope="module")
def prometheus() -> Iterator[VictoriaMetrics]:
    with running_victoria_metrics() as server:
        yield server


def indent(text: str, n: int) -> str:
    return "\n".join(" " * n + line for line in text.strip().splitlines())


def at(seconds_after_start: int) -> str:
    return format_time(datetime.fromtimestamp(START + seconds_after_start, tz=UTC))


def analyze(prometheus: VictoriaMetrics, tmp_path: Path, target: str, provider: str, query: str,
            capsys: pytest.CaptureFixture[str]) -> tuple[int, list[str]]:
    path = tmp_path / f"{target}.yaml"
    path.write_text(CANARY.format(target=target, provider=indent(provider, 4), query=indent(query, 4)))
    code = main(["analyze", "-f", str(path), "--name", target, "--prometheus", prometheus.url,
                 "--start", str(START), "--end", str(END)])
    captured = capsys.readouterr()
    return code, captured.out.splitlines() + captured.err.splitlines()


GRAPHITE_QUERY = "target=asPercent(app.{{ target }}.errors, app.{{ target }}.requests)&from=-{{ interval }}"
INFLUXQL_QUERY = """SELECT mean("errors") FROM "requests" WHERE "app" = '{{ target }}'
AND time > now() - {{ interval }} AND time <= now()"""
CLOUDWATCH_QUERY = json.dumps([{"Id": "m1", "MetricStat": {
    "Metric": {"Namespace": "App", "MetricName": "ErrorPercent",
               "Dimensions": [{"Name": "Service", "Value": "{{ target }}"}]},
    "Period": 60, "Stat": "Average"}}])


def test_graphite(graphite: Graphite, prometheus: VictoriaMetrics, tmp_path: Path,
                  capsys: pytest.CaptureFixture[str]) -> None:
    provider = f"type: graphite\naddress: {graphite.url}"
    code, out = analyze(prometheus, tmp_path, "podinfo", provider, GRAPHITE_QUERY, capsys)
    # The 5m check's last point (4m30s on) is bad, and so is the 6m one's: rollback at 6m.
    assert code == 3 and out[-1].startswith(f"rollback at {at(360)} ("), out
    assert "error-percentage" in out[-1] and "failed checks 2/2" in out[-1]
    code, out = analyze(prometheus, tmp_path, "podinfo-primary", provider, GRAPHITE_QUERY, capsys)
    assert code == 0 and out[-1] == f"promote at {at(360)}", out


def test_influxql(influxdb: InfluxDB, prometheus: VictoriaMetrics, tmp_path: Path,
                  capsys: pytest.CaptureFixture[str]) -> None:
    provider = f"type: influxdb\naddress: {influxdb.url}\ndatabase: {influxdb.database}"
    query = INFLUXQL_QUERY
    code, out = analyze(prometheus, tmp_path, "podinfo", provider, query, capsys)
    # The 5m check's minute holds 4 bad points of 6: mean 7% > 5%.
    assert code == 3 and out[-1].startswith(f"rollback at {at(360)} ("), out
    code, out = analyze(prometheus, tmp_path, "podinfo-primary", provider, query, capsys)
    assert code == 0 and out[-1] == f"promote at {at(360)}", out


def test_cloudwatch(moto: Moto, prometheus: VictoriaMetrics, tmp_path: Path, capsys: pytest.CaptureFixture[str],
                    monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "test")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "test")
    provider = f"type: cloudwatch\nregion: {REGION}\naddress: {moto.url}"
    code, out = analyze(prometheus, tmp_path, "podinfo", provider, CLOUDWATCH_QUERY, capsys)
    # The newest datapoint before the 6m check is the 5m one (4m30s on): bad; so is 7m's. Rollback at 7m.
    assert code == 3 and out[-1].startswith(f"rollback at {at(420)} ("), out
    code, out = analyze(prometheus, tmp_path, "podinfo-primary", provider, CLOUDWATCH_QUERY, capsys)
    assert code == 0 and out[-1].startswith("promote at"), out
