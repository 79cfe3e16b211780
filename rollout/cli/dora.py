"""`rollout dora [--since 30d] [-n NS | -A] [--json]`: the four DORA figures of the releases it ran.

The figures come from the release records in each Canary's and BlueGreen's `status.history`, which
the operator writes when a run ends, so they survive restarts and need nothing but read access to
the releases. Lead time starts at the commit time the operator recorded when the run started (the
GitSource that applied the revision annotates it from its clone): this command needs no Git access
and no Git credentials, and a revision whose commit time was not known then is counted and named,
never guessed. `rollout demo` prints its figures through `summarize` and `render` too.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from rollout.cli.common import Subcommands, api, cluster_problem, kube_args

if TYPE_CHECKING:
    from rollout.api.status import RunRecord
    from rollout.core.dora import Durations, Figures


def add(subcommands: Subcommands) -> None:
    p = subcommands.add_parser(
        "dora", help="deployment frequency, lead time, change failure rate and time to restore of the releases",
        description="The four DORA figures of the runs that ended in the window, from the release records the "
                    "operator keeps in each Canary's and BlueGreen's status.history.")
    p.add_argument("--since", default="30d", metavar="WINDOW",
                   help="how far back: 30d, 2w, 12h, 90m (default 30d)")
    where = p.add_mutually_exclusive_group()
    where.add_argument("-n", "--namespace", help="one namespace (default: all)")
    where.add_argument("-A", "--all-namespaces", action="store_true", help="all namespaces (the default)")
    p.add_argument("--json", action="store_true", help="print one JSON object instead of a table")
    kube_args(p)
    p.set_defaults(run=run)


@dataclass(frozen=True)
class Release:
    namespace: str
    name: str
    kind: str
    figures: Figures


@dataclass(frozen=True)
class Summary:
    total: Figures  # of every release together
    releases: tuple[Release, ...]


def summarize(objs: Sequence[Mapping[str, Any]], since: datetime, until: datetime) -> Summary:
    """The figures of each release and of all of them together, over [since, until]."""
    from rollout.api.status import ReleaseStatus
    from rollout.core.dora import figures

    every: list[RunRecord] = []
    out: list[Release] = []
    for obj in objs:
        history = ReleaseStatus.from_dict(dict(obj.get("status") or {})).history
        every.extend(history)
        meta = obj["metadata"]
        out.append(Release(meta["namespace"], meta["name"], obj["kind"], figures(history, since, until)))
    return Summary(figures(every, since, until), tuple(out))


COLUMNS = ("NAMESPACE", "NAME", "KIND", "RUNS", "PROMOTED", "FAILED", "LEAD TIME", "RESTORE TRAFFIC",
           "RESTORE REVERT")


def render(summary: Summary) -> str:
    """A table of the releases (medians), then the figures of all of them."""
    rows = [COLUMNS]
    for r in summary.releases:
        f = r.figures
        rows.append((r.namespace, r.name, r.kind, str(f.runs), str(f.promotions), str(f.failures),
                     _median(f.lead_time), _median(f.restore_traffic), _median(f.restore_revert)))
    widths = [max(len(row[i]) for row in rows) for i in range(len(COLUMNS))]
    table = ["  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)).rstrip() for row in rows]
    total = summary.total
    from rollout.api.status import format_time

    since, until = (format_time(t.replace(microsecond=0)) for t in (total.since, total.until))
    head = f"DORA figures from {since} to {until}, " \
           f"{len(summary.releases)} release{'s' if len(summary.releases) != 1 else ''}:"
    return "\n".join([*table, "", head, *(f"  {line}" for line in total.lines())]) + "\n"


def to_json(summary: Summary) -> dict[str, Any]:
    return {
        **summary.total.to_dict(),
        # Each release's figures, over the same window (said once, above).
        "releases": [{"namespace": r.namespace, "name": r.name, "kind": r.kind,
                      **{k: v for k, v in r.figures.to_dict().items() if k not in ("since", "until")}}
                     for r in summary.releases],
    }


def _median(durations: Durations) -> str:
    from rollout.core.dora import short_duration

    return "-" if durations.median is None else short_duration(durations.median)


def run(args: argparse.Namespace, now: datetime | None = None) -> int:
    from rollout.cli.releases import releases
    from rollout.core.dora import parse_window

    try:
        window = parse_window(args.since)
    except ValueError as e:
        print(f"rollout dora: --since {e}", file=sys.stderr)
        return 2
    until = now or datetime.now(UTC)
    try:
        found = releases(api(args), args.namespace)
    except Exception as e:  # what cannot be read is said in one line; anything else is a bug and shows
        problem = cluster_problem(e, "Canaries and BlueGreens")
        if problem is None:
            raise
        print(f"rollout dora: {problem}", file=sys.stderr)
        return 1
    if not found:
        where = f"in namespace {args.namespace}" if args.namespace else "in any namespace"
        print(f"rollout dora: no Canary or BlueGreen {where}: no release records to compute figures from",
              file=sys.stderr)
        return 1
    summary = summarize(found, until - window, until)
    if args.json:
        print(json.dumps(to_json(summary), indent=2))
    else:
        sys.stdout.write(render(summary))
    return 0
