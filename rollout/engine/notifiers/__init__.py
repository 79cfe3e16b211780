"""The body each chat service expects for one alert: one module per AlertProvider type.

Each module turns a `Message` (what happened, to which object, with which facts) into the `Post`
its service documents, in the shape Flagger sends (fluxcd/flagger pkg/notifier), so channels
that received Flagger's alerts get the same messages. Sending is `rollout.engine.alerts`'s job.

Why no notification library: Apprise and similar build each service's URL from tokens (a Slack
`hooks.slack.com/services/...` URL, a Discord webhook id) and their own message layout, so they
can neither post to an arbitrary `address` (a proxy, a self-hosted Rocket.Chat, a test server on
127.0.0.1) nor send Flagger's attachments and cards; slack_sdk's WebhookClient covers Slack
alone. The bodies are small JSON documents, built here and posted with requests.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from rollout.api.spec import AlertProviderType, AlertSeverity


@dataclass(frozen=True)
class Message:
    """One alert: `text` about the object `kind` `namespace/name`, with (title, value) `fields`."""

    kind: str
    name: str
    namespace: str
    text: str
    severity: AlertSeverity
    fields: tuple[tuple[str, str], ...] = ()
    # What the generic type sends as Flagger's event payload.
    phase: str = ""
    reason: str = ""
    timestamp_ms: int = 0

    @property
    def subject(self) -> str:
        """Flagger's `<name>.<namespace>`, the author line of every chat message."""
        return f"{self.name}.{self.namespace}"


@dataclass(frozen=True)
class Destination:
    """Where one AlertProvider posts: its URL (from `address` or its Secret) and its options."""

    url: str
    channel: str
    username: str
    token: str | None = None
    proxy: str | None = None


@dataclass(frozen=True)
class Post:
    url: str
    body: Mapping[str, Any]
    headers: Mapping[str, str] = field(default_factory=dict)


Builder = Callable[[Message, Destination], Post]


def builder(kind: AlertProviderType) -> Builder:
    """The body builder of one provider type (every type has one)."""
    from . import discord, gchat, generic, msteams, rocket, slack

    builders: dict[AlertProviderType, Builder] = {
        AlertProviderType.SLACK: slack.build,
        AlertProviderType.MSTEAMS: msteams.build,
        AlertProviderType.DISCORD: discord.build,
        AlertProviderType.ROCKET: rocket.build,
        AlertProviderType.GCHAT: gchat.build,
        AlertProviderType.GENERIC: generic.build,
    }
    return builders[kind]
