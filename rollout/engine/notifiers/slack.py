"""Slack: an incoming-webhook message with one legacy attachment, as Flagger's notifier/slack.go.

Format: https://api.slack.com/messaging/webhooks (incoming webhooks) and
https://api.slack.com/reference/messaging/attachments (attachment fields: color, author_name,
text, mrkdwn_in, fields[title, value, short], fallback). `channel`, `username` and `icon_emoji`
are honoured by legacy webhooks and by chat.postMessage (Flagger's `token` in the Secret is sent
as a bearer token for the latter: https://api.slack.com/methods/chat.postMessage).
"""

from __future__ import annotations

from typing import Any

from rollout.api.spec import AlertSeverity

from . import Destination, Message, Post

# Slack's colour keywords: good (green), warning (yellow), danger (red).
COLORS = {AlertSeverity.INFO: "good", AlertSeverity.WARN: "warning", AlertSeverity.ERROR: "danger"}


def payload(message: Message, to: Destination, colors: dict[AlertSeverity, str] = COLORS) -> dict[str, Any]:
    """The Slack-compatible body Flagger posts (Discord's /slack endpoint and Rocket.Chat take it too)."""
    return {
        "channel": to.channel,
        "username": to.username,
        "icon_emoji": ":rocket:",
        "attachments": [{
            "color": colors[message.severity],
            "author_name": message.subject,
            "fallback": f"{message.subject}: {message.text}",
            "text": message.text,
            "mrkdwn_in": ["text"],
            "fields": [{"title": title, "value": value, "short": False} for title, value in message.fields],
        }],
    }


def build(message: Message, to: Destination) -> Post:
    headers = {"Authorization": f"Bearer {to.token}"} if to.token else {}
    return Post(to.url, payload(message, to), headers)
