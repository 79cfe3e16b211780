"""Traffic routers, one module per provider, behind the `Router` protocol of `base`, and the
explicit registry that picks one for a release's `spec.provider`.
"""

from __future__ import annotations

from collections.abc import Callable

from kubernetes import client

from rollout.api.spec import PROVIDER_ALIASES, Provider
from rollout.routers.apisix import ApisixRouter
from rollout.routers.appmesh import AppMeshRouter
from rollout.routers.base import Router, RouterError
from rollout.routers.contour import ContourRouter
from rollout.routers.gatewayapi import GatewayAPIRouter
from rollout.routers.gloo import GlooRouter
from rollout.routers.istio import IstioRouter
from rollout.routers.knative import KnativeRouter
from rollout.routers.kubernetes import KubernetesRouter
from rollout.routers.kuma import KumaRouter
from rollout.routers.linkerd import LinkerdRouter
from rollout.routers.nginx import NginxRouter
from rollout.routers.skipper import SkipperRouter
from rollout.routers.smi import SMIRouter
from rollout.routers.traefik import TraefikRouter
from rollout.settings import Settings

__all__ = ["ROUTERS", "Router", "RouterError", "router_for"]

ROUTERS: dict[Provider, Callable[[client.ApiClient, Settings], Router]] = {
    Provider.GATEWAYAPI: GatewayAPIRouter,
    Provider.ISTIO: IstioRouter,
    Provider.NGINX: NginxRouter,
    Provider.SMI: SMIRouter,
    Provider.OSM: SMIRouter,  # Flagger routes Open Service Mesh with its SMI v1alpha2 router
    Provider.LINKERD: LinkerdRouter,
    Provider.KUBERNETES: KubernetesRouter,
    Provider.KUMA: KumaRouter,
    Provider.APPMESH: AppMeshRouter,
    Provider.CONTOUR: ContourRouter,
    Provider.GLOO: GlooRouter,
    Provider.KNATIVE: KnativeRouter,
    Provider.TRAEFIK: TraefikRouter,
    Provider.APISIX: ApisixRouter,
    Provider.SKIPPER: SkipperRouter,
}


def router_for(provider: Provider | str, api: client.ApiClient, settings: Settings) -> Router:
    """The router for `provider` (a Provider, its name, or one of Flagger's versioned aliases)."""
    key = PROVIDER_ALIASES.get(str(provider)) or next((p for p in Provider if p.value == str(provider)), None)
    if key is None or key not in ROUTERS:
        known = ", ".join([*(p.value for p in ROUTERS), *PROVIDER_ALIASES])
        raise ValueError(f"unknown traffic provider {str(provider)!r}; known: {known}")
    return ROUTERS[key](api, settings)
