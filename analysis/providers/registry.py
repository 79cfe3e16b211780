"""Metric sources by provider type, as a MetricTemplate's `provider.type` names them.

One explicit table, so that an unknown type is refused with the list of known ones instead of
failing somewhere later. Each entry is a `ProviderKind`: the type's validation rules (the pure table
in `analysis.providers.rules`) and how to build its source from a `ProviderConfig`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from analysis.providers import cloudwatch, graphite, influxdb
from analysis.providers.base import MetricSource, ProviderConfig
from analysis.providers.prometheus import Auth, PrometheusProvider
from analysis.providers.rules import RULES, ProviderRules


@dataclass(frozen=True)
class ProviderKind:
    """One provider type: its validation rules (`analysis.providers.rules`) and its builder."""

    rules: ProviderRules
    build: Callable[[ProviderConfig], MetricSource]

    @property
    def type(self) -> str:
        return self.rules.type


_KINDS: dict[str, ProviderKind] = {}


class UnknownSourceError(ValueError):
    """No metric source is registered under the asked-for provider type."""


def register_kind(kind: ProviderKind) -> None:
    """Make `build(ProviderConfig(type=kind.type, ...))` use `kind`; a type is registered once."""
    if kind.type in _KINDS:
        raise ValueError(f"metric provider type {kind.type!r} is already registered")
    _KINDS[kind.type] = kind


def known_types() -> tuple[str, ...]:
    """The registered provider types, sorted."""
    return tuple(sorted(_KINDS))


def kind_of(kind: str) -> ProviderKind:
    """The registered `ProviderKind` named `kind`; UnknownSourceError naming the known ones if none."""
    found = _KINDS.get(kind)
    if found is None:
        raise UnknownSourceError(f"unknown metric provider type {kind!r}; known: {', '.join(known_types())}")
    return found


def build(config: ProviderConfig) -> MetricSource:
    """A new metric source for a MetricTemplate's provider; the caller closes it."""
    return kind_of(config.type).build(config)


def _prometheus(config: ProviderConfig) -> MetricSource:
    return PrometheusProvider(config.address or RULES["prometheus"].default_address or "",
                              auth=Auth.from_secret(config.secret),
                              insecure_skip_verify=config.insecure_skip_verify, timeout=config.timeout,
                              retries=config.retries)


PROMETHEUS = ProviderKind(RULES["prometheus"], _prometheus)
register_kind(PROMETHEUS)
register_kind(ProviderKind(RULES["graphite"], graphite.build))
register_kind(ProviderKind(RULES["influxdb"], influxdb.build))
register_kind(ProviderKind(RULES["cloudwatch"], cloudwatch.build))
