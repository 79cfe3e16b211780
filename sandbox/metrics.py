"""Cumulative counters and histograms in the Prometheus text exposition format, for the data plane.

The simulated data plane counts requests the way Istio, Linkerd, ingress-nginx, Envoy and an
instrumented application would; this module only keeps those numbers (never decreasing) and
renders them, so the engine stays about traffic and this stays about the format.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
import numpy.typing as npt

__all__ = ["BUCKETS_MS", "Labels", "Registry"]

Labels = tuple[tuple[str, str], ...]

# Bucket bounds in milliseconds, fine enough that histogram_quantile lands near the true P99.
BUCKETS_MS: tuple[float, ...] = (
    1, 2, 5, 10, 15, 20, 25, 30, 40, 50, 60, 75, 100, 125, 150, 200, 250, 300, 400, 500, 750,
    1000, 1500, 2000, 3000, 5000, 10000,
)


@dataclass
class _Histogram:
    buckets: npt.NDArray[np.int64]  # per bucket (not yet cumulative), then +Inf last
    total: float = 0.0  # sum of observations in the family's unit


@dataclass
class _Family:
    kind: str  # "counter" or "histogram"
    help: str
    scale: float = 1.0  # histogram unit per millisecond (0.001 for seconds)
    counters: dict[Labels, int] = field(default_factory=dict)
    histograms: dict[Labels, _Histogram] = field(default_factory=dict)


def _escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


def _labels(labels: Labels, extra: str = "") -> str:
    parts = [f'{k}="{_escape(v)}"' for k, v in labels]
    if extra:
        parts.append(extra)
    return "{" + ",".join(parts) + "}" if parts else ""


def _bound(value: float) -> str:
    return f"{value:g}" if value < 1e6 else repr(value)


class Registry:
    """Metric families by name; values only grow."""

    def __init__(self) -> None:
        self._families: dict[str, _Family] = {}
        self._bounds_ms = np.asarray(BUCKETS_MS, dtype=float)

    def counter(self, name: str, help: str) -> None:
        self._families.setdefault(name, _Family("counter", help))

    def histogram(self, name: str, help: str, *, seconds: bool = False) -> None:
        self._families.setdefault(name, _Family("histogram", help, 0.001 if seconds else 1.0))

    def inc(self, name: str, labels: Labels, amount: int) -> None:
        family = self._families[name]
        family.counters[labels] = family.counters.get(labels, 0) + int(amount)

    def observe(self, name: str, labels: Labels, latencies_ms: npt.NDArray[np.float64]) -> None:
        """Count each latency (in ms) into its bucket; an empty array still makes the series exist."""
        family = self._families[name]
        hist = family.histograms.get(labels)
        if hist is None:
            hist = family.histograms[labels] = _Histogram(np.zeros(len(BUCKETS_MS) + 1, dtype=np.int64))
        if latencies_ms.size:
            # `le` is an inclusive upper bound: a value equal to a bound falls in that bucket.
            index = np.searchsorted(self._bounds_ms, latencies_ms, side="left")
            hist.buckets += np.bincount(index, minlength=len(BUCKETS_MS) + 1)
            hist.total += float(latencies_ms.sum()) * family.scale

    def value(self, name: str, labels: Labels) -> int:
        """A counter's value, or a histogram's count (0 when the series does not exist)."""
        family = self._families[name]
        if family.kind == "counter":
            return family.counters.get(labels, 0)
        hist = family.histograms.get(labels)
        return 0 if hist is None else int(hist.buckets.sum())

    def render(self) -> str:
        lines: list[str] = []
        for name, family in sorted(self._families.items()):
            lines.append(f"# HELP {name} {family.help}")
            lines.append(f"# TYPE {name} {family.kind}")
            if family.kind == "counter":
                lines += [f"{name}{_labels(labels)} {value}" for labels, value in sorted(family.counters.items())]
                continue
            bounds: Sequence[str] = [_bound(b * family.scale) for b in BUCKETS_MS]
            for labels, hist in sorted(family.histograms.items()):
                cumulative = np.cumsum(hist.buckets)
                for bound, count in zip([*bounds, "+Inf"], cumulative, strict=True):
                    le = 'le="' + bound + '"'
                    lines.append(f"{name}_bucket{_labels(labels, le)} {int(count)}")
                lines.append(f"{name}_sum{_labels(labels)} {hist.total!r}")
                lines.append(f"{name}_count{_labels(labels)} {int(cumulative[-1])}")
        return "\n".join(lines) + "\n"
