"""The report of one analysis run, for machines (JSON), commit messages (Markdown) and people (HTML).

A run is described by plain dataclasses defined here, so that the operator, `rollout analyze` and
the benchmarks can all produce one without this module knowing any of them. The HTML file is
self-contained: plots are PNGs (matplotlib, Agg backend) embedded as base64, there is no script
and no external resource, and every piece of text is HTML-escaped. matplotlib is imported only
when a plot is drawn, so that the operator does not pay for it until a run ends.
"""

from __future__ import annotations

import base64
import html
import io
import json
import math
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from analysis.verdicts import Outcome, Verdict

SCHEMA = "rollout.gitops.dev/analysis-report/v1"

__all__ = [
    "SCHEMA",
    "AnalysisRun",
    "MetricSeries",
    "Outcome",
    "Samples",
    "Tick",
    "Verdict",
    "from_json",
    "index_entries",
    "index_html",
    "markdown_table",
    "outcome_line",
    "plot_metric",
    "to_dict",
    "to_html",
    "to_json",
    "to_markdown",
    "write_index",
    "write_reports",
]


@dataclass(frozen=True)
class Samples:
    """Parallel unix timestamps (seconds) and values; NaN marks a point without a number."""

    timestamps: tuple[float, ...] = ()
    values: tuple[float, ...] = ()

    def __post_init__(self) -> None:
        if len(self.timestamps) != len(self.values):
            raise ValueError(f"{len(self.timestamps)} timestamps but {len(self.values)} values")

    @classmethod
    def of(cls, timestamps: Iterable[float], values: Iterable[float]) -> Samples:
        """From any iterables of numbers, numpy arrays included."""
        return cls(tuple(float(t) for t in timestamps), tuple(float(v) for v in values))

    def last(self) -> float | None:
        """The latest finite value, if any."""
        for value in reversed(self.values):
            if math.isfinite(value):
                return value
        return None


@dataclass(frozen=True)
class MetricSeries:
    """One metric of the run: canary and primary over time, its limits and its verdict.

    `canary_value`/`primary_value` are the numbers the verdict was based on (default: the last
    finite sample). `limit_text` replaces the rendering of `limit_min`/`limit_max` when the
    judge's limit is not a fixed range (e.g. "≤ primary +10%"). A `dry_run` metric (Argo Rollouts'
    dryRun) was judged and is shown, but its verdict never decided the run. `classification` is
    Kayenta's label of the last check (Pass, High, Low, Nodata, NodataFailMetric), `effect_size` the
    compare judge's effect size under Kayenta's rules, `critical` a critical failure.
    """

    name: str
    canary: Samples
    primary: Samples | None = None
    limit_min: float | None = None
    limit_max: float | None = None
    verdict: Verdict = Verdict.NO_DATA
    unit: str = ""
    canary_value: float | None = None
    primary_value: float | None = None
    limit_text: str | None = None
    detail: str = ""
    dry_run: bool = False
    classification: str = ""
    effect_size: float | None = None
    critical: bool = False
    # The canary's judged value at each check, drawn as markers over the series (which, when the source
    # serves ranges, is the source's own resolution over the whole run rather than these points).
    checked: Samples | None = None

    @property
    def verdict_text(self) -> str:
        """The verdict as the tables show it: a dry-run metric's failure is one that did not count; under
        Kayenta's rules, with the classification and effect size."""
        text = self.verdict.value
        if self.dry_run:
            text = "fail (dry run: would have failed)" if self.verdict is Verdict.FAIL else f"{text} (dry run)"
        if self.effect_size is not None or self.critical:
            extra = [self.classification] if self.classification else []
            if self.effect_size is not None:
                extra.append(f"effect size {_num(self.effect_size)}")
            if self.critical:
                extra.append("critical")
            text += f" [{', '.join(extra)}]"
        return text

    def judged_canary(self) -> float | None:
        return self.canary_value if self.canary_value is not None else self.canary.last()

    def judged_primary(self) -> float | None:
        if self.primary_value is not None:
            return self.primary_value
        return self.primary.last() if self.primary is not None else None

    def limit(self) -> str:
        if self.limit_text is not None:
            return self.limit_text
        unit = f" {self.unit}" if self.unit else ""
        if self.limit_min is not None and self.limit_max is not None:
            return f"{_num(self.limit_min)} to {_num(self.limit_max)}{unit}"
        if self.limit_min is not None:
            return f"≥ {_num(self.limit_min)}{unit}"
        if self.limit_max is not None:
            return f"≤ {_num(self.limit_max)}{unit}"
        return "—"


