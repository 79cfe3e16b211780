"""`rollout validate` as a user runs it: exit codes, exact error lines, JSON, stdin, bad inputs."""

from __future__ import annotations

import io
import json
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from rollout.api.manifests import is_rollout_kind
from rollout.cli import main

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = ROOT / "examples"

GOOD = """\
apiVersion: rollout.gitops.dev/v1alpha1
kind: Canary
metadata:
  name: podinfo
spec:
  provider: istio
  targetRef: {apiVersion: apps/v1, kind: Deployment, name: podinfo}
  service: {port: 9898}
  analysis:
    interval: 1m
    threshold: 5
    maxWeight: 50
    stepWeight: 10
    metrics:
      - name: request-success-rate
        thresholdRange: {min: 99}
"""

DEPLOYMENT = """\
apiVersion: apps/v1
kind: Deployment
metadata:
  name: app
spec: {}
"""

BAD = (
    GOOD.replace("stepWeight: 10", "stepWeight: 60").replace("{min: 99}", "{min: 99, max: 50}")
    + "      - name: error-rate\n        thresholdRange: {max: 1}\n"
)


def run(argv: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    code = main(argv)
    out, err = capsys.readouterr()
    return code, out, err


def write(tmp_path: Path, name: str, text: str) -> Path:
    path = tmp_path / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


def rollout_resources_in(folder: Path) -> int:
    count = 0
    for path in folder.rglob("*.y*ml"):
        count += sum(1 for d in yaml.safe_load_all(path.read_text()) if isinstance(d, dict) and is_rollout_kind(d))
    return count


def test_examples_are_valid(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = run(["validate", str(EXAMPLES)], capsys)
    assert (code, out) == (0, "")
    assert err.splitlines()[-1] == f"{rollout_resources_in(EXAMPLES)} resources valid"


def test_errors_are_one_line_each_with_file_document_resource_and_field(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    f = write(tmp_path, "app.yaml", DEPLOYMENT + "---\n" + BAD)
    code, out, err = run(["validate", str(f)], capsys)
    assert code == 1
    assert out.splitlines() == [
        f"{f}:2: Canary/podinfo: spec.analysis.metrics[0].thresholdRange: min (99) must not exceed max (50)",
        f"{f}:2: Canary/podinfo: spec.analysis.metrics[1]: 'error-rate' is not a built-in metric "
        "(request-success-rate, request-duration); add a query or a templateRef",
        f"{f}:2: Canary/podinfo: spec.analysis.stepWeight: must not exceed maxWeight (50), got 60",
    ]
    assert err.splitlines() == [
        f"{f}:1: ignored Deployment/app (not a rollout kind)",
        "3 errors; 0 of 1 resource valid",
    ]


def test_json_output(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    f = write(tmp_path, "app.yaml", GOOD + "---\n" + GOOD.replace("stepWeight: 10", "stepWeight: 60"))
    code, out, _ = run(["validate", "--output", "json", str(f)], capsys)
    assert code == 1
    assert json.loads(out) == [
        {
            "file": str(f),
            "document": 2,
            "kind": "Canary",
            "name": "podinfo",
            "path": "spec.analysis.stepWeight",
            "message": "must not exceed maxWeight (50), got 60",
        }
    ]
    code, out, _ = run(["validate", "-o", "json", str(write(tmp_path, "ok.yaml", GOOD))], capsys)
    assert (code, json.loads(out)) == (0, [])


def test_stdin(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setattr(sys, "stdin", io.StringIO(DEPLOYMENT + "---\n" + GOOD))
    code, out, err = run(["validate", "-"], capsys)
    assert (code, out) == (0, "")
    assert err.splitlines() == ["<stdin>:1: ignored Deployment/app (not a rollout kind)", "1 resource valid"]
    monkeypatch.setattr(sys, "stdin", io.StringIO(GOOD.replace("port: 9898", "port: 0")))
    code, out, _ = run(["validate", "-"], capsys)
    assert code == 1
    assert out.startswith("<stdin>:1: Canary/podinfo: spec.service.port: ")


def test_invalid_yaml_names_document_line_and_column(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    first = GOOD.replace("stepWeight: 10", "stepWeight: 60")  # 16 lines, then 6 of the Deployment and separators
    f = write(tmp_path, "broken.yaml", first + "---\n" + DEPLOYMENT + "---\nkind: Canary\nspec:\n  a: b: c\n")
    code, out, err = run(["validate", str(f)], capsys)
    assert code == 1
    # The documents before the broken one are still checked.
    assert out.splitlines() == [
        f"{f}:1: Canary/podinfo: spec.analysis.stepWeight: must not exceed maxWeight (50), got 60",
        f"{f}:3: invalid YAML at line 26, column 7: mapping values are not allowed here",
    ]
    assert "Traceback" not in err


def test_duplicate_keys_are_refused(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    f = write(tmp_path, "dup.yaml", GOOD.replace("    threshold: 5\n", "    threshold: 5\n    threshold: 2\n"))
    code, out, _ = run(["validate", str(f)], capsys)
    assert (code, out) == (1, f"{f}:1: invalid YAML at line 12, column 5: duplicate key 'threshold'\n")


def test_missing_file_and_empty_directory(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    missing = tmp_path / "nope.yaml"
    empty = tmp_path / "empty"
    empty.mkdir()
    code, out, err = run(["validate", str(missing), str(empty)], capsys)
    assert code == 1
    assert out.splitlines() == [
        f"{missing}: no such file or directory",
        f"{empty}: no *.yaml or *.yml files in this directory",
    ]
    assert "Traceback" not in err


def test_directories_are_searched_recursively_in_order(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    bad = GOOD.replace("threshold: 5", "threshold: 0")
    b = write(tmp_path, "b/deep/canary.yml", bad)
    a = write(tmp_path, "a.yaml", bad)
    write(tmp_path, "notes.txt", "not: [yaml")
    code, out, _ = run(["validate", str(tmp_path)], capsys)
    assert code == 1
    assert [line.split(": ")[0] for line in out.splitlines()] == [f"{a}:1", f"{b}:1"]


def test_flagger_api_version_gets_a_hint(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    f = write(tmp_path, "flagger.yaml", GOOD.replace("rollout.gitops.dev/v1alpha1", "flagger.app/v1beta1"))
    code, out, _ = run(["validate", str(f)], capsys)
    assert (code, out) == (
        1,
        f"{f}:1: Canary/podinfo: apiVersion: this is a Flagger Canary: change apiVersion from flagger.app/v1beta1 "
        "to rollout.gitops.dev/v1alpha1 (the spec keeps its meaning)\n",
    )


def test_documents_that_are_not_objects(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    f = write(tmp_path, "odd.yaml", "---\n---\n- a\n- b\n---\n" + GOOD)
    code, out, err = run(["validate", str(f)], capsys)
    assert (code, out) == (1, f"{f}:2: not a Kubernetes object (a mapping with apiVersion and kind)\n")
    assert err.splitlines()[-1] == "1 error; 1 of 1 resource valid"


def test_subcommand_is_required(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exited:
        main([])
    assert exited.value.code == 2
    assert "COMMAND" in capsys.readouterr().err


def test_the_installed_console_script(tmp_path: Path) -> None:
    script = Path(sys.executable).parent / "rollout"
    # `make test` installs the project, console script included: its absence is a broken install.
    assert script.exists(), f"the rollout console script is missing at {script}; run `make venv`"
    ok = subprocess.run([str(script), "validate", "examples/"], cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert (ok.returncode, ok.stdout) == (0, "")
    assert ok.stderr.splitlines()[-1] == f"{rollout_resources_in(EXAMPLES)} resources valid"
    bad = write(tmp_path, "bad.yaml", BAD)
    failed = subprocess.run([str(script), "validate", str(bad)], capture_output=True, text=True, timeout=60)
    assert failed.returncode == 1
    assert len(failed.stdout.splitlines()) == 3
    assert "Traceback" not in failed.stderr


def test_a_daemonset_target_validates_and_a_service_target_is_refused_by_field(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    daemonset = write(tmp_path, "ds.yaml", GOOD.replace("kind: Deployment", "kind: DaemonSet"))
    assert run(["validate", str(daemonset)], capsys)[0] == 0
    service = write(tmp_path, "svc.yaml", GOOD.replace("apiVersion: apps/v1, kind: Deployment",
                                                       "apiVersion: v1, kind: Service"))
    code, out, _ = run(["validate", str(service)], capsys)
    assert code == 1
    assert out.splitlines() == [
        f"{service}:1: Canary/podinfo: spec.targetRef.kind: a Service target is not supported; name the DaemonSet "
        "or Deployment behind it (its pods are cloned into <name>-primary), or a Knative Service "
        "(serving.knative.dev/v1) with provider knative",
    ]


NO_PROVIDER = GOOD.replace("  provider: istio\n", "")


@pytest.mark.parametrize(
    ("flag", "variable", "code", "said"),
    [
        (None, None, 0, ""),  # Flagger's default: istio, which shifts weights
        ("gatewayapi", None, 1, "spec.service.gatewayRefs: is required with provider gatewayapi"),
        (None, "kubernetes", 1, "spec.analysis.stepWeight: the operator's default provider 'kubernetes' "
                                "(spec.provider is not set; the default is rollout run --mesh-provider or "
                                "ROLLOUT_MESH_PROVIDER) switches all traffic at once"),
        ("istio", "kubernetes", 0, ""),  # the flag wins over the variable
        ("ambassador", None, 2, ""),
    ],
)
def test_validate_judges_a_canary_without_provider_by_the_mesh_default(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch,
    flag: str | None, variable: str | None, code: int, said: str,
) -> None:
    path = write(tmp_path, "canary.yaml", NO_PROVIDER)
    if variable is None:
        monkeypatch.delenv("ROLLOUT_MESH_PROVIDER", raising=False)
    else:
        monkeypatch.setenv("ROLLOUT_MESH_PROVIDER", variable)
    got, out, err = run(["validate", *(["--mesh-provider", flag] if flag else []), str(path)], capsys)
    assert got == code
    assert said in out
    if code == 2:
        assert err.startswith("rollout validate: --mesh-provider (or ROLLOUT_MESH_PROVIDER) must be one of ")


def test_analyze_reads_a_canary_without_provider_under_the_mesh_default(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
) -> None:
    from rollout.api.spec import Provider
    from rollout.cli.analyzer import load_release
    from rollout.cli.common import mesh_provider

    path = write(tmp_path, "canary.yaml", NO_PROVIDER)
    monkeypatch.delenv("ROLLOUT_MESH_PROVIDER", raising=False)
    assert load_release(path, None, None)[0].spec.provider == Provider.ISTIO
    assert load_release(path, None, None, mesh_provider("linkerd"))[0].spec.provider == Provider.LINKERD
    monkeypatch.setenv("ROLLOUT_MESH_PROVIDER", "smi:v1alpha2")
    assert mesh_provider(None) == Provider.SMI
    with pytest.raises(ValueError, match="must be one of"):
        mesh_provider("ambassador")


# --- cross-checks: a MetricTemplate's Secret, a metric's judge on its template's provider -------------

TEMPLATE = """\
apiVersion: rollout.gitops.dev/v1alpha1
kind: MetricTemplate
metadata: {name: errors, namespace: apps}
spec:
  provider: {type: TYPE, address: "https://metrics.example.com", secretRef: {name: creds}}
  query: sum(errors)
"""

SECRET = """\
apiVersion: v1
kind: Secret
metadata: {name: creds, namespace: apps}
stringData: KEYS
"""

USES_TEMPLATE = """\
apiVersion: rollout.gitops.dev/v1alpha1
kind: Canary
metadata: {name: podinfo, namespace: apps}
spec:
  provider: istio
  targetRef: {apiVersion: apps/v1, kind: Deployment, name: podinfo}
  service: {port: 9898}
  analysis:
    interval: 1m
    threshold: 5
    maxWeight: 50
    stepWeight: 10
    JUDGE
    metrics:
      - name: errors
        templateRef: {name: errors}
        METRIC
"""


@pytest.fixture
def no_ranges() -> object:
    """A provider type that serves no range series (none of the real ones may lack them yet)."""
    from analysis.providers.rules import RULES, ProviderRules

    RULES["noranges"] = ProviderRules("noranges", docs="https://example.com/api", secret_keys=("api_key",),
                                      secret_required=True, optional_secret_keys=("app_key",), range_queries=False)
    yield RULES["noranges"]
    del RULES["noranges"]


def test_a_templates_secret_in_the_files_must_hold_the_keys_its_provider_reads(
        tmp_path: Path, capsys: pytest.CaptureFixture[str], no_ranges: object) -> None:
    from rollout.api.manifests import validate_text

    text = TEMPLATE.replace("TYPE", "noranges") + "---\n" + SECRET.replace("KEYS", "{app_key: x}")
    report = validate_text(text, "t.yaml")
    secret_problems = [p.line() for p in report.problems if p.path == "spec.provider.secretRef.name"]
    assert secret_problems == [
        "t.yaml:1: MetricTemplate/errors: spec.provider.secretRef.name: Secret apps/creds (t.yaml:2) lacks api_key: "
        "the noranges provider reads the keys api_key, app_key (see https://example.com/api)"]
    fixed = TEMPLATE.replace("TYPE", "noranges") + "---\n" + SECRET.replace("KEYS", "{api_key: x}")
    assert [p for p in validate_text(fixed, "t.yaml").problems if p.path.startswith("spec.provider.secretRef")] == []


def test_a_prometheus_templates_secret_needs_one_of_its_keys_and_files_are_one_set(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    write(tmp_path, "template.yaml", TEMPLATE.replace("TYPE", "prometheus"))
    write(tmp_path, "secret.yaml", SECRET.replace("KEYS", "{user: x}"))
    code, out, _ = run(["validate", str(tmp_path)], capsys)
    assert code == 1
    assert out == (f"{tmp_path}/template.yaml:1: MetricTemplate/errors: spec.provider.secretRef.name: "
                   f"Secret apps/creds ({tmp_path}/secret.yaml:1) has none of the keys the prometheus provider "
                   "reads: username, password, token (see https://docs.flagger.app/usage/metrics#prometheus)\n")
    write(tmp_path, "secret.yaml", SECRET.replace("KEYS", "{token: x}"))
    assert run(["validate", str(tmp_path)], capsys)[0] == 0


@pytest.mark.parametrize(("judge", "metric", "why"), [
    ("judge: compare", "", "its compare judge needs range series"),
    ("judge: threshold", "compare: {direction: increase}", "its compare judge needs range series"),
    ("judge: sequential", "", "analysis.judge is sequential, whose test reads only the built-in metrics' counts, "
                              "so this templateRef metric is compared with the primary, which needs range series"),
    ("judge: threshold", "thresholdRange: {max: 1}", None),
])
def test_a_metric_judged_on_ranges_needs_a_provider_that_serves_them(
        no_ranges: object, judge: str, metric: str, why: str | None) -> None:
    from rollout.api.manifests import validate_text

    canary = USES_TEMPLATE.replace("JUDGE", judge).replace("METRIC", metric or "thresholdRange: {max: 1}")
    text = canary + "---\n" + TEMPLATE.replace("TYPE", "noranges")
    found = [p for p in validate_text(text, "t.yaml").problems if p.kind == "Canary"]
    if why is None:
        assert found == []
        return
    assert [p.line() for p in found] == [
        f"t.yaml:1: Canary/podinfo: spec.analysis.metrics[0].templateRef: metric errors: {why}, which the noranges "
        "provider of MetricTemplate apps/errors cannot give; judge it with a thresholdRange instead "
        "(analysis.judge threshold, no compare block)"]
