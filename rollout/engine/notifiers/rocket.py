"""Rocket.Chat: an incoming-webhook integration, sent the Slack-compatible body with Flagger's
colours (notifier/rocket.go: #0076D7, #FF0000 for errors).

Format: https://docs.rocket.chat/docs/integrations (incoming webhooks accept Slack's `text`,
`channel`, `username`, `icon_emoji` and `attachments` with `color`, `author_name`, `text`, `fields`).
"""

from __future__ import annotations

from rollout.api.spec import AlertSeverity

from . import Destination, Message, Post, slack

COLORS = {AlertSeverity.INFO: "#0076D7", AlertSeverity.WARN: "#0076D7", AlertSeverity.ERROR: "#FF0000"}


def build(message: Message, to: Destination) -> Post:
    return Post(to.url, slack.payload(message, to, COLORS))
