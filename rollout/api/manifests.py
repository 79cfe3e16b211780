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

from analysis.providers.rules import RULES
from rollout.api.errors import FieldError, ValidationError
from rollout.api.kinds import API_VERSION, FLAGGER_API_VERSION, GROUP
from rollout.api.parse import PARSERS, flagger_hint, parser_for
from rollout.api.schema import schema_errors
from rollout.api.spec import (
    DEFAULT_MESH_PROVIDER,
    BlueGreen,
    Canary,
    Judge,
    MetricTemplate,
    Provider,
    Resource,
)


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


@dataclass(frozen=True)
class Found:
    """A document that other documents may refer to: a valid rollout resource, or a Secret (`obj`)."""

    file: str
    document: int
    kind: str
    name: str
    namespace: str
    resource: Resource | None
    obj: Mapping[str, Any]

    def problem(self, path: str, message: str) -> Problem:
        return Problem(self.file, self.document, self.kind, self.name, path, message)


@dataclass
class Report:
    """What a validation run found: errors, notes for stderr, and how many resources were checked.
    `found` keeps what the cross-checks (`cross_check`) read."""

    problems: list[Problem] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    resources: int = 0
    invalid: int = 0
    found: list[Found] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems

    def extend(self, other: Report) -> None:
        self.problems.extend(other.problems)
        self.notes.extend(other.notes)
        self.resources += other.resources
        self.invalid += other.invalid
        self.found.extend(other.found)

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


def _namespace_of(obj: Mapping[str, Any]) -> str:
    meta = obj.get("metadata")
    namespace = meta.get("namespace") if isinstance(meta, Mapping) else None
    return namespace if isinstance(namespace, str) and namespace else "default"


def validate_text(text: str, file: str, mesh_provider: Provider = DEFAULT_MESH_PROVIDER, *,
                  cross: bool = True) -> Report:
    """Validate every document of one multi-document YAML text; `file` only labels the output.
    With `cross`, documents are also checked against each other (`cross_check`); a caller that
    validates several texts as one set passes False and cross-checks the merged report."""
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
            name = _name_of(doc)
            errors = check_object(doc, mesh_provider)
            if errors is None:
                if kind == "Secret" and doc.get("apiVersion") == "v1" and name:
                    report.found.append(Found(file, index, kind, name, _namespace_of(doc), None, doc))
                label = f"{kind or '?'}/{name or '?'}"
                report.notes.append(f"{file}:{index}: ignored {label} (not a rollout kind)")
                continue
            report.resources += 1
            if errors:
                report.invalid += 1
            elif (parser := parser_for(str(kind), mesh_provider)) is not None:
                resource = parser(doc)
                report.found.append(Found(file, index, str(kind), resource.metadata.name,
                                          resource.metadata.namespace, resource, doc))
            report.problems.extend(Problem(file, index, kind, name, e.path, e.message) for e in errors)
    except yaml.YAMLError as error:
        report.problems.append(Problem(file, index + 1, None, None, "", _yaml_problem(error)))
    if cross:
        report.problems.extend(cross_check(report.found))
    return report


def cross_check(found: list[Found]) -> list[Problem]:
    """What only shows when resources are read together: a MetricTemplate's Secret without the keys
    its provider reads, and a metric judged on range series by a template whose provider has none.
    A template or Secret not among the documents may be in the cluster: nothing is said of it."""
    secrets = {(f.namespace, f.name): f for f in found if f.resource is None}
    templates = {(f.namespace, f.name): f for f in found if isinstance(f.resource, MetricTemplate)}
    problems = [p for t in templates.values() if (p := _secret_problem(t, secrets)) is not None]
    for f in found:
        if isinstance(f.resource, Canary | BlueGreen):
            problems.extend(_range_problems(f, f.resource, templates))
    return problems


def _secret_problem(found: Found, secrets: Mapping[tuple[str, str], Found]) -> Problem | None:
    template = found.resource
    assert isinstance(template, MetricTemplate)
    provider = template.spec.provider
    rules = RULES.get(provider.type)
    secret = secrets.get((found.namespace, provider.secret_ref or ""))
    if rules is None or secret is None:
        return None
    keys: set[str] = set()
    for part in ("data", "stringData"):
        values = secret.obj.get(part)
        if isinstance(values, Mapping):
            keys.update(str(k) for k in values)
    where = f"Secret {secret.namespace}/{secret.name} ({secret.file}:{secret.document})"
    documented = ", ".join((*rules.secret_keys, *rules.optional_secret_keys))
    missing = [k for k in rules.secret_keys if k not in keys]
    if missing:
        return found.problem("spec.provider.secretRef.name",
                             f"{where} lacks {', '.join(missing)}: the {provider.type} provider reads the keys "
                             f"{documented} (see {rules.docs})")
    if not rules.secret_keys and rules.optional_secret_keys and not keys & set(rules.optional_secret_keys):
        return found.problem("spec.provider.secretRef.name",
                             f"{where} has none of the keys the {provider.type} provider reads: {documented} "
                             f"(see {rules.docs})")
    return None


def _range_problems(found: Found, release: Canary | BlueGreen,
                    templates: Mapping[tuple[str, str], Found]) -> list[Problem]:
    analysis = release.spec.analysis
    problems = []
    for i, metric in enumerate(analysis.metrics):
        ref = metric.template_ref
        if ref is None:
            continue
        template = templates.get((ref.namespace or release.metadata.namespace, ref.name))
        if template is None or not isinstance(template.resource, MetricTemplate):
            continue
        ptype = template.resource.spec.provider.type
        rules = RULES.get(ptype)
        judge = analysis.judge_of(metric)
        if rules is None or rules.range_queries or judge == Judge.THRESHOLD:
            continue
        why = ("analysis.judge is sequential, whose test reads only the built-in metrics' counts, so this "
               "templateRef metric is compared with the primary, which"
               if analysis.judge == Judge.SEQUENTIAL else f"its {judge.value} judge")
        problems.append(found.problem(
            f"spec.analysis.metrics[{i}].templateRef",
            f"metric {metric.name}: {why} needs range series, which the {ptype} provider of MetricTemplate "
            f"{template.namespace}/{template.name} cannot give; judge it with a thresholdRange instead "
            "(analysis.judge threshold, no compare block)"))
    return problems


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
