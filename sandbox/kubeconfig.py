"""A kubeconfig file pointing at the sandbox, readable by kopf, the official client and kubectl.

The sandbox serves plain HTTP on 127.0.0.1; both kopf's kubeconfig login and the
`kubernetes` client accept an `http://` server and send the (dummy) bearer token.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import yaml

__all__ = ["kubeconfig_dict", "write_kubeconfig"]

CONTEXT = "rollout-sandbox"


def kubeconfig_dict(
    server: str, *, token: str = "rollout-sandbox", namespace: str = "default"
) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [{"name": CONTEXT, "cluster": {"server": server}}],
        "users": [{"name": CONTEXT, "user": {"token": token}}],
        "contexts": [
            {"name": CONTEXT, "context": {"cluster": CONTEXT, "user": CONTEXT, "namespace": namespace}}
        ],
        "current-context": CONTEXT,
        "preferences": {},
    }


def write_kubeconfig(
    path: Path, server: str, *, token: str = "rollout-sandbox", namespace: str = "default"
) -> Path:
    """Write the kubeconfig (mode 0600, as kubectl does) and return its path."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    text = yaml.safe_dump(kubeconfig_dict(server, token=token, namespace=namespace), sort_keys=False)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as f:
        f.write(text)
    return path
