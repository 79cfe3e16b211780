"""What several subcommands share: the --kubeconfig option, the API client it leads to, and the one
line printed when a subcommand needs the sandbox and it is not installed."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

from rollout.cli.errors import Problem

if TYPE_CHECKING:
    from rollout.api.spec import Provider

Subcommands = Any  # argparse's _SubParsersAction is private

SANDBOX_INSTALL = "pip install 'rollout[sandbox]'"


def kube_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--kubeconfig", type=Path, metavar="PATH", help="default: $KUBECONFIG or ~/.kube/config")


def api(args: argparse.Namespace) -> Any:
    """The API client the command's --kubeconfig (else $KUBECONFIG, ~/.kube/config, the pod's service
    account) leads to; a `Problem` saying which was looked for when there is none."""
    import os

    import yaml
    from kubernetes.config.config_exception import ConfigException

    from rollout.engine.kube import api_client

    path: Path | None = getattr(args, "kubeconfig", None)
    if path is not None and not path.is_file():
        what = "not a file" if path.exists() else "no such file"
        raise Problem(f"no usable kubeconfig (--kubeconfig {path}: {what}); pass the kubeconfig of a cluster "
                      "(`rollout sandbox up --kubeconfig PATH` writes one for the local sandbox)")
    try:
        return api_client(path)
    except (ConfigException, yaml.YAMLError) as e:
        env = os.environ.get("KUBECONFIG")
        if path is None and not env:
            where = "no --kubeconfig, KUBECONFIG unset, no ~/.kube/config, not in a pod"
        else:
            where = f"{f'--kubeconfig {path}' if path is not None else f'KUBECONFIG={env}'}: {e}"
        raise Problem(f"no usable kubeconfig ({where}); pass --kubeconfig PATH or set KUBECONFIG "
                      "(`rollout sandbox up --kubeconfig PATH` writes one for the local sandbox)") from e


def cluster_problem(error: BaseException, what: str) -> str | None:
    """One line saying why reading `what` from the cluster failed and what to do, for the errors that
    mean the cluster cannot be read (no kubeconfig, unreachable, refused); None for any other error.
    (`rollout.cli.errors` says the rest, for every command.)"""
    from rollout.cli.errors import cluster_problem as problem

    return problem(error, what)


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
