"""What several subcommands share: the --kubeconfig option, the API client it leads to, and the one
line printed when a subcommand needs the sandbox and it is not installed."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from rollout.api.spec import Provider

Subcommands = Any  # argparse's _SubParsersAction is private

SANDBOX_INSTALL = "pip install 'rollout[sandbox]'"


def kube_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--kubeconfig", type=Path, metavar="PATH", help="default: $KUBECONFIG or ~/.kube/config")


def api(args: argparse.Namespace) -> Any:
    from rollout.engine.kube import api_client

    return api_client(args.kubeconfig)


def cluster_problem(error: BaseException, what: str) -> str | None:
    """One line saying why reading `what` from the cluster failed and what to do, for the errors that
    mean the cluster cannot be read (no kubeconfig, unreachable, refused); None for any other error."""
    from kubernetes.client.exceptions import ApiException
    from kubernetes.config.config_exception import ConfigException
    from urllib3.exceptions import HTTPError

    if isinstance(error, ConfigException):
        return f"no usable kubeconfig ({error}); set KUBECONFIG or pass --kubeconfig PATH"
    if isinstance(error, ApiException):
        if error.status == 404:
            return f"the cluster serves no {what}: are rollout's CRDs installed (kubectl apply -f crds/)?"
        if error.status in (401, 403):
            return f"not allowed to list {what} ({error.status} {error.reason}); check the kubeconfig's user and RBAC"
        return f"listing {what} failed: {error.status} {error.reason}"
    if isinstance(error, HTTPError | OSError):
        return f"cannot reach the Kubernetes API ({type(error).__name__}: {str(error)[:200]}); is the cluster up?"
    return None


def no_sandbox(command: str, error: ImportError) -> int:
    """The sandbox is a separate distribution: say which install brings it, in one line; exit 1."""
    print(f"rollout {command}: the sandbox is not installed ({error}); {SANDBOX_INSTALL} brings it", file=sys.stderr)
    return 1


def mesh_provider_problem(name: str) -> str | None:
    """What is wrong with a `--mesh-provider` name, or None when it names a traffic provider."""
    from rollout.api.spec import provider_named, provider_names

    if provider_named(name) is not None:
        return None
    return f"must be one of {', '.join(provider_names())}, got {name!r}"


def mesh_provider(flag: str | None) -> Provider:
    """The provider `--mesh-provider` (else $ROLLOUT_MESH_PROVIDER, else Flagger's istio) names, as a
    `Provider`; ValueError saying what is accepted when it names none."""
    import os

    from rollout.api.spec import provider_named
    from rollout.settings import Settings

    name = flag or os.environ.get("ROLLOUT_MESH_PROVIDER") or Settings().mesh_provider
    if (problem := mesh_provider_problem(name)) is not None:
        raise ValueError(f"--mesh-provider (or ROLLOUT_MESH_PROVIDER) {problem}")
    provider = provider_named(name)
    assert provider is not None
    return provider
