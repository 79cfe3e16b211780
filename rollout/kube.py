"""One way to get a Kubernetes API client from a kubeconfig, for the CLI and the operator."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import kubernetes
from kubernetes import client


def api_client(kubeconfig: Path | None = None) -> client.ApiClient:
    """A client for `kubeconfig`, else $KUBECONFIG or ~/.kube/config."""
    api: client.ApiClient = kubernetes.config.new_client_from_config(  # type: ignore[no-untyped-call]
        str(kubeconfig) if kubeconfig else None
    )
    return api


def connection(api: client.ApiClient) -> dict[str, Any]:
    """Where and how `api` connects, in the terms of kopf's ConnectionInfo, so the operator's kopf
    runtime and its client use the very same kubeconfig."""
    cfg = api.configuration
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
