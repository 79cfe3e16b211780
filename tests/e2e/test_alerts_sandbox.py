"""Alerts end to end: the operator (`rollout run`) posts to AlertProviders as releases fail and promote.

The chat services (Slack, Microsoft Teams, Discord, Rocket.Chat, Google Chat) cannot run here, so
every AlertProvider's address is a local HTTP server on 127.0.0.1 that records what arrives; the
bodies are checked against each service's documented format in tests/unit/test_alert_payloads.py.
The AlertProviders, their Secrets and the releases are real objects on the sandbox API.
"""

from __future__ import annotations

import base64
import contextlib
import http.server
import json
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from kubernetes import client

from tests.e2e.conftest import GROUP, VERSION, OperatorProcess, set_image, wait_for, wait_phase
from tests.e2e.exporter import Exporter
from tests.e2e.test_operator import NEW, OLD, canary, healthy, start
from tests.gitrepo import GitRemote, deployment_yaml

pytestmark = pytest.mark.e2e


class ChatServer:
    """Records every POST (path, JSON body); answers `codes[path]`, 200 otherwise."""

    def __init__(self) -> None:
        self.received: list[tuple[str, Any]] = []
        self.codes: dict[str, int] = {}
        chat = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                data = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                chat.received.append((self.path, json.loads(data)))
                with contextlib.suppress(OSError):
                    self.send_response(chat.codes.get(self.path, 200))
                    self.end_headers()

            def log_message(self, format: str, *args: object) -> None:
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}{path}"

    def at(self, path: str) -> list[Any]:
        return [body for p, body in self.received if p == path]


@pytest.fixture
def chat() -> Iterator[ChatServer]:
    c = ChatServer()
    yield c
    c.server.shutdown()
    c.server.server_close()


def provider(api: client.ApiClient, namespace: str, name: str, **spec: Any) -> None:
    client.CustomObjectsApi(api).create_namespaced_custom_object(GROUP, VERSION, namespace, "alertproviders", {
        "apiVersion": f"{GROUP}/{VERSION}", "kind": "AlertProvider",
        "metadata": {"name": name, "namespace": namespace}, "spec": spec})


def secret(api: client.ApiClient, namespace: str, name: str, **data: str) -> None:
    client.CoreV1Api(api).create_namespaced_secret(namespace, client.V1Secret(
        metadata=client.V1ObjectMeta(name=name),
        data={k: base64.b64encode(v.encode()).decode() for k, v in data.items()}))


