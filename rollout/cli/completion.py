"""`rollout completion bash|zsh`: print the shell's completion script for every subcommand and option.

The script is generated from the command's own argparse parser by shtab, so it follows new
subcommands and options without being edited, and it is static: pressing Tab runs no Python.
Options that take a path (`--kubeconfig`, `--reports`, ...) complete file names.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from rollout.cli.common import Subcommands

SHELLS = ("bash", "zsh")


def add(subcommands: Subcommands) -> None:
    p = subcommands.add_parser(
        "completion", help="print the bash or zsh completion script",
        description="Print the completion script of the shell named. bash: "
                    "`source <(rollout completion bash)` in ~/.bashrc, or save it as "
                    "/etc/bash_completion.d/rollout; zsh: `rollout completion zsh > "
                    "\"${fpath[1]}/_rollout\"` and start a new shell.")
    p.add_argument("shell", choices=SHELLS)
    p.set_defaults(run=run)


def script(shell: str) -> str:
    """The completion script for `shell` of the whole `rollout` command."""
    import shtab

    from rollout.cli import build_parser

    parser = build_parser()
    _files_for_paths(parser, shtab.FILE)
    text: str = shtab.complete(parser, shell=shell)
    return text


def _files_for_paths(parser: argparse.ArgumentParser, files: object) -> None:
    """Mark every option of type Path, in every subcommand, as completing file names."""
    for action in parser._actions:  # argparse keeps them only in private attributes
        if action.type is Path:
            action.complete = files  # type: ignore[attr-defined]  # read by shtab
        if isinstance(action, argparse._SubParsersAction):
            for sub in action.choices.values():
                _files_for_paths(sub, files)


def run(args: argparse.Namespace) -> int:
    sys.stdout.write(script(args.shell))
    return 0
