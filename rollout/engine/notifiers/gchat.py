"""Google Chat: an incoming-webhook card message, as Flagger's notifier/gchat.go sends it.

Format: https://developers.google.com/workspace/chat/api/reference/rest/v1/cards-v1 (cards v1:
cards[header{title, subtitle}, sections[widgets[textParagraph{text}]]], with Chat's HTML subset
in the text), posted as https://developers.google.com/workspace/chat/quickstart/webhooks shows.
"""

from __future__ import annotations

from html import escape
from typing import Any

from . import Destination, Message, Post


def _paragraph(text: str) -> dict[str, Any]:
    return {"widgets": [{"textParagraph": {"text": text}}]}


def build(message: Message, to: Destination) -> Post:
    sections = [_paragraph(f"<font color=#848484><strong>{escape(message.text)}</strong></font>")]
    sections += [_paragraph(f"{escape(name)}<br><font color=#848484><strong>{escape(value)}</strong></font>")
                 for name, value in message.fields]
    body = {"cards": [{"header": {"title": "rollout", "subtitle": message.subject}, "sections": sections}]}
    return Post(to.url, body)
