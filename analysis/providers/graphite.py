"""Graphite as a metric source: a render API query string in, the last value of each target out.

Flagger's graphite provider (pkg/metrics/providers/graphite.go) is followed: the template's query is
the query string of Graphite's render API (`target=...&from=-5min&until=now`), whitespace runs are
collapsed to one space, `format=json` is set, `GET <address>/render?...` is sent with basic auth
when the Secret gives `username` and `password`, and the value is the last non-null datapoint of
the answer. See https://graphite.readthedocs.io/en/latest/render_api.html. One addition: a
relative `from` or `until` written as a Go duration (`from=-{{ interval }}` with interval `1m`) is
sent in seconds, since Graphite's offsets spell minutes `min` and refuse `m`.

Outcomes: no target in the answer is no data; targets whose every point is null is NaN (Graphite
writes NaN, e.g. a division by zero, as null, and a window without stored points is all null too);
several targets where one value is asked for is ambiguous (Flagger silently takes the last).
An instant query "at" a past time sets Graphite's `now` parameter, so a relative `from=-5min` means
five minutes before that instant; a range is the instant query at every step (see
`analysis.providers.instants`).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from datetime import timedelta
from typing import Any
from urllib.parse import parse_qsl

import numpy as np

from analysis.providers.base import (
    ProviderConfig,
    Series,
    TimeLike,
    UnreachableError,
    unix,
)
from analysis.providers.http import HttpApi
from analysis.providers.instants import range_of_instants
from analysis.providers.values import last_point, series_of, value_of

_SPACE = re.compile(r"\s+")
# A relative time written as a Go duration, as Flagger's {{ interval }} renders (1m, 90s, 1m30s).
_GO_DURATION = re.compile(r"^([+-])((?:[0-9]+(?:ms|s|m|h))+)$")
_GO_UNIT = re.compile(r"([0-9]+)(ms|s|m|h)")
_UNIT_SECONDS = {"ms": 0.001, "s": 1, "m": 60, "h": 3600}


class GraphiteProvider:
    """Render API queries against one graphite-web (`address` may carry a path prefix)."""

    def __init__(self, address: str, *, username: str | None = None, password: str | None = None,
                 insecure_skip_verify: bool = False, timeout: float = 10.0, retries: int = 2,
                 api: HttpApi | None = None) -> None:
        auth = (username, password) if username and password else None
        self.api = api or HttpApi("Graphite", address, auth=auth, insecure_skip_verify=insecure_skip_verify,
                                  timeout=timeout, retries=retries)
        self.address = self.api.address
        self.where = f"Graphite at {self.address}"

    def close(self) -> None:
        self.api.close()

    def render(self, query: str, at: TimeLike | None = None) -> list[Series]:
        """Every target of the render answer with all its points (null as NaN)."""
        params = render_params(query, at)
        body = self.api.json("GET", "render", params=params, query=query)
        if not isinstance(body, list):
            raise UnreachableError(f"Graphite at {self.address} answered {str(body)[:200]!r}, not a list of "
                                   "targets", query)
        return [_series(item, query, self.address) for item in body]

    def query(self, query: str, at: TimeLike | None = None) -> list[Series]:
        """Each target's last non-null point (its last point, NaN, when every point is null)."""
        return [last_point(series) for series in self.render(query, at)]

    def query_value(self, query: str, at: TimeLike | None = None) -> float:
        return value_of(self.where, self.query(query, at), query, at)

    def query_range(self, query: str, start: TimeLike, end: TimeLike, step: float | timedelta) -> list[Series]:
        return range_of_instants(lambda t: self.query(query, t), start, end, step)

    def query_range_series(self, query: str, start: TimeLike, end: TimeLike, step: float | timedelta) -> Series:
        return series_of(self.where, self.query_range(query, start, end, step), query)

    def is_ready(self) -> bool:
        """True when the render API answers (Flagger's check: the query `target=test`)."""
        try:
            self.render("target=test")
        except Exception:
            return False
        return True


def render_params(query: str, at: TimeLike | None = None) -> list[tuple[str, str]]:
    """The render API parameters of a template's query string: Flagger's whitespace rule, JSON format,
    and `now` set to `at` when given."""
    pairs = parse_qsl(_SPACE.sub(" ", query.strip()), keep_blank_values=True)
    params = [(k.strip(), _offset(v.strip()) if k.strip() in ("from", "until") else v.strip())
              for k, v in pairs if k.strip() not in ("format", "now")]
    params.append(("format", "json"))
    if at is not None:
        params.append(("now", str(int(unix(at)))))
    return params


def _offset(value: str) -> str:
    """`from`/`until` written as a Go duration (`-{{ interval }}` gives `-1m`, which Graphite refuses:
    its minutes are `min`) in whole seconds, which Graphite reads; anything else unchanged."""
    found = _GO_DURATION.match(value)
    if found is None:
        return value
    total = sum(int(n) * _UNIT_SECONDS[unit] for n, unit in _GO_UNIT.findall(found.group(2)))
    return f"{found.group(1)}{max(1, round(total))}s"


def _series(item: Any, query: str, address: str) -> Series:
    if not isinstance(item, Mapping) or not isinstance(item.get("datapoints"), list):
        raise UnreachableError(f"Graphite at {address} answered a target without datapoints: {str(item)[:200]!r}",
                               query)
    stamps, values = [], []
    for point in item["datapoints"]:
        if not isinstance(point, list) or len(point) != 2 or point[1] is None:
            continue
        value, stamp = point
        stamps.append(float(stamp))
        values.append(np.nan if value is None else float(value))
    labels = {"target": str(item.get("target", ""))}
    tags = item.get("tags")
    if isinstance(tags, Mapping):
        labels.update({str(k): str(v) for k, v in tags.items() if k != "name"})
    return Series(labels, np.array(stamps, dtype=np.float64), np.array(values, dtype=np.float64))


def build(config: ProviderConfig) -> GraphiteProvider:
    """The provider for a MetricTemplate of type graphite."""
    if not config.address:
        raise ValueError("a graphite provider needs provider.address, e.g. http://graphite.monitoring:8080")
    return GraphiteProvider(config.address, username=config.secret.get("username"),
                            password=config.secret.get("password"),
                            insecure_skip_verify=config.insecure_skip_verify, timeout=config.timeout,
                            retries=config.retries)