@dataclass(frozen=True)
class Tick:
    """One analysis step: when, what was judged, what was done and the canary weight after it."""

    at: float
    verdict: Verdict
    action: str  # e.g. advance, hold, promote, rollback
    weight: int | None = None
    message: str = ""
    score: float | None = None  # Kayenta's 0-100 score of the check (`analysis.scoring`)


@dataclass(frozen=True)
class AnalysisRun:
    """Everything a report shows about one analysis run of a Canary."""

    name: str
    namespace: str
    outcome: Outcome
    decided_at: float | None = None
    ticks: Sequence[Tick] = field(default_factory=tuple)
    metrics: Sequence[MetricSeries] = field(default_factory=tuple)
    judge: str = "threshold"
    revision: str | None = None
    summary: str = ""
    # The canary's traffic weight (percent) from each tick on, drawn as a step line.
    weights: Samples = field(default_factory=Samples)
    started_at: float | None = None


# ------------------------------------------------------------------------------------------- JSON


def to_dict(run: AnalysisRun) -> dict[str, Any]:
    """The report as JSON-ready data; NaN and infinities become null."""
    return {
        "schema": SCHEMA,
        "name": run.name,
        "namespace": run.namespace,
        "outcome": run.outcome.value,
        "decidedAt": _iso(run.decided_at),
        "judge": run.judge,
        "revision": run.revision,
        "summary": run.summary or outcome_line(run),
        "startedAt": _iso(run.started_at),
        "weights": _samples(run.weights),
        "ticks": [
            {"at": _iso(t.at), "verdict": t.verdict.value, "action": t.action, "weight": t.weight,
             "message": t.message, **({"score": t.score} if t.score is not None else {})}
            for t in run.ticks
        ],
        "metrics": [
            {
                "name": m.name,
                "unit": m.unit,
                "verdict": m.verdict.value,
                "dryRun": m.dry_run,
                **({"classification": m.classification} if m.classification else {}),
                **({"effectSize": _finite(m.effect_size)} if m.effect_size is not None else {}),
                **({"critical": True} if m.critical else {}),
                "canary": _finite(m.judged_canary()),
                "primary": _finite(m.judged_primary()),
                "limit": {"min": _finite(m.limit_min), "max": _finite(m.limit_max), "text": m.limit_text,
                          "display": m.limit()},
                "detail": m.detail,
                "series": {
                    "canary": _samples(m.canary),
                    "primary": _samples(m.primary) if m.primary is not None else None,
                    "checked": _samples(m.checked) if m.checked is not None else None,
                },
            }
            for m in run.metrics
        ],
    }


def to_json(run: AnalysisRun) -> str:
    """The report as strict JSON (no NaN tokens)."""
    return json.dumps(to_dict(run), indent=2, ensure_ascii=False, allow_nan=False)


def from_json(text: str) -> AnalysisRun:
    """Read back what `to_json` wrote (null sample values come back as NaN)."""
    data = json.loads(text)
    if data.get("schema") != SCHEMA:
        raise ValueError(f"not an analysis report (schema {data.get('schema')!r}, expected {SCHEMA!r})")

    def samples(raw: dict[str, list[Any]] | None) -> Samples | None:
        if raw is None:
            return None
        return Samples.of(raw["timestamps"], (math.nan if v is None else v for v in raw["values"]))

    metrics = []
    for m in data["metrics"]:
        limit = m["limit"]
        canary = samples(m["series"]["canary"]) or Samples()
        metrics.append(MetricSeries(
            name=m["name"], canary=canary, primary=samples(m["series"]["primary"]),
            limit_min=limit["min"], limit_max=limit["max"], verdict=Verdict(m["verdict"]), unit=m["unit"],
            canary_value=m["canary"], primary_value=m["primary"], detail=m["detail"],
            limit_text=limit["text"], dry_run=bool(m.get("dryRun", False)),
            classification=m.get("classification", ""), effect_size=m.get("effectSize"),
            critical=bool(m.get("critical", False)), checked=samples(m["series"].get("checked")),
        ))
    ticks = [Tick(at=_unix(t["at"]), verdict=Verdict(t["verdict"]), action=t["action"], weight=t["weight"],
                  message=t["message"], score=t.get("score")) for t in data["ticks"]]
    decided, started = data["decidedAt"], data.get("startedAt")
    return AnalysisRun(
        name=data["name"], namespace=data["namespace"], outcome=Outcome(data["outcome"]),
        decided_at=None if decided is None else _unix(decided), ticks=tuple(ticks), metrics=tuple(metrics),
        judge=data["judge"], revision=data["revision"], summary=data["summary"],
        weights=samples(data.get("weights")) or Samples(), started_at=None if started is None else _unix(started),
    )


