"""One way to get a Kubernetes API client, for the CLI and the operator: a kubeconfig, or the pod's
service account when running in a cluster with none."""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import kubernetes
from kubernetes import client
from kubernetes.client.exceptions import ApiException
from kubernetes.config.incluster_config import InClusterConfigLoader
from urllib3.exceptions import HTTPError

SERVICE_ACCOUNT = Path("/var/run/secrets/kubernetes.io/serviceaccount")


def api_client(kubeconfig: Path | None = None, *, environ: Mapping[str, str] = os.environ,
               service_account: Path = SERVICE_ACCOUNT) -> client.ApiClient:
    """A client for `kubeconfig`, else $KUBECONFIG or ~/.kube/config, else (in a pod) its service
    account, whose token is read again as the kubelet rotates it."""
    if kubeconfig is None and _in_cluster(environ):
        cfg = client.Configuration()
        InClusterConfigLoader(str(service_account / "token"), str(service_account / "ca.crt"),
                              environ=environ).load_and_set(cfg)  # type: ignore[no-untyped-call]
        return client.ApiClient(cfg)
    api: client.ApiClient = kubernetes.config.new_client_from_config(  # type: ignore[no-untyped-call]
        str(kubeconfig) if kubeconfig else None
    )
    return api


def _in_cluster(environ: Mapping[str, str]) -> bool:
    has_kubeconfig = bool(environ.get("KUBECONFIG")) or (Path(environ.get("HOME", "~")) / ".kube/config").is_file()
    return not has_kubeconfig and bool(environ.get("KUBERNETES_SERVICE_HOST"))


def connection(api: client.ApiClient) -> dict[str, Any]:
    """Where and how `api` connects, in the terms of kopf's ConnectionInfo, so the operator's kopf
    runtime and its client use the very same kubeconfig."""
    cfg = api.configuration
    if cfg.refresh_api_key_hook is not None:  # a rotated service account token: read it again
        cfg.refresh_api_key_hook(cfg)
    auth = (cfg.api_key or {}).get("authorization") or (cfg.api_key or {}).get("BearerToken")
    token = auth.split(" ", 1)[1] if auth and " " in auth else auth
    return {
        "server": cfg.host,
        "token": token,
        "insecure": not cfg.verify_ssl,
        "ca_path": cfg.ssl_ca_cert,
        "certificate_path": cfg.cert_file,
        "private_key_path": cfg.key_file,
        "username": cfg.username or None,
        "password": cfg.password or None,
    }


def api_answers(api: client.ApiClient, timeout: float = 2.0) -> Callable[[], str | None]:
    """A check for the readiness probe: None when the API server answers `GET /version` within
    `timeout` seconds (every authenticated client may read it), else one line saying what failed."""
    versions = client.VersionApi(api)

    def check() -> str | None:
        try:
            versions.get_code(_request_timeout=timeout)
        except ApiException as e:
            return f"GET /version answered {e.status} {e.reason}"
        except (HTTPError, OSError) as e:
            return f"GET /version failed: {e}"
        return None

    return check
