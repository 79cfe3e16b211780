"""Read typed fields out of a manifest object, each problem reported under its field path.

Parsing a kind means reading a hundred fields, each of which may be missing, of the wrong type or
out of range. `Fields` wraps one object of the manifest with its path and the error sink, so a
reader asks for `spec.int("maxWeight", lo=1, hi=100)` and gets the value or None, while the
complaint (`spec.analysis.maxWeight: must be between 1 and 100, got 300`) is collected for the
`ValidationError` that `rollout.api.parse` raises once everything has been read. The rules that
relate fields to each other stay in `rollout.api.parse`.

No field is silently ignored: every getter marks its key as read, and once parsing is done
`Errors.unread()` names each key of a checked object that no reader asked for, so a field the
operator does not implement is refused by name instead of being dropped. Maps of free content
(labels, headers, match conditions, variables) are values, not fields: their readers take them
whole (`value`, `string_map`, `free`).
"""

from __future__ import annotations

import builtins
import math
import re
from collections.abc import Callable, Mapping
from enum import Enum
from typing import Any, TypeVar

from rollout.api.durations import format_duration, parse_duration
from rollout.api.errors import FieldError, ValidationError
from rollout.api.limits import MAX_DURATION, printable, show_number

Json = Mapping[str, Any]
E = TypeVar("E", bound=Enum)

_PLAIN_KEY = re.compile(r"[A-Za-z0-9_-]+")  # a key a path shows after a dot; others go in brackets

DURATION_HINT = "must be a duration like 30s, 1m30s or 2h"


class Errors:
    """Collects problems while parsing goes on with stand-in values, so every problem is found;
    also the checked objects, whose unread keys `unread` reports."""

    def __init__(self) -> None:
        self.items: list[FieldError] = []
        self.checked: list[Fields] = []

    def add(self, path: str, message: str) -> None:
        self.items.append(FieldError(path, message))

    def unread(self, message: Callable[[str], str]) -> None:
        """An error for every key of a checked object that no reader asked for, with `message(path)`,
        unless that key (or something inside it) already has an error of its own."""
        flagged = [e.path for e in self.items]
        # One object may be read by several readers (each with its own view of it): a key counts as
        # read when any of them asked for it.
        read: dict[str, set[Any]] = {}
        for obj in self.checked:
            read.setdefault(obj.path, set()).update(obj.read)
        reported: set[str] = set()
        for obj in self.checked:
            for key in obj.data:
                if key in read[obj.path]:
                    continue
                path = obj.at(key) if isinstance(key, str) and _PLAIN_KEY.fullmatch(key) else f"{obj.path}[{key!r}]"
                if path in reported or any(p == path or p.startswith((path + ".", path + "[")) for p in flagged):
                    continue
                reported.add(path)
                self.add(path, message(path))

    def raise_if_any(self) -> None:
        if self.items:
            raise ValidationError(self.items)


def join(path: str, key: str) -> str:
    return f"{path}.{key}" if path else key


def show(value: Any) -> str:
    """A value as a message quotes it: 50 not 50.0, strings quoted."""
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    if isinstance(value, str):
        return repr(value)
    if isinstance(value, int | float):
        return show_number(value)
    try:
        return str(value)
    except ValueError:  # a list or object holding an integer of more digits than Python prints
        return f"a {type(value).__name__} holding a number too large to print"


def type_name(value: Any) -> str:
    if isinstance(value, Mapping):
        return "an object"
    if isinstance(value, list):
        return "a list"
    return show(value)


def names(enum: type[Enum]) -> list[str]:
    return [str(member.value) for member in enum]


def _finite(value: builtins.int | float) -> builtins.bool:
    try:
        return math.isfinite(value)
    except OverflowError:  # an int beyond a float's range
        return False


