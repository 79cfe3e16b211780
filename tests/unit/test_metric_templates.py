"""A MetricTemplate's provider is checked against its type's rules, whatever the type.

Each kind of rule (`analysis.providers.rules.ProviderRules`: default address or required, region
read or required, Secret required, the provider's own fields and their check) is tried on a rule
row made for the test (`fake`), so that the parser's handling of every kind is tested however few
real providers have rows yet; the real rows are tried with the Flagger documentation's manifests.
"""

from __future__ import annotations

import copy
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import pytest
import yaml

from analysis.providers.rules import RULES, OptionProblems, ProviderRules
from rollout.api.errors import FieldError, ValidationError
from rollout.api.kinds import API_VERSION, FLAGGER_API_VERSION
from rollout.api.manifests import check_object
from rollout.api.parse import parse_metric_template

FLAGGER_TEMPLATES = Path(__file__).parents[1] / "data" / "flagger" / "metrictemplates.yaml"


def _check_fake(options: Mapping[str, object]) -> OptionProblems:
    method = options.get("method", "GET")
    return [] if method in ("GET", "POST") else [("method", f"must be GET or POST, got {method!r}")]


FAKE = ProviderRules(
    "fake", docs="https://example.com/fake-api", secret_keys=("api_key",), secret_required=True,
    optional_secret_keys=("app_key",), range_queries=False, region=True, region_required=True,
    fields=("method", "jsonPath"), check_options=_check_fake,
)


@pytest.fixture
def fake() -> Iterator[ProviderRules]:
    RULES["fake"] = FAKE
    try:
        yield FAKE
    finally:
        del RULES["fake"]


def template(provider: dict[str, Any] | None = None, **spec: Any) -> dict[str, Any]:
    body: dict[str, Any] = {"query": "sum(up)", **spec}
    if provider is not None:
        body["provider"] = provider
    return {"apiVersion": API_VERSION, "kind": "MetricTemplate", "metadata": {"name": "t", "namespace": "ns"},
            "spec": {k: v for k, v in body.items() if v is not None}}


def errors_of(obj: dict[str, Any]) -> list[FieldError]:
    """What `rollout validate` says (the CRD's schema, then the parser)."""
    return check_object(obj) or []


def parse_errors(obj: dict[str, Any]) -> list[FieldError]:
    """What the parser alone says."""
    try:
        parse_metric_template(obj)
    except ValidationError as e:
        return sorted(e.errors, key=lambda x: x.path)
    return []


FAKE_OK = {"type": "fake", "address": "https://fake.example.com", "region": "eu-west-1",
           "secretRef": {"name": "creds"}, "method": "POST", "jsonPath": "$.value"}


def test_a_provider_with_everything_its_rules_ask_for_is_read_whole(fake: ProviderRules) -> None:
    assert parse_errors(template(FAKE_OK)) == []
    provider = parse_metric_template(template(FAKE_OK)).spec.provider
    assert (provider.type, provider.address, provider.region, provider.secret_ref) == (
        "fake", "https://fake.example.com", "eu-west-1", "creds")
    assert dict(provider.options) == {"method": "POST", "jsonPath": "$.value"}


@pytest.mark.parametrize(("change", "path", "message"), [
    ({"address": None}, "spec.provider.address",
     "is required: the fake provider has no default address (see https://example.com/fake-api)"),
    ({"address": "fake.example.com"}, "spec.provider.address",
     "must be an http:// or https:// URL, got 'fake.example.com'"),
    ({"region": None}, "spec.provider.region",
     "is required: the fake provider needs the region of its API, e.g. us-east-1"),
    ({"secretRef": None}, "spec.provider.secretRef",
     "is required: the fake provider reads its credentials from a Secret with the keys api_key "
     "(see https://example.com/fake-api)"),
    ({"method": "PUT"}, "spec.provider.method", "must be GET or POST, got 'PUT'"),
    ({"body": "{}"}, "spec.provider.body",
     "the fake provider reads no field 'body'; its own fields: method, jsonPath; remove it"),
])
def test_each_rule_kind_is_enforced(fake: ProviderRules, change: dict[str, Any], path: str, message: str) -> None:
    provider = {k: v for k, v in {**FAKE_OK, **change}.items() if v is not None}
    assert parse_errors(template(provider)) == [FieldError(path, message)]


def test_prometheus_takes_its_default_address_and_refuses_what_it_does_not_read() -> None:
    assert parse_metric_template(template({"type": "prometheus"})).spec.provider.address == \
        RULES["prometheus"].default_address
    assert errors_of(template({"type": "prometheus", "region": "us-east-1", "jsonPath": "$.x"})) == [
        FieldError("spec.provider.jsonPath", "the prometheus provider reads no field 'jsonPath'; remove it"),
        FieldError("spec.provider.region", "the prometheus provider reads no region; remove it"),
    ]


