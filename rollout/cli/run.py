"""`rollout run`: start the operator (its kopf registrations are `rollout.handlers`).

Its settings (timeouts, backoffs, the pool size, the Prometheus address) are flags made from
`rollout.settings`, each also read from its ROLLOUT_* variable; they become one `Settings`.
"""

from __future__ import annotations

import argparse
import errno
import os
import socket
import sys
import tempfile
from pathlib import Path

from rollout.cli.common import Subcommands, kube_args, mesh_provider_problem
from rollout.settings import Settings, boolean, described, listen_address, option, type_of

_METAVARS = {str: "URL", float: "SECONDS", int: "N", bool: "true|false"}
_NAMED_METAVARS = {"mesh_provider": "NAME", "cluster_name": "NAME", "metrics_addr": "HOST:PORT",
                   "dashboard_addr": "HOST:PORT", "webhook_addr": "HOST:PORT",
                   "leader_election_namespace": "NS"}


def add(subcommands: Subcommands) -> None:
    p = subcommands.add_parser("run", help="start the operator", description="Run the operator until interrupted.")
    where = p.add_mutually_exclusive_group()
    where.add_argument("-n", "--namespace", action="append", default=[], metavar="NS", help="watch NS (repeatable)")
    where.add_argument("-A", "--all-namespaces", action="store_true", help="watch every namespace (the default)")
    kube_args(p)
    p.add_argument("--reports", type=Path, metavar="DIR", help="write each run's analysis report (JSON, MD, HTML) here")
    p.add_argument("--git-cache", type=Path, metavar="DIR",
                   default=Path(os.environ.get("ROLLOUT_GIT_CACHE", Path(tempfile.gettempdir()) / "rollout-git")),
                   help="where Git clones are kept between syncs (default $ROLLOUT_GIT_CACHE or a temp folder)")
    tuning = p.add_argument_group("settings", "each can also be set by the environment variable named; a flag wins")
    for name, flag, env, text in described():
        kind = type_of(name)
        metavar = _NAMED_METAVARS.get(name) or _METAVARS[kind]
        # A yes/no flag alone means yes (`--leader-elect`), as Go's flags read it.
        extra = {"nargs": "?", "const": True} if kind is bool else {}
        tuning.add_argument(flag, dest=name, type=boolean if kind is bool else kind, metavar=metavar,
                            help=f"{text} [${env}]", **extra)
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    try:
        settings = Settings.build(os.environ, **{name: getattr(args, name) for name, *_ in described()})
    except ValueError as e:
        print(f"rollout run: {e}", file=sys.stderr)
        return 2
    if (problem := mesh_provider_problem(settings.mesh_provider)) is not None:
        print(f"rollout run: --mesh-provider (or ROLLOUT_MESH_PROVIDER) {problem}", file=sys.stderr)
        return 2
    # Ports first: a busy one is this machine's to fix and says so, whatever the cluster's state.
    for name, none in _SERVED.items():
        if (busy := _busy(getattr(settings, name))) is not None:
            print(_cannot_serve(name, getattr(settings, name), busy, none), file=sys.stderr)
            return 2
    from rollout.cli.common import api
    from rollout.cli.releases import check_served

    client = api(args)
    check_served(client, args.namespace)  # no kubeconfig, unreachable, no CRDs, no RBAC: one line, exit 1

    from rollout.engine.leader import LeaderElector
    from rollout.handlers import run as run_operator

    # Its readiness() is what /readyz asks when leader election is on.
    elector = LeaderElector.from_settings(client, settings) if settings.leader_elect else None
    try:
        run_operator(args.namespace, kubeconfig=args.kubeconfig, settings=settings, reports=args.reports,
                     git_cache=args.git_cache, elector=elector)
    except OSError as e:
        if e.errno not in (errno.EADDRINUSE, errno.EADDRNOTAVAIL, errno.EACCES):
            raise
        # The dashboard's and the webhooks' errors name their flag (taken between the check above and now).
        name = "webhook_addr" if e.filename == "--webhook-addr" else "dashboard_addr" if e.filename else "metrics_addr"
        print(_cannot_serve(name, getattr(settings, name), e.strerror or str(e), _SERVED[name]), file=sys.stderr)
        return 2
    return 0


# The servers `rollout run` starts, by setting, and what `0` gives instead.
_SERVED = {"metrics_addr": "no metrics and health server", "dashboard_addr": "no dashboard",
           "webhook_addr": "no push webhooks"}


def _cannot_serve(name: str, addr: str, why: str, none: str) -> str:
    return f"rollout run: {option(name)} {addr} cannot be served: {why}; pick another HOST:PORT (or 0 for {none})"


def _busy(addr: str) -> str | None:
    """Why `addr` cannot be listened on now (taken, not this machine's, not allowed), or None."""
    where = listen_address(addr)
    if where is None:
        return None
    host, port = where
    try:
        for family, kind, proto, _, address in socket.getaddrinfo(host or None, port, type=socket.SOCK_STREAM,
                                                                  flags=socket.AI_PASSIVE):
            with socket.socket(family, kind, proto) as probe:
                probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
                probe.bind(address)
    except OSError as e:
        if e.errno in (errno.EADDRINUSE, errno.EADDRNOTAVAIL, errno.EACCES):
            return e.strerror or str(e)
    return None
