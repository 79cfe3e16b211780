"""`rollout validate`: check manifests offline, before they reach a cluster or a Git branch.

The checks themselves read no files and live with the API (`rollout.api.manifests`); this module
is the command's part: walking files, directories and stdin, and formatting what was found.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import IO, TYPE_CHECKING

from rollout.cli.common import Subcommands, mesh_provider

if TYPE_CHECKING:
    from rollout.api.manifests import Problem, Report
    from rollout.api.spec import Provider

STDIN = "-"
STDIN_NAME = "<stdin>"


def add(subcommands: Subcommands) -> None:
    p = subcommands.add_parser(
        "validate",
        help="check Canary, BlueGreen, MetricTemplate, GitSource and AlertProvider manifests offline",
        description=(
            "Check manifests against the CRD schema and the operator's rules. Directories are searched "
            "recursively for *.yaml and *.yml; '-' reads standard input. Other kinds are ignored."
        ),
    )
    p.add_argument("paths", nargs="+", metavar="FILE|DIR|-", help="manifests to check")
    p.add_argument("-o", "--output", choices=("text", "json"), default="text", help="error format on stdout")
    p.add_argument("--mesh-provider", metavar="NAME", default=None,
                   help="provider of a Canary without spec.provider, as the operator's --mesh-provider "
                        "[$ROLLOUT_MESH_PROVIDER] (default istio, as Flagger)")
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    try:
        provider = mesh_provider(args.mesh_provider)
    except ValueError as e:
        print(f"rollout validate: {e}", file=sys.stderr)
        return 2
    report = validate_paths(args.paths, sys.stdin, provider)
    for note in report.notes:
        print(note, file=sys.stderr)
    sys.stdout.write(format_json(report.problems) if args.output == "json" else format_text(report.problems))
    print(report.summary(), file=sys.stderr)
    return 0 if report.ok else 1


def collect_files(path: Path) -> list[Path]:
    """A file as given; a directory as every *.yaml and *.yml under it, recursively, sorted."""
    if path.is_dir():
        return sorted(p for p in path.rglob("*") if p.suffix in (".yaml", ".yml") and p.is_file())
    return [path]


def validate_paths(paths: Sequence[str], stdin: IO[str] | None = None, mesh_provider: Provider | None = None
                   ) -> Report:
    """Validate files, directories and `-` (stdin), as one set whose resources may refer to each other;
    unreadable inputs become problems, never exceptions.
    A Canary without `spec.provider` is judged as routed by `mesh_provider` (default: the operator's)."""
    from rollout.api.manifests import Problem, Report, cross_check, validate_text
    from rollout.api.spec import DEFAULT_MESH_PROVIDER

    provider = mesh_provider or DEFAULT_MESH_PROVIDER

    report = Report()
    for arg in paths:
        if arg == STDIN:
            report.extend(validate_text((stdin or sys.stdin).read(), STDIN_NAME, provider, cross=False))
            continue
        root = Path(arg)
        if not root.exists():
            report.problems.append(Problem(arg, None, None, None, "", "no such file or directory"))
            continue
        files = collect_files(root)
        if root.is_dir() and not files:
            report.problems.append(Problem(arg, None, None, None, "", "no *.yaml or *.yml files in this directory"))
        for file in files:
            try:
                text = file.read_text(encoding="utf-8")
            except (OSError, UnicodeDecodeError) as error:
                reason = error.strerror if isinstance(error, OSError) and error.strerror else str(error)
                report.problems.append(Problem(str(file), None, None, None, "", f"cannot read: {reason}"))
                continue
            report.extend(validate_text(text, str(file), provider, cross=False))
    # Resources refer to each other across files: a Canary's MetricTemplate, a template's Secret.
    report.problems.extend(cross_check(report.found))
    return report


def format_text(problems: Iterable[Problem]) -> str:
    return "".join(p.line() + "\n" for p in problems)


def format_json(problems: Iterable[Problem]) -> str:
    return json.dumps([p.to_dict() for p in problems], indent=2) + "\n"
