"""Label and field selectors as the Kubernetes API server understands them.

The sandbox filters list and watch results with the same grammar a real API server
accepts (`labelSelector=a=b,c!=d,e in (x,y),!f`), so that code selecting objects by
labels behaves identically against the sandbox and a real cluster.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

__all__ = ["FieldSelector", "LabelSelector", "SelectorError"]


class SelectorError(ValueError):
    """A selector that a real API server would reject with 400 Bad Request."""


@dataclass(frozen=True)
class _Requirement:
    key: str
    op: str  # one of: =, !=, in, notin, exists, !exists
    values: frozenset[str]

    def matches(self, labels: Mapping[str, str]) -> bool:
        present = self.key in labels
        value = labels.get(self.key)
        if self.op == "exists":
            return present
        if self.op == "!exists":
            return not present
        if self.op in ("=", "in"):
            return present and value in self.values
        # `!=` and `notin` also match objects that lack the label (documented behaviour).
        return not present or value not in self.values


_KEY = r"(?:[a-z0-9A-Z]([-a-z0-9A-Z_.]*[a-z0-9A-Z])?/)?[a-z0-9A-Z]([-a-z0-9A-Z_.]*[a-z0-9A-Z])?"
_VALUE = r"(?:[a-z0-9A-Z]([-a-z0-9A-Z_.]*[a-z0-9A-Z])?)?"
_SET_RE = re.compile(rf"^\s*({_KEY})\s+(in|notin)\s*\(([^)]*)\)\s*$")
_EQ_RE = re.compile(rf"^\s*({_KEY})\s*(==|=|!=)\s*({_VALUE})\s*$")
_EXISTS_RE = re.compile(rf"^\s*(!?)\s*({_KEY})\s*$")


def _split_top_level(text: str) -> list[str]:
    """Split at commas that are not inside the parentheses of a set-based requirement."""
    parts: list[str] = []
    depth = 0
    current: list[str] = []
    for char in text:
        if char == "(":
            depth += 1
        elif char == ")":
            depth -= 1
        if char == "," and depth == 0:
            parts.append("".join(current))
            current = []
        else:
            current.append(char)
    parts.append("".join(current))
    return [part for part in parts if part.strip()]


@dataclass(frozen=True)
class LabelSelector:
    """A parsed label selector; the empty selector matches everything."""

    requirements: tuple[_Requirement, ...] = ()

    @classmethod
    def parse(cls, text: str | None) -> LabelSelector:
        if not text or not text.strip():
            return cls()
        requirements: list[_Requirement] = []
        for part in _split_top_level(text):
            if m := _SET_RE.match(part):
                values = frozenset(v.strip() for v in m.group(5).split(",") if v.strip())
                requirements.append(_Requirement(m.group(1), m.group(4), values))
            elif m := _EQ_RE.match(part):
                op = "!=" if m.group(4) == "!=" else "="
                requirements.append(_Requirement(m.group(1), op, frozenset([m.group(5)])))
            elif m := _EXISTS_RE.match(part):
                op = "!exists" if m.group(1) else "exists"
                requirements.append(_Requirement(m.group(2), op, frozenset()))
            else:
                raise SelectorError(f"unable to parse requirement: {part.strip()!r}")
        return cls(tuple(requirements))

    def matches(self, obj: Mapping[str, Any]) -> bool:
        labels = (obj.get("metadata") or {}).get("labels") or {}
        return all(req.matches(labels) for req in self.requirements)


_FIELD_GETTERS: dict[str, Callable[[Mapping[str, Any]], str]] = {
    "metadata.name": lambda obj: str((obj.get("metadata") or {}).get("name") or ""),
    "metadata.namespace": lambda obj: str((obj.get("metadata") or {}).get("namespace") or ""),
}
_FIELD_RE = re.compile(r"^\s*([A-Za-z0-9_.]+)\s*(==|=|!=)\s*(.*?)\s*$")


@dataclass(frozen=True)
class FieldSelector:
    """A parsed field selector over the fields every resource supports (name, namespace)."""

    terms: tuple[tuple[str, bool, str], ...] = ()  # (field, equal?, value)

    @classmethod
    def parse(cls, text: str | None) -> FieldSelector:
        if not text or not text.strip():
            return cls()
        terms: list[tuple[str, bool, str]] = []
        for part in text.split(","):
            m = _FIELD_RE.match(part)
            if not m:
                raise SelectorError(f"invalid field selector: {part!r}")
            if m.group(1) not in _FIELD_GETTERS:
                raise SelectorError(f"field label not supported: {m.group(1)}")
            terms.append((m.group(1), m.group(2) != "!=", m.group(3)))
        return cls(tuple(terms))

    def matches(self, obj: Mapping[str, Any]) -> bool:
        return all((_FIELD_GETTERS[field](obj) == value) == equal for field, equal, value in self.terms)
