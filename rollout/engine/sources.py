"""Which metric source answers a metric: the operator-wide Prometheus, or its MetricTemplate's own.

Built-in metrics and inline `query`s go to the one Prometheus the operator (or `rollout analyze
--prometheus`) was given. A metric with a `templateRef` goes to the backend its template's
`provider` names, built by `analysis.providers.registry` from the provider's fields and the decoded
keys of its `secretRef` (read, as Flagger does, in the template's namespace). A built source is kept
while the template's provider and the Secret's data stay the same, and closed when replaced.

Whatever stands in the way (a missing Secret or key, a type no provider is registered for, a
builder that refuses its settings) is a `SourceError` whose message names the template, the
provider and the fix; the metric check reports it, nothing crashes.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass

from analysis.providers.base import MetricSource, MetricSourceError, ProviderConfig
from analysis.providers.registry import UnknownSourceError, build
from analysis.providers.rules import RULES
from rollout.api.spec import MetricTemplate, ProviderRef

log = logging.getLogger(__name__)

# How messages name a provider type ("Datadog unavailable: ..."); a type not listed is shown as written.
TITLES = {
    "prometheus": "Prometheus", "datadog": "Datadog", "cloudwatch": "CloudWatch", "newrelic": "New Relic",
    "graphite": "Graphite", "influxdb": "InfluxDB", "dynatrace": "Dynatrace", "stackdriver": "Google Cloud Monitoring",
    "splunk": "Splunk", "web": "The web provider",
}

# (namespace, name) of a Secret -> its keys, decoded. Raises SourceError when it cannot be had.
SecretReader = Callable[[str, str], Mapping[str, str]]


def title(provider_type: str) -> str:
    return TITLES.get(provider_type, provider_type)


def template_name(template: MetricTemplate) -> str:
    return f"{template.metadata.namespace}/{template.metadata.name}"


class SourceError(MetricSourceError):
    """A template's metric source cannot be had; `temporary` when trying again may help (the API
    server did not answer), else the template or its Secret must be fixed."""

    def __init__(self, message: str, *, temporary: bool = False) -> None:
        super().__init__(message)
        self.temporary = temporary


def no_secrets(namespace: str, name: str) -> Mapping[str, str]:
    raise SourceError(f"Secret {namespace}/{name} cannot be read here")


@dataclass
class _Kept:
    provider: ProviderRef
    secret: Mapping[str, str]
    source: MetricSource


class Sources:
    """The metric source of each metric: `default` for built-ins and inline queries, and one per
    MetricTemplate, built on first use and kept while its provider and Secret are unchanged.

    `read_secret` reads a template's Secret (the operator's reads it through the API, `rollout
    analyze`'s from files); `timeout` and `retries` bound every query of a template's source.
    """

    def __init__(self, default: MetricSource | None, read_secret: SecretReader = no_secrets, *,
                 timeout: float = 10.0, retries: int = 2,
                 builder: Callable[[ProviderConfig], MetricSource] = build) -> None:
        self._default = default
        self.read_secret = read_secret
        self.timeout = timeout
        self.retries = retries
        self.builder = builder
        self._kept: dict[tuple[str, str, float], _Kept] = {}
        self._lock = threading.Lock()

    def default(self) -> MetricSource:
        if self._default is None:
            raise SourceError("built-in metrics and inline queries need a Prometheus, and none was given")
        return self._default

    def for_template(self, template: MetricTemplate, interval: float = 60.0) -> MetricSource:
        """The source of `template`'s provider for a metric of `interval` seconds (the vendors that look
        back over a multiple of it, as Flagger's do); SourceError naming the template and the fix when
        none can be had."""
        provider = template.spec.provider
        where = f"MetricTemplate {template_name(template)} ({provider.type})"
        rules = RULES.get(provider.type)
        if rules is None:
            raise SourceError(f"{where}: unknown metric provider type; known: {', '.join(sorted(RULES))}")
        secret: Mapping[str, str] = {}
        if provider.secret_ref:
            secret = self._secret(template, provider.secret_ref)
            missing = [k for k in rules.secret_keys if not secret.get(k)]
            if missing:
                raise SourceError(
                    f"{where}: Secret {template.metadata.namespace}/{provider.secret_ref} (provider.secretRef) "
                    f"lacks {', '.join(missing)}; add the keys the {provider.type} provider reads: "
                    f"{', '.join((*rules.secret_keys, *rules.optional_secret_keys))} (see {rules.docs})")
        elif rules.secret_required:
            raise SourceError(f"{where}: set provider.secretRef to a Secret with the keys "
                              f"{', '.join(rules.secret_keys)} (see {rules.docs})")
        key = (template.metadata.namespace, template.metadata.name, interval)
        with self._lock:
            kept = self._kept.get(key)
            if kept is not None and kept.provider == provider and kept.secret == secret:
                return kept.source
            source = self._build(where, template, provider, secret, interval)
            self._kept[key] = _Kept(provider, dict(secret), source)
        if kept is not None:
            log.info("%s changed: its metric source is built anew", where)
            _close(kept.source)
        return source

    def _secret(self, template: MetricTemplate, name: str) -> Mapping[str, str]:
        ptype = template.spec.provider.type
        try:
            return self.read_secret(template.metadata.namespace, name)
        except SourceError as e:
            rules = RULES[ptype]
            keys = ", ".join((*rules.secret_keys, *rules.optional_secret_keys))
            fix = "" if e.temporary or not keys else f"; it must hold the keys the {ptype} provider reads: {keys}"
            raise SourceError(f"MetricTemplate {template_name(template)} ({ptype}): {e}{fix}",
                              temporary=e.temporary) from None

    def _build(self, where: str, template: MetricTemplate, provider: ProviderRef,
               secret: Mapping[str, str], interval: float) -> MetricSource:
        config = ProviderConfig(
            type=provider.type, address=provider.address or None, secret=secret,
            insecure_skip_verify=provider.insecure_skip_verify, region=provider.region,
            options=dict(provider.options), template=template_name(template), timeout=self.timeout,
            retries=self.retries, interval=interval,
        )
        try:
            return self.builder(config)
        except UnknownSourceError as e:
            raise SourceError(f"{where}: {e}") from None
        except Exception as e:  # a builder's refusal, whatever its class: the template must change
            raise SourceError(f"{where}: the provider cannot be set up from the template and its Secret: "
                              f"{type(e).__name__}: {_redact(str(e), secret)}") from None

    def forget(self, namespace: str, name: str) -> None:
        """Close the source of a MetricTemplate that is gone."""
        with self._lock:
            gone = [self._kept.pop(key) for key in list(self._kept) if key[:2] == (namespace, name)]
        for kept in gone:
            _close(kept.source)

    def close(self) -> None:
        """Close every template's source (not the default one, which the caller owns)."""
        with self._lock:
            kept, self._kept = list(self._kept.values()), {}
        for k in kept:
            _close(k.source)


def _redact(text: str, secret: Mapping[str, str]) -> str:
    """`text` without any of the Secret's values (a client's message might quote its settings)."""
    for value in sorted(secret.values(), key=len, reverse=True):
        if len(value) >= 4:
            text = text.replace(value, "***")
    return text


def _close(source: MetricSource) -> None:
    try:
        source.close()
    except Exception as e:  # closing is best effort
        log.warning("closing a metric source failed: %s", e)
