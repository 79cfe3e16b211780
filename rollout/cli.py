"""The `rollout` command: one subcommand per task, each a thin shell over a module that does the work.

To add a subcommand, write `_add_<name>(subcommands)` that registers its arguments and sets
`run=` to a function taking the parsed arguments and returning the exit code, then list it in
`_SUBCOMMANDS`. Subcommands print results on stdout and diagnostics on stderr.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Sequence
from typing import Any

from rollout import __version__

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


_SUBCOMMANDS: list[Callable[[Subcommands], None]] = [_add_validate]


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