# --------------------------------------------------------------------------------------- Markdown


def outcome_line(run: AnalysisRun) -> str:
    """One line saying how the run ended and why."""
    failed = [m.name for m in run.metrics if m.verdict is Verdict.FAIL and not m.dry_run]
    missing = [m.name for m in run.metrics if m.verdict is Verdict.NO_DATA and not m.dry_run]
    shadow = [m.name for m in run.metrics if m.verdict is Verdict.FAIL and m.dry_run]
    when = f" at {_iso(run.decided_at)}" if run.decided_at is not None else ""
    what = f"{run.namespace}/{run.name}"
    if run.outcome is Outcome.SUCCEEDED:
        text = f"{what} promoted{when} after {len(run.ticks)} checks ({run.judge} judge)"
    elif run.outcome is Outcome.FAILED:
        why = f": {', '.join(failed)} failed" if failed else ""
        text = f"{what} rolled back{when} after {len(run.ticks)} checks{why} ({run.judge} judge)"
    else:
        text = f"{what} still running after {len(run.ticks)} checks ({run.judge} judge)"
    if missing:
        text += f"; no data for {', '.join(missing)}"
    if shadow:
        text += f"; dry run: {', '.join(shadow)} would have failed"
    return text + "."


def to_markdown(run: AnalysisRun) -> str:
    """A short report for a commit message: one outcome line and one table."""
    return outcome_line(run) + "\n\n" + markdown_table(run)


def markdown_table(run: AnalysisRun) -> str:
    """The metrics as a Markdown table: canary, primary, limit and verdict per metric."""
    rows = ["| metric | canary | primary | limit | verdict |", "|---|---|---|---|---|"]
    for m in run.metrics:
        cells = [_label(m), _value(m.judged_canary(), m.unit), _value(m.judged_primary(), m.unit), m.limit(),
                 m.verdict_text]
        rows.append("| " + " | ".join(_md_cell(c) for c in cells) + " |")
    return "\n".join(rows) + "\n"


# ------------------------------------------------------------------------------------------- HTML

_CANARY_COLOR = "#d95f02"
_PRIMARY_COLOR = "#1b9e77"
_WEIGHT_COLOR = "#7570b3"
_VERDICT_COLOR = {Verdict.PASS: "#2e7d32", Verdict.FAIL: "#c62828", Verdict.NO_DATA: "#9e9e9e"}

_CSS = """
body { font-family: system-ui, sans-serif; margin: 2em auto; max-width: 1000px; color: #222; }
h1 { font-size: 1.4em; } h2 { font-size: 1.15em; margin-top: 1.6em; }
table { border-collapse: collapse; margin: 1em 0; } th, td { border: 1px solid #ccc; padding: .3em .7em; }
th { background: #f3f3f3; text-align: left; } td.num { text-align: right; font-variant-numeric: tabular-nums; }
.pass { color: #2e7d32; font-weight: bold; } .fail { color: #c62828; font-weight: bold; }
.no-data { color: #757575; font-weight: bold; } .outcome { font-size: 1.05em; }
.dry-run { font-style: italic; opacity: .75; }
figure { margin: 1em 0; } figure img { max-width: 100%; border: 1px solid #ddd; }
figcaption { color: #555; font-size: .9em; }
"""


