"""No spec wedges anything: mutated manifests are refused with problems, or planned without raising.

Starting from the examples and Flagger's tutorial Canaries, fields are changed one to a few at a
time (huge, negative and non-finite numbers, wrong types, empty and unicode strings, deep nesting,
removed or unknown fields). Checking must give problems or none, never an exception; and whatever
the parser accepts (all the operator runs) must survive a few ticks of the real planner and tick
driver on a simulated cluster, with a new version arriving, as `rollout analyze` runs it.
"""

from __future__ import annotations

import copy
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from rollout.api.errors import ValidationError
from rollout.api.kinds import API_VERSION, FLAGGER_API_VERSION
from rollout.api.manifests import check_object, is_rollout_kind
from rollout.api.parse import PARSERS
from rollout.api.spec import BlueGreen, Canary
from tests.unit.test_crds import FLAGGER_CANARIES
from tests.unit.world import World, failing, no_data, passing

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"


def _bases() -> list[dict[str, Any]]:
    docs = [d for p in sorted(EXAMPLES.glob("*.yaml")) for d in yaml.safe_load_all(p.read_text())]
    docs += [yaml.safe_load(text) for text in FLAGGER_CANARIES.values()]
    return [d for d in docs if isinstance(d, dict) and is_rollout_kind(d)]


BASES = _bases()
Path_ = tuple[str | int, ...]


def _paths(value: Any, at: Path_ = ()) -> Iterator[Path_]:
    yield at
    if isinstance(value, dict):
        for key, item in value.items():
            yield from _paths(item, (*at, key))
    elif isinstance(value, list):
        for i, item in enumerate(value):
            yield from _paths(item, (*at, i))


def _deep(depth: int) -> Any:
    out: Any = "x"
    for _ in range(depth):
        out = {"a": [out]}
    return out


NUMBERS = st.one_of(
    st.integers(-(10**30), 10**30),
    st.sampled_from([0, -1, 1, 100, 101, 1000, 1001, 604801, 2**31, 2**63, 99999999999999999999, 10**5000]),
    st.floats(allow_nan=True, allow_infinity=True),
    st.sampled_from([1e400, -1e400, 1e20, 0.5, -0.0, 1e-320]),
)
STRINGS = st.one_of(
    st.text(max_size=12),
    st.sampled_from(["", " ", "99999999999999999999s", "0", "0s", "1ns", "24h", "24h1s", "-1s", "1e400", "nan",
                     "inf", "1m30s", "2562047h", "\uff11\uff10s", "\u0661s", "istio", "kubernetes",
                     "http://x.test/", "😀", "\x00"]),
)
VALUES = st.one_of(
    NUMBERS, STRINGS, st.booleans(), st.none(),
    st.lists(st.one_of(NUMBERS, STRINGS), max_size=3),
    st.dictionaries(STRINGS, st.one_of(NUMBERS, STRINGS), max_size=3),
    st.sampled_from([1, 10, 50]).map(_deep),
)


@st.composite
def mutated(draw: st.DrawFn) -> dict[str, Any]:
    obj = copy.deepcopy(draw(st.sampled_from(BASES)))
    if draw(st.booleans()):
        obj["apiVersion"] = API_VERSION if obj["apiVersion"] == FLAGGER_API_VERSION else obj["apiVersion"]
    for _ in range(draw(st.integers(1, 3))):
        paths = [p for p in _paths(obj) if len(p) >= 2 or p[:1] == ("spec",)]
        path = draw(st.sampled_from(paths))
        parent: Any = obj
        for key in path[:-1]:
            parent = parent[key]
        op = draw(st.sampled_from(["set", "set", "set", "delete", "add"]))
        if op == "delete":
            del parent[path[-1]]
        elif op == "add" and isinstance(parent[path[-1]], dict):
            key = draw(st.sampled_from(["extra", "interval", "threshold", "port", "", "ключ"]))
            parent[path[-1]][key] = draw(VALUES)
        else:
            parent[path[-1]] = draw(VALUES)
    return obj


OUTCOMES = [passing, failing, no_data]


def _run_ticks(release: Canary | BlueGreen, outcome: int) -> None:
    world = World(release.spec, checks=lambda w: OUTCOMES[outcome]())
    for _ in range(3):
        world.tick()
    world.release("v2", "c2")
    for _ in range(8):
        world.tick()
    assert world.status.canary_weight is None or 0 <= world.status.canary_weight <= 100
    assert all(d.requeue_after >= timedelta(0) for d in world.log)


@settings(max_examples=250, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(mutated(), st.integers(0, len(OUTCOMES) - 1))
def test_any_mutation_is_checked_without_raising_and_what_parses_plans(obj: dict[str, Any], outcome: int) -> None:
    problems = check_object(obj)
    assert problems is None or all(isinstance(p.message, str) and p.message for p in problems)
    parser = PARSERS.get(str(obj.get("kind")))
    if parser is None:
        return
    try:
        resource = parser(obj)
    except ValidationError as e:
        assert e.errors
        return
    if isinstance(resource, Canary | BlueGreen):
        _run_ticks(resource, outcome)


def test_the_bases_are_valid_and_many() -> None:
    kinds = {str(b["kind"]) for b in BASES}
    assert kinds == {"Canary", "BlueGreen", "MetricTemplate", "GitSource", "AlertProvider"} and len(BASES) >= 15


def _at(obj: dict[str, Any], edge: str) -> dict[str, Any]:
    """`obj` with every bounded field at its highest (or lowest) accepted value."""
    high = edge == "high"
    out = copy.deepcopy(obj)
    out["apiVersion"] = API_VERSION
    spec = out["spec"]
    analysis = spec.get("analysis") or spec.get("canaryAnalysis")
    spec["progressDeadlineSeconds"] = 604800 if high else 1
    analysis["interval"] = "24h" if high else "1ns"
    analysis["threshold"] = 1000 if high else 1
    if "iterations" in analysis:
        analysis["iterations"] = 1000 if high else 1
    for metric in analysis.get("metrics", []):
        metric["interval"] = "24h" if high else "0s"
    for hook in analysis.get("webhooks", []):
        hook["timeout"] = "24h" if high else "1ns"
    if out["kind"] == "BlueGreen":
        spec["scaleDownDelaySeconds"] = 86400 if high else 0
    return out


def _parses(obj: dict[str, Any]) -> bool:
    try:
        PARSERS[str(obj["kind"])](obj)
    except ValidationError:
        return False
    return True


def test_releases_at_their_limits_plan() -> None:
    releases = [b for b in BASES if b["kind"] in ("Canary", "BlueGreen") and _parses(b)]
    assert len(releases) >= 10
    for base in releases:
        for edge in ("high", "low"):
            obj = _at(base, edge)
            resource = PARSERS[str(obj["kind"])](obj)
            assert isinstance(resource, Canary | BlueGreen)
            for outcome in range(len(OUTCOMES)):
                _run_ticks(resource, outcome)
