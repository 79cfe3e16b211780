"""Each AlertProvider type's body against its service's documented format (and Flagger's), and the
sender's bounds: posted to a local HTTP server on 127.0.0.1 that records what arrives, because the
chat services themselves cannot run here.

Formats: Slack https://api.slack.com/reference/messaging/attachments; Discord
https://discord.com/developers/docs/resources/webhook#execute-slackcompatible-webhook; Rocket.Chat
https://docs.rocket.chat/docs/integrations; Microsoft Teams
https://learn.microsoft.com/en-us/outlook/actionable-messages/message-card-reference; Google Chat
https://developers.google.com/workspace/chat/api/reference/rest/v1/cards-v1; generic: Flagger's
event webhook payload (fluxcd/flagger docs/gitbook/usage/webhooks.md). Flagger's own bodies are
in its pkg/notifier/*.go.
"""

from __future__ import annotations

import contextlib
import http.server
import json
import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest
from kubernetes import client

from rollout.api.spec import AlertProviderType, AlertRef, AlertSeverity
from rollout.engine.alerts import ALERTS, Alerter, AlertError, Delivery, redact_url
from rollout.engine.notifiers import Destination, Message, builder
from rollout.engine.notifiers.discord import slack_endpoint
from rollout.gitops.weblinks import commit_url
from rollout.settings import Settings

FAILED = Message("Canary", "podinfo", "test", "Canary failed! Rolling back podinfo: request-success-rate 90 < min 99",
                 AlertSeverity.ERROR, (("request-success-rate", "canary 90, primary 99.9, limit >= 99"),
                                       ("Failed checks", "2/2")), "Failed", "Failed", 1767225600000)
PROMOTED = Message("Canary", "podinfo", "test", "Promotion completed! podinfo is promoted", AlertSeverity.INFO)
TO = Destination("https://chat.example.com/hooks/abc", "on-call", "rollout")


def body(kind: AlertProviderType, message: Message = FAILED, to: Destination = TO) -> dict[str, Any]:
    return dict(builder(kind)(message, to).body)


# -- the documented shapes ---------------------------------------------------------------------------


def test_slack_sends_one_attachment_with_flaggers_fields() -> None:
    b = body(AlertProviderType.SLACK)
    assert set(b) == {"channel", "username", "icon_emoji", "attachments"}
    assert (b["channel"], b["username"], b["icon_emoji"]) == ("on-call", "rollout", ":rocket:")
    [attachment] = b["attachments"]
    # Slack's documented attachment fields; color is one of its keywords or a hex code.
    assert set(attachment) <= {"color", "author_name", "fallback", "text", "mrkdwn_in", "fields", "title"}
    assert attachment["color"] == "danger" and attachment["author_name"] == "podinfo.test"
    assert attachment["text"] == FAILED.text and attachment["mrkdwn_in"] == ["text"]
    assert attachment["fields"] == [
        {"title": "request-success-rate", "value": "canary 90, primary 99.9, limit >= 99", "short": False},
        {"title": "Failed checks", "value": "2/2", "short": False},
    ]
    assert body(AlertProviderType.SLACK, PROMOTED)["attachments"][0]["color"] == "good"


def test_slack_sends_the_secrets_token_as_a_bearer_token() -> None:
    post = builder(AlertProviderType.SLACK)(FAILED, Destination("https://slack.com/api/chat.postMessage", "c", "u",
                                                                token="xoxb-1"))
    assert post.headers == {"Authorization": "Bearer xoxb-1"}
    assert builder(AlertProviderType.SLACK)(FAILED, TO).headers == {}


def test_discord_posts_the_slack_body_to_the_slack_endpoint() -> None:
    post = builder(AlertProviderType.DISCORD)(FAILED, Destination("https://discord.com/api/webhooks/1/tok", "c", "u"))
    assert post.url == "https://discord.com/api/webhooks/1/tok/slack"
    assert post.body == body(AlertProviderType.SLACK, to=Destination("x", "c", "u"))
    assert slack_endpoint("https://discord.com/api/webhooks/1/tok/slack") == "https://discord.com/api/webhooks/1/tok/slack"
    assert slack_endpoint("https://d/api/webhooks/1/tok/?wait=true") == "https://d/api/webhooks/1/tok/slack?wait=true"


