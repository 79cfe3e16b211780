"""Flagger's documented Canaries (its docs and e2e tests, kept in tests/data/flagger/canaries with
their origin), validated here with only their apiVersion changed.

`python -m tests.flagger_canaries` prints how many were checked, by provider, and what each
still refuses: the provider is the Canary's `spec.provider`, else the install-wide mesh provider
of the Flagger install its tutorial or e2e test uses (`-mesh-provider`, Flagger's default istio).
"""

from __future__ import annotations

import re
import sys
from collections import defaultdict
from pathlib import Path
from typing import Any

import yaml

from rollout.api.kinds import API_VERSION
from rollout.api.manifests import check_object
from rollout.api.spec import DEFAULT_MESH_PROVIDER, provider_named

CANARIES = Path(__file__).resolve().parent / "data" / "flagger" / "canaries"

# The mesh provider of the Flagger install each file's tutorial or e2e test uses (the tutorials'
# `--set meshProvider=...`, test/<dir>/install.sh and kustomize/<dir>/patch.yaml); istio when it
# names none (Flagger's default).
INSTALL_PROVIDER = {
    "docs-tutorials-apisix": "apisix", "docs-tutorials-contour": "contour",
    "docs-tutorials-gatewayapi": "gatewayapi:v1", "docs-tutorials-gloo": "gloo",
    "docs-tutorials-istio": "istio", "docs-tutorials-keda": "kubernetes", "docs-tutorials-knative": "knative",
    "docs-tutorials-kubernetes": "kubernetes", "docs-tutorials-kuma": "kuma",
    "docs-tutorials-linkerd": "gatewayapi:v1beta1", "docs-tutorials-nginx": "nginx",
    "docs-tutorials-prometheus-operator": "kubernetes", "docs-tutorials-skipper": "skipper",
    "docs-tutorials-traefik": "traefik",
    "test-apisix": "apisix", "test-contour": "contour", "test-gatewayapi": "gatewayapi:v1", "test-gloo": "gloo",
    "test-istio": "istio", "test-keda": "kubernetes", "test-knative": "knative", "test-kubernetes": "kubernetes",
    "test-kuma": "kuma", "test-linkerd": "gatewayapi:v1beta1", "test-nginx": "nginx", "test-skipper": "skipper",
    "test-traefik": "traefik",
}
REFUSED = "not supported by rollout"


def files() -> list[Path]:
    return sorted(CANARIES.glob("*.yaml"))


def load(path: Path) -> dict[str, Any]:
    obj: dict[str, Any] = yaml.safe_load(path.read_text())
    return {**obj, "apiVersion": API_VERSION}


def provider_of(path: Path) -> str:
    spec = load(path).get("spec") or {}
    if spec.get("provider"):
        return str(spec["provider"])
    prefix = max((p for p in INSTALL_PROVIDER if path.stem.startswith(p + "-")), key=len, default=None)
    return INSTALL_PROVIDER[prefix] if prefix else "istio"


def problems(path: Path) -> list[str]:
    """What validation says of the Canary, judged as `rollout validate --mesh-provider` with the mesh
    provider of the Flagger install it comes from: a refused field as its path, any other error as
    `path: message` (a list of allowed values shortened to `unknown value`)."""
    obj = load(path)
    mesh = provider_of(path)
    if not (obj.get("spec") or {}).get("provider") and provider_named(mesh) is None:
        return [f"--mesh-provider: unknown value, got {mesh!r}"]
    out = []
    for e in check_object(obj, provider_named(mesh) or DEFAULT_MESH_PROVIDER) or []:
        if REFUSED in e.message:
            out.append(e.path)
        else:
            out.append(f"{e.path}: {re.sub(r'must be one of .*, got', 'unknown value, got', e.message)}")
    return sorted(out)


def main() -> int:
    by_provider: dict[str, list[Path]] = defaultdict(list)
    for path in files():
        by_provider[provider_of(path)].append(path)
    total = sum(len(v) for v in by_provider.values())
    clean = sum(not problems(p) for p in files())
    print(f"{total} Flagger Canaries checked, {clean} valid as they are (apiVersion changed only)")
    for provider in sorted(by_provider):
        paths = by_provider[provider]
        ok = sum(not problems(p) for p in paths)
        print(f"\n{provider}: {len(paths)} checked, {ok} valid")
        for path in paths:
            found = problems(path)
            print(f"  {path.stem}: {'valid' if not found else '; '.join(found)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
