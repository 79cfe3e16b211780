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


def secret_data(api: client.ApiClient, namespace: str, name: str, *, timeout: float) -> dict[str, str]:
    """A Secret's keys as text (`stringData` included), read fresh. SecretError when it does not
    exist or a value is not base64 UTF-8 text; other API errors are raised as they come."""
    try:
        secret = client.CoreV1Api(api).read_namespaced_secret(name, namespace, _request_timeout=timeout)
    except ApiException as e:
        if e.status == 404:
            raise SecretError(f"Secret {namespace}/{name} (secretRef) does not exist") from None
        raise
    data: dict[str, str] = {}
    for key, value in (secret.data or {}).items():
        try:
            data[key] = base64.b64decode(value).decode()
        except (ValueError, UnicodeDecodeError):
            raise SecretError(f"Secret {namespace}/{name}: key {key} is not base64 UTF-8 text") from None
    data.update(secret.string_data or {})
    return data


def read_credentials(api: client.ApiClient, namespace: str, name: str, *, timeout: float) -> Credentials:
    """Credentials from a Secret: `username`/`password`, or `identity` + `known_hosts`."""
    data = secret_data(api, namespace, name, timeout=timeout)
    creds = Credentials.from_secret(data)
    if not (creds.password or creds.identity):
        raise SecretError(f"Secret {namespace}/{name} has neither `password` (with `username`) "
                          "nor `identity` (with `known_hosts`)")
    return creds