def test_an_unknown_type_names_the_known_ones() -> None:
    obj = template({"type": "keptn", "timeframe": "5m"})
    known = ", ".join(sorted(RULES))
    with pytest.raises(ValidationError) as e:
        parse_metric_template(obj)
    assert e.value.errors == [FieldError("spec.provider.type", f"unknown metric provider 'keptn'; known: {known}")]


# The provider's own fields a type cannot do without (web must be told where its number is).
MINIMAL_OWN_FIELDS: dict[str, dict[str, Any]] = {"web": {"jsonPath": "$.value"}}


@pytest.mark.parametrize("rules", sorted(RULES.values(), key=lambda r: r.type), ids=lambda r: r.type)
def test_every_real_rule_row_parses_a_minimal_template(rules: ProviderRules) -> None:
    """A template with what each row requires (and nothing else) is valid; without a required part it is not."""
    provider: dict[str, Any] = {"type": rules.type}
    if rules.default_address is None:
        provider["address"] = "https://metrics.example.com"
    if rules.region_required:
        provider["region"] = "us-east-1"
    if rules.secret_required:
        provider["secretRef"] = {"name": "creds"}
    own = MINIMAL_OWN_FIELDS.get(rules.type, {})
    assert rules.check_options(own) == []
    provider.update(own)
    assert errors_of(template(provider)) == []
    parsed = parse_metric_template(template(provider)).spec.provider
    assert parsed.address == provider.get("address", rules.default_address)
    for required in [k for k in ("address", "region", "secretRef") if k in provider and
                     not (k == "address" and rules.default_address)]:
        less = {k: v for k, v in provider.items() if k != required}
        assert [e.path for e in errors_of(template(less))] == [f"spec.provider.{required}"]


# Published examples that Flagger itself would refuse at its first check: the InfluxDB one has no
# address, and Flagger's influxdb provider refuses an empty one (pkg/metrics/providers/influxdb.go:
# "address ... is not a valid URL"). Validation says so before the push, naming the field.
INCOMPLETE_IN_FLAGGERS_DOCS = {("influxdb", "not-found"): ["spec.provider.address"]}


def flagger_templates() -> list[dict[str, Any]]:
    return [d for d in yaml.safe_load_all(FLAGGER_TEMPLATES.read_text()) if d]


@pytest.mark.parametrize("doc", flagger_templates(), ids=lambda d: f"{d['spec']['provider']['type']}-"
                         f"{d['metadata']['name']}")
def test_flaggers_documented_templates_are_valid_once_their_api_version_changes(doc: dict[str, Any]) -> None:
    # As published: one example still carries Flagger's older version.
    assert doc["apiVersion"] in (FLAGGER_API_VERSION, "flagger.app/v1alpha1")
    ours = {**copy.deepcopy(doc), "apiVersion": API_VERSION}
    ptype = doc["spec"]["provider"]["type"]
    if (ptype, doc["metadata"]["name"]) in INCOMPLETE_IN_FLAGGERS_DOCS:
        assert [e.path for e in errors_of(ours)] == INCOMPLETE_IN_FLAGGERS_DOCS[ptype, doc["metadata"]["name"]]
    elif ptype in RULES:
        assert errors_of(ours) == []
    else:
        # A type without a provider here is refused by name, and for nothing else.
        assert [e.path for e in errors_of(ours)] == ["spec.provider.type"]


@pytest.mark.parametrize(("spec", "errors"), [
    ({"query": None, "canaryQuery": "a", "primaryQuery": "b"}, []),
    ({"query": None, "canaryQuery": "a"}, [FieldError(
        "spec.primaryQuery", "is required with canaryQuery: give each arm its query, or one query for both")]),
    ({"query": None, "primaryQuery": "b"}, [FieldError(
        "spec.canaryQuery", "is required with primaryQuery: give each arm its query, or one query for both")]),
    ({"canaryQuery": "a", "primaryQuery": "b"}, [FieldError(
        "spec.query", "give either query (rendered for each arm) or canaryQuery and primaryQuery, not both")]),
    ({"query": None}, [FieldError(
        "spec.query", "is required: a query that returns one number (or canaryQuery and primaryQuery)")]),
])
def test_canary_and_primary_queries_come_together_instead_of_query(spec: dict[str, Any],
                                                                  errors: list[FieldError]) -> None:
    obj = template(**spec)
    assert errors_of(obj) == errors
    if not errors:
        parsed = parse_metric_template(obj).spec
        assert (parsed.query, parsed.canary_query, parsed.primary_query) == ("", "a", "b")
