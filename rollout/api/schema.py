"""Checks custom resources against the openAPIV3Schema of our own CRDs, offline.

The CRD files in `crds/` are the single source of the schema: the API server enforces them on
apply, and `rollout validate`, the operator and the tests enforce the very same rules here before
anything reaches a cluster, with messages that name the field and the fix. Unknown fields are
errors, as with `kubectl apply` under strict field validation, because a misspelt `stepweight`
would otherwise be pruned without a word and the release would run with a default.

Pure: reads files and evaluates JSON Schema; no cluster, no network.
"""

from __future__ import annotations

import copy
import difflib
import functools
import os
import re
from collections.abc import Iterable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import yaml
from jsonschema import Draft202012Validator
from jsonschema.exceptions import ValidationError as SchemaViolation

from rollout.api.errors import FieldError
from rollout.api.limits import show_number

CRDS_DIR_ENV = "ROLLOUT_CRDS_DIR"

_PLAIN_KEY = re.compile(r"[A-Za-z0-9_-]+")

_TYPE_NAMES = {
    "integer": "an integer",
    "number": "a number",
    "string": "a string",
    "boolean": "a boolean",
    "object": "an object",
    "array": "a list",
    "null": "null",
}

# Keywords that mean the same in OpenAPI v3 (as Kubernetes reads it) and in JSON Schema 2020-12.
_COPIED = (
    "enum", "minimum", "maximum", "minLength", "maxLength", "pattern", "minItems", "maxItems",
    "uniqueItems", "minProperties", "maxProperties", "multipleOf", "required",
)  # fmt: skip

Validators = dict[tuple[str, str], dict[str, Draft202012Validator]]


def crds_dir() -> Path:
    """The folder holding the CRD manifests: `$ROLLOUT_CRDS_DIR`, else `crds/` at the repository root."""
    override = os.environ.get(CRDS_DIR_ENV)
    return Path(override) if override else Path(__file__).resolve().parents[2] / "crds"


def crd_documents() -> list[dict[str, Any]]:
    """Every CustomResourceDefinition in the CRD folder, in file order (copies: safe to change)."""
    return copy.deepcopy(list(_load(str(crds_dir()))))


def known_kinds() -> set[tuple[str, str]]:
    """(group, kind) of every kind our CRDs define."""
    return set(_validators(str(crds_dir())))


def schema_errors(obj: Mapping[str, Any]) -> list[FieldError] | None:
    """Every schema violation in `obj`, or None when it is not one of our kinds.

    `metadata` and `status` are only checked to be objects: the API server owns the former, and the
    operator (not the user) writes the latter.
    """
    api_version, kind = obj.get("apiVersion"), obj.get("kind")
    if not isinstance(api_version, str) or not isinstance(kind, str):
        return None
    group, _, version = api_version.rpartition("/")
    versions = _validators(str(crds_dir())).get((group, kind))
    if versions is None:
        return None
    validator = versions.get(version)
    if validator is None:
        served = ", ".join(f"{group}/{v}" for v in sorted(versions))
        return [FieldError("apiVersion", f"must be one of {served}, got {api_version!r}")]
    return _collect(validator.iter_errors(_drop_nulls(obj, validator.schema)), base=())


# --- loading -------------------------------------------------------------------------------------


@functools.cache
def _load(directory: str) -> tuple[dict[str, Any], ...]:
    folder = Path(directory)
    files = sorted([*folder.glob("*.yaml"), *folder.glob("*.yml")]) if folder.is_dir() else []
    docs: list[dict[str, Any]] = []
    for path in files:
        with path.open(encoding="utf-8") as fh:
            docs.extend(
                d for d in yaml.safe_load_all(fh) if isinstance(d, dict) and d.get("kind") == "CustomResourceDefinition"
            )
    if not docs:
        raise FileNotFoundError(f"no CustomResourceDefinition found in {folder}; set {CRDS_DIR_ENV}")
    return tuple(docs)


