"""Flagger"s documented Canaries, apiVersion changed and nothing else, against what they still get.

Each file in tests/data/flagger/canaries (copied from Flagger"s docs and e2e tests, origin in its
header) is validated as `rollout validate` does; EXPECTED below is the one table to edit when a
field becomes supported: a refused field is listed by its path, any other error as `path: message`.
`python -m tests.flagger_canaries` prints the same by provider.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.flagger_canaries import files, problems


def provider(name: str) -> str:
    return f"spec.provider: unknown value, got {name!r}"


def mesh(name: str) -> str:
    """No spec.provider, and the install's mesh provider is not one rollout routes."""
    return f"--mesh-provider: unknown value, got {name!r}"


EXPECTED: dict[str, list[str]] = {
    "docs-tutorials-apisix-progressive-delivery-1": [],
    "docs-tutorials-appmesh-progressive-delivery-1": [
        "spec.service.rewrite: is not supported for provider 'appmesh': only gatewayapi and istio write it into the "
        "route"],  # Flagger's appmesh router ignores it
    "docs-tutorials-contour-progressive-delivery-1": [],
    "docs-tutorials-gatewayapi-progressive-delivery-1": [],
    "docs-tutorials-gloo-progressive-delivery-1": [],
    "docs-tutorials-istio-ab-testing-1": [],
    "docs-tutorials-istio-progressive-delivery-1": [],
    "docs-tutorials-keda-scaledobject-1": [],
    "docs-tutorials-knative-progressive-delivery-1": [],
    "docs-tutorials-kubernetes-blue-green-1": [],
    "docs-tutorials-kuma-progressive-delivery-1": [],
    "docs-tutorials-linkerd-progressive-delivery-1": [],
    "docs-tutorials-nginx-progressive-delivery-1": [],
    "docs-tutorials-prometheus-operator-1": [],
    "docs-tutorials-skipper-progressive-delivery-1": [],
    "docs-tutorials-traefik-progressive-delivery-1": [],
    "docs-usage-how-it-works-1": [],
    "test-apisix-test-canary-1": [],
    "test-contour-test-canary-1": [],
    "test-contour-test-canary-2": [],
    "test-contour-test-canary-3": [],
    "test-gatewayapi-test-ab-1": [],
    "test-gatewayapi-test-bg-1": [],
    "test-gatewayapi-test-canary-1": [],
    "test-gatewayapi-test-canary-2": [],
    "test-gatewayapi-test-session-affinity-1": [],
    "test-gloo-test-canary-1": [],
    "test-gloo-test-canary-2": [],
    "test-istio-test-canary-1": [],
    "test-istio-test-canary-2": [],
    "test-istio-test-canary-3": [],
    "test-istio-test-canary-4": [],
    "test-istio-test-canary-5": [],
    "test-istio-test-delegation-1": [],
    "test-istio-test-session-affinity-1": [],
    "test-istio-test-skip-analysis-1": [],
    "test-keda-test-scaledobject-1": [],
    "test-knative-test-canary-1": [],
    "test-knative-test-canary-2": [],
    "test-kubernetes-test-daemonset-1": [],
    "test-kubernetes-test-daemonset-2": [],
    "test-kubernetes-test-deployment-1": [],
    "test-kubernetes-test-hpa-1": [],
    "test-kuma-test-canary-1": [],
    "test-kuma-test-canary-2": [],
    "test-linkerd-test-canary-1": [],
    "test-linkerd-test-canary-2": [],
    "test-linkerd-test-canary-3": [],
    "test-linkerd-test-steps-1": [],
    "test-nginx-test-canary-1": [],
    "test-nginx-test-canary-2": [],
    "test-nginx-test-lifecycle-1": [],
    "test-nginx-test-lifecycle-2": [],
    "test-skipper-test-canary-1": [],
    "test-traefik-test-canary-1": [],
}


def test_every_kept_canary_has_an_expectation() -> None:
    assert sorted(EXPECTED) == [p.stem for p in files()]
    assert len(EXPECTED) >= 50


@pytest.mark.parametrize("path", files(), ids=[p.stem for p in files()])
def test_flagger_canary_gets_exactly_the_expected_errors(path: Path) -> None:
    assert problems(path) == sorted(EXPECTED[path.stem])


def test_each_kept_canary_names_its_origin() -> None:
    for path in files():
        assert path.read_text().startswith("# Origin: https://github.com/fluxcd/flagger/blob/"), path.name
