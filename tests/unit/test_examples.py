"""Every manifest in examples/ is one a user can copy: it validates, and together they cover the API."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
import yaml

from rollout.api.manifests import is_rollout_kind
from rollout.api.parse import parse_resource
from rollout.api.spec import AlertProvider, BlueGreen, Canary, GitSource, Judge, MetricTemplate, Provider
from rollout.cli.validate import validate_paths

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"
FILES = sorted(p for p in EXAMPLES.iterdir() if p.suffix in (".yaml", ".yml"))
# Examples taken from a Flagger tutorial whose Canary names no provider: the operator's default there.
MESH_PROVIDERS = {"flagger-podinfo.yaml": Provider.GATEWAYAPI}


def resources() -> list[Any]:
    found = []
    for path in FILES:
        for doc in yaml.safe_load_all(path.read_text()):
            if isinstance(doc, dict) and is_rollout_kind(doc):
                found.append(parse_resource(doc, MESH_PROVIDERS.get(path.name, Provider.ISTIO)))
    return found


@pytest.mark.parametrize("path", FILES, ids=[p.name for p in FILES])
def test_example_is_valid(path: Path) -> None:
    report = validate_paths([str(path)], mesh_provider=MESH_PROVIDERS.get(path.name))
    assert [p.line() for p in report.problems] == []
    # Every example shows a rollout kind, but the namespaces the others need.
    assert report.resources >= 1 or path.name == "00-namespaces.yaml"


def test_every_example_namespace_is_created() -> None:
    created = {doc["metadata"]["name"] for doc in yaml.safe_load_all((EXAMPLES / "00-namespaces.yaml").read_text())
               if isinstance(doc, dict)}
    used = {doc["metadata"]["namespace"] for path in FILES for doc in yaml.safe_load_all(path.read_text())
            if isinstance(doc, dict) and doc.get("kind") != "Namespace" and "namespace" in doc.get("metadata", {})}
    assert used <= created


def test_the_promised_examples_exist() -> None:
    names = {p.name for p in FILES}
    promised = {
        *(f"canary-{p}.yaml" for p in Provider),
        "bluegreen.yaml",
        "canary-ab-testing.yaml",
        "metrictemplate.yaml",
        "gitsource.yaml",
        "canary-git-url.yaml",
        "canary-sequential.yaml",
        "flagger-podinfo.yaml",
        "canary-daemonset.yaml",
    }
    assert promised <= names


def test_examples_cover_every_kind_provider_and_mode() -> None:
    found = resources()
    assert {type(r) for r in found} == {Canary, BlueGreen, MetricTemplate, GitSource, AlertProvider}
    canaries = [r for r in found if isinstance(r, Canary)]
    assert {c.spec.provider for c in canaries} == set(Provider)
    analyses = [c.spec.analysis for c in canaries]
    assert any(a.match and a.iterations for a in analyses), "an A/B test"
    assert {c.spec.target_ref.kind for c in canaries} == {"Deployment", "DaemonSet", "Service"}  # Service: Knative
    assert any(a.step_weights for a in analyses) and any(a.step_weight for a in analyses)
    assert any(a.judge == Judge.SEQUENTIAL and all(m.compare for m in a.metrics) for a in analyses)
    assert any(m.template_ref for a in analyses for m in a.metrics)
    gits = [c.spec.git for c in canaries if c.spec.git]
    assert any(g.source for g in gits) and any(g.url for g in gits)
    # Every templateRef and git.source points at an example that exists.
    templates = {(t.metadata.namespace, t.metadata.name) for t in found if isinstance(t, MetricTemplate)}
    for c in canaries:
        for m in c.spec.analysis.metrics:
            if m.template_ref:
                assert (m.template_ref.namespace or c.metadata.namespace, m.template_ref.name) in templates
    sources = {(s.metadata.namespace, s.metadata.name) for s in found if isinstance(s, GitSource)}
    for c in canaries:
        if c.spec.git and c.spec.git.source:
            assert (c.metadata.namespace, c.spec.git.source) in sources
    # Every alert's providerRef points at an example AlertProvider.
    providers = {(p.metadata.namespace, p.metadata.name) for p in found if isinstance(p, AlertProvider)}
    refs = [(a.provider_namespace or c.metadata.namespace, a.provider)
            for c in canaries for a in c.spec.analysis.alerts]
    assert refs and set(refs) <= providers


def test_every_yaml_block_of_the_readme_validates(tmp_path: Path) -> None:
    readme = (EXAMPLES.parent / "README.md").read_text()
    blocks = re.findall(r"```yaml\n(.*?)```", readme, re.S)
    assert len(blocks) >= 2
    for number, block in enumerate(blocks):
        path = tmp_path / f"block{number}.yaml"
        path.write_text(block)
        report = validate_paths([str(path)])
        assert [p.line() for p in report.problems] == [] and report.resources >= 1, f"README yaml block {number}"
