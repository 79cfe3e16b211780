"""Metric sources by provider type, as a MetricTemplate's `provider.type` names them.

One explicit table, so that an unknown type is refused with the list of known ones instead of
failing somewhere later. Prometheus is the first entry; a further provider registers its factory.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from analysis.providers.base import MetricSource
from analysis.providers.prometheus import PrometheusProvider

# A factory takes the source's address and keyword options (auth, TLS, timeouts) of its own.
SourceFactory = Callable[..., MetricSource]

_SOURCES: dict[str, SourceFactory] = {}


class UnknownSourceError(ValueError):
    """No metric source is registered under the asked-for provider type."""


def register(kind: str, factory: SourceFactory) -> None:
    """Make `source_for(kind, ...)` build sources with `factory`; a type is registered once."""
    if kind in _SOURCES:
        raise ValueError(f"metric provider type {kind!r} is already registered")
    _SOURCES[kind] = factory


def known_types() -> tuple[str, ...]:
    """The registered provider types, sorted."""
    return tuple(sorted(_SOURCES))


def source_for(kind: str, address: str, **options: Any) -> MetricSource:
    """A new metric source of provider type `kind` at `address`; the caller closes it."""
    factory = _SOURCES.get(kind)
    if factory is None:
        raise UnknownSourceError(f"unknown metric provider type {kind!r}; known: {', '.join(known_types())}")
    return factory(address, **options)


register("prometheus", PrometheusProvider)