@functools.cache
def _validators(directory: str) -> Validators:
    out: Validators = {}
    for crd in _load(directory):
        spec = crd["spec"]
        key = (spec["group"], spec["names"]["kind"])
        for version in spec["versions"]:
            if not version.get("served", True):
                continue
            schema = to_json_schema(version["schema"]["openAPIV3Schema"])
            props = schema.setdefault("properties", {})
            props["metadata"] = {"type": "object"}
            props["status"] = {"type": "object"}
            Draft202012Validator.check_schema(schema)
            out.setdefault(key, {})[version["name"]] = Draft202012Validator(schema)
    return out


def to_json_schema(node: Mapping[str, Any]) -> dict[str, Any]:
    """One structural OpenAPI v3 schema node, as the API server reads it, in JSON Schema 2020-12.

    Objects that declare `properties` and neither `additionalProperties` nor
    `x-kubernetes-preserve-unknown-fields` reject unknown fields instead of pruning them.
    """
    out: dict[str, Any] = {}
    types: list[str] = []
    if node.get("x-kubernetes-int-or-string"):
        types = ["integer", "string"]
    elif isinstance(node.get("type"), str):
        types = [node["type"]]
    nullable = bool(node.get("nullable"))
    if types:
        out["type"] = [*types, "null"] if nullable else (types[0] if len(types) == 1 else types)
    for key in _COPIED:
        if key in node:
            out[key] = copy.deepcopy(node[key])
    if nullable and "enum" in out and None not in out["enum"]:
        out["enum"].append(None)
    # OpenAPI v3.0 exclusive bounds are flags on minimum/maximum; JSON Schema makes them the bound.
    for flag, bound in (("exclusiveMinimum", "minimum"), ("exclusiveMaximum", "maximum")):
        if node.get(flag) is True and bound in out:
            out[flag] = out.pop(bound)
    preserve = bool(node.get("x-kubernetes-preserve-unknown-fields"))
    if "properties" in node:
        out["properties"] = {k: to_json_schema(v) for k, v in node["properties"].items()}
    extra = node.get("additionalProperties")
    if isinstance(extra, bool):
        out["additionalProperties"] = extra
    elif isinstance(extra, Mapping):
        out["additionalProperties"] = to_json_schema(extra)
    elif "properties" in node and not preserve:
        out["additionalProperties"] = False
    if isinstance(node.get("items"), Mapping):
        out["items"] = to_json_schema(node["items"])
    for key in ("oneOf", "anyOf", "allOf"):
        if key in node:
            out[key] = [to_json_schema(branch) for branch in node[key]]
    if "not" in node:
        out["not"] = to_json_schema(node["not"])
    return out


def _drop_nulls(value: Any, schema: Any) -> Any:
    """Remove `field: null` where the schema does not allow null, as the API server does before it validates."""
    if not isinstance(schema, Mapping):
        schema = {}
    if isinstance(value, Mapping):
        props = schema.get("properties", {})
        extra = schema.get("additionalProperties")
        out = {}
        for key, item in value.items():
            sub = props.get(key, extra)
            if item is None and not _allows_null(sub):
                continue
            out[key] = _drop_nulls(item, sub)
        return out
    if isinstance(value, list):
        return [_drop_nulls(item, schema.get("items")) for item in value]
    if isinstance(value, int) and not isinstance(value, bool) and value.bit_length() > _PRINTABLE_BITS:
        return _LongInt(value)
    return value


# Python refuses to print an int of more than 4300 digits (about 14000 bits), and jsonschema quotes
# every value it finds wrong; such an int is checked as itself but printed by its length.
_PRINTABLE_BITS = 14000


class _LongInt(int):
    def __repr__(self) -> str:
        return show_number(int(self))

    __str__ = __repr__


