"""Metric sources by provider type, as a MetricTemplate's `provider.type` names them.

One explicit table, so that an unknown type is refused with the list of known ones instead of
failing somewhere later. Each entry is a `ProviderKind`: how to build the source from a
`ProviderConfig`, and what validation needs to know before anything is queried (whether the
address has a default, which Secret keys the provider reads, whether it serves range series).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from analysis.providers.base import MetricSource, ProviderConfig
from analysis.providers.prometheus import Auth, PrometheusProvider


@dataclass(frozen=True)
class ProviderKind:
    """One provider type: its builder and the rules `rollout validate` checks.

    `default_address` None means `provider.address` is required. `secret_keys` must all be in the
    Secret (and `secret_required` says a `secretRef` must be given); `optional_secret_keys` are read
    when present. `range_queries` False means the source cannot give a range series, so only the
    threshold judge can use it. `fields` are the provider's own fields beyond `type`, `address`,
    `secretRef`, `insecureSkipVerify` and `region` (passed through `ProviderConfig.options`).
    `docs` is the vendor's API page that the provider follows.
    """

    type: str
    build: Callable[[ProviderConfig], MetricSource]
    docs: str
    default_address: str | None = None
    secret_keys: tuple[str, ...] = ()
    secret_required: bool = False
    optional_secret_keys: tuple[str, ...] = ()
    range_queries: bool = True
    region: bool = False
    fields: tuple[str, ...] = ()


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
    return PrometheusProvider(config.address or PROMETHEUS.default_address or "", auth=Auth.from_secret(config.secret),
                              insecure_skip_verify=config.insecure_skip_verify, timeout=config.timeout,
                              retries=config.retries)


PROMETHEUS = ProviderKind(
    "prometheus", _prometheus, docs="https://prometheus.io/docs/prometheus/latest/querying/api/",
    default_address="http://prometheus.monitoring:9090", optional_secret_keys=("username", "password", "token"),
)
register_kind(PROMETHEUS)
