"""What `rollout analyze` does: replay a Canary's analysis over a past window of its metric sources.

Loads the Canary (and any MetricTemplates) from a manifest file, replays it with `rollout.engine.replay`
against the given Prometheus (built-in metrics and inline queries) and each template's own provider
(credentials from `rollout.cli.provider_secrets`), prints one line per tick and the outcome, and
optionally writes the HTML report. Exit codes: 0 promote (or no decision in the window), 3
rollback, 2 usage or connection errors.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import IO, Any

from analysis.providers.base import ProviderConfig
from analysis.providers.registry import build
from analysis.providers.rules import RULES
from analysis.report import to_html
from analysis.verdicts import Outcome
from rollout.api.durations import parse_duration
from rollout.api.manifests import InvalidManifests, load_resources
from rollout.api.spec import DEFAULT_MESH_PROVIDER, BlueGreen, Canary, Judge, MetricTemplate, Provider
from rollout.api.status import format_time
from rollout.engine.checks import CheckError, MetricChecks, judge_for
from rollout.engine.replay import Replay, replay
from rollout.engine.reports import TickRecord, build_report, run_series
from rollout.engine.sources import SourceError, Sources, template_name

EXIT_PROMOTE, EXIT_USAGE, EXIT_ROLLBACK = 0, 2, 3

# How the command names a replay's outcome (JSON `outcome`, the last line).
WORDS = {Outcome.SUCCEEDED: "promote", Outcome.FAILED: "rollback", Outcome.RUNNING: "incomplete"}

_RELATIVE = re.compile(r"^now(?:\s*-\s*(\S+))?$")


class UsageError(ValueError):
    """Bad arguments or input: exit code 2 with this message."""


def parse_instant(text: str, now: datetime) -> datetime:
    """`now`, `now-2h`, an RFC 3339 time (`2026-11-01T10:00:00Z`) or unix seconds."""
    text = text.strip()
    m = _RELATIVE.match(text)
    try:
        if m:
            return now - timedelta(seconds=parse_duration(m.group(1))) if m.group(1) else now
        if re.fullmatch(r"\d+(\.\d+)?", text):
            return datetime.fromtimestamp(float(text), tz=UTC)
        t = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError as e:
        raise UsageError(f"{text!r} is not a time: use RFC 3339 (2026-11-01T10:00:00Z), unix seconds, or now-2h") from e
    return t if t.tzinfo else t.replace(tzinfo=UTC)


@dataclass(frozen=True)
class Request:
    file: Path
    prometheus: str | None
    start: datetime
    end: datetime
    name: str | None = None
    judge: Judge | None = None
    step: timedelta | None = None
    token: str | None = None
    # The provider of a Canary without spec.provider (its built-in metrics' queries depend on it).
    mesh_provider: Provider = DEFAULT_MESH_PROVIDER
    # --provider-secret: a template's secretRef name (or namespace/name) -> the file with its keys.
    provider_secrets: Mapping[str, Path] | None = None
    environ: Mapping[str, str] | None = None


def load_release(path: Path, name: str | None, judge: Judge | None,
                 mesh_provider: Provider = DEFAULT_MESH_PROVIDER) -> tuple[Canary | BlueGreen, dict[tuple[str, str],
                                                                                                       MetricTemplate]]:
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as e:
        raise UsageError(f"{path}: cannot read: {e.strerror}") from e
    try:
        resources = load_resources(text, str(path), mesh_provider)
    except InvalidManifests as e:
        raise UsageError(f"{path} is not valid (run `rollout validate {path}`):\n{e}") from e
    releases = [r for r in resources if isinstance(r, Canary | BlueGreen)]
    templates = {(t.metadata.namespace, t.metadata.name): t for t in resources if isinstance(t, MetricTemplate)}
    if name is not None:
        releases = [r for r in releases if r.metadata.name == name]
    if len(releases) != 1:
        names = ", ".join(r.metadata.name for r in releases) or "none"
        raise UsageError(f"{path}: expected one Canary or BlueGreen{f' named {name}' if name else ''}, found {names}; "
                         "pick one with --name")
    release = releases[0]
    if judge is not None:
        analysis = replace(release.spec.analysis, judge=judge)
        if isinstance(release, Canary):
            release = replace(release, spec=replace(release.spec, analysis=analysis))
        else:
            release = replace(release, spec=replace(release.spec, analysis=analysis))
    for metric in release.spec.analysis.metrics:
        if judge_for(release, metric) == Judge.THRESHOLD and metric.threshold_range is None:
            raise UsageError(f"metric {metric.name} has no thresholdRange, which the threshold judge needs; "
                             "add one or pick --judge compare|sequential")
    return release, templates


def analyze(request: Request, out: IO[str], *, as_json: bool = False, report: Path | None = None) -> int:
    if request.end <= request.start:
        raise UsageError("--end must be after --start")
    release, templates = load_release(request.file, request.name, request.judge, request.mesh_provider)
    with _sources(request, release) as sources:
        checks = MetricChecks(release, sources, templates, strict=True)
        _ready(checks, release, request.prometheus)
        try:
            result = replay(release, checks.run, request.start, request.end, request.step)
        except CheckError as e:
            raise UsageError(f"a query failed: {e}") from e
        # The report plots each metric at its source's resolution over the replayed run, as the operator's do.
        series = run_series(checks, request.start, result.decided_at or request.end) if report is not None else {}
    if as_json:
        json.dump(to_json(release, result), out, indent=2)
        out.write("\n")
    else:
        for record in result.ticks:
            out.write(tick_line(record) + "\n")
        out.write(outcome_line(result) + "\n")
    if report is not None:
        run = build_report(release, checks.readings, result.ticks, result.outcome, result.decided_at,
                           summary=outcome_line(result), series=series, started_at=request.start)
        report.parent.mkdir(parents=True, exist_ok=True)
        report.write_text(to_html(run), encoding="utf-8")
    return EXIT_ROLLBACK if result.outcome == Outcome.FAILED else EXIT_PROMOTE


class _Closing(Sources):
    """The replay's sources, closed (the Prometheus too) when it ends."""

    def __enter__(self) -> Sources:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()
        if self._default is not None:
            self._default.close()


