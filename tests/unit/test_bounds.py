"""Every number the operator turns into a time or a count is bounded, in the parser and the CRDs alike.

At its limit a value is accepted; one past it is refused with a message naming the field and the
limit, by `check_object` (schema and parser together) and by the parser alone, which is all the
operator runs. Values YAML can carry but Python handles badly (inf, nan, ints of thousands of
digits, deep nesting, keys that are not strings) become problems, never exceptions.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from rollout.api import limits
from rollout.api.errors import FieldError, ValidationError
from rollout.api.manifests import check_object
from rollout.api.parse import parse_resource
from rollout.cli import main
from tests.unit.test_crds import node
from tests.unit.test_parse import BASES, mutate

DAY = "must be at most 24h, got "

# (kind, path, value at the limit, value past it, message past it)
BOUNDS: list[tuple[str, str, Any, Any, str]] = [
    ("Canary", "spec.analysis.interval", "24h", "99999999999999999999s", f"{DAY}'99999999999999999999s'"),
    ("Canary", "spec.analysis.interval", "1439m60s", "24h0m1s", f"{DAY}'24h0m1s'"),
    ("BlueGreen", "spec.analysis.interval", "86400s", "86401s", f"{DAY}'86401s'"),
    ("Canary", "spec.analysis.metrics[0].interval", "24h", "25h", f"{DAY}'25h'"),
    ("Canary", "spec.analysis.webhooks[0].timeout", "24h", "1" + "0" * 400 + "h", f"{DAY}'1{'0' * 400}h'"),
    ("GitSource", "spec.interval", "24h", "24h1ms", f"{DAY}'24h1ms'"),
    ("Canary", "spec.progressDeadlineSeconds", 604800, 604801, "must be at most 604800, got 604801"),
    ("BlueGreen", "spec.progressDeadlineSeconds", 604800, 10**20,
     "must be at most 604800, got 100000000000000000000"),
    ("Canary", "spec.analysis.threshold", 1000, 1001, "must be at most 1000, got 1001"),
    ("BlueGreen", "spec.analysis.threshold", 1000, 10**30,
     "must be at most 1000, got 1000000000000000000000000000000"),
    ("BlueGreen", "spec.analysis.iterations", 1000, 1001, "must be at most 1000, got 1001"),
    ("BlueGreen", "spec.scaleDownDelaySeconds", 86400, 86401, "must be at most 86400, got 86401"),
    ("Canary", "spec.analysis.metrics[0].compare", {"tolerance": 100}, {"tolerance": 100.5}, ""),
    ("Canary", "spec.analysis.maxWeight", 100, 101, "must be between 1 and 100, got 101"),
    ("Canary", "spec.analysis.stepWeight", 50, 10**25, "must be between 1 and 100, got 10000000000000000000000000"),
    ("Canary", "spec.service.port", 65535, 65536, "must be between 1 and 65535, got 65536"),
    ("Canary", "spec.service.targetPort", 65535, 65536, "must be between 1 and 65535, got 65536"),
]


def _case(kind: str, path: str, value: Any) -> dict[str, Any]:
    obj = mutate(BASES[kind](), path, value)
    if kind == "Canary" and path == "spec.analysis.maxWeight":
        obj = mutate(obj, "spec.analysis.stepWeight", 10)
    return obj


def _expected(path: str, past: Any, message: str) -> tuple[str, str]:
    if path.endswith(".compare"):  # the field is inside the object set
        return f"{path}.tolerance", f"must be at most 100, got {past['tolerance']}"
    return path, message


@pytest.mark.parametrize(("kind", "path", "at", "past", "message"), BOUNDS, ids=[f"{b[0]}-{b[1]}-{b[3]!s:.12}"
                                                                                  for b in BOUNDS])
def test_at_the_limit_accepted_past_it_refused(kind: str, path: str, at: Any, past: Any, message: str) -> None:
    assert check_object(_case(kind, path, at)) == []
    parse_resource(_case(kind, path, at))
    where, said = _expected(path, past, message)
    assert check_object(_case(kind, path, past)) == [FieldError(where, said)]
    with pytest.raises(ValidationError) as caught:
        parse_resource(_case(kind, path, past))
    assert caught.value.errors == [FieldError(where, said)]


@pytest.mark.parametrize("kind", ["Canary", "BlueGreen"])
@pytest.mark.parametrize(("path", "limit"), [
    ("spec.progressDeadlineSeconds", limits.MAX_PROGRESS_DEADLINE),
    ("spec.analysis.threshold", limits.MAX_THRESHOLD),
    ("spec.analysis.iterations", limits.MAX_ITERATIONS),
    ("spec.analysis.metrics.[].compare.tolerance", limits.MAX_TOLERANCE),
])
def test_the_crds_carry_the_parsers_limits(kind: str, path: str, limit: float) -> None:
    # A cap sits apart from the range (in allOf), so a value below the minimum still reads "at least".
    assert node(kind, path)["allOf"] == [{"maximum": limit}]


def test_scale_down_delay_limit_is_in_the_crd() -> None:
    assert node("BlueGreen", "spec.scaleDownDelaySeconds")["allOf"] == [{"maximum": limits.MAX_SCALE_DOWN_DELAY}]


def test_below_the_minimum_the_message_is_unchanged() -> None:
    obj = mutate(BASES["Canary"](), "spec.progressDeadlineSeconds", 0)
    assert check_object(obj) == [FieldError("spec.progressDeadlineSeconds", "must be at least 1, got 0")]


NON_FINITE = [float("inf"), float("-inf"), float("nan"), 10**5000, -(10**5000)]
NUMERIC = [
    "spec.progressDeadlineSeconds", "spec.analysis.threshold", "spec.analysis.maxWeight", "spec.analysis.stepWeight",
    "spec.analysis.stepWeightPromotion", "spec.analysis.alpha", "spec.service.port", "spec.service.targetPort",
    "spec.analysis.metrics[0].thresholdRange.min", "spec.analysis.metrics[0].thresholdRange.max",
    "spec.analysis.metrics[0].threshold", "spec.analysis.metrics[0].compare", "spec.analysis.interval",
    "spec.analysis.webhooks[0].timeout", "metadata.generation",
]


@pytest.mark.parametrize("path", NUMERIC)
@pytest.mark.parametrize("value", NON_FINITE, ids=["inf", "-inf", "nan", "huge", "-huge"])
def test_non_finite_and_huge_numbers_are_problems(path: str, value: Any) -> None:
    if path.endswith(".compare"):
        value = {"tolerance": value}
    obj = mutate(BASES["Canary"](), path, value)
    found = check_object(obj)
    assert found is not None
    if path != "metadata.generation":  # the API server's field: only read, never judged
        assert found, path
    try:
        parse_resource(obj)
    except ValidationError as e:
        assert all(str(error) for error in e.errors)


@pytest.mark.parametrize("value", ["5", "", "ten", "٣", True, [1], {"a": 1}, None])
@pytest.mark.parametrize("path", ["spec.progressDeadlineSeconds", "spec.analysis.threshold", "spec.analysis.alpha",
                                  "spec.analysis.metrics[0].thresholdRange.min"])
def test_strings_and_other_types_where_numbers_go(path: str, value: Any) -> None:
    found = check_object(mutate(BASES["Canary"](), path, value))
    assert found is not None
    if value is not None:
        assert [e.path for e in found] == [path]


def test_keys_that_are_not_strings_and_deep_nesting() -> None:
    obj = BASES["Canary"]()
    obj["spec"][1.5] = 1
    obj["spec"][None] = 2
    assert check_object(obj) == [FieldError("spec[1.5]", "unknown field"), FieldError("spec[None]", "unknown field")]
    deep: Any = 1
    for _ in range(5000):
        deep = {"a": deep}
    obj = mutate(BASES["Canary"](), "spec.service.extra", deep)
    assert check_object(obj) == [FieldError("", "nested too deeply")]
    assert check_object({"apiVersion": "flagger.app/v1beta1", "kind": ["Canary"]}) is None


LONG_INT = "1" + "0" * 5000
FILES = {
    "interval.yaml": ("spec.analysis.interval: must be at most 24h, got '99999999999999999999s'",
                      {"interval: 1m": "interval: 99999999999999999999s"}),
    "inf.yaml": ("spec.analysis.metrics[0].thresholdRange.max: must be a number, got inf",
                 {"max: 500": "max: .inf"}),
    "overflow.yaml": ("spec.analysis.metrics[0].thresholdRange.max: must be a number, got inf",
                      {"max: 500": "max: 1.0e+400"}),
    "nan.yaml": ("spec.analysis.alpha: must be a number, got nan", {"threshold: 5": "threshold: 5\n    alpha: .nan"}),
    "digits.yaml": ("invalid YAML", {"threshold: 5": f"threshold: {LONG_INT}"}),
    "nested.yaml": ("invalid YAML", {"port: 9898": "port: " + "[" * 5000 + "]" * 5000}),
    "string.yaml": ("spec.progressDeadlineSeconds: must be a number, got string '1e20'",
                    {"port: 9898": "port: 9898\n  progressDeadlineSeconds: 1e20"}),
}

CANARY_YAML = """\
apiVersion: rollout.gitops.dev/v1alpha1
kind: Canary
metadata: {name: podinfo, namespace: test}
spec:
  provider: istio
  targetRef: {apiVersion: apps/v1, kind: Deployment, name: podinfo}
  service:
    port: 9898
  analysis:
    interval: 1m
    threshold: 5
    maxWeight: 50
    stepWeight: 10
    metrics:
    - name: request-duration
      thresholdRange:
        max: 500
"""


@pytest.mark.parametrize("name", sorted(FILES))
def test_validate_prints_one_line_per_problem_never_a_traceback(
    name: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    expected, changes = FILES[name]
    text = CANARY_YAML
    for old, new in changes.items():
        assert old in text
        text = text.replace(old, new, 1)
    path = tmp_path / name
    path.write_text(text)
    assert main(["validate", str(path)]) == 1
    out, err = capsys.readouterr()
    assert "Traceback" not in out + err
    [line] = out.splitlines()
    assert line.startswith(f"{path}:1: ") and expected in line, line


@pytest.mark.parametrize("written", ["\u0661s", "\uff11\uff10s", "1\u0660s"])
def test_durations_take_ascii_digits_only_as_go_does(written: str) -> None:
    obj = mutate(BASES["Canary"](), "spec.analysis.interval", written)
    message = f"must be a duration like 30s, 1m30s or 2h, got {written!r}"
    assert check_object(obj) == [FieldError("spec.analysis.interval", message)]
