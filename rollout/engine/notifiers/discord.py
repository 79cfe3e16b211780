"""Discord: the Slack-compatible body posted to the webhook's `/slack` endpoint, as Flagger does
(notifier/discord.go appends `/slack` to the address unless it ends with it).

Format: https://discord.com/developers/docs/resources/webhook#execute-slackcompatible-webhook
(and the attachment fields Discord maps: https://birdie0.github.io/discord-webhooks-guide/other/slack_formatting.html,
the page Flagger's alerting guide links).
"""

from __future__ import annotations

from urllib.parse import urlsplit, urlunsplit

from . import Destination, Message, Post, slack


def slack_endpoint(url: str) -> str:
    """The webhook URL with `/slack` appended to its path (the query, e.g. `?wait=true`, kept)."""
    parts = urlsplit(url)
    if parts.path.endswith("/slack"):
        return url
    return urlunsplit(parts._replace(path=parts.path.rstrip("/") + "/slack"))


def build(message: Message, to: Destination) -> Post:
    return Post(slack_endpoint(to.url), slack.payload(message, to))
