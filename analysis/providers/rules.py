"""What validation knows of each metric provider type, without importing any client.

`rollout validate` and the operator's parser (`rollout.api`, which stays free of network code) check
a MetricTemplate's `provider` against this table before anything is queried: whether the address
has a default, which Secret keys the provider reads, whether it serves range series, and the
provider's own fields. The builders that use these settings register in `analysis.providers.registry`;
a type is usable when it is in both (a test keeps them in step).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

from analysis.providers import web_options

# (field path under `provider`, problem) pairs; empty when the options are fine.
OptionProblems = list[tuple[str, str]]


def _no_options(options: Mapping[str, object]) -> OptionProblems:
    return []


def _influxdb_options(options: Mapping[str, object]) -> OptionProblems:
    database = options.get("database")
    if database is not None and (not isinstance(database, str) or not database.strip()):
        return [("database", "must be the name of an InfluxDB database (InfluxQL's db parameter)")]
    return []


@dataclass(frozen=True)
class ProviderRules:
    """One provider type's rules.

    `default_address` None means `provider.address` is required. `secret_keys` must all be in the
    Secret (and `secret_required` says a `secretRef` must be given); `optional_secret_keys` are read
    when present. `range_queries` False means the source cannot give a range series, so only the
    threshold judge can use it. `region` says `provider.region` is read (and required when
    `region_required`). `fields` are the provider's own fields beyond `type`, `address`,
    `secretRef`, `insecureSkipVerify` and `region`, checked by `check_options`. `docs` is the
    vendor's API page the provider follows, shown in error messages.
    """

    type: str
    docs: str
    default_address: str | None = None
    secret_keys: tuple[str, ...] = ()
    secret_required: bool = False
    optional_secret_keys: tuple[str, ...] = ()
    range_queries: bool = True
    region: bool = False
    region_required: bool = False
    fields: tuple[str, ...] = ()
    check_options: Callable[[Mapping[str, object]], OptionProblems] = field(default=_no_options)


RULES: dict[str, ProviderRules] = {
    rules.type: rules
    for rules in (
        ProviderRules(
            "prometheus", docs="https://docs.flagger.app/usage/metrics#prometheus",
            default_address="http://prometheus.monitoring:9090",
            optional_secret_keys=("username", "password", "token"),
        ),
        ProviderRules(
            "datadog", docs="https://docs.datadoghq.com/api/latest/metrics/#query-timeseries-points",
            default_address="https://api.datadoghq.com",
            secret_keys=("datadog_api_key", "datadog_application_key"), secret_required=True,
        ),
        ProviderRules(
            "newrelic", docs="https://docs.newrelic.com/docs/apis/insights-apis/query-insights-event-data-api/",
            default_address="https://insights-api.newrelic.com",
            secret_keys=("newrelic_account_id", "newrelic_query_key"), secret_required=True,
        ),
        ProviderRules(
            "dynatrace",
            docs="https://docs.dynatrace.com/docs/dynatrace-api/environment-api/metric-v2/get-data-points",
            secret_keys=("dynatrace_token",), secret_required=True,
        ),
        ProviderRules(
            "stackdriver", docs="https://cloud.google.com/monitoring/api/ref_v3/rest/v3/projects.timeSeries/query",
            default_address="https://monitoring.googleapis.com",
            secret_keys=("project",), secret_required=True, optional_secret_keys=("serviceAccountKey",),
        ),
        ProviderRules(
            "splunk", docs="https://dev.splunk.com/observability/reference/api/signalflow/latest",
            secret_keys=("sf_token_key",), secret_required=True,
        ),
        # Argo Rollouts' web metric: header values may name any key of the Secret (checked when built).
        ProviderRules(
            "web", docs="https://argoproj.github.io/argo-rollouts/analysis/web/",
            range_queries=False, fields=web_options.FIELDS, check_options=web_options.check_options,
        ),
        # Flagger: a secretRef must hold both keys (basic auth); without one no credentials are sent.
        ProviderRules(
            "graphite", docs="https://docs.flagger.app/usage/metrics#graphite",
            secret_keys=("username", "password"),
        ),
        # Flagger reads `token` and `org` (Flux); `username`/`password` are InfluxDB 1.x's basic auth,
        # `database` InfluxQL's db parameter. The query's first word picks the language.
        ProviderRules(
            "influxdb", docs="https://docs.flagger.app/usage/metrics#influxdb",
            optional_secret_keys=("token", "org", "username", "password"),
            fields=("database",), check_options=_influxdb_options,
        ),
        # Flagger: credentials from the environment (IAM), never a Secret; `address` overrides the
        # endpoint, which is otherwise the region's (the builder fills in {region}).
        ProviderRules(
            "cloudwatch", docs="https://docs.flagger.app/usage/metrics#amazon-cloudwatch",
            default_address="https://monitoring.{region}.amazonaws.com",
            region=True, region_required=True,
        ),
    )
}
