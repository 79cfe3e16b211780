"""`rollout demo`: the whole loop on the embedded sandbox.

The demo is part of the sandbox distribution (`sandbox.demo`), so it is imported here, lazily, only
when the subcommand runs; without it the command says which install brings it.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from rollout.cli.common import Subcommands, no_sandbox


def add(subcommands: Subcommands) -> None:
    p = subcommands.add_parser(
        "demo", help="the whole loop on the embedded sandbox: a good release promoted, a bad one reverted in Git",
        description="Start the sandbox (API, data plane, Prometheus), a local Git remote with an example app, "
                    "a GitSource and the operator; commit a healthy v2 and a v3 failing 10% of requests.")
    p.add_argument("--provider", default="gatewayapi", choices=("gatewayapi", "istio", "linkerd", "nginx", "smi",
                                                                "kubernetes",
                                                                "kuma", "appmesh", "contour", "gloo", "knative",
                                                                "traefik", "apisix", "skipper"))
    p.add_argument("--judge", default="threshold", choices=("threshold", "compare", "sequential"))
    p.add_argument("--interval", type=float, default=5.0, metavar="SECONDS", help="analysis interval (default 5)")
    p.add_argument("--rps", type=float, default=50.0, help="simulated requests per second (default 50)")
    p.add_argument("--mirror", action="store_true",
                   help="istio or gatewayapi: judge v2 and v3 on mirrored traffic while users stay on the primary "
                        "(Flagger's blue/green with traffic mirroring)")
    p.add_argument("--keep", action="store_true", help="stay up afterwards for exploring (Ctrl-C stops)")
    p.add_argument("--json", action="store_true", help="no live view; print one result object")
    p.add_argument("--dir", type=Path, metavar="DIR", help="keep the demo's files here (default: a temp folder)")
    p.add_argument("--timeout", type=float, default=240.0, metavar="SECONDS", help="longest wait for a release")
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    try:
        from sandbox.demo import Options, run_demo
    except ImportError as e:
        return no_sandbox("demo", e)

    if args.mirror and args.provider not in ("istio", "gatewayapi"):
        print(f"rollout demo: --mirror needs --provider istio or gatewayapi (provider {args.provider} cannot "
              "mirror traffic)", file=sys.stderr)
        return 2
    if args.provider == "apisix" and args.judge != "threshold":
        print(f"rollout demo: --judge {args.judge} compares the canary with the primary, and APISIX counts both in "
              "one series (by route): use --judge threshold with --provider apisix", file=sys.stderr)
        return 2
    return run_demo(Options(provider=args.provider, judge=args.judge, interval=args.interval, rps=args.rps,
                            mirror=args.mirror, keep=args.keep, json=args.json, workdir=args.dir, timeout=args.timeout))
