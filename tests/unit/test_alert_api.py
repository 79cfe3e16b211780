"""AlertProvider and `alerts` parse with Flagger's meaning, and `rollout validate` checks them.

The Flagger manifests below are the examples of Flagger's alerting guide
(fluxcd/flagger docs/gitbook/usage/alerting.md), with only their apiVersion changed.
"""

from __future__ import annotations

import copy
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from rollout.api.errors import FieldError, ValidationError
from rollout.api.kinds import API_VERSION, FLAGGER_API_VERSION
from rollout.api.manifests import check_object, validate_text
from rollout.api.parse import parse_alert_provider, parse_bluegreen, parse_canary, parse_gitsource
from rollout.api.schema import crd_documents
from rollout.api.spec import AlertProviderType, AlertRef, AlertSeverity

# From docs/gitbook/usage/alerting.md (fluxcd/flagger), apiVersion changed.
FLAGGER_PROVIDER = f"""
apiVersion: {API_VERSION}
kind: AlertProvider
metadata:
  name: on-call
  namespace: flagger
spec:
  type: slack
  channel: on-call-alerts
  username: flagger
  # webhook address (ignored if secretRef is specified)
  address: https://hooks.slack.com/services/YOUR/SLACK/WEBHOOK
  # optional http/s proxy
  proxy: http://my-http-proxy.com
  # secret containing the webhook address (optional)
  secretRef:
    name: on-call-url
"""

# The analysis.alerts example of the same page.
FLAGGER_ALERTS = """
- name: "on-call Slack"
  severity: error
  providerRef:
    name: on-call
    namespace: flagger
- name: "qa Discord"
  severity: warn
  providerRef:
    name: qa-discord
- name: "dev MS Teams"
  severity: info
  providerRef:
    name: dev-msteams
"""


def canary(**analysis: Any) -> dict[str, Any]:
    return {
        "apiVersion": API_VERSION, "kind": "Canary", "metadata": {"name": "podinfo", "namespace": "test"},
        "spec": {
            "provider": "istio",
            "targetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": "podinfo"},
            "service": {"port": 9898},
            "analysis": {"interval": "1m", "threshold": 2, "maxWeight": 50, "stepWeight": 10, **analysis},
        },
    }


def provider(**spec: Any) -> dict[str, Any]:
    return {"apiVersion": API_VERSION, "kind": "AlertProvider", "metadata": {"name": "p", "namespace": "ops"},
            "spec": spec}


def test_flaggers_alert_provider_is_valid_with_only_its_api_version_changed() -> None:
    obj = yaml.safe_load(FLAGGER_PROVIDER)
    assert check_object(obj) == []
    p = parse_alert_provider(obj)
    assert p.spec.type == AlertProviderType.SLACK
    assert (p.spec.channel, p.spec.username) == ("on-call-alerts", "flagger")
    assert p.spec.address == "https://hooks.slack.com/services/YOUR/SLACK/WEBHOOK"
    assert (p.spec.secret_ref, p.spec.proxy) == ("on-call-url", "http://my-http-proxy.com")
    flagger = {**obj, "apiVersion": FLAGGER_API_VERSION}
    assert [e.path for e in check_object(flagger) or []] == ["apiVersion"]


def test_flaggers_defaults_for_channel_and_the_bot_named_for_this_operator() -> None:
    p = parse_alert_provider(provider(type="msteams", address="https://example.com/hook"))
    assert (p.spec.channel, p.spec.username, p.spec.secret_ref, p.spec.proxy) == ("general", "rollout", None, None)


@pytest.mark.parametrize("kind", [t.value for t in AlertProviderType])
def test_every_type_is_accepted(kind: str) -> None:
    assert check_object(provider(type=kind, secretRef={"name": "hook"})) == []


@pytest.mark.parametrize(("spec", "path", "message"), [
    ({"type": "slack"}, "spec", "must set address or secretRef"),
    ({"type": "telegram", "address": "https://x/"}, "spec.type",
     "must be one of slack, msteams, discord, rocket, gchat, generic, got 'telegram'"),
    ({"type": "slack", "address": "hooks.slack.com/x"}, "spec.address",
     "must be an http:// or https:// URL, got 'hooks.slack.com/x'"),
    ({"type": "slack", "address": "https://x/", "proxy": "proxy:3128"}, "spec.proxy",
     "must be an http:// or https:// URL, got 'proxy:3128'"),
    ({"type": "slack", "address": "https://x/", "chanel": "c"}, "spec.chanel",
     "unknown field; did you mean 'channel'?"),
    ({"address": "https://x/"}, "spec.type", "is required"),
])
def test_an_invalid_provider_is_refused_naming_the_field(spec: dict[str, Any], path: str, message: str) -> None:
    assert FieldError(path, message) in (check_object(provider(**spec)) or [])
    with pytest.raises(ValidationError):
        parse_alert_provider(provider(**spec))


def test_the_parser_alone_refuses_an_unknown_field_by_name() -> None:
    """What the operator runs (no schema) refuses it too, rather than dropping it."""
    with pytest.raises(ValidationError) as caught:
        parse_alert_provider(provider(type="slack", address="https://x/", icon=":rocket:"))
    assert [e.path for e in caught.value.errors] == ["spec.icon"]


