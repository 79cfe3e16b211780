"""The graphite provider's request shape and answers it cannot get from graphite-web itself.

graphite-web has no authentication of its own (deployments put a proxy in front), so basic auth
and a refusal are checked here against canned answers; the numbers are checked against a real
Graphite in tests/component/test_provider_graphite.py.
"""

from __future__ import annotations

import base64

import pytest
import requests

from analysis.providers.base import AuthError, ProviderConfig
from analysis.providers.graphite import GraphiteProvider, build, render_params
from analysis.providers.http import HttpApi
from tests.unit.test_providers import Answers


def provider(*answers: tuple[int, object, dict[str, str]]) -> tuple[GraphiteProvider, Answers]:
    session = requests.Session()
    adapter = Answers(*answers)
    session.mount("https://graphite.test/", adapter)
    api = HttpApi("Graphite", "https://graphite.test/prefix", auth=("flagger", "s3cret"), retries=0, session=session)
    return GraphiteProvider("https://graphite.test/prefix", api=api), adapter


def test_params_follow_flaggers_rules() -> None:
    query = "target=sumSeries(a.b.*)\n   &from=-5min\n&format=raw"
    assert render_params(query) == [("target", "sumSeries(a.b.*)"), ("from", "-5min"), ("format", "json")]
    assert render_params("target=x&now=1", at=1700000000.5)[-1] == ("now", "1700000000")


@pytest.mark.parametrize(("written", "sent"), [
    ("-1m", "-60s"), ("-1m30s", "-90s"), ("-2h", "-7200s"), ("-500ms", "-1s"),
    ("-5min", "-5min"), ("-1d", "-1d"), ("now", "now"), ("20261204", "20261204"), ("1700000000", "1700000000"),
])
def test_go_durations_in_from_and_until_become_seconds(written: str, sent: str) -> None:
    assert render_params(f"target=summarize(x,'1m')&from={written}&until={written}") == [
        ("target", "summarize(x,'1m')"), ("from", sent), ("until", sent), ("format", "json")]


def test_basic_auth_goes_to_the_render_path_under_the_address() -> None:
    source, adapter = provider((200, [{"target": "x", "datapoints": [[1.5, 10], [2.5, 20], [None, 30]]}], {}))
    assert source.query_value("target=x") == 2.5
    sent = adapter.seen[0]
    assert sent.url is not None and sent.url.startswith("https://graphite.test/prefix/render?target=x&format=json")
    assert sent.headers["Authorization"] == "Basic " + base64.b64encode(b"flagger:s3cret").decode()


def test_refused_credentials_are_an_auth_error_without_the_password() -> None:
    source, _ = provider((401, "Unauthorized", {}))
    with pytest.raises(AuthError, match=r"Graphite at https://graphite\.test/prefix refused the credentials") as caught:
        source.query_value("target=x")
    assert "s3cret" not in str(caught.value)


def test_a_secret_gives_basic_auth_and_no_secret_none() -> None:
    with_secret = build(ProviderConfig("graphite", "http://g:8080", secret={"username": "u", "password": "p"}))
    assert with_secret.api._session.auth == ("u", "p")
    assert build(ProviderConfig("graphite", "http://g:8080")).api._session.auth is None
    assert "pa55" not in repr(ProviderConfig("graphite", "http://g:8080", secret={"username": "u", "password": "pa55"}))
