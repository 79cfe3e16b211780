"""`rollout status [NAME]`: a table of releases, or one in full; `--watch` prints again on change.

Listing and formatting are `rollout.cli.releases`, shared with `rollout promote|abort|retry`."""

from __future__ import annotations

import argparse
import sys

from rollout.cli.common import Subcommands, api, kube_args


def add(subcommands: Subcommands) -> None:
    p = subcommands.add_parser("status", help="phase, weight, failed checks and last metric values of releases")
    p.add_argument("name", nargs="?", help="one release, shown in full: why, candidate, Git, metrics, conditions "
                                           "(default: a table of all)")
    p.add_argument("-n", "--namespace", help="namespace (default: all)")
    p.add_argument("-w", "--watch", action="store_true", help="print again whenever it changes, until interrupted")
    kube_args(p)
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    import time

    from rollout.cli.releases import detail, releases, table

    client = api(args)
    shown = None
    while True:
        found = releases(client, args.namespace, args.name)
        if args.name and not found:
            where = f" in namespace {args.namespace}" if args.namespace else ""
            print(f"rollout status: no Canary or BlueGreen named {args.name}{where}", file=sys.stderr)
            return 1
        text = "\n".join(detail(o) for o in found) if args.name else table(found)
        if text != shown:
            sys.stdout.write(text if shown is None else "\n" + text)
            sys.stdout.flush()
            shown = text
        if not args.watch:
            return 0
        time.sleep(2)
