"""What the demo prints: one line per tick of the release, and the summary at the end (pure)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from .app import VERSIONS

_SHORT = {"request-success-rate": "success", "request-duration": "latency"}


def _number(value: Any) -> str:
    if value is None:
        return "-"
    return f"{float(value):.4g}"


def tick_line(elapsed: float, version: int, status: Mapping[str, Any]) -> str:
    """`  12.3s  v2  Progressing   weight 20%  success canary 100 / primary 100  latency ...`."""
    phase = status.get("phase") or "-"
    parts = [f"{elapsed:6.1f}s", f"v{version}", f"{phase:<12}", f"weight {status.get('canaryWeight', 0):>2}%"]
    analysis = status.get("analysis") or {}
    for metric in analysis.get("metrics") or []:
        name = _SHORT.get(metric.get("name", ""), metric.get("name", ""))
        verdict = metric.get("verdict") or ""
        parts.append(f"{name} canary {_number(metric.get('value'))} / primary {_number(metric.get('primary'))}"
                     f" {verdict}".rstrip())
    return "  ".join(parts)


def tick_key(status: Mapping[str, Any]) -> tuple[Any, ...]:
    """What makes a new line worth printing: a new phase, weight or analysis."""
    analysis = status.get("analysis") or {}
    return status.get("phase"), status.get("canaryWeight"), analysis.get("checkedAt")


def summary(result: Mapping[str, Any], dora: str = "") -> str:
    """The end of the demo; `dora` is `rollout dora`'s table of the demo's runs."""
    lines = ["", "Summary", "======="]
    v2, v3 = result.get("v2") or {}, result.get("v3") or {}
    mirrored = ", traffic mirrored to the canary (no user got its answers)" if result.get("mirror") else ""
    lines.append(f"provider {result['provider']}, judge {result['judge']}, analysis interval {result['interval']:g}s"
                 f"{mirrored}")
    lines.append(f"v2 (healthy):   {v2.get('phase', '-')}; promoted {_seconds(v2.get('to_promote'))} after its commit")
    lines.append(f"v3 ({VERSIONS[3].error_rate:.0%} errors): {v3.get('phase', '-')}; rolled back "
                 f"{_seconds(v3.get('bad_to_rollback'))} after its first request, revert on the remote "
                 f"{_seconds(v3.get('bad_to_revert'))} after it "
                 f"({_seconds(v3.get('rollback_to_revert'))} after the rollback)")
    lines.append(f"Git and cluster agree: {'yes' if result.get('agree') else 'NO'} "
                 f"(remote head {str(result.get('remote_head', ''))[:12]}, applied "
                 f"{str(result.get('applied_revision', ''))[:12]}, target image {result.get('target_image')})")
    if dora:
        lines += ["", f"DORA figures of this demo (rollout dora -n {result.get('namespace', 'demo')}):", "",
                  dora.rstrip()]
    if result.get("revert_show"):
        lines += ["", "The revert commit (git show --stat):", "", result["revert_show"].rstrip()]
    reports: Sequence[str] = result.get("reports") or []
    if reports:
        lines += ["", "HTML reports:"] + [f"  {p}" for p in reports]
        if result.get("reports_index"):
            lines.append(f"  all runs: {result['reports_index']}")
    return "\n".join(lines)


def _seconds(value: Any) -> str:
    return "-" if value is None else f"{float(value):.1f}s"