class Fields:
    """One object of a manifest at `path`; each getter reports a wrong type or range to `errors`
    and returns None (or the default) instead of raising."""

    def __init__(self, data: Json, path: builtins.str, errors: Errors, *, checked: builtins.bool = False) -> None:
        self.data = data
        self.path = path
        self.errors = errors
        self.read: set[Any] = set()
        self.checked = False
        if checked:
            self.check()

    def check(self) -> Fields:
        """Report this object's unread keys (and those of every object read out of it) at the end."""
        if not self.checked:
            self.checked = True
            self.errors.checked.append(self)
        return self

    def child(self, data: Json, key: builtins.str) -> Fields:
        return Fields(data, self.at(key), self.errors, checked=self.checked)

    def free(self) -> dict[Any, Any]:
        """The object's content as a value (a match condition, a selector): every key counts as read."""
        self.read.update(self.data)
        return dict(self.data)

    def __contains__(self, key: object) -> bool:
        """Whether `key` is set; asking does not count as reading it."""
        return key in self.data

    def get(self, key: builtins.str) -> Any:
        self.read.add(key)
        return self.data.get(key)

    value = get  # reads a field whose content is taken whole (a route option, a policy)

    def at(self, key: builtins.str) -> builtins.str:
        """The path of `key` in this object; `""` is the object itself."""
        return join(self.path, key) if key else self.path

    def error(self, key: builtins.str, message: builtins.str) -> None:
        """A problem with `key` (or with the object itself, when `key` is `""`)."""
        self.errors.add(self.at(key), message)

    def blank(self, key: builtins.str) -> Fields:
        """An empty object at `key`: a stand-in for a missing one, so reading on finds every problem."""
        return Fields({}, self.at(key), self.errors)

    def map(self, key: builtins.str, *, required: bool = False) -> Fields | None:
        value = self.get(key)
        if value is None:
            if required:
                self.error(key, "is required")
            return None
        if not isinstance(value, Mapping):
            self.error(key, f"must be an object (a mapping of fields), got {type_name(value)}")
            return None
        return self.child(value, key)

    def list(self, key: builtins.str) -> builtins.list[Any]:
        value = self.get(key)
        if value is None:
            return []
        if not isinstance(value, builtins.list):
            self.error(key, f"must be a list, got {type_name(value)}")
            return []
        return value

    def objects(self, key: builtins.str, what: builtins.str) -> builtins.list[Fields]:
        """The list's items that are objects; any other item is an error saying an object `what` is due."""
        out = []
        for i, item in enumerate(self.list(key)):
            if isinstance(item, Mapping):
                out.append(self.child(item, f"{key}[{i}]"))
            else:
                self.error(f"{key}[{i}]", f"must be an object {what}, got {type_name(item)}")
        return out

    def str(self, key: builtins.str, *, required: bool = False) -> builtins.str | None:
        value = self.get(key)
        if value is None or value == "":
            if required:
                self.error(key, "is required")
            return None
        if not isinstance(value, builtins.str):
            self.error(key, f"must be a string, got {type_name(value)}")
            return None
        return value

    def int(
        self, key: builtins.str, *, lo: builtins.int | None = None, hi: builtins.int | None = None,
        limit: builtins.int | None = None,
    ) -> builtins.int | None:
        """An integer in [lo, hi] (said as a range) and at most `limit` (said on its own: a cap that
        keeps the value computable, not a part of its meaning)."""
        value = self.get(key)
        if value is None:
            return None
        if isinstance(value, builtins.bool) or not isinstance(value, builtins.int):
            self.error(key, f"must be an integer, got {type_name(value)}")
            return None
        if lo is not None and hi is not None and not lo <= value <= hi:
            self.error(key, f"must be between {lo} and {hi}, got {show(value)}")
            return None
        if lo is not None and value < lo:
            self.error(key, f"must be at least {lo}, got {show(value)}")
            return None
        if limit is not None and value > limit:
            self.error(key, f"must be at most {limit}, got {show(value)}")
            return None
        return value

    def number(self, key: builtins.str, *, limit: float | None = None) -> float | None:
        """A finite number (an int too big for a float is not one), at most `limit`."""
        value = self.get(key)
        if value is None:
            return None
        if (isinstance(value, builtins.bool) or not isinstance(value, builtins.int | float)
                or not _finite(value)):
            self.error(key, f"must be a number, got {type_name(value)}")
            return None
        if limit is not None and value > limit:
            self.error(key, f"must be at most {show(limit)}, got {show(value)}")
            return None
        return float(value)

    def bool(self, key: builtins.str, default: builtins.bool) -> builtins.bool:
        value = self.get(key)
        if value is None:
            return default
        if not isinstance(value, builtins.bool):
            self.error(key, f"must be true or false, got {type_name(value)}")
            return default
        return value

    def duration(self, key: builtins.str, default: float, limit: float = MAX_DURATION) -> float:
        """Seconds in a Go duration (`1m30s`), at most `limit`."""
        value = self.get(key)
        if value is None or value == "":
            return default
        if not isinstance(value, builtins.str):
            self.error(key, f"{DURATION_HINT}, got {type_name(value)}")
            return default
        try:
            seconds = parse_duration(value)
        except ValueError:
            self.error(key, f"{DURATION_HINT}, got {value!r}")
            return default
        if seconds > limit:
            self.error(key, f"must be at most {format_duration(limit)}, got {value!r}")
            return default
        return seconds

    def enum(self, key: builtins.str, enum: type[E], what: builtins.str, default: E) -> E:
        """One of the enum's values; anything else is an error listing them (`unknown <what> ...`)."""
        value = self.get(key)
        if value is None or value == "":
            return default
        known = names(enum)
        if isinstance(value, builtins.str) and value in known:
            return enum(value)
        self.error(key, f"unknown {what} {show(value)}; known: {', '.join(known)}")
        return default

    def strings(self, key: builtins.str) -> builtins.list[builtins.str]:
        out = []
        for i, item in enumerate(self.list(key)):
            if isinstance(item, builtins.str) and item:
                out.append(item)
            else:
                self.error(f"{key}[{i}]", f"must be a non-empty string, got {type_name(item)}")
        return out

    def string_map(self, key: builtins.str) -> tuple[tuple[builtins.str, builtins.str], ...]:
        """A map of strings as sorted pairs; numbers and booleans are written as YAML would quote them."""
        m = self.map(key)
        if m is None:
            return ()
        m.free()
        out: builtins.list[tuple[builtins.str, builtins.str]] = []
        for k, v in m.data.items():
            if isinstance(v, builtins.str):
                out.append((builtins.str(k), v))
            elif isinstance(v, builtins.bool):
                out.append((builtins.str(k), "true" if v else "false"))
            elif isinstance(v, builtins.int | float) and printable(v):
                out.append((builtins.str(k), show(v)))
            else:
                self.errors.add(join(m.path, builtins.str(k)), f"must be a string, got {type_name(v)}")
        return tuple(sorted(out))
