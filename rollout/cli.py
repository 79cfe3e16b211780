"""The `rollout` command: one subcommand per task, each a thin shell over a module that does the work.

To add a subcommand, write `_add_<name>(subcommands)` that registers its arguments and sets
`run=` to a function taking the parsed arguments and returning the exit code, then list it in
`_SUBCOMMANDS`. Subcommands print results on stdout and diagnostics on stderr.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
from collections.abc import Callable, Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from rollout import __version__
from rollout.api.durations import parse_duration
from rollout.api.spec import Judge

Subcommands = Any  # argparse's _SubParsersAction is private


def _add_validate(subcommands: Subcommands) -> None:
    p = subcommands.add_parser(
        "validate",
        help="check Canary, BlueGreen, MetricTemplate and GitSource manifests offline",
        description=(
            "Check manifests against the CRD schema and the operator's rules. Directories are searched "
            "recursively for *.yaml and *.yml; '-' reads standard input. Other kinds are ignored."
        ),
    )
    p.add_argument("paths", nargs="+", metavar="FILE|DIR|-", help="manifests to check")
    p.add_argument("-o", "--output", choices=("text", "json"), default="text", help="error format on stdout")
    p.set_defaults(run=_run_validate)


def _run_validate(args: argparse.Namespace) -> int:
    from rollout.validate import format_json, format_text, validate_paths

    report = validate_paths(args.paths, sys.stdin)
    for note in report.notes:
        print(note, file=sys.stderr)
    sys.stdout.write(format_json(report.problems) if args.output == "json" else format_text(report.problems))
    print(report.summary(), file=sys.stderr)
    return 0 if report.ok else 1


def _add_analyze(subcommands: Subcommands) -> None:
    p = subcommands.add_parser(
        "analyze",
        help="replay a Canary's analysis over a past window of a real Prometheus",
        description=(
            "Replay the analysis of a Canary (or BlueGreen) as if its release had started at --start: one "
            "line per tick (time, weight, each metric for canary and primary, verdict), then the outcome. "
            "Exit 0 promote (or no decision in the window), 3 rollback, 2 usage or connection error."
        ),
    )
    p.add_argument("-f", "--file", required=True, type=Path, help="manifest with the Canary (and MetricTemplates)")
    p.add_argument("--prometheus", required=True, metavar="URL", help="Prometheus base URL")
    p.add_argument("--start", required=True, metavar="T", help="RFC 3339 time, unix seconds, or now-2h")
    p.add_argument("--end", default="now", metavar="T", help="end of the window (default now)")
    p.add_argument("--name", help="which Canary, when the file holds several")
    p.add_argument("--judge", choices=[j.value for j in Judge], help="override spec.analysis.judge")
    p.add_argument("--step-interval", metavar="DURATION", help="time between ticks (default analysis.interval)")
    p.add_argument("--token", default=os.environ.get("ROLLOUT_PROMETHEUS_TOKEN"),
                   help="bearer token for Prometheus (default $ROLLOUT_PROMETHEUS_TOKEN)")
    p.add_argument("--json", action="store_true", help="print one JSON object instead of lines")
    p.add_argument("--report", type=Path, metavar="PATH.html", help="write the HTML report with plots here")
    p.set_defaults(run=_run_analyze)


def _run_analyze(args: argparse.Namespace) -> int:
    from rollout.analyze import EXIT_USAGE, Request, UsageError, analyze, parse_instant

    now = datetime.now(UTC)
    try:
        step = timedelta(seconds=parse_duration(args.step_interval)) if args.step_interval else None
        request = Request(
            file=args.file, prometheus=args.prometheus, start=parse_instant(args.start, now),
            end=parse_instant(args.end, now), name=args.name, judge=Judge(args.judge) if args.judge else None,
            step=step, token=args.token,
        )
        return analyze(request, sys.stdout, as_json=args.json, report=args.report)
    except (UsageError, ValueError) as e:
        print(f"rollout analyze: {e}", file=sys.stderr)
        return EXIT_USAGE


def _add_sandbox(subcommands: Subcommands) -> None:
    p = subcommands.add_parser(
        "sandbox",
        help="run the embedded local cluster (API server and simulated Deployment controller)",
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
    up.set_defaults(run=_run_sandbox_up)


def _non_negative(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
    if not value >= 0:
        raise argparse.ArgumentTypeError(f"must not be negative: {text!r}")
    return value


def _run_sandbox_up(args: argparse.Namespace) -> int:
    from sandbox import DataPlaneConfig, serve

    if not (args.dataplane or args.rps is not None):
        return serve(args.kubeconfig)
    from sandbox.prometheus import PrometheusNotFoundError

    config = DataPlaneConfig(rps=50.0 if args.rps is None else args.rps, seed=args.seed)
    try:
        return serve(args.kubeconfig, dataplane=config, prometheus=True)
    except PrometheusNotFoundError as e:
        print(f"rollout sandbox up: {e}", file=sys.stderr)
        return 1


def _kube_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--kubeconfig", type=Path, metavar="PATH", help="default: $KUBECONFIG or ~/.kube/config")


def _api(args: argparse.Namespace) -> Any:
    from rollout.kube import api_client

    return api_client(args.kubeconfig)


def _add_run(subcommands: Subcommands) -> None:
    p = subcommands.add_parser("run", help="start the operator", description="Run the operator until interrupted.")
    where = p.add_mutually_exclusive_group()
    where.add_argument("-n", "--namespace", action="append", default=[], metavar="NS", help="watch NS (repeatable)")
    where.add_argument("-A", "--all-namespaces", action="store_true", help="watch every namespace (the default)")
    _kube_args(p)
    p.add_argument("--prometheus", default=os.environ.get("ROLLOUT_PROMETHEUS_URL", "http://prometheus.monitoring:9090"),
                   metavar="URL", help="Prometheus for the built-in metrics (default $ROLLOUT_PROMETHEUS_URL)")
    p.add_argument("--reports", type=Path, metavar="DIR", help="write each run's analysis report (JSON, MD, HTML) here")
    p.add_argument("--git-cache", type=Path, metavar="DIR",
                   default=Path(os.environ.get("ROLLOUT_GIT_CACHE", Path(tempfile.gettempdir()) / "rollout-git")),
                   help="where Git clones are kept between syncs (default $ROLLOUT_GIT_CACHE or a temp folder)")
    p.set_defaults(run=_run_operator)


def _run_operator(args: argparse.Namespace) -> int:
    from rollout.handlers import run

    run(args.namespace, kubeconfig=args.kubeconfig, prometheus=args.prometheus, reports=args.reports,
        git_cache=args.git_cache)
    return 0


def _add_status(subcommands: Subcommands) -> None:
    p = subcommands.add_parser("status", help="phase, weight, failed checks and last metric values of releases")
    p.add_argument("name", nargs="?", help="one release, shown in full: why, candidate, Git, metrics, conditions "
                                           "(default: a table of all)")
    p.add_argument("-n", "--namespace", help="namespace (default: all)")
    p.add_argument("-w", "--watch", action="store_true", help="print again whenever it changes, until interrupted")
    _kube_args(p)
    p.set_defaults(run=_run_status)


def _run_status(args: argparse.Namespace) -> int:
    import time

    from rollout.control import detail, releases, table

    api = _api(args)
    shown = None
    while True:
        found = releases(api, args.namespace, args.name)
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


def _add_command(subcommands: Subcommands, command: str, text: str) -> None:
    p = subcommands.add_parser(command, help=text, description=f"{text}; recorded in the release's status.")
    p.add_argument("name")
    p.add_argument("-n", "--namespace", default="default")
    _kube_args(p)
    p.set_defaults(run=_run_command, command_name=command)


def _run_command(args: argparse.Namespace) -> int:
    from rollout.control import NotFound, send

    try:
        kind = send(_api(args), args.namespace, args.name, args.command_name)
    except NotFound as e:
        print(f"rollout {args.command_name}: {e}", file=sys.stderr)
        return 1
    print(f"{kind} {args.namespace}/{args.name}: {args.command_name} requested")
    return 0


def _add_controls(subcommands: Subcommands) -> None:
    _add_command(subcommands, "promote", "skip the rest of the analysis and promote now")
    _add_command(subcommands, "abort", "roll the release back now")
    _add_command(subcommands, "retry", "run a failed release again")


def _add_demo(subcommands: Subcommands) -> None:
    p = subcommands.add_parser(
        "demo", help="the whole loop on the embedded sandbox: a good release promoted, a bad one reverted in Git",
        description="Start the sandbox (API, data plane, Prometheus), a local Git remote with an example app, "
                    "a GitSource and the operator; commit a healthy v2 and a v3 failing 5% of requests.")
    p.add_argument("--provider", default="gatewayapi", choices=("gatewayapi", "istio", "linkerd", "nginx", "smi",
                                                                "kubernetes"))
    p.add_argument("--judge", default="threshold", choices=("threshold", "compare", "sequential"))
    p.add_argument("--interval", type=float, default=5.0, metavar="SECONDS", help="analysis interval (default 5)")
    p.add_argument("--rps", type=float, default=50.0, help="simulated requests per second (default 50)")
    p.add_argument("--keep", action="store_true", help="stay up afterwards for exploring (Ctrl-C stops)")
    p.add_argument("--json", action="store_true", help="no live view; print one result object")
    p.add_argument("--dir", type=Path, metavar="DIR", help="keep the demo's files here (default: a temp folder)")
    p.add_argument("--timeout", type=float, default=240.0, metavar="SECONDS", help="longest wait for a release")
    p.set_defaults(run=_run_demo)


def _run_demo(args: argparse.Namespace) -> int:
    from sandbox.demo import Options, run_demo

    return run_demo(Options(provider=args.provider, judge=args.judge, interval=args.interval, rps=args.rps,
                            keep=args.keep, json=args.json, workdir=args.dir, timeout=args.timeout))


_SUBCOMMANDS: list[Callable[[Subcommands], None]] = [
    _add_validate, _add_analyze, _add_sandbox, _add_run, _add_status, _add_controls, _add_demo,
]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="rollout", description="GitOps progressive delivery that keeps Git true.")
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    subcommands = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for add in _SUBCOMMANDS:
        add(subcommands)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    code: int = args.run(args)
    return code


if __name__ == "__main__":
    sys.exit(main())
