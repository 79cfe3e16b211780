"""The `stackdriver` provider against a documented fake of Google Cloud Monitoring and Google's token endpoint.

Google Cloud cannot run here: `tests.vendor_fakes.GoogleMonitoring` is a real HTTP server on
127.0.0.1 that answers as https://cloud.google.com/monitoring/api/ref_v3/rest/v3/projects.timeSeries/query
documents the MQL query method (errors as https://cloud.google.com/apis/design/errors), and as
https://developers.google.com/identity/protocols/oauth2/service-account#httprest documents the
token exchange: it checks the RS256 signature of the service account's JWT with the key pair made
here, and only then issues the access token the query endpoint accepts. The service account key's
`token_uri` points at the fake, as the provider (through google-auth) reads it from the key.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from contextlib import closing
from pathlib import Path

import numpy as np
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from analysis.providers.base import (
    AuthError,
    BadQueryError,
    MetricSource,
    NaNError,
    NoDataError,
    ProviderConfig,
    UnreachableError,
)
from analysis.providers.registry import build
from tests.vendor_fakes import FakeServer, GoogleMonitoring, closed_address, constant, serving, step_change

pytestmark = pytest.mark.component

# Flagger's documented example query (docs/gitbook/usage/metrics.md, "Google Cloud Monitoring").
QUERY = """fetch k8s_container
| metric 'istio.io/service/server/response_latencies'
| filter
    (metric.destination_service_name == 'podinfo-canary'
    && metric.destination_service_namespace == 'test')
| align delta(1m)
| every 1m
| group_by [],
    [value_response_latencies_percentile:
      percentile(value.response_latencies, 99)]"""
REGRESSION = (int(time.time()) // 60) * 60 - 1800


def key_pair() -> tuple[str, str]:
    private = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    private_pem = private.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                        serialization.NoEncryption()).decode()
    public_pem = private.public_key().public_bytes(serialization.Encoding.PEM,
                                                   serialization.PublicFormat.SubjectPublicKeyInfo).decode()
    return private_pem, public_pem


PRIVATE, PUBLIC = key_pair()


def service_account_key(token_uri: str, private_pem: str = PRIVATE) -> str:
    """A key file as the Cloud console downloads it (fields of a `service_account` JSON key)."""
    return json.dumps({
        "type": "service_account", "project_id": GoogleMonitoring.PROJECT, "private_key_id": "0123abcd",
        "private_key": private_pem, "client_email": f"flagger@{GoogleMonitoring.PROJECT}.iam.gserviceaccount.com",
        "client_id": "1234567890", "auth_uri": "https://accounts.google.com/o/oauth2/auth", "token_uri": token_uri,
    })


def source(address: str, key: str | None, project: str = GoogleMonitoring.PROJECT) -> MetricSource:
    secret = {"project": project} if key is None else {"project": project, "serviceAccountKey": key}
    return build(ProviderConfig("stackdriver", address, secret=secret, template="test/bytes-sent", timeout=3,
                                retries=1, interval=60))


@pytest.fixture
def fake() -> Iterator[FakeServer]:
    with serving(GoogleMonitoring({QUERY: [step_change(120.0, 480.0, REGRESSION)], "fetch nothing": [],
                                   "fetch ratio_of_nothing": [constant(float("nan"))]},
                                  public_key_pem=PUBLIC)) as server:
        yield server


def test_the_service_account_key_is_exchanged_for_a_token_and_the_newest_point_read(fake: FakeServer) -> None:
    """Documented fake: JWT bearer grant at the key's token_uri, then MQL with the access token."""
    with closing(source(fake.url, service_account_key(f"{fake.url}/token"))) as google:
        assert google.query_value(QUERY) == 480.0
        assert google.query_value(QUERY, at=REGRESSION - 60) == 120.0
    claims = fake.vendor.assertions[0]  # type: ignore[attr-defined]
    assert claims["scope"] == "https://www.googleapis.com/auth/monitoring.read"
    assert claims["iss"] == f"flagger@{GoogleMonitoring.PROJECT}.iam.gserviceaccount.com"
    # One token, reused while it is valid.
    assert len(fake.queries("/token")) == 1
    sent = fake.queries(f"/v3/projects/{GoogleMonitoring.PROJECT}/timeSeries:query")
    assert json.loads(sent[0].body) == {"query": QUERY}
    assert json.loads(sent[1].body)["query"].endswith(
        "\n| within d'" + time.strftime("%Y/%m/%d-%H:%M:%S", time.gmtime(REGRESSION - 660)) + "', d'"
        + time.strftime("%Y/%m/%d-%H:%M:%S", time.gmtime(REGRESSION - 60)) + "'")
    assert sent[0].headers["authorization"] == "Bearer ya29.fake-0"


