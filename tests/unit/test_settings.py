"""The operator's settings: defaults, ROLLOUT_* variables, flags over variables, and clear refusals."""

from __future__ import annotations

import subprocess
import sys
from dataclasses import fields
from pathlib import Path

import pytest

from rollout.cli import build_parser
from rollout.settings import Settings, described


def test_defaults_are_the_documented_ones() -> None:
    s = Settings()
    assert (s.api_timeout, s.apply_timeout, s.error_backoff, s.invalid_recheck, s.git_retry) == (10, 15, 5, 30, 10)
    assert s.prometheus == "http://prometheus.monitoring:9090"
    assert s.workers >= 5


def test_environment_then_flags() -> None:
    env = {"ROLLOUT_API_TIMEOUT": "3.5", "ROLLOUT_WORKERS": "2", "ROLLOUT_PROMETHEUS_URL": "http://prom:9090"}
    s = Settings.build(env, workers=7, error_backoff=None)
    assert s.api_timeout == 3.5
    assert s.workers == 7  # the flag wins over the variable
    assert s.prometheus == "http://prom:9090"
    assert s.error_backoff == 5.0  # a flag left unset keeps the variable or the default


@pytest.mark.parametrize(
    ("env", "given", "message"),
    [
        ({"ROLLOUT_API_TIMEOUT": "soon"}, {}, "ROLLOUT_API_TIMEOUT must be a number, got 'soon'"),
        ({"ROLLOUT_WORKERS": "2.5"}, {}, "ROLLOUT_WORKERS must be a whole number, got '2.5'"),
        ({}, {"workers": 0}, "--workers must be at least 1, got 0"),
        ({}, {"api_timeout": 0.0}, "--api-timeout must be more than 0 seconds"),
        ({}, {"error_backoff": -1.0}, "--error-backoff must not be negative, got -1.0"),
        ({}, {"prometheus": "prom:9090"}, "--prometheus must start with http:// or https://, got 'prom:9090'"),
    ],
)
def test_bad_values_name_the_setting(env: dict[str, str], given: dict[str, object], message: str) -> None:
    with pytest.raises(ValueError) as e:
        Settings.build(env, **given)
    assert str(e.value) == message


def test_every_setting_is_a_flag_of_rollout_run_with_its_variable() -> None:
    run = build_parser()._subparsers._group_actions[0].choices["run"]  # type: ignore[union-attr]
    text = run.format_help()
    for name, flag, env, _ in described():
        assert flag in text, name
        assert f"${env}" in text, name
    assert len(list(described())) == len(fields(Settings))


def test_every_setting_is_in_the_readme() -> None:
    readme = (Path(__file__).parents[2] / "README.md").read_text()
    missing = [env for _, _, env, _ in described() if env not in readme]
    assert not missing


def test_rollout_run_refuses_a_bad_variable_in_one_line(tmp_path: Path) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "rollout", "run", "--kubeconfig", str(tmp_path / "none")],
        capture_output=True, text=True, timeout=60, env={"ROLLOUT_ERROR_BACKOFF": "-3", "PATH": "/usr/bin:/bin"},
    )
    assert done.returncode == 2
    assert done.stderr == "rollout run: ROLLOUT_ERROR_BACKOFF must not be negative, got -3.0\n"


def test_rollout_run_refuses_an_unknown_mesh_provider_in_one_line(tmp_path: Path) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "rollout", "run", "--kubeconfig", str(tmp_path / "none"), "--mesh-provider",
         "ambassador"],
        capture_output=True, text=True, timeout=60, env={"PATH": "/usr/bin:/bin"},
    )
    assert done.returncode == 2
    assert done.stderr.startswith("rollout run: --mesh-provider (or ROLLOUT_MESH_PROVIDER) must be one of gatewayapi, ")
    assert done.stderr.endswith(", got 'ambassador'\n")


def test_the_mesh_provider_defaults_to_flaggers_and_reads_its_variable() -> None:
    assert Settings().mesh_provider == "istio"
    assert Settings.build({"ROLLOUT_MESH_PROVIDER": "gatewayapi"}).mesh_provider == "gatewayapi"
    assert Settings.build({"ROLLOUT_MESH_PROVIDER": "gatewayapi"}, mesh_provider="linkerd").mesh_provider == "linkerd"
