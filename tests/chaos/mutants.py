"""Mutated Canary specs: applied next to the running operator, and checked by `rollout validate`.

A mutation replaces, deletes or retypes one field somewhere in a valid Canary (numbers out of
range, wrong types, empty or absurd strings). The operator must keep running and
`rollout validate` must answer with exit 0 or 1 and a message, never a traceback.
`CHAOS_RAW_MUTANTS=1` also applies what the CRD schema rejects (see `apply`).
"""

from __future__ import annotations

import contextlib
import copy
import random
import subprocess
import sys
from pathlib import Path
from typing import Any

import yaml
from kubernetes import client

from rollout.api.kinds import GROUP, VERSION
from rollout.api.schema import schema_errors

# Values of the right type, wrong in meaning: what the CRD schema lets through to the operator.
SAME_TYPE: dict[type, tuple[Any, ...]] = {
    int: (0, -1, 101, 10**9, 2**31),
    float: (0.0, -1.0, 1e9),
    str: ("", "0s", "-5s", "999h", "1m1x", "x" * 300, "∞"),
}
ODD_VALUES: tuple[Any, ...] = (None, -1, 0, -(10**6), 10**30, 1e308, -0.5, "", "-5s", "1h1x", "∞", "x" * 300,
                               True, [], {}, [1, "a"], {"a": {"b": None}}, "${HOME}", "{{ name }}\"}")


def _paths(node: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    found: list[tuple[Any, ...]] = []
    if isinstance(node, dict):
        for key, value in node.items():
            found.append((*prefix, key))
            found += _paths(value, (*prefix, key))
    elif isinstance(node, list):
        for index, value in enumerate(node):
            found.append((*prefix, index))
            found += _paths(value, (*prefix, index))
    return found


def mutate(base: dict[str, Any], rng: random.Random, name: str, changes: int = 2) -> tuple[dict[str, Any], list[str]]:
    """A copy of `base` named `name` with `changes` random mutations inside `spec`; what was done."""
    obj = copy.deepcopy(base)
    obj["metadata"] = {"name": name, "namespace": base["metadata"]["namespace"]}
    done: list[str] = []
    for _ in range(changes):
        paths = [p for p in _paths(obj) if p[0] == "spec"]
        if not paths:  # an earlier change removed or replaced the whole spec
            break
        path = rng.choice(paths)
        parent = obj
        for part in path[:-1]:
            parent = parent[part]
        if rng.random() < 0.2 and isinstance(parent, dict):
            del parent[path[-1]]
            done.append(f"delete {'.'.join(map(str, path))}")
            continue
        current = parent[path[-1]]
        same = SAME_TYPE.get(type(current))
        if isinstance(current, bool):
            value: Any = not current
        elif same and rng.random() < 0.6:
            value = rng.choice(same)
        else:
            value = copy.deepcopy(rng.choice(ODD_VALUES))
        parent[path[-1]] = value
        done.append(f"{'.'.join(map(str, path))} = {value!r}"[:120])
    return obj, done


def validate(files: list[Path]) -> tuple[int, str]:
    """`rollout validate` on the files, as a user runs it: its exit code and what it printed."""
    done = subprocess.run([str(Path(sys.executable).parent / "rollout"), "validate", *map(str, files)],
                          capture_output=True, text=True, timeout=120, check=False)
    return done.returncode, done.stdout + done.stderr


def traceback_problems(files: list[Path]) -> list[str]:
    """One line per file whose validation crashed or exited with something other than 0 or 1."""
    code, output = validate(files)
    if code in (0, 1) and "Traceback" not in output:
        return []
    problems = []
    for file in files:  # find which one: validate each alone
        code, output = validate([file])
        if code not in (0, 1) or "Traceback" in output:
            problems.append(f"{file.name}: exit {code}: {output.strip()[-600:]}")
    return problems or [f"{len(files)} files together: exit {code}: {output.strip()[-600:]}"]


def apply(api: client.ApiClient, obj: dict[str, Any], *, raw: bool = False) -> bool:
    """Create the mutant; whether the API accepted it (a rejection is fine, the schema did its job).

    The sandbox does not enforce the CRD's openAPIV3Schema, so what a real API server would refuse
    is refused here unless `raw`: such objects probe what no cluster would hand the operator.
    """
    if not raw and schema_errors(obj):
        return False
    try:
        client.CustomObjectsApi(api).create_namespaced_custom_object(GROUP, VERSION, obj["metadata"]["namespace"],
                                                                     "canaries", obj)
    except (client.exceptions.ApiException, ValueError, TypeError):
        return False
    return True


def write(folder: Path, objs: list[dict[str, Any]]) -> list[Path]:
    folder.mkdir(parents=True, exist_ok=True)
    files = []
    for obj in objs:
        path = folder / f"{obj['metadata']['name']}.yaml"
        path.write_text(yaml.safe_dump(obj, sort_keys=False, allow_unicode=True))
        files.append(path)
    return files


def delete_all(api: client.ApiClient, namespace: str) -> None:
    custom = client.CustomObjectsApi(api)
    try:
        listed: Any = custom.list_namespaced_custom_object(GROUP, VERSION, namespace, "canaries")
        items = listed["items"]
    except client.exceptions.ApiException:
        return
    for item in items:
        with contextlib.suppress(client.exceptions.ApiException):
            custom.delete_namespaced_custom_object(GROUP, VERSION, namespace, "canaries", item["metadata"]["name"])
