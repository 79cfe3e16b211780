"""Manifest loading: rollout resources out of YAML text, checked as `rollout validate` checks them.

Each Canary, BlueGreen, MetricTemplate, GitSource and AlertProvider is checked twice: against the CRD schema (what
the API server would refuse) and against the semantic rules of `rollout.api.parse` (what the
operator would refuse). Other kinds pass through with a note, so a whole kustomize folder can be
checked at once. It lives in the API layer, apart from the command, because it reads no files:
`rollout validate` walks the file system and formats (`rollout.cli.validate`), and any layer that
holds manifest text (`rollout analyze`, tests) loads it with `load_resources`.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import asdict, dataclass, field
from typing import Any

import yaml
from yaml.constructor import ConstructorError
from yaml.nodes import MappingNode

from rollout.api.errors import FieldError, ValidationError
from rollout.api.kinds import API_VERSION, FLAGGER_API_VERSION, GROUP
from rollout.api.parse import PARSERS, flagger_hint, parser_for
from rollout.api.schema import schema_errors
from rollout.api.spec import DEFAULT_MESH_PROVIDER, Provider, Resource


@dataclass(frozen=True)
class Problem:
    """One error, located: file, 1-based document index, resource and field."""

    file: str
    document: int | None
    kind: str | None
    name: str | None
    path: str
    message: str

    def line(self) -> str:
        where = self.file if self.document is None else f"{self.file}:{self.document}"
        parts = [where]
        if self.kind:
            parts.append(f"{self.kind}/{self.name or '?'}")
        parts.append(f"{self.path}: {self.message}" if self.path else self.message)
        return ": ".join(parts)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class Report:
    """What a validation run found: errors, notes for stderr, and how many resources were checked."""

    problems: list[Problem] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    resources: int = 0
    invalid: int = 0

    @property
    def ok(self) -> bool:
        return not self.problems

    def extend(self, other: Report) -> None:
        self.problems.extend(other.problems)
        self.notes.extend(other.notes)
        self.resources += other.resources
        self.invalid += other.invalid

    def summary(self) -> str:
        noun = "resource" if self.resources == 1 else "resources"
        if self.ok:
            return f"{self.resources} {noun} valid"
        errors = "error" if len(self.problems) == 1 else "errors"
        return f"{len(self.problems)} {errors}; {self.resources - self.invalid} of {self.resources} {noun} valid"


def is_rollout_kind(obj: Mapping[str, Any]) -> bool:
    """Ours (any version of our group), or one of our kinds still carrying Flagger's apiVersion."""
    api_version, kind = obj.get("apiVersion"), obj.get("kind")
    if not isinstance(api_version, str) or not isinstance(kind, str):
        return False
    if api_version == FLAGGER_API_VERSION:
        return kind in PARSERS
    return api_version.split("/")[0] == GROUP


def check_object(obj: Mapping[str, Any], mesh_provider: Provider = DEFAULT_MESH_PROVIDER) -> list[FieldError] | None:
    """Every problem with one object, schema first; None when it is not a rollout kind. A Canary
    without `spec.provider` is judged as routed by `mesh_provider`, as the operator would.

    A Flagger kind is checked as if its apiVersion were already ours, plus one error saying to
    change it, so the user sees everything that stands between the manifest and a valid one.
    """
    if not is_rollout_kind(obj):
        return None
    found: list[FieldError] = []
    kind = obj.get("kind")
    if obj.get("apiVersion") == FLAGGER_API_VERSION:
        found.append(FieldError("apiVersion", flagger_hint(str(kind))))
        obj = {**obj, "apiVersion": API_VERSION}
    try:
        schema = schema_errors(obj)
    except RecursionError:
        return [*found, FieldError("", "nested too deeply")]
    if schema is None:
        known = ", ".join(sorted(PARSERS))
        return [*found, FieldError("kind", f"unknown kind {kind!r} in {GROUP}; known: {known}")]
    found.extend(schema)
    parser = parser_for(str(kind), mesh_provider)
    if parser is not None and not any(e.path == "apiVersion" for e in schema):
        try:
            parser(obj)
        except ValidationError as e:
            # Where the schema already spoke about a field, its message is the one kept.
            taken = {s.path for s in schema}
            found.extend(s for s in e.errors if s.path not in taken)
    return sorted(set(found), key=lambda e: (e.path, e.message))


