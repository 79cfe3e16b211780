"""Git credentials from a Kubernetes Secret (Flux's keys), read fresh for every use.

`username`/`password` for HTTPS (a token as the password), or `identity` (a private key) with
`known_hosts` for SSH. They go to `repo.git_environment` and nowhere else: not into logs,
status, Events or commit messages.
"""

from __future__ import annotations

import base64

from kubernetes import client
from kubernetes.client.exceptions import ApiException

from .repo import Credentials


class SecretError(Exception):
    """The credentials Secret is missing or unusable (the message names it and the keys it needs)."""


def read_credentials(api: client.ApiClient, namespace: str, name: str, *, timeout: float) -> Credentials:
    """Credentials from a Secret: `username`/`password`, or `identity` + `known_hosts`."""
    try:
        secret = client.CoreV1Api(api).read_namespaced_secret(name, namespace, _request_timeout=timeout)
    except ApiException as e:
        if e.status == 404:
            raise SecretError(f"Secret {namespace}/{name} (secretRef) does not exist") from None
        raise
    data = {k: base64.b64decode(v).decode() for k, v in (secret.data or {}).items()}
    data.update(secret.string_data or {})
    creds = Credentials.from_secret(data)
    if not (creds.password or creds.identity):
        raise SecretError(f"Secret {namespace}/{name} has neither `password` (with `username`) "
                          "nor `identity` (with `known_hosts`)")
    return creds
