"""`rollout analyze`: the command's arguments; the replay itself is `rollout.cli.analyzer`."""

from __future__ import annotations

import argparse
import os
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

from rollout.api.durations import parse_duration
from rollout.api.spec import Judge
from rollout.cli.common import Subcommands


def add(subcommands: Subcommands) -> None:
    p = subcommands.add_parser(
        "analyze",
        help="replay a Canary's analysis over a past window of its metric sources",
        description=(
            "Replay the analysis of a Canary (or BlueGreen) as if its release had started at --start: one "
            "line per tick (time, weight, each metric for canary and primary, verdict), then the outcome. "
            "Exit 0 promote (or no decision in the window), 3 rollback, 2 usage or connection error."
        ),
    )
    p.add_argument("-f", "--file", required=True, type=Path, help="manifest with the Canary (and MetricTemplates)")
    p.add_argument("--prometheus", metavar="URL",
                   help="Prometheus base URL, for built-in metrics and inline queries (a MetricTemplate's metrics "
                        "ask its own provider)")
    p.add_argument("--provider-secret", action="append", default=[], metavar="NAME=FILE",
                   help="the keys of the Secret a MetricTemplate's provider.secretRef names: a Secret manifest "
                        "(YAML or JSON) or KEY=VALUE lines; repeatable. Without it, environment variables "
                        "ROLLOUT_SECRET_<NAME>_<KEY> are read (e.g. ROLLOUT_SECRET_PROM_AUTH_PASSWORD)"),
    p.add_argument("--start", required=True, metavar="T", help="RFC 3339 time, unix seconds, or now-2h")
    p.add_argument("--end", default="now", metavar="T", help="end of the window (default now)")
    p.add_argument("--name", help="which Canary, when the file holds several")
    p.add_argument("--judge", choices=[j.value for j in Judge], help="override spec.analysis.judge")
    p.add_argument("--step-interval", metavar="DURATION", help="time between ticks (default analysis.interval)")
    p.add_argument("--token", default=os.environ.get("ROLLOUT_PROMETHEUS_TOKEN"),
                   help="bearer token for Prometheus (default $ROLLOUT_PROMETHEUS_TOKEN)")
    p.add_argument("--json", action="store_true", help="print one JSON object instead of lines")
    p.add_argument("--report", type=Path, metavar="PATH.html", help="write the HTML report with plots here")
    p.add_argument("--mesh-provider", metavar="NAME", default=None,
                   help="provider of a Canary without spec.provider, as the operator's --mesh-provider "
                        "[$ROLLOUT_MESH_PROVIDER] (default istio, as Flagger)")
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from rollout.cli.analyzer import EXIT_USAGE, Request, UsageError, analyze, parse_instant
    from rollout.cli.common import mesh_provider
    from rollout.cli.provider_secrets import parse_argument

    now = datetime.now(UTC)
    try:
        step = timedelta(seconds=parse_duration(args.step_interval)) if args.step_interval else None
        request = Request(
            file=args.file, prometheus=args.prometheus, start=parse_instant(args.start, now),
            end=parse_instant(args.end, now), name=args.name, judge=Judge(args.judge) if args.judge else None,
            step=step, token=args.token, mesh_provider=mesh_provider(args.mesh_provider),
            provider_secrets=dict(parse_argument(a) for a in args.provider_secret),
        )
        return analyze(request, sys.stdout, as_json=args.json, report=args.report)
    except (UsageError, ValueError) as e:
        print(f"rollout analyze: {e}", file=sys.stderr)
        return EXIT_USAGE
