"""Microsoft Teams: a legacy actionable MessageCard, as Flagger's notifier/teams.go sends it.

Format: https://learn.microsoft.com/en-us/outlook/actionable-messages/message-card-reference
(@type MessageCard, @context, themeColor, summary, sections[activityTitle, activitySubtitle,
facts[name, value]]), posted to an incoming webhook:
https://learn.microsoft.com/en-us/microsoftteams/platform/webhooks-and-connectors/how-to/connectors-using
"""

from __future__ import annotations

from rollout.api.spec import AlertSeverity

from . import Destination, Message, Post


def build(message: Message, to: Destination) -> Post:
    body = {
        "@type": "MessageCard",
        "@context": "http://schema.org/extensions",
        "themeColor": "FF0000" if message.severity == AlertSeverity.ERROR else "0076D7",
        "summary": message.subject,
        "sections": [{
            "activityTitle": message.text,
            "activitySubtitle": message.subject,
            "facts": [{"name": name, "value": value} for name, value in message.fields],
        }],
    }
    return Post(to.url, body)