def _sources(request: Request, release: Canary | BlueGreen) -> _Closing:
    from rollout.cli.provider_secrets import ProvidedSecrets

    needs_prometheus = [m.name for m in release.spec.analysis.metrics if m.template_ref is None]
    if needs_prometheus and not request.prometheus:
        raise UsageError(f"--prometheus URL is needed for {', '.join(needs_prometheus)} (built-in metrics and "
                         "inline queries run on Prometheus)")
    prometheus = None
    if request.prometheus and needs_prometheus:
        secret = {"token": request.token} if request.token else {}
        prometheus = build(ProviderConfig("prometheus", request.prometheus, secret=secret))
    secrets = ProvidedSecrets(request.provider_secrets or {}, os.environ if request.environ is None
                              else request.environ)
    return _Closing(prometheus, secrets)


def _ready(checks: MetricChecks, release: Canary | BlueGreen, prometheus: str | None) -> None:
    """Every source the replay will ask answers, and every template's provider serves history."""
    asked = False
    for metric in release.spec.analysis.metrics:
        try:
            template = checks.template(metric)
        except ValueError as e:
            raise UsageError(str(e)) from None
        if template is None:
            if not asked and not checks.sources.default().is_ready():
                raise UsageError(f"cannot reach Prometheus at {prometheus} (its /-/ready did not answer 200)")
            asked = True
            continue
        provider = template.spec.provider
        if not RULES[provider.type].range_queries:
            raise UsageError(f"metric {metric.name}: the {provider.type} provider of MetricTemplate "
                             f"{template_name(template)} serves no past values, so it cannot be replayed")
        # Building it says what is wrong with the template or its credentials; a provider that cannot be
        # reached or refuses them says so at the first query, in its own words.
        try:
            checks.sources.for_template(template, metric.interval)
        except SourceError as e:
            raise UsageError(str(e)) from None


def _num(x: float | None) -> str:
    return "-" if x is None else f"{x:.4g}"


def tick_line(record: TickRecord) -> str:
    parts = [format_time(record.at), f"weight {record.weight:3d}"]
    for c in record.checks:
        kayenta = f" ({c.classification}, effect {_num(c.effect_size)})" if c.effect_size is not None else ""
        parts.append(f"{c.name} canary {_num(c.value)} primary {_num(c.primary)} {c.verdict.value}{kayenta}")
    if record.score is not None:
        parts.append(f"score {record.score:g}")
    parts.append(record.action)
    return "  ".join(parts)


def outcome_line(result: Replay) -> str:
    if result.outcome == Outcome.FAILED and result.decided_at:
        return f"rollback at {format_time(result.decided_at)} ({result.reason})"
    if result.outcome == Outcome.SUCCEEDED and result.decided_at:
        return f"promote at {format_time(result.decided_at)}"
    return f"incomplete: {result.reason}"


def to_json(release: Canary | BlueGreen, result: Replay) -> dict[str, Any]:
    metrics = []
    for metric in release.spec.analysis.metrics:
        seen = [c for t in result.ticks for c in t.checks if c.name == metric.name]
        counts = {v: sum(1 for c in seen if c.verdict.value == v) for v in ("pass", "fail", "no-data")}
        metrics.append({"name": metric.name, "judge": judge_for(release, metric).value, "dryRun": metric.dry_run,
                        "verdicts": counts,
                        "last": _check(seen[-1]) if seen else None})
    return {
        "canary": f"{release.metadata.namespace}/{release.metadata.name}",
        "outcome": WORDS[result.outcome],
        "decided_at": format_time(result.decided_at) if result.decided_at else None,
        "reason": result.reason,
        "ticks": [
            {"at": format_time(t.at), "weight": t.weight, "action": t.action,
             **({"score": t.score} if t.score is not None else {}),
             "checks": [_check(c) for c in t.checks]}
            for t in result.ticks
        ],
        "metrics": metrics,
    }


def _check(c: Any) -> dict[str, Any]:
    return {"name": c.name, "verdict": c.verdict.value, "canary": c.value, "primary": c.primary,
            "limit": c.limit, "reason": c.reason, "dryRun": c.dry_run, "classification": c.classification,
            "effectSize": c.effect_size, "critical": c.critical}