def test_rocket_sends_the_slack_body_with_flaggers_colours() -> None:
    assert body(AlertProviderType.ROCKET)["attachments"][0]["color"] == "#FF0000"
    assert body(AlertProviderType.ROCKET, PROMOTED)["attachments"][0]["color"] == "#0076D7"
    assert body(AlertProviderType.ROCKET)["attachments"][0]["fields"][1] == {"title": "Failed checks", "value": "2/2",
                                                                             "short": False}


def test_msteams_sends_a_message_card() -> None:
    b = body(AlertProviderType.MSTEAMS)
    assert b == {
        "@type": "MessageCard",
        "@context": "http://schema.org/extensions",
        "themeColor": "FF0000",
        "summary": "podinfo.test",
        "sections": [{
            "activityTitle": FAILED.text,
            "activitySubtitle": "podinfo.test",
            "facts": [{"name": "request-success-rate", "value": "canary 90, primary 99.9, limit >= 99"},
                      {"name": "Failed checks", "value": "2/2"}],
        }],
    }
    assert body(AlertProviderType.MSTEAMS, PROMOTED)["themeColor"] == "0076D7"


def test_gchat_sends_a_card_with_one_text_paragraph_per_fact() -> None:
    b = body(AlertProviderType.GCHAT)
    [card] = b["cards"]
    assert card["header"] == {"title": "rollout", "subtitle": "podinfo.test"}
    paragraphs = [s["widgets"][0]["textParagraph"]["text"] for s in card["sections"]]
    assert all(set(s) == {"widgets"} and len(s["widgets"]) == 1 for s in card["sections"])
    assert paragraphs[0] == ("<font color=#848484><strong>Canary failed! Rolling back podinfo: request-success-rate "
                             "90 &lt; min 99</strong></font>")
    assert paragraphs[2] == "Failed checks<br><font color=#848484><strong>2/2</strong></font>"


def test_generic_sends_flaggers_event_payload() -> None:
    b = body(AlertProviderType.GENERIC)
    assert set(b) == {"name", "namespace", "phase", "checksum", "metadata"}
    assert (b["name"], b["namespace"], b["phase"]) == ("podinfo", "test", "Failed")
    meta = b["metadata"]
    assert all(isinstance(v, str) for v in meta.values())  # Flagger's map[string]string
    assert (meta["eventMessage"], meta["eventType"], meta["timestamp"]) == (FAILED.text, "Warning", "1767225600000")
    assert (meta["severity"], meta["eventReason"], meta["Failed checks"]) == ("error", "Failed", "2/2")


def test_every_type_has_a_builder_and_posts_json() -> None:
    for kind in AlertProviderType:
        post = builder(kind)(FAILED, TO)
        json.dumps(post.body)
        assert post.url.startswith("https://chat.example.com/")


# -- links and redaction -----------------------------------------------------------------------------


@pytest.mark.parametrize(("repo", "link"), [
    ("https://github.com/acme/apps.git", "https://github.com/acme/apps/commit/0123abcd"),
    ("git@github.com:acme/apps.git", "https://github.com/acme/apps/commit/0123abcd"),
    ("ssh://git@gitlab.com/group/sub/apps", "https://gitlab.com/group/sub/apps/-/commit/0123abcd"),
    ("https://x-token:secret@bitbucket.org/acme/apps.git", "https://bitbucket.org/acme/apps/commits/0123abcd"),
    ("https://dev.azure.com/org/proj/_git/apps", "https://dev.azure.com/org/proj/_git/apps/commit/0123abcd"),
    ("file:///srv/git/apps.git", None),
    ("https://git.internal.example/apps.git", None),
])
def test_a_revert_commit_links_where_the_host_is_known(repo: str, link: str | None) -> None:
    assert commit_url(repo, "0123abcd") == link


def test_a_repository_url_loses_its_credentials() -> None:
    assert redact_url("https://user:tok@github.com/a/b.git") == "https://github.com/a/b.git"
    assert redact_url("git@github.com:a/b.git") == "git@github.com:a/b.git"


# -- the sender ---------------------------------------------------------------------------------------


class Recorder(http.server.ThreadingHTTPServer):
    """Records each POST; answers `codes[path]` (200 otherwise), after `delay` seconds."""

    def __init__(self) -> None:
        self.received: list[tuple[str, dict[str, str], Any]] = []
        self.codes: dict[str, int] = {}
        self.delay = 0.0
        recorder = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                data = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                recorder.received.append((self.path, dict(self.headers), json.loads(data)))
                time.sleep(recorder.delay)
                with contextlib.suppress(OSError):  # a client that gave up has closed the socket
                    self.send_response(recorder.codes.get(self.path, 200))
                    self.end_headers()
                    self.wfile.write(b"oops")

            def log_message(self, *args: Any) -> None:
                pass

        super().__init__(("127.0.0.1", 0), Handler)

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}{path}"


