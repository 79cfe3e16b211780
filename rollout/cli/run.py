"""`rollout run`: start the operator (its kopf registrations are `rollout.handlers`)."""

from __future__ import annotations

import argparse
import os
import tempfile
from pathlib import Path

from rollout.cli.common import Subcommands, kube_args


def add(subcommands: Subcommands) -> None:
    p = subcommands.add_parser("run", help="start the operator", description="Run the operator until interrupted.")
    where = p.add_mutually_exclusive_group()
    where.add_argument("-n", "--namespace", action="append", default=[], metavar="NS", help="watch NS (repeatable)")
    where.add_argument("-A", "--all-namespaces", action="store_true", help="watch every namespace (the default)")
    kube_args(p)
    p.add_argument("--prometheus", default=os.environ.get("ROLLOUT_PROMETHEUS_URL", "http://prometheus.monitoring:9090"),
                   metavar="URL", help="Prometheus for the built-in metrics (default $ROLLOUT_PROMETHEUS_URL)")
    p.add_argument("--reports", type=Path, metavar="DIR", help="write each run's analysis report (JSON, MD, HTML) here")
    p.add_argument("--git-cache", type=Path, metavar="DIR",
                   default=Path(os.environ.get("ROLLOUT_GIT_CACHE", Path(tempfile.gettempdir()) / "rollout-git")),
                   help="where Git clones are kept between syncs (default $ROLLOUT_GIT_CACHE or a temp folder)")
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from rollout.handlers import run as run_operator

    run_operator(args.namespace, kubeconfig=args.kubeconfig, prometheus=args.prometheus, reports=args.reports,
                 git_cache=args.git_cache)
    return 0