def to_html(run: AnalysisRun) -> str:
    """One self-contained HTML page: outcome, summary table, a plot per metric and the ticks."""
    e = html.escape
    title = f"Analysis of {run.namespace}/{run.name}"
    parts = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        f"<title>{e(title)}</title><style>{_CSS}</style></head><body>",
        f"<h1>{e(title)}</h1>",
        f'<p class="outcome">{e(outcome_line(run))}</p>',
    ]
    if run.summary:
        parts.append(f"<p>{e(run.summary)}</p>")
    if run.revision:
        parts.append(f"<p>Candidate revision <code>{e(run.revision)}</code></p>")
    parts.append("<table><thead><tr><th>metric</th><th>canary</th><th>primary</th><th>limit</th>"
                 "<th>verdict</th><th>detail</th></tr></thead><tbody>")
    for m in run.metrics:
        parts.append(
            f"<tr><td>{e(_label(m))}</td><td class=\"num\">{e(_value(m.judged_canary(), m.unit))}</td>"
            f"<td class=\"num\">{e(_value(m.judged_primary(), m.unit))}</td><td>{e(m.limit())}</td>"
            f'<td class="{e(m.verdict.value)}{" dry-run" if m.dry_run else ""}">{e(m.verdict_text)}</td>'
            f"<td>{e(m.detail)}</td></tr>"
        )
    parts.append("</tbody></table>")
    for m in run.metrics:
        png = base64.b64encode(plot_metric(run, m)).decode("ascii")
        parts.append(
            f"<h2>{e(_label(m))}</h2><figure>"
            f'<img alt="{e(m.name)}: canary and primary over time" src="data:image/png;base64,{png}">'
            f"<figcaption>Canary and primary over the whole run; dashed lines: limits; diamonds: the "
            f"canary's value at each check (green pass, red fail, grey no data); purple steps: the canary's "
            f"traffic weight (right axis).</figcaption></figure>"
        )
    if run.ticks:
        parts.append("<h2>Checks</h2><table><thead><tr><th>time (UTC)</th><th>verdict</th><th>action</th>"
                     "<th>weight after</th><th>message</th></tr></thead><tbody>")
        for t in run.ticks:
            weight = "" if t.weight is None else f"{t.weight}%"
            parts.append(
                f"<tr><td>{e(_iso(t.at) or '')}</td>"
                f'<td class="{e(t.verdict.value)}">{e(t.verdict.value)}{e(_score(t))}</td><td>{e(t.action)}</td>'
                f"<td class=\"num\">{e(weight)}</td><td>{e(t.message)}</td></tr>"
            )
        parts.append("</tbody></table>")
    parts.append("</body></html>")
    return "\n".join(parts) + "\n"


def _score(tick: Tick) -> str:
    return "" if tick.score is None else f" (score {_num(tick.score)})"


def plot_metric(run: AnalysisRun, metric: MetricSeries) -> bytes:
    """A PNG of one metric: canary and primary lines, limits, check markers and the decision."""
    import matplotlib

    # The Agg backend is chosen before pyplot is imported: reports render without a display.
    matplotlib.use("Agg")
    import matplotlib.dates as mdates
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(9, 3.6), dpi=100)
    try:
        # The weight first, on its own axis behind the metric, so the metric's lines stay on top.
        if run.weights.timestamps:
            steps = ax.twinx()
            times = [_x(t) for t in run.weights.timestamps]
            values = list(run.weights.values)
            if run.decided_at is not None and run.decided_at > run.weights.timestamps[-1]:
                times.append(_x(run.decided_at))
                values.append(values[-1])
            steps.step(times, values, where="post", color=_WEIGHT_COLOR, linewidth=1.4, alpha=0.8,
                       label="canary weight")
            steps.set_ylim(0, 105)
            steps.set_ylabel("canary weight %", color=_WEIGHT_COLOR)
            steps.tick_params(axis="y", colors=_WEIGHT_COLOR)
            ax.set_zorder(steps.get_zorder() + 1)
            ax.patch.set_visible(False)
        for label, samples, color in (("canary", metric.canary, _CANARY_COLOR),
                                      ("primary", metric.primary, _PRIMARY_COLOR)):
            if samples is not None and samples.timestamps:
                dense = len(samples.timestamps) > 60
                ax.plot([_x(t) for t in samples.timestamps], samples.values, label=label, color=color,
                        marker="" if dense else "o", markersize=3, linewidth=1.8)
        if metric.canary.last() is None and (metric.primary is None or metric.primary.last() is None):
            ax.text(0.5, 0.5, "no data", transform=ax.transAxes, ha="center", va="center",
                    fontsize=16, color="#757575")
        for bound, text in ((metric.limit_min, "min"), (metric.limit_max, "max")):
            if bound is not None and math.isfinite(bound):
                ax.axhline(bound, color="#555555", linestyle="--", linewidth=1, label=f"limit {text}")
        _shade_forbidden(ax, metric)
        _check_markers(ax, run, metric)
        if run.decided_at is not None and run.outcome is not Outcome.RUNNING:
            color = "#c62828" if run.outcome is Outcome.FAILED else "#2e7d32"
            word = "rollback" if run.outcome is Outcome.FAILED else "promotion"
            ax.axvline(_x(run.decided_at), color=color, linewidth=2.5, label=word)
        ax.set_title(f"{_label(metric)} — {metric.verdict_text}", loc="left", fontsize=11)
        if metric.unit:
            ax.set_ylabel(metric.unit)
        ax.xaxis_date(tz=UTC)
        ax.xaxis.set_major_locator(mdates.AutoDateLocator(tz=UTC, maxticks=10))  # type: ignore[no-untyped-call]
        # Clock times on every tick (a concise formatter shows bare seconds within a minute).
        ax.xaxis.set_major_formatter(mdates.DateFormatter("%H:%M:%S", tz=UTC))  # type: ignore[no-untyped-call]
        first = _first_time(run, metric)
        day = datetime.fromtimestamp(first, tz=UTC).strftime("%Y-%m-%d") if first is not None else ""
        ax.set_xlabel(f"time (UTC) {day}".rstrip())
        ax.grid(True, alpha=0.25)
        handles, labels = ax.get_legend_handles_labels()
        for other in fig.axes:
            if other is not ax:
                more = other.get_legend_handles_labels()
                handles, labels = handles + more[0], labels + more[1]
        if handles:
            ax.legend(handles, labels, loc="best", fontsize=8, framealpha=0.85)
        fig.tight_layout()
        buffer = io.BytesIO()
        fig.savefig(buffer, format="png")
        return buffer.getvalue()
    finally:
        plt.close(fig)


