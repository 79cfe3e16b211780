"""Metric sources by provider type, as a MetricTemplate's `provider.type` names them.

One explicit table, so that an unknown type is refused with the list of known ones instead of
failing somewhere later. Each entry is a `ProviderKind`: the type's validation rules (the pure table
in `analysis.providers.rules`) and how to build its source from a `ProviderConfig`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from analysis.providers import cloudwatch, graphite, influxdb
from analysis.providers.base import MetricSource, ProviderConfig
from analysis.providers.datadog import DatadogProvider
from analysis.providers.dynatrace import DynatraceProvider
from analysis.providers.newrelic import NewRelicProvider
from analysis.providers.prometheus import Auth, PrometheusProvider
from analysis.providers.rules import RULES, ProviderRules
from analysis.providers.splunk import SplunkProvider
from analysis.providers.stackdriver import StackdriverProvider
from analysis.providers.web import WebProvider
from analysis.providers.web_options import resolve_headers


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


def _address(config: ProviderConfig) -> str:
    """The template's address, else the type's default; ValueError when the type has none."""
    address = config.address or RULES[config.type].default_address
    if not address:
        raise ValueError(f"a {config.type} MetricTemplate needs provider.address")
    return address


def _secret(config: ProviderConfig, key: str) -> str:
    """One Secret key the type requires; ValueError naming it (never its value) when missing."""
    value = config.secret.get(key)
    if not value:
        raise ValueError(f"the {config.type} provider's Secret has no {key!r} (see {RULES[config.type].docs})")
    return value


def _common(config: ProviderConfig) -> dict[str, Any]:
    return {"insecure_skip_verify": config.insecure_skip_verify, "timeout": config.timeout,
            "retries": config.retries}


def _datadog(config: ProviderConfig) -> MetricSource:
    return DatadogProvider(_address(config), api_key=_secret(config, "datadog_api_key"),
                           application_key=_secret(config, "datadog_application_key"), interval=config.interval,
                           **_common(config))


def _newrelic(config: ProviderConfig) -> MetricSource:
    return NewRelicProvider(_address(config), account_id=_secret(config, "newrelic_account_id"),
                            query_key=_secret(config, "newrelic_query_key"), interval=config.interval,
                            **_common(config))


def _dynatrace(config: ProviderConfig) -> MetricSource:
    return DynatraceProvider(_address(config), token=_secret(config, "dynatrace_token"), interval=config.interval,
                             **_common(config))


def _stackdriver(config: ProviderConfig) -> MetricSource:
    return StackdriverProvider(_address(config), project=_secret(config, "project"),
                               service_account_key=config.secret.get("serviceAccountKey") or None,
                               interval=config.interval, **_common(config))


def _splunk(config: ProviderConfig) -> MetricSource:
    return SplunkProvider(_address(config), token=_secret(config, "sf_token_key"), interval=config.interval,
                          **_common(config))


def _web(config: ProviderConfig) -> MetricSource:
    options = config.options
    common = _common(config)
    timeout = options.get("timeoutSeconds")
    if isinstance(timeout, int | float) and not isinstance(timeout, bool) and timeout > 0:
        common["timeout"] = float(timeout)
    headers = options.get("headers") or []
    return WebProvider(_address(config), json_path=str(options.get("jsonPath") or ""),
                       method=str(options.get("method") or "GET"),
                       headers=resolve_headers(headers if isinstance(headers, list) else [], config.secret),
                       **common)


for _kind, _build in (("datadog", _datadog), ("newrelic", _newrelic), ("dynatrace", _dynatrace),
                      ("stackdriver", _stackdriver), ("splunk", _splunk), ("web", _web)):
    register_kind(ProviderKind(RULES[_kind], _build))
register_kind(ProviderKind(RULES["graphite"], graphite.build))
register_kind(ProviderKind(RULES["influxdb"], influxdb.build))
register_kind(ProviderKind(RULES["cloudwatch"], cloudwatch.build))
