"""`rollout sandbox up`: run the embedded local cluster until interrupted.

The sandbox is a separate distribution (`rollout-sandbox`, the `sandbox` import package), so it is
imported here, lazily, only when the subcommand runs; without it the command says which install
brings it.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from rollout.cli.common import Subcommands, no_sandbox


def add(subcommands: Subcommands) -> None:
    p = subcommands.add_parser(
        "sandbox",
        help="run the embedded local cluster (API server and simulated Deployment and DaemonSet controllers)",
        description="The embedded cluster the demo and the end-to-end tests use; no real Kubernetes needed.",
    )
    actions = p.add_subparsers(dest="action", metavar="ACTION", required=True)
    up = actions.add_parser("up", help="start it on 127.0.0.1 and run until interrupted")
    up.add_argument("--kubeconfig", type=Path, metavar="PATH", help="where to write it (default: a temp file)")
    up.add_argument("--dataplane", action="store_true",
                    help="simulate traffic by the live router objects, export mesh metrics and run Prometheus on them")
    up.add_argument("--rps", type=_non_negative, metavar="N",
                    help="requests per second per app (implies --dataplane; default 50)")
    up.add_argument("--seed", type=int, default=0, metavar="N",
                    help="seed of the data plane's random draws (with --dataplane)")
    up.set_defaults(run=run_up)


def _non_negative(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
    if not value >= 0:
        raise argparse.ArgumentTypeError(f"must not be negative: {text!r}")
    return value


def run_up(args: argparse.Namespace) -> int:
    try:
        from sandbox import DataPlaneConfig, serve
    except ImportError as e:
        return no_sandbox("sandbox up", e)

    if not (args.dataplane or args.rps is not None):
        return serve(args.kubeconfig)
    from sandbox.prometheus import PrometheusNotFoundError

    config = DataPlaneConfig(rps=50.0 if args.rps is None else args.rps, seed=args.seed)
    try:
        return serve(args.kubeconfig, dataplane=config, prometheus=True)
    except PrometheusNotFoundError as e:
        print(f"rollout sandbox up: {e}", file=sys.stderr)
        return 1
