"""The `web` provider's own fields, checked without any network code.

`rollout validate` and the operator's parser (through `analysis.providers.rules`) check a web
MetricTemplate's `method`, `headers`, `jsonPath` and `timeoutSeconds` before anything is sent, and
`analysis.providers.web` uses the same parsing when it builds the source, so both agree.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from jsonpath_ng import JSONPath
from jsonpath_ng.ext.parser import parse as parse_jsonpath

METHODS = ("GET", "POST", "PUT")
FIELDS = ("method", "headers", "jsonPath", "timeoutSeconds")


def compile_path(text: str) -> JSONPath:
    """A JSONPath of `jsonPath`, written plain (`$.a.b`) or as Argo Rollouts writes it (`{$.a.b}`)."""
    text = text.strip()
    if text.startswith("{") and text.endswith("}"):
        text = text[1:-1].strip()
    if not text:
        raise ValueError("empty")
    return parse_jsonpath(text)


def check_options(options: Mapping[str, object]) -> list[tuple[str, str]]:
    """(field path under `provider`, problem) for each wrong web field; empty when they are fine."""
    problems: list[tuple[str, str]] = []
    method = options.get("method", "GET")
    if not isinstance(method, str) or method.upper() not in METHODS:
        problems.append(("method", f"must be one of {', '.join(METHODS)}"))
    path = options.get("jsonPath")
    if not isinstance(path, str) or not path.strip():
        problems.append(("jsonPath", "is required: the JSONPath that picks the number, e.g. $.data.successRate"))
    else:
        try:
            compile_path(path)
        except Exception as exc:  # jsonpath-ng's lexer and parser raise several kinds
            problems.append(("jsonPath", f"is not a JSONPath ({exc}); write e.g. $.data.successRate"))
    timeout = options.get("timeoutSeconds")
    if timeout is not None and (isinstance(timeout, bool) or not isinstance(timeout, int | float) or timeout <= 0):
        problems.append(("timeoutSeconds", "must be a positive number of seconds"))
    if "headers" in options:
        problems.extend(header_problems(options["headers"]))
    return problems


def header_problems(headers: object) -> list[tuple[str, str]]:
    """What is wrong with a `headers` list (field path under `provider`, problem)."""
    if not isinstance(headers, list):
        return [("headers", "must be a list of {key, value} or {key, valueFrom: {secretKeyRef: {key}}}")]
    problems = []
    for i, header in enumerate(headers):
        where = f"headers[{i}]"
        if not isinstance(header, dict) or not isinstance(header.get("key"), str) or not header["key"]:
            problems.append((where, "needs a key (the header's name)"))
            continue
        unknown = sorted(set(header) - {"key", "value", "valueFrom"})
        if unknown:
            problems.append((where, f"unknown fields {', '.join(unknown)}"))
        has_value, source = "value" in header, header.get("valueFrom")
        if has_value == (source is not None):
            problems.append((where, "give exactly one of value and valueFrom"))
        elif has_value and not isinstance(header["value"], str):
            problems.append((f"{where}.value", "must be a string"))
        elif source is not None and not secret_key(source):
            problems.append((f"{where}.valueFrom", "must be {secretKeyRef: {key: <a key of the provider's Secret>}}"))
    return problems


def resolve_headers(headers: Sequence[Mapping[str, Any]], secret: Mapping[str, str]) -> dict[str, str]:
    """The headers to send, values from the Secret filled in; ValueError naming a key the Secret lacks."""
    resolved = {}
    for header in headers:
        source = header.get("valueFrom")
        if source is None:
            resolved[str(header["key"])] = str(header["value"])
            continue
        key = secret_key(source)
        if key not in secret:
            raise ValueError(f"header {header['key']}: the provider's Secret has no key {key!r}")
        resolved[str(header["key"])] = secret[key]
    return resolved


def secret_key(source: object) -> str:
    """The Secret key a header's `valueFrom: {secretKeyRef: {key}}` names ('' when malformed)."""
    ref = source.get("secretKeyRef") if isinstance(source, dict) else None
    key = ref.get("key") if isinstance(ref, dict) else None
    return key if isinstance(key, str) and key else ""