def _allows_null(schema: Any) -> bool:
    if not isinstance(schema, Mapping):
        return schema is not False and schema is not None
    types = schema.get("type")
    return types is None or types == "null" or (isinstance(types, list) and "null" in types)


# --- messages ------------------------------------------------------------------------------------


def _collect(violations: Iterable[SchemaViolation], base: tuple[str | int, ...]) -> list[FieldError]:
    found: set[tuple[bool, FieldError]] = set()
    for violation in violations:
        is_type = violation.validator == "type"
        found.update((is_type, e) for e in _explain(violation, (*base, *violation.absolute_path)))
    # A value of the wrong type also fails its enum and bounds; the type is the one thing to fix.
    mistyped = {e.path for is_type, e in found if is_type}
    return sorted({e for is_type, e in found if is_type or e.path not in mistyped})


def _type_phrase(types: str | Sequence[str]) -> str:
    names = [types] if isinstance(types, str) else list(types)
    return "must be " + " or ".join(_TYPE_NAMES.get(t, t) for t in names if t != "null")


def _explain(v: SchemaViolation, where: tuple[str | int, ...]) -> Iterator[FieldError]:
    path = format_path(where)
    schema: Mapping[str, Any] = v.schema if isinstance(v.schema, Mapping) else {}
    value: Any = v.instance
    expected: Any = v.validator_value
    kind = v.validator
    if kind == "type":
        yield FieldError(path, f"{_type_phrase(expected)}, got {_describe(value)}")
    elif kind == "required":
        for name in expected:
            if isinstance(value, Mapping) and name not in value:
                yield FieldError(format_path((*where, name)), "is required")
    elif kind == "additionalProperties":
        known = list(schema.get("properties", {}))
        for name in value if isinstance(value, Mapping) else ():
            if name not in known:
                yield FieldError(format_path((*where, name)), _unknown_field(str(name), known))
    elif kind == "enum":
        choices = ", ".join(_choice(c) for c in expected)
        yield FieldError(path, f"must be one of {choices}, got {_show(value)}")
    elif kind in ("minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum"):
        yield FieldError(path, _bounds_message(schema, value))
    elif kind in ("minItems", "maxItems"):
        word = "at least" if kind == "minItems" else "at most"
        yield FieldError(path, f"must have {word} {expected} items, got {len(value)}")
    elif kind in ("minLength", "maxLength"):
        word = "at least" if kind == "minLength" else "at most"
        yield FieldError(path, f"must be {word} {expected} characters long, got {len(value)}")
    elif kind == "pattern":
        yield FieldError(path, f"must match the pattern {expected}, got {_show(value)}")
    elif kind == "oneOf":
        yield from _one_of(v, where)
    elif kind == "anyOf" and isinstance(value, Mapping) and all(
            isinstance(b, Mapping) and set(b) == {"required"} for b in expected):
        # "at least one of": an AlertProvider's address or secretRef
        names = " or ".join(k for b in expected for k in b["required"])
        yield FieldError(path, f"must set {names}")
    else:
        yield FieldError(path, v.message)


def _one_of(v: SchemaViolation, where: tuple[str | int, ...]) -> Iterator[FieldError]:
    """Explain `oneOf` over `required` sets: Flagger's "exactly one of" and "at most one of" idioms."""
    value: Any = v.instance
    branches: list[Mapping[str, Any]] = list(v.validator_value) if isinstance(v.validator_value, list) else []
    if not isinstance(value, Mapping):
        return  # the type error says it all
    sets = [list(b.get("required", [])) for b in branches if "required" in b]
    none_allowed = any("not" in b and "required" not in b for b in branches)
    common = [k for k in sets[0] if all(k in s for s in sets)] if sets and not none_allowed else []
    choices = list(dict.fromkeys(k for s in sets for k in s if k not in common))
    present = [k for k in choices if k in value]
    problems = [FieldError(format_path((*where, k)), "is required") for k in common if k not in value]
    names = ", ".join(choices)
    if len(present) > 1:
        problems.append(FieldError(format_path(where), f"must set only one of {names}, got {', '.join(present)}"))
    elif not present and not none_allowed and choices:
        what = f"one of {names}" if len(choices) > 1 else names
        problems.append(FieldError(format_path(where), f"must set {what}"))
    if not problems:
        # The right keys are set, so the chosen branch itself must be what fails: say why.
        for branch in branches:
            if all(k in value for k in branch.get("required", [])) and "required" in branch:
                problems = _collect(Draft202012Validator(branch).iter_errors(value), base=where)
                break
    if not problems:
        problems = [FieldError(format_path(where), v.message)]
    yield from problems


