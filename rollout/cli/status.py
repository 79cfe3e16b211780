"""`rollout status [NAME]`: a table of releases, or one in full; `--watch` shows it again on change.

Listing and formatting are `rollout.cli.releases`, shared with `rollout promote|abort|retry`. On a
terminal `--watch` redraws in place (`Screen`); piped or redirected it prints each changed version
after the last, as lines a log or `grep` can take."""

from __future__ import annotations

import argparse
import shutil
import sys
import time
from collections.abc import Callable
from typing import TextIO

from rollout.cli.common import Subcommands, api, kube_args


def add(subcommands: Subcommands) -> None:
    p = subcommands.add_parser("status", help="phase, weight, failed checks and last metric values of releases")
    p.add_argument("name", nargs="?", help="one release, shown in full: why, candidate, Git, metrics, conditions "
                                           "(default: a table of all)")
    p.add_argument("-n", "--namespace", help="namespace (default: all)")
    p.add_argument("-w", "--watch", action="store_true",
                   help="keep showing it until interrupted: redrawn in place on a terminal, printed again on "
                        "change when piped")
    p.add_argument("--interval", type=_positive, default=2.0, metavar="SECONDS",
                   help="with --watch, time between reads (default 2)")
    kube_args(p)
    p.set_defaults(run=run)


def _positive(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
    if not value > 0:
        raise argparse.ArgumentTypeError(f"must be positive: {text!r}")
    return value


class Screen:
    """Shows successive versions of a text on `out`. On a terminal each version replaces the last in
    place (the cursor goes back up over the rows the last one took, wrapped lines included, and what
    was below is erased), with a footer saying when it was read; elsewhere a version is printed only
    when it differs from the last, after a blank line, and without footer or control characters."""

    def __init__(self, out: TextIO, terminal: bool, size: Callable[[], tuple[int, int]] | None = None) -> None:
        self._out = out
        self._terminal = terminal
        self._size = size or (lambda: tuple(shutil.get_terminal_size()))  # type: ignore[return-value]
        self._shown: str | None = None
        self._problem: str | None = None
        self._rows = 0

    def show(self, text: str, footer: str = "", problem: str | None = None) -> None:
        """Show `text` with `footer`; `problem` is why it could not be read again, which a terminal
        shows in the footer and other output prints on stderr, once until it is read again."""
        if not self._terminal:
            if problem is not None:
                if problem != self._problem:
                    print(f"rollout status: {problem}", file=sys.stderr, flush=True)
                self._problem = problem
                return
            self._problem = None
            if text != self._shown:
                self._out.write(text if self._shown is None else "\n" + text)
            self._shown = text
            self._out.flush()
            return
        drawing = text + (footer + "\n" if footer else "")
        columns, lines = self._size()
        if self._rows >= lines:  # the last drawing scrolled off the top: start again from a clear screen
            self._out.write("\x1b[H\x1b[2J")
        elif self._rows:
            self._out.write(f"\x1b[{self._rows}A\r\x1b[J")
        self._out.write(drawing)
        self._out.flush()
        self._shown = text
        self._rows = rows(drawing, columns)


def rows(text: str, columns: int) -> int:
    """How many terminal rows `text` (ending in a newline) takes on a terminal `columns` wide."""
    return sum(max(1, -(-len(line) // max(columns, 1))) for line in text.splitlines())


def run(args: argparse.Namespace) -> int:
    from rollout.cli.errors import Problem, cluster_problem
    from rollout.cli.releases import NotFound, detail, releases, table

    client = api(args)
    screen = Screen(sys.stdout, args.watch and sys.stdout.isatty())
    text: str | None = None
    while True:
        try:
            found = releases(client, args.namespace, args.name)
        except Exception as error:
            # Once something is shown, a watch outlives a blip of the API server (a restart, a
            # dropped connection): it says so and reads again. Any other error ends it.
            problem = None if isinstance(error, Problem) else cluster_problem(error, "the releases")
            if text is None or problem is None:
                raise
            again = f"{problem}; reading again every {args.interval:g}s"
            screen.show(text, f"{time.strftime('%H:%M:%S')}: {again}", problem=again)
            time.sleep(args.interval)
            continue
        if args.name and not found:
            raise NotFound(args.namespace, args.name)
        text = "\n".join(detail(o) for o in found) if args.name else table(found)
        footer = f"read {time.strftime('%H:%M:%S')}, every {args.interval:g}s; Ctrl-C stops" if args.watch else ""
        screen.show(text, footer)
        if not args.watch:
            return 0
        time.sleep(args.interval)