def test_a_failing_release_posts_a_rollback_alert_with_the_metric_and_its_numbers(
        api: client.ApiClient, operator: OperatorProcess, exporter: Exporter, namespace: str,
        chat: ChatServer) -> None:
    # Slack through a Secret (Flagger's secretRef with the key `address`), Teams by address, and a
    # generic one whose service answers 500 every time.
    secret(api, namespace, "on-call-url", address=chat.url("/slack"))
    provider(api, namespace, "on-call", type="slack", channel="on-call", secretRef={"name": "on-call-url"})
    provider(api, namespace, "teams", type="msteams", address=chat.url("/teams"))
    provider(api, namespace, "broken", type="generic", address=chat.url("/broken"))
    chat.codes["/broken"] = 500
    alerts = [{"name": "on-call", "severity": "error", "providerRef": {"name": "on-call"}},
              {"name": "dev", "severity": "info", "providerRef": {"name": "teams", "namespace": namespace}},
              {"name": "down", "providerRef": {"name": "broken"}}]
    obj = canary("web", namespace, alerts=alerts)
    healthy(exporter, namespace, "web")
    start(api, obj)
    set_image(api, "web", namespace, NEW)
    wait_for("first step", lambda: (client.CustomObjectsApi(api).get_namespaced_custom_object(
        GROUP, VERSION, namespace, "canaries", "web").get("status") or {}).get("canaryWeight", 0) >= 10)
    exporter.set(namespace, "web", rps=50, error_ratio=0.3)
    status = wait_phase(api, namespace, "web", "Failed", "Succeeded", timeout=90)
    assert status["phase"] == "Failed", operator.output()

    # error subscribers get the failure only; info subscribers get everything.
    [slack] = wait_for("the Slack alert", lambda: chat.at("/slack") or None, timeout=20)
    attachment = slack["attachments"][0]
    print("\nSlack alert of a rollback:\n" + json.dumps(slack, indent=2))
    assert (slack["channel"], attachment["color"]) == ("on-call", "danger")
    assert attachment["author_name"] == f"web.{namespace}"
    assert "Rolling back web" in attachment["text"] and "request-success-rate" in attachment["text"]
    facts = {f["title"]: f["value"] for f in attachment["fields"]}
    assert facts["Failed checks"] == "2/2"
    # The canary's success rate (below 99 with 30% errors) against the primary's (100) and the limit.
    canary_rate, primary_rate, limit = facts["request-success-rate"].split(", ")
    assert canary_rate.startswith("canary ") and float(canary_rate.split()[1]) < 99
    assert (primary_rate, limit) == ("primary 100", "limit >= 99")
    teams = wait_for("the Teams failure", lambda: [b for b in chat.at("/teams") if b["themeColor"] == "FF0000"]
                     or None, timeout=20)
    assert teams[0]["@type"] == "MessageCard" and "Rolling back web" in teams[0]["sections"][0]["activityTitle"]
    titles = [b["sections"][0]["activityTitle"] for b in chat.at("/teams")]
    assert any(t.startswith("Initialization done") for t in titles)
    assert any(t.startswith("New revision detected") for t in titles)
    # The service answering 500 was asked (and retried); the release was not held up by it.
    wait_for("the retried generic alert", lambda: len(chat.at("/broken")) >= 3 or None, timeout=30)
    assert "AlertProvider" in operator.output() and "HTTP 500" in operator.output()


def test_a_promotion_posts_info_and_a_failing_or_missing_provider_blocks_nothing(
        api: client.ApiClient, operator: OperatorProcess, exporter: Exporter, namespace: str,
        chat: ChatServer) -> None:
    provider(api, namespace, "dev", type="gchat", address=chat.url("/gchat"))
    provider(api, namespace, "down", type="discord", address=chat.url("/discord"))
    provider(api, namespace, "no-secret", type="rocket", secretRef={"name": "not-there"})
    chat.codes["/discord/slack"] = 500
    alerts = [{"name": "dev", "severity": "info", "providerRef": {"name": "dev"}},
              {"name": "down", "severity": "info", "providerRef": {"name": "down"}},
              {"name": "no-secret", "providerRef": {"name": "no-secret"}},
              {"name": "gone", "providerRef": {"name": "never-created"}},
              {"name": "errors-only", "severity": "error", "providerRef": {"name": "dev"}}]
    obj = canary("shop", namespace, stepWeight=25, alerts=alerts)
    healthy(exporter, namespace, "shop")
    start(api, obj)
    set_image(api, "shop", namespace, NEW)
    status = wait_phase(api, namespace, "shop", "Succeeded", "Failed", timeout=90)
    assert status["phase"] == "Succeeded", operator.output()

    def promoted() -> list[Any] | None:
        found = [b for b in chat.at("/gchat") if "Promotion completed" in json.dumps(b)]
        return found or None

    [card] = wait_for("the promotion card", promoted, timeout=20)
    print("\nGoogle Chat alert of a promotion:\n" + json.dumps(card, indent=2))
    assert card["cards"][0]["header"] == {"title": "rollout", "subtitle": f"shop.{namespace}"}
    # info only: the errors-only alert on the same provider sent nothing more than the info one.
    texts = [json.dumps(b) for b in chat.at("/gchat")]
    assert sum("Promotion completed" in t for t in texts) == 1
    assert not any("Rolling back" in t for t in texts)
    # Discord got the Slack-compatible body on /slack, answered 500, and the release went on.
    assert chat.at("/discord/slack") and chat.at("/discord/slack")[0]["attachments"][0]["color"] == "good"
    out = operator.output()
    assert "Secret" in out and "not-there" in out
    assert f"AlertProvider {namespace}/never-created not found" in out


