"""`rollout promote|abort|retry NAME`: steer a release by hand.

The command is recorded in the release's status (`rollout.cli.releases.send`), where the planner
picks it up at its next tick."""

from __future__ import annotations

import argparse

from rollout.api.status import Command
from rollout.cli.common import Subcommands, api, kube_args


def add(subcommands: Subcommands) -> None:
    _add_command(subcommands, Command.PROMOTE, "skip the rest of the analysis and promote now")
    _add_command(subcommands, Command.ABORT, "roll the release back now")
    _add_command(subcommands, Command.RETRY, "run a failed release again")


def _add_command(subcommands: Subcommands, command: Command, text: str) -> None:
    p = subcommands.add_parser(command, help=text, description=f"{text}; recorded in the release's status.")
    p.add_argument("name")
    p.add_argument("-n", "--namespace", default="default")
    kube_args(p)
    p.set_defaults(run=run, command_name=command)


def run(args: argparse.Namespace) -> int:
    from rollout.cli.releases import send

    kind = send(api(args), args.namespace, args.name, args.command_name)
    print(f"{kind} {args.namespace}/{args.name}: {args.command_name} requested")
    return 0
