"""The `rollout` command: one subcommand per task, each a thin shell over a module that does the work.

Each subcommand is a module of this package with `add(subcommands)`, which registers its arguments
and sets `run=` to a function taking the parsed arguments and returning the exit code; list it in
`SUBCOMMANDS`. A subcommand module imports what does the work inside `run`, so that every command
starts without loading the others' dependencies. Subcommands print results on stdout and
diagnostics on stderr. Whatever a subcommand raises is turned into one line and an exit code by
`rollout.cli.errors.run_command`, so a subcommand need not catch cluster errors itself: it raises
`rollout.cli.errors.Problem` for what the user can fix.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Sequence

from rollout import __version__
from rollout.cli import analyze, completion, control, dashboard, demo, dora, run, sandbox, status, validate
from rollout.cli.common import Subcommands

SUBCOMMANDS: list[Callable[[Subcommands], None]] = [
    validate.add, analyze.add, sandbox.add, run.add, status.add, control.add, dora.add, demo.add, dashboard.add,
    completion.add,
]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="rollout", description="GitOps progressive delivery that keeps Git true.")
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    subcommands = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for add in SUBCOMMANDS:
        add(subcommands)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    from rollout.cli.errors import run_command

    args = build_parser().parse_args(argv)
    return run_command(args.command, lambda: int(args.run(args)))


if __name__ == "__main__":
    sys.exit(main())
