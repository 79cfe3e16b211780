"""What importing a package drags in: the operator starts without matplotlib, and the API types
and the planner without numpy (both are heavy, and the planner must stay pure)."""

from __future__ import annotations

import subprocess
import sys

import pytest


def loaded_after(statement: str, modules: tuple[str, ...]) -> list[str]:
    probe = f"import sys\n{statement}\nprint(' '.join(m for m in {modules!r} if m in sys.modules))"
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=120, check=True)
    return done.stdout.split()


def test_the_operator_does_not_load_matplotlib() -> None:
    assert loaded_after("import rollout.engine.operator", ("rollout.engine.operator", "matplotlib")) == [
        "rollout.engine.operator"
    ]


@pytest.mark.parametrize("module", ["rollout.api.spec", "rollout.core", "analysis.verdicts"])
def test_api_and_core_load_no_numerics(module: str) -> None:
    assert loaded_after(f"import {module}", (module, "numpy", "scipy", "matplotlib")) == [module]


def test_drawing_a_report_loads_matplotlib_with_the_agg_backend() -> None:
    statement = (
        "from analysis.report import AnalysisRun, MetricSeries, Outcome, Samples, plot_metric\n"
        "plot_metric(AnalysisRun('a', 'b', Outcome.RUNNING), MetricSeries('m', Samples.of([1, 2], [3, 4])))\n"
        "import matplotlib\nprint(matplotlib.get_backend().lower())"
    )
    assert loaded_after(statement, ("matplotlib",)) == ["agg", "matplotlib"]