def _check_markers(ax: Any, run: AnalysisRun, metric: MetricSeries) -> None:
    """A diamond per check at the canary's judged value, coloured by the check's verdict; a check without
    a value is a vertical line of its colour."""
    values: dict[float, float] = {}
    if metric.checked is not None:
        values = {t: v for t, v in zip(metric.checked.timestamps, metric.checked.values, strict=True)
                  if math.isfinite(v)}
    for tick in run.ticks:
        color = _VERDICT_COLOR[tick.verdict]
        value = values.get(tick.at)
        if value is None:
            ax.axvline(_x(tick.at), color=color, alpha=0.35, linewidth=1)
        else:
            ax.plot([_x(tick.at)], [value], marker="D", markersize=6, color=color, markeredgecolor="#222222",
                    markeredgewidth=0.6, linestyle="none", zorder=5)


def _first_time(run: AnalysisRun, metric: MetricSeries) -> float | None:
    times = [*metric.canary.timestamps, *run.weights.timestamps, *(t.at for t in run.ticks)]
    return min(times) if times else None


def _shade_forbidden(ax: Any, metric: MetricSeries) -> None:
    """Shade the values outside the limits, so a point in red territory is visible at a glance."""
    low, high = ax.get_ylim()
    if metric.limit_min is not None and math.isfinite(metric.limit_min):
        low = min(low, metric.limit_min)
        ax.axhspan(low, metric.limit_min, color="#c62828", alpha=0.07)
    if metric.limit_max is not None and math.isfinite(metric.limit_max):
        high = max(high, metric.limit_max)
        ax.axhspan(metric.limit_max, high, color="#c62828", alpha=0.07)
    ax.set_ylim(low, high)


# ------------------------------------------------------------------------------------------ files


def write_reports(run: AnalysisRun, directory: Path, stem: str | None = None) -> dict[str, Path]:
    """Write `<stem>.json`, `<stem>.md` and `<stem>.html` into `directory`; return their paths."""
    directory.mkdir(parents=True, exist_ok=True)
    stem = stem or re.sub(r"[^A-Za-z0-9._-]+", "_", f"{run.namespace}-{run.name}-analysis")
    paths = {kind: directory / f"{stem}.{kind}" for kind in ("json", "md", "html")}
    paths["json"].write_text(to_json(run), encoding="utf-8")
    paths["md"].write_text(to_markdown(run), encoding="utf-8")
    paths["html"].write_text(to_html(run), encoding="utf-8")
    write_index(directory)
    return paths


INDEX = "index.html"