def _bounds_message(schema: Mapping[str, Any], value: Any) -> str:
    low_x, high_x = "exclusiveMinimum" in schema, "exclusiveMaximum" in schema
    low = schema.get("exclusiveMinimum", schema.get("minimum"))
    high = schema.get("exclusiveMaximum", schema.get("maximum"))
    lower = f"greater than {low}" if low_x else f"at least {low}"
    upper = f"less than {high}" if high_x else f"at most {high}"
    got = f", got {_show(value)}"
    if low is not None and high is not None:
        if not low_x and not high_x:
            return f"must be between {low} and {high}{got}"
        return f"must be {lower} and {upper}{got}"
    return f"must be {lower if low is not None else upper}{got}"


def _unknown_field(name: str, known: Sequence[str]) -> str:
    by_lower = {k.lower(): k for k in known}
    close = difflib.get_close_matches(name.lower(), list(by_lower), n=1)
    return f"unknown field; did you mean {by_lower[close[0]]!r}?" if close else "unknown field"


def _choice(value: Any) -> str:
    """An enum value as a user would type it: bare words, but a visible empty string."""
    if isinstance(value, str):
        return value if value else '""'
    return _show(value)


def _show(value: Any) -> str:
    if isinstance(value, str):
        return repr(value)
    if isinstance(value, bool):
        return "true" if value else "false"
    if value is None:
        return "null"
    if isinstance(value, int | float):
        return show_number(value)
    return str(value)


def _describe(value: Any) -> str:
    if isinstance(value, bool):
        return f"boolean {_show(value)}"
    if isinstance(value, int):
        return f"integer {show_number(value)}"
    if isinstance(value, float):
        return f"number {show_number(value)}"
    if isinstance(value, str):
        return f"string {value!r}"
    if value is None:
        return "null"
    if isinstance(value, Mapping):
        return "an object"
    if isinstance(value, list | tuple):
        return "a list"
    return type(value).__name__


def format_path(parts: Iterable[str | int]) -> str:
    """`('spec', 'analysis', 'metrics', 1, 'query')` -> `spec.analysis.metrics[1].query`."""
    out = ""
    for part in parts:
        if isinstance(part, int):
            out += f"[{part}]"
        elif isinstance(part, str) and _PLAIN_KEY.fullmatch(part):
            out += f".{part}" if out else part
        else:
            out += f"[{part!r}]"
    return out


# --- declared fields -----------------------------------------------------------------------------

_INDEX = re.compile(r"\[[^\]]*\]")


def declares(kind: str, path: str) -> bool | None:
    """Whether our CRD of `kind` declares the field at `path` (`spec.analysis.metrics[0].foo`);
    None when the CRDs cannot be read (an installed package without them)."""
    try:
        docs = _load(str(crds_dir()))
    except FileNotFoundError:
        return None
    for crd in docs:
        if crd["spec"]["names"]["kind"] != kind:
            continue
        node: Any = crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"]
        for part in _INDEX.sub(".[]", path).split("."):
            if not part:
                continue
            if part == "[]":
                node = node.get("items") if isinstance(node, Mapping) else None
            else:
                node = (node.get("properties") or {}).get(part) if isinstance(node, Mapping) else None
            if node is None:
                return False
        return True
    return None
