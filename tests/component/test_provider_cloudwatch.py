"""The cloudwatch provider against moto's server mode, a local imitation of CloudWatch's API.

moto runs as its own process on 127.0.0.1 (from .cache/moto, see tools/fetch-moto.sh) with IAM
authentication on after the set-up calls: boto3 (moto's own, an independent client) creates a
user, its access key and a policy, then puts forty minutes of one-minute datapoints with
PutMetricData: the canary's error percentage is 1 until a known instant and 10 from then on, the
primary's 0.5. The provider signs its own GetMetricData calls with those keys. moto does not
evaluate metric math (an expression naming one query returns that query), and CloudWatch has no
NaN datapoints (metric math drops them), so the NaN outcome is checked on a canned answer.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import requests

from analysis.providers.base import (
    AmbiguousResultError,
    AuthError,
    BadQueryError,
    MetricSource,
    NaNError,
    NoDataError,
    ProviderConfig,
    UnreachableError,
)
from analysis.providers.cloudwatch import CloudWatchProvider, EnvironmentCredentials, _Signer
from analysis.providers.http import HttpApi
from analysis.providers.registry import build
from tests.metric_servers import Moto, running_moto
from tests.unit.test_providers import Answers

pytestmark = pytest.mark.component

REGION = "eu-west-1"
END = (int(time.time()) // 60) * 60 - 120
FIRST = END - 40 * 60
BAD_AT = FIRST + 25 * 60
# IAM's first calls (user, key, policy) and the data run before authentication is enforced.
SETUP_CALLS = 4
SETUP = f"""
iam = boto3.client('iam', endpoint_url={{url!r}}, region_name='{REGION}')
iam.create_user(UserName='rollout')
key = iam.create_access_key(UserName='rollout')['AccessKey']
iam.put_user_policy(UserName='rollout', PolicyName='read-metrics', PolicyDocument=json.dumps({{
    'Version': '2012-10-17',
    # moto names CloudWatch's actions by its endpoint prefix, `monitoring`.
    'Statement': [{{'Effect': 'Allow', 'Action': ['cloudwatch:*', 'monitoring:*'], 'Resource': '*'}}]}}))
data = []
for t in range({FIRST}, {END} + 1, 60):
    stamp = datetime.datetime.fromtimestamp(t, datetime.timezone.utc)
    data.append({{'MetricName': 'ErrorPercent', 'Dimensions': [{{'Name': 'Service', 'Value': 'podinfo'}}],
                 'Timestamp': stamp, 'Value': 10.0 if t >= {BAD_AT} else 1.0}})
    data.append({{'MetricName': 'ErrorPercent', 'Dimensions': [{{'Name': 'Service', 'Value': 'podinfo-primary'}}],
                 'Timestamp': stamp, 'Value': 0.5}})