def test_a_pushed_revert_and_a_stalled_gitsource_are_alerted(
        api: client.ApiClient, operator: OperatorProcess, exporter: Exporter, namespace: str,
        chat: ChatServer, tmp_path: Path) -> None:
    """The revert alert carries the revert commit's sha (this remote is file://, so no web link: the
    links of GitHub, GitLab, Bitbucket and Azure DevOps URLs are unit-tested); the GitSource's own
    `spec.alerts` hear that it stalled on a file that does not parse."""
    provider(api, namespace, "ops", type="generic", address=chat.url("/ops"))
    alerts = [{"name": "ops", "severity": "error", "providerRef": {"name": "ops"}}]
    canary_obj = canary("web", namespace, alerts=alerts)
    canary_obj["spec"]["git"] = {"source": "apps"}
    remote = GitRemote(tmp_path / "git")
    remote.commit({"apps/web/deployment.yaml": deployment_yaml("web", OLD, namespace=namespace),
                   "apps/web/canary.yaml": yaml.safe_dump(canary_obj)}, "feat(web): podinfo 6.0.0")
    healthy(exporter, namespace, "web")
    source = {"apiVersion": f"{GROUP}/{VERSION}", "kind": "GitSource",
              "metadata": {"name": "apps", "namespace": namespace},
              "spec": {"url": remote.url, "branch": "main", "path": "./apps", "interval": "2s", "alerts": alerts}}
    client.CustomObjectsApi(api).create_namespaced_custom_object(GROUP, VERSION, namespace, "gitsources", source)
    wait_phase(api, namespace, "web", "Initialized", timeout=60)

    bad = remote.commit({"apps/web/deployment.yaml": deployment_yaml("web", NEW, namespace=namespace)},
                        "feat(web): podinfo 6.0.1")
    exporter.set(namespace, "web", rps=50, error_ratio=0.3)
    status = wait_phase(api, namespace, "web", "Reverted", timeout=120)
    revert = status["revert"]["commit"]

    def about(reason: str) -> list[Any] | None:
        return [b for b in chat.at("/ops") if b["metadata"].get("eventReason") == reason] or None

    [failed] = wait_for("the rollback alert", lambda: about("Failed"), timeout=20)
    assert "request-success-rate" in failed["metadata"]["eventMessage"]
    [pushed] = wait_for("the revert alert", lambda: about("GitReverted"), timeout=20)
    print("\ngeneric alert of a pushed revert:\n" + json.dumps(pushed, indent=2))
    meta = pushed["metadata"]
    assert meta["eventMessage"] == f"revert commit {revert} pushed" and meta["Revert commit"] == revert
    assert meta["Reverted"] == bad and "Commit" not in meta  # file:// has no web page to link
    assert (pushed["name"], pushed["namespace"], meta["kind"], meta["severity"]) == ("web", namespace, "Canary",
                                                                                    "error")

    remote.commit({"apps/web/broken.yaml": "kind: [unclosed\n"}, "chore: a file that does not parse")
    [stalled] = wait_for("the stalled alert", lambda: [b for b in chat.at("/ops")
                                                      if b["metadata"]["kind"] == "GitSource"] or None, timeout=60)
    assert (stalled["name"], stalled["phase"]) == ("apps", "Stalled")
    assert "broken.yaml" in stalled["metadata"]["eventMessage"]
    assert stalled["metadata"]["Repository"] == remote.url and stalled["metadata"]["Branch"] == "main"
    time.sleep(5)  # the next syncs stall on the same error: one alert, as one Event
    assert len([b for b in chat.at("/ops") if b["metadata"]["kind"] == "GitSource"]) == 1