@pytest.fixture
def server() -> Iterator[Recorder]:
    s = Recorder()
    thread = threading.Thread(target=s.serve_forever, daemon=True)
    thread.start()
    yield s
    s.shutdown()
    s.server_close()


def alerter(**settings: Any) -> tuple[Alerter, list[float]]:
    waits: list[float] = []
    return Alerter(client.ApiClient(), Settings(**settings), sleep=waits.append), waits


def test_a_post_is_retried_after_a_500_then_given_up(server: Recorder) -> None:
    sender, waits = alerter(alert_retries=2)
    server.codes["/hook"] = 500
    with pytest.raises(AlertError, match=r"HTTP 500 from http://127\.0\.0\.1"):
        sender._post(builder(AlertProviderType.SLACK)(FAILED, Destination(server.url("/hook"), "c", "u")), None)
    assert len(server.received) == 3 and waits == [1.0, 2.0]


def test_a_4xx_is_not_retried_and_a_2xx_is_taken(server: Recorder) -> None:
    sender, waits = alerter()
    server.codes["/bad"] = 400
    with pytest.raises(AlertError, match="HTTP 400"):
        sender._post(builder(AlertProviderType.MSTEAMS)(FAILED, Destination(server.url("/bad"), "c", "u")), None)
    sender._post(builder(AlertProviderType.MSTEAMS)(FAILED, Destination(server.url("/ok"), "c", "u")), None)
    assert [p for p, _, _ in server.received] == ["/bad", "/ok"] and waits == []
    assert server.received[1][2]["@type"] == "MessageCard"


def test_a_silent_service_costs_at_most_the_timeout_per_attempt(server: Recorder) -> None:
    sender, _ = alerter(alert_timeout=0.3, alert_retries=0)
    server.delay = 2.0
    began = time.monotonic()
    with pytest.raises(AlertError, match="no answer"):
        sender._post(builder(AlertProviderType.GCHAT)(FAILED, Destination(server.url("/slow"), "c", "u")), None)
    assert time.monotonic() - began < 1.5


class Offline(Alerter):
    """The sender without the API: the provider's destination is given (the e2e test reads real ones)."""

    def __init__(self, url: str, kind: AlertProviderType) -> None:
        super().__init__(client.ApiClient(), Settings(alert_retries=0, cluster_name="prod-eu"))
        self.url, self.kind = url, kind

    def _provider(self, namespace: str, name: str) -> Any:
        from rollout.api.spec import AlertProvider, AlertProviderSpec, Metadata

        if name == "missing":
            raise AlertError(f"AlertProvider {namespace}/{name} not found")
        return AlertProvider(Metadata(name, namespace), AlertProviderSpec(self.kind, address=self.url))


def test_only_alerts_whose_severity_receives_the_message_are_sent_and_each_is_counted(server: Recorder) -> None:
    sender = Offline(server.url("/generic"), AlertProviderType.GENERIC)
    refs = (AlertRef("all", "p", "ops", AlertSeverity.INFO), AlertRef("errors", "p", None, AlertSeverity.ERROR),
            AlertRef("gone", "missing", None, AlertSeverity.INFO))
    sent = ALERTS.labels("ops/p", "sent")._value.get()
    failed = ALERTS.labels("test/missing", "failed")._value.get()
    sender.send(refs, "test", PROMOTED, key="uid.3.4")
    assert sender.flush(5)
    assert len(server.received) == 1  # info reaches `all` only; `gone` has no provider
    _, headers, payload = server.received[0]
    assert headers["X-Rollout-Idempotency-Key"] == "uid.3.4.all"
    assert payload["metadata"]["eventType"] == "Normal"
    assert ALERTS.labels("ops/p", "sent")._value.get() == sent + 1
    assert ALERTS.labels("test/missing", "failed")._value.get() == failed + 1
    sender.send(refs, "test", FAILED)
    assert sender.flush(5)
    assert len(server.received) == 3  # an error reaches both
    assert server.received[1][2]["metadata"]["Cluster"] == "prod-eu"  # Flagger's -cluster-name field


def test_delivering_never_raises(server: Recorder) -> None:
    sender = Offline("http://127.0.0.1:9/closed", AlertProviderType.SLACK)
    assert sender.deliver(Delivery(AlertRef("a", "p"), "test", FAILED)) is False
