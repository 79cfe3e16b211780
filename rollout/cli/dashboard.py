"""`rollout dashboard`: the web dashboard on its own, from any machine with a kubeconfig.

`rollout run --dashboard-addr` serves the same page beside the operator; the server is
`rollout.engine.dashboard`."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from rollout.cli.common import Subcommands, api, kube_args


def add(subcommands: Subcommands) -> None:
    p = subcommands.add_parser("dashboard", help="serve the web dashboard of every release",
                               description="Serve a web page listing every release live, one page per release, "
                                           "and promote / abort / retry buttons (written to status.command, as "
                                           "`rollout promote|abort|retry` do).")
    p.add_argument("--addr", default="127.0.0.1:8081", metavar="HOST:PORT",
                   help="where to serve it (default 127.0.0.1:8081; `:8081` for every interface)")
    p.add_argument("-n", "--namespace", action="append", default=[], metavar="NS",
                   help="show the releases of NS only (repeatable; default: all)")
    p.add_argument("--read-only", action="store_true", help="no promote, abort or retry buttons; refuse them")
    p.add_argument("--reports", type=Path, metavar="DIR",
                   help="the operator's reports folder, linked from each release")
    kube_args(p)
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    import threading

    from rollout.cli.releases import check_served
    from rollout.engine.dashboard import Releases, serve
    from rollout.settings import Settings, listen_address

    try:
        if listen_address(args.addr) is None:
            print("rollout dashboard: --addr 0 serves nothing; give a HOST:PORT", file=sys.stderr)
            return 2
    except ValueError as e:
        print(f"rollout dashboard: --addr {e}", file=sys.stderr)
        return 2
    client = api(args)
    # No kubeconfig, unreachable, no CRDs, no RBAC: one line and exit 1 (`rollout.cli.errors`), not a page
    # that can never list anything.
    check_served(client, args.namespace)
    try:
        server = serve(args.addr, Releases(client, args.namespace, timeout=Settings().api_timeout,
                                           reports=args.reports), read_only=args.read_only)
    except OSError as e:
        print(f"rollout dashboard: --addr {args.addr} cannot be served: {e.strerror}; pick another HOST:PORT",
              file=sys.stderr)
        return 2
    assert server is not None  # the address was checked above
    print(f"dashboard: {server.url}/" + (" (read-only)" if args.read_only else ""), flush=True)
    try:
        threading.Event().wait()
    except KeyboardInterrupt:
        pass
    finally:
        server.stop()
    return 0