class _StrictLoader(yaml.SafeLoader):
    """Refuses duplicate keys, as `kubectl apply` does, instead of keeping the last one silently."""

    def construct_mapping(self, node: MappingNode, deep: bool = False) -> dict[Any, Any]:
        seen: set[Any] = set()
        for key_node, _ in node.value:
            key = self.construct_object(key_node, deep=deep)
            if not isinstance(key, str | int | float | bool):
                continue
            if key in seen:
                raise ConstructorError(
                    "while constructing a mapping", node.start_mark, f"duplicate key {key!r}", key_node.start_mark
                )
            seen.add(key)
        return super().construct_mapping(node, deep=deep)


def _documents(text: str) -> Iterator[Any]:
    try:
        yield from yaml.load_all(text, Loader=_StrictLoader)  # a SafeLoader subclass: no arbitrary objects
    except RecursionError:
        raise yaml.YAMLError("nested too deeply") from None
    except ValueError as error:
        # Raised by the constructors rather than the parser: an int of more than 4300 digits, a
        # timestamp with a 13th month.
        raise yaml.YAMLError(str(error).split(";")[0]) from None


def _yaml_problem(error: yaml.YAMLError) -> str:
    mark = getattr(error, "problem_mark", None)
    problem = getattr(error, "problem", None) or getattr(error, "context", None) or str(error)
    if mark is None:
        return f"invalid YAML: {problem}"
    return f"invalid YAML at line {mark.line + 1}, column {mark.column + 1}: {problem}"


def _name_of(obj: Mapping[str, Any]) -> str | None:
    meta = obj.get("metadata")
    name = meta.get("name") if isinstance(meta, Mapping) else None
    return name if isinstance(name, str) and name else None


def validate_text(text: str, file: str, mesh_provider: Provider = DEFAULT_MESH_PROVIDER) -> Report:
    """Validate every document of one multi-document YAML text; `file` only labels the output."""
    report = Report()
    index = 0
    try:
        for index, doc in enumerate(_documents(text), start=1):
            if doc is None:
                continue
            if not isinstance(doc, Mapping):
                report.problems.append(
                    Problem(file, index, None, None, "", "not a Kubernetes object (a mapping with apiVersion and kind)")
                )
                continue
            kind = doc.get("kind") if isinstance(doc.get("kind"), str) else None
            errors = check_object(doc, mesh_provider)
            if errors is None:
                label = f"{kind or '?'}/{_name_of(doc) or '?'}"
                report.notes.append(f"{file}:{index}: ignored {label} (not a rollout kind)")
                continue
            report.resources += 1
            if errors:
                report.invalid += 1
            name = _name_of(doc)
            report.problems.extend(Problem(file, index, kind, name, e.path, e.message) for e in errors)
    except yaml.YAMLError as error:
        report.problems.append(Problem(file, index + 1, None, None, "", _yaml_problem(error)))
    return report


class InvalidManifests(ValueError):
    """Manifests that did not validate; `report` holds every problem."""

    def __init__(self, report: Report) -> None:
        self.report = report
        super().__init__("".join(p.line() + "\n" for p in report.problems).strip())


def load_resources(text: str, file: str, mesh_provider: Provider = DEFAULT_MESH_PROVIDER) -> list[Resource]:
    """Every rollout resource in a multi-document YAML text, validated and parsed.

    Raises InvalidManifests when anything in it would fail `rollout validate`."""
    report = validate_text(text, file, mesh_provider)
    if report.problems:
        raise InvalidManifests(report)
    found = []
    for doc in _documents(text):
        if isinstance(doc, Mapping) and is_rollout_kind(doc):
            parser = parser_for(str(doc["kind"]), mesh_provider)
            assert parser is not None  # validated above: a known kind
            found.append(parser(doc))
    return found
