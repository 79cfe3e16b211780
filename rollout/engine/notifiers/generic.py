"""generic: Flagger's event-webhook JSON to any URL, for a service of one's own.

Format: Flagger's event webhook payload (fluxcd/flagger docs/gitbook/usage/webhooks.md, "Event
webhooks"; pkg/controller/webhook.go CallEventWebhook): name, namespace, phase, checksum and
metadata {eventMessage, eventType, timestamp (unix ms)}; ours adds eventReason, severity, kind
and each field of the alert to metadata (all strings, as Flagger's map[string]string).
"""

from __future__ import annotations

from rollout.api.spec import AlertSeverity

from . import Destination, Message, Post


def build(message: Message, to: Destination) -> Post:
    metadata = {
        "eventMessage": message.text,
        "eventType": "Normal" if message.severity == AlertSeverity.INFO else "Warning",
        "timestamp": str(message.timestamp_ms),
        "eventReason": message.reason,
        "severity": message.severity.value,
        "kind": message.kind,
    }
    for name, value in message.fields:
        metadata.setdefault(name, value)
    body = {"name": message.name, "namespace": message.namespace, "phase": message.phase, "checksum": "",
            "metadata": metadata}
    headers = {"Authorization": f"Bearer {to.token}"} if to.token else {}
    return Post(to.url, body, headers)