def test_without_a_key_the_application_default_credentials_are_used(fake: FakeServer, tmp_path: Path,
                                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    """Workload Identity's stand-in: GOOGLE_APPLICATION_CREDENTIALS names the key file."""
    key_file = tmp_path / "key.json"
    key_file.write_text(service_account_key(f"{fake.url}/token"))
    monkeypatch.setenv("GOOGLE_APPLICATION_CREDENTIALS", str(key_file))
    with closing(source(fake.url, None)) as google:
        assert google.query_value(QUERY) == 480.0


def test_no_series_is_no_data_and_a_nan_double_is_nan(fake: FakeServer) -> None:
    with closing(source(fake.url, service_account_key(f"{fake.url}/token"))) as google:
        with pytest.raises(NoDataError):
            google.query_value("fetch nothing")
        with pytest.raises(NaNError):
            google.query_value("fetch ratio_of_nothing")


def test_a_key_google_does_not_accept_is_an_auth_failure(fake: FakeServer) -> None:
    other, _ = key_pair()  # signed with a key whose public half Google does not know
    with closing(source(fake.url, service_account_key(f"{fake.url}/token", other))) as google:
        with pytest.raises(AuthError, match="invalid_grant") as refused:
            google.query_value(QUERY)
        assert "PRIVATE KEY" not in str(refused.value) and "PRIVATE KEY" not in repr(google)
        assert google.is_ready() is False
    assert not fake.queries(f"/v3/projects/{GoogleMonitoring.PROJECT}/timeSeries:query")


def test_a_token_the_api_refuses_is_an_auth_failure(fake: FakeServer) -> None:
    with closing(source(fake.url, service_account_key(f"{fake.url}/token"))) as google:
        google.query_value(QUERY)
        fake.vendor.tokens.clear()  # type: ignore[attr-defined]  # revoked
        with pytest.raises(AuthError, match=r"\(401\).*UNAUTHENTICATED"):
            google.query_value(QUERY)
        # The next query exchanges the key for a new token.
        assert google.query_value(QUERY) == 480.0
    assert len(fake.queries("/token")) == 2


def test_mql_google_cannot_parse_is_a_bad_query_with_its_message(fake: FakeServer) -> None:
    with closing(source(fake.url, service_account_key(f"{fake.url}/token"))) as google:
        with pytest.raises(BadQueryError, match="INVALID_ARGUMENT") as bad:
            google.query_value("fetc k8s_container")
        assert bad.value.status == 400
        # As Flagger's IsOnline: an empty query refused as INVALID_ARGUMENT means the API is there.
        assert google.is_ready() is True


def test_nothing_listening_is_unreachable() -> None:
    address = closed_address()
    with closing(source(address, service_account_key(f"{address}/token"))) as google, \
            pytest.raises(UnreachableError, match="token endpoint is unreachable"):
        google.query_value(QUERY)


def test_a_quota_error_is_retried_and_recovers(fake: FakeServer) -> None:
    with closing(source(fake.url, service_account_key(f"{fake.url}/token"))) as google:
        google.query_value(QUERY)
        fake.script.append(fake.vendor.rate_limited())
        assert google.query_value(QUERY) == 480.0
        fake.script.extend([fake.vendor.rate_limited()] * 2)
        with pytest.raises(UnreachableError, match=r"rate-limiting.*RESOURCE_EXHAUSTED"):
            google.query_value(QUERY)


def test_the_project_is_required() -> None:
    with pytest.raises(ValueError, match="'project'"):
        build(ProviderConfig("stackdriver", None, secret={"serviceAccountKey": "{}"}))


def test_the_range_series_shows_the_regression_from_the_minute_it_started(fake: FakeServer) -> None:
    """Documented fake: p99 latency rises from 120 to 480 ms at REGRESSION; points come newest first."""
    with closing(source(fake.url, service_account_key(f"{fake.url}/token"))) as google:
        series = google.query_range_series(QUERY, REGRESSION - 600, REGRESSION + 600, 60)
    assert series.labels == {"resource.pod_name": "pod-0"}
    assert series.timestamps[0] == REGRESSION - 600 and series.timestamps[-1] == REGRESSION + 600
    assert np.all(np.diff(series.timestamps) == 60)
    assert series.timestamps[np.argmax(series.values > 300)] == REGRESSION
    assert set(series.values[series.timestamps < REGRESSION]) == {120.0}