def index_entries(directory: Path) -> list[dict[str, Any]]:
    """Every report in `directory`, newest first: its stem, release, outcome, times and summary line.
    Files that are not reports (or are being written) are skipped."""
    entries = []
    for path in directory.glob("*.json"):
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            continue
        if not isinstance(data, dict) or data.get("schema") != SCHEMA:
            continue
        entries.append({
            "stem": path.stem, "name": data.get("name", ""), "namespace": data.get("namespace", ""),
            "outcome": data.get("outcome", ""), "decidedAt": data.get("decidedAt"),
            "startedAt": data.get("startedAt"), "judge": data.get("judge", ""),
            "revision": data.get("revision"), "summary": data.get("summary", ""),
            "html": (directory / f"{path.stem}.html").exists(), "md": (directory / f"{path.stem}.md").exists(),
        })
    entries.sort(key=lambda e: (e["decidedAt"] or "", e["stem"]), reverse=True)
    return entries


def index_html(entries: Sequence[dict[str, Any]], title: str = "Analysis reports") -> str:
    """The index page of a reports folder: one row per run with its outcome and links to its files."""
    e = html.escape
    parts = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        f"<title>{e(title)}</title><style>{_CSS}</style></head><body>",
        f"<h1>{e(title)}</h1>",
        f"<p>{len(entries)} run{'s' if len(entries) != 1 else ''}, newest first.</p>",
        "<table><thead><tr><th>decided (UTC)</th><th>release</th><th>outcome</th><th>judge</th>"
        "<th>revision</th><th>summary</th><th>files</th></tr></thead><tbody>",
    ]
    css = {"succeeded": "pass", "failed": "fail"}
    for entry in entries:
        stem = entry["stem"]
        links = [f'<a href="{e(stem)}.html">HTML</a>'] if entry["html"] else []
        links += [f'<a href="{e(stem)}.md">Markdown</a>'] if entry["md"] else []
        links.append(f'<a href="{e(stem)}.json">JSON</a>')
        revision = str(entry["revision"] or "")[:12]
        parts.append(
            f"<tr><td>{e(str(entry['decidedAt'] or '—'))}</td>"
            f"<td>{e(entry['namespace'])}/{e(entry['name'])}</td>"
            f'<td class="{css.get(str(entry["outcome"]), "no-data")}">{e(str(entry["outcome"]))}</td>'
            f"<td>{e(str(entry['judge']))}</td><td><code>{e(revision)}</code></td>"
            f"<td>{e(str(entry['summary']))}</td><td>{' '.join(links)}</td></tr>"
        )
    parts.append("</tbody></table></body></html>")
    return "\n".join(parts) + "\n"


def write_index(directory: Path) -> Path:
    """Write (replace) `index.html` in a reports folder, listing every run in it."""
    path = directory / INDEX
    partial = directory / f".{INDEX}.tmp"
    partial.write_text(index_html(index_entries(directory)), encoding="utf-8")
    partial.replace(path)  # a reader never sees half a page
    return path


# ---------------------------------------------------------------------------------------- helpers


def _iso(at: float | None) -> str | None:
    if at is None:
        return None
    return datetime.fromtimestamp(at, tz=UTC).isoformat().replace("+00:00", "Z")


def _unix(text: str) -> float:
    return datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()


def _x(at: float) -> float:
    """A unix time as a matplotlib date number."""
    import matplotlib.dates as mdates

    return float(mdates.date2num(datetime.fromtimestamp(at, tz=UTC)))  # type: ignore[no-untyped-call]


def _finite(value: float | None) -> float | None:
    return value if value is not None and math.isfinite(value) else None


def _samples(samples: Samples) -> dict[str, list[Any]]:
    # Series timestamps stay unix seconds: compact and exact for machines; tick times are ISO 8601.
    return {"timestamps": list(samples.timestamps), "values": [_finite(v) for v in samples.values]}


def _num(value: float) -> str:
    return f"{value:.4g}" if abs(value) < 1e6 else f"{value:.3e}"


def _value(value: float | None, unit: str) -> str:
    if value is None:
        return "no data"
    return f"{_num(value)} {unit}".rstrip()


def _label(metric: MetricSeries) -> str:
    return f"{metric.name} (dry run)" if metric.dry_run else metric.name


def _md_cell(text: str) -> str:
    """A Markdown table cell: no line breaks, pipes escaped."""
    return " ".join(text.split()).replace("\\", "\\\\").replace("|", "\\|")