client.put_metric_data(Namespace='App', MetricData=data)
print(json.dumps({{'id': key['AccessKeyId'], 'secret': key['SecretAccessKey']}}))
"""


def stat(service: str, qid: str = "m1", **extra: Any) -> dict[str, Any]:
    metric = {"Namespace": "App", "MetricName": "ErrorPercent", "Dimensions": [{"Name": "Service", "Value": service}]}
    return {"Id": qid, "MetricStat": {"Metric": metric, "Period": 60, "Stat": "Average"}, **extra}


def error_percent(service: str) -> str:
    return json.dumps([stat(service)])


@pytest.fixture(scope="module")
def moto() -> Iterator[tuple[Moto, dict[str, str]]]:
    with running_moto(env={"INITIAL_NO_AUTH_ACTION_COUNT": str(SETUP_CALLS)}) as server:
        keys = json.loads(server.boto3(SETUP.replace("{url!r}", repr(server.url)), env={
            "AWS_ACCESS_KEY_ID": "setup", "AWS_SECRET_ACCESS_KEY": "setup"}))
        yield server, keys


@pytest.fixture
def source(moto: tuple[Moto, dict[str, str]], monkeypatch: pytest.MonkeyPatch) -> Iterator[MetricSource]:
    server, keys = moto
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", keys["id"])
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", keys["secret"])
    monkeypatch.delenv("AWS_SESSION_TOKEN", raising=False)
    provider = build(ProviderConfig("cloudwatch", server.url, region=REGION, timeout=5, retries=0))
    yield provider
    provider.close()


def test_the_value_is_the_newest_datapoint_before_the_instant(source: MetricSource) -> None:
    assert source.query_value(error_percent("podinfo"), at=BAD_AT - 1) == 1.0
    assert source.query_value(error_percent("podinfo"), at=BAD_AT + 61) == 10.0
    assert source.query_value(error_percent("podinfo-primary"), at=END + 1) == 0.5


def test_an_expression_picks_the_returned_result(source: MetricSource) -> None:
    query = json.dumps([stat("podinfo", "canary", ReturnData=False), {"Id": "e1", "Expression": "canary"}])
    assert source.query_value(query, at=BAD_AT + 61) == 10.0


def test_a_range_over_the_window_shows_the_regression(source: MetricSource) -> None:
    start = FIRST + 120
    canary = source.query_range_series(error_percent("podinfo"), start, END, 60)
    assert canary.timestamps[0] == start and canary.timestamps[-1] == END
    assert np.all(np.diff(canary.timestamps) == 60)
    failing = canary.timestamps[canary.values > 5]
    assert failing[0] == BAD_AT and len(failing) == (END - BAD_AT) // 60 + 1
    np.testing.assert_allclose(canary.values[canary.timestamps < BAD_AT], 1.0)


def test_no_datapoint_in_the_window_is_no_data(source: MetricSource) -> None:
    with pytest.raises(NoDataError, match=r"CloudWatch at http://127\.0\.0\.1:\d+: no data"):
        source.query_value(error_percent("nosuch"), at=END)
    with pytest.raises(NoDataError):
        source.query_value(error_percent("podinfo"), at=FIRST - 3600)


def test_two_returned_results_are_ambiguous(source: MetricSource) -> None:
    with pytest.raises(AmbiguousResultError, match="2 series"):
        source.query_value(json.dumps([stat("podinfo"), stat("podinfo-primary", "m2")]), at=END)


@pytest.mark.parametrize(("query", "message"), [
    ("not json", "not JSON"),
    ('{"Id": "m1"}', "JSON array of MetricDataQuery"),
    (json.dumps([{"Id": "m1"}]), r"CloudWatch rejected the query \(400\).*MetricStat"),
])
def test_bad_queries(source: MetricSource, query: str, message: str) -> None:
    with pytest.raises(BadQueryError, match=message):
        source.query_value(query, at=END)


def test_refused_credentials(moto: tuple[Moto, dict[str, str]], monkeypatch: pytest.MonkeyPatch) -> None:
    server, keys = moto
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", keys["id"])
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "wrong-secret")
    source = build(ProviderConfig("cloudwatch", server.url, region=REGION, retries=0))
    with pytest.raises(AuthError, match=r"CloudWatch at http://127\.0\.0\.1:\d+ refused the credentials \(403\)") as e:
        source.query_value(error_percent("podinfo"), at=END)
    assert "wrong-secret" not in str(e.value)
    assert not source.is_ready()
    monkeypatch.delenv("AWS_ACCESS_KEY_ID")
    with pytest.raises(AuthError, match="no AWS credentials in the environment"):
        source.query_value(error_percent("podinfo"), at=END)


def test_credentials_of_a_web_identity_come_from_sts(tmp_path: Path) -> None:
    """IAM roles for service accounts: the projected token is exchanged with STS for the role's
    credentials, which sign the requests and are renewed before they expire. Its own moto without
    IAM enforcement: with it on, moto answers an (unsigned, as AWS documents it) web identity call 500."""
    token = tmp_path / "token"
    token.write_text("eyJhbGciOiJSUzI1NiJ9.service-account-token.signature\n")
    now = [time.time()]
    with running_moto() as sts:
        environ = {"AWS_ROLE_ARN": "arn:aws:iam::123456789012:role/rollout", "AWS_WEB_IDENTITY_TOKEN_FILE": str(token),
                   "AWS_ENDPOINT_URL_STS": sts.url}
        credentials = EnvironmentCredentials(REGION, environ, clock=lambda: now[0])
        first = credentials.get()
        assert first.access_key.startswith("ASIA") and first.token and first.expires > now[0] + 600
        assert credentials.get() is first
        now[0] = first.expires - 60  # within the renewal margin
        renewed = credentials.get()
        assert renewed.access_key != first.access_key
        now[0] = time.time()
        signed = _Signer(credentials, REGION)(requests.Request("POST", "https://monitoring.eu-west-1.amazonaws.com/",
                                                               data="{}").prepare())
        assert f"Credential={renewed.access_key}/" in signed.headers["Authorization"]
        assert signed.headers["X-Amz-Security-Token"] == renewed.token
        token.unlink()
        now[0] = renewed.expires
        with pytest.raises(UnreachableError, match="cannot get credentials for arn:aws:iam::123456789012:role/rollout"):
            credentials.get()


def test_is_ready(source: MetricSource) -> None:
    assert source.is_ready()


def test_a_stopped_server_is_unreachable(moto: tuple[Moto, dict[str, str]], source: MetricSource) -> None:
    # Last of the moto tests: it stops the server.
    moto[0].process.stop()
    with pytest.raises(UnreachableError, match=r"CloudWatch at http://127\.0\.0\.1:\d+ is unreachable"):
        source.query_value(error_percent("podinfo"), at=END)


def test_a_nan_datapoint_is_nan(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "AKIDEXAMPLE")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "secret")
    session = requests.Session()
    answer = '{"MetricDataResults": [{"Id": "m1", "Label": "x", "Timestamps": [1700000000], "Values": [NaN]}]}'
    session.mount("https://monitoring.test/", Answers((200, answer, {})))
    source = CloudWatchProvider(REGION, api=HttpApi("CloudWatch", "https://monitoring.test", session=session))
    with pytest.raises(NaNError):
        source.query_value(error_percent("podinfo"), at=1_700_000_001)