def test_flaggers_canary_alerts_parse_with_flaggers_default_severity() -> None:
    alerts = yaml.safe_load(FLAGGER_ALERTS)
    obj = canary(alerts=alerts)
    assert check_object(obj) == []
    parsed = parse_canary(obj).spec.analysis.alerts
    assert parsed == (
        AlertRef("on-call Slack", "on-call", "flagger", AlertSeverity.ERROR),
        AlertRef("qa Discord", "qa-discord", None, AlertSeverity.WARN),
        AlertRef("dev MS Teams", "dev-msteams", None, AlertSeverity.INFO),
    )
    del alerts[0]["severity"]
    assert parse_canary(canary(alerts=alerts)).spec.analysis.alerts[0].severity == AlertSeverity.INFO
    alerts[0]["severity"] = ""
    assert parse_canary(canary(alerts=alerts)).spec.analysis.alerts[0].severity == AlertSeverity.INFO


@pytest.mark.parametrize(("alert", "path", "message"), [
    ({"name": "a"}, "spec.analysis.alerts[0].providerRef", "is required"),
    ({"name": "a", "providerRef": {}}, "spec.analysis.alerts[0].providerRef.name", "is required"),
    ({"name": "a", "providerRef": {"name": "p"}, "severity": "critical"}, "spec.analysis.alerts[0].severity",
     'must be one of "", info, warn, error, got \'critical\''),
    ({"providerRef": {"name": "p"}}, "spec.analysis.alerts[0].name", "is required"),
    ({"name": "a", "providerRef": {"name": "p", "kind": "AlertProvider"}},
     "spec.analysis.alerts[0].providerRef.kind", "unknown field; remove it"),
])
def test_the_shape_of_a_provider_ref_is_checked(alert: dict[str, Any], path: str, message: str) -> None:
    found = check_object(canary(alerts=[alert])) or []
    assert any(e.path == path and e.message.startswith(message.split(";")[0]) for e in found), found


def test_duplicate_alert_names_are_refused() -> None:
    same = {"name": "a", "providerRef": {"name": "p"}}
    with pytest.raises(ValidationError) as caught:
        parse_canary(canary(alerts=[same, copy.deepcopy(same)]))
    assert caught.value.errors[0].path == "spec.analysis.alerts[1].name"


def test_bluegreen_and_gitsource_take_alerts() -> None:
    alerts = [{"name": "ops", "severity": "error", "providerRef": {"name": "p", "namespace": "ops"}}]
    bg = {"apiVersion": API_VERSION, "kind": "BlueGreen", "metadata": {"name": "web"},
          "spec": {"targetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": "web"}, "service": {"port": 80},
                   "analysis": {"interval": "1m", "threshold": 1, "iterations": 2, "alerts": alerts}}}
    assert check_object(bg) == []
    assert parse_bluegreen(bg).spec.analysis.alerts == (AlertRef("ops", "p", "ops", AlertSeverity.ERROR),)
    src = {"apiVersion": API_VERSION, "kind": "GitSource", "metadata": {"name": "apps"},
           "spec": {"url": "https://example.com/apps.git", "alerts": alerts}}
    assert check_object(src) == []
    assert parse_gitsource(src).spec.alerts == (AlertRef("ops", "p", "ops", AlertSeverity.ERROR),)


def test_validate_reads_a_provider_and_a_canary_from_one_file() -> None:
    text = FLAGGER_PROVIDER + "---\n" + yaml.safe_dump(canary(alerts=[{"name": "x", "providerRef": {"nam": "p"}}]))
    report = validate_text(text, "alerts.yaml")
    assert report.resources == 2 and report.invalid == 1
    assert {p.path for p in report.problems} >= {"spec.analysis.alerts[0].providerRef.name"}


@pytest.mark.parametrize(("subscribed", "receives"), [
    (AlertSeverity.INFO, {"info", "warn", "error"}),
    (AlertSeverity.WARN, {"warn", "error"}),
    (AlertSeverity.ERROR, {"error"}),
])
def test_flaggers_severity_semantics(subscribed: AlertSeverity, receives: set[str]) -> None:
    """Flagger's controller/events.go `alert`: info gets everything, warn gets warn and error, error only error."""
    assert {s.value for s in AlertSeverity if subscribed.receives(s)} == receives


# Flagger's published AlertProvider CRD (origin in the file's header).
FLAGGER_CRD = Path(__file__).resolve().parents[1] / "data" / "flagger" / "alertprovider-crd.yaml"


def _fields(node: dict[str, Any], path: str = "spec") -> Iterator[tuple[str, dict[str, Any]]]:
    for key, child in (node.get("properties") or {}).items():
        yield f"{path}.{key}", child
        yield from _fields(child, f"{path}.{key}")


def test_every_field_of_flaggers_alert_provider_is_ours_with_its_type() -> None:
    theirs = yaml.safe_load(FLAGGER_CRD.read_text())["spec"]["versions"][0]["schema"]["openAPIV3Schema"]
    ours = next(d for d in crd_documents() if d["spec"]["names"]["kind"] == "AlertProvider")
    ours_spec = dict(_fields(ours["spec"]["versions"][0]["schema"]["openAPIV3Schema"]["properties"]["spec"]))
    found = dict(_fields(theirs["properties"]["spec"]))
    assert len(found) >= 7
    for path, node in found.items():
        assert path in ours_spec, path
        assert ours_spec[path]["type"] == node["type"], path
        assert set(node.get("enum", ())) <= set(ours_spec[path].get("enum", node.get("enum", ()))), path
    # Filled from Flagger's schema alone (every field, each type), it is valid here and reads each field.
    samples = {"type": "rocket", "address": "https://chat.example.com/hooks/x", "proxy": "http://proxy.test:3128"}
    spec = {k.split(".")[1]: samples.get(k.split(".")[1], "v") for k in found if k.count(".") == 1}
    spec["secretRef"] = {"name": "hook"}
    obj = provider(**spec)
    assert check_object(obj) == []
    parsed = parse_alert_provider(obj).spec
    assert (parsed.channel, parsed.username, parsed.secret_ref) == ("v", "v", "hook")
