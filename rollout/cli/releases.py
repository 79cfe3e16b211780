"""What `rollout status|promote|abort|retry` do: look at releases and steer them, as Argo Rollouts' plugin does.

Commands are recorded in the release's status (`status.command`), where the planner picks them up
at its next tick and clears them; nothing here changes workloads or routes directly.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from typing import Any, cast

from kubernetes import client
from kubernetes.client.exceptions import ApiException

from rollout.api.kinds import GROUP, PLURALS, RELEASE_KINDS, VERSION
from rollout.api.status import Command, ReleaseStatus, format_time
from rollout.cli.errors import NotServed, Problem, missing_object
from rollout.core.queue import QUEUED
from rollout.settings import Settings

TIMEOUT = Settings().api_timeout


class NotFound(Problem, LookupError):
    """No release of that name: says so, and how to see which there are."""

    def __init__(self, namespace: str | None, name: str) -> None:
        where = f" in namespace {namespace}" if namespace else " in any namespace"
        listing = f"rollout status -n {namespace}" if namespace else "rollout status"
        super().__init__(f"no Canary or BlueGreen named {name}{where}; `{listing}` lists the releases there are")


def releases(api: client.ApiClient, namespace: str | None, name: str | None = None) -> list[dict[str, Any]]:
    """Every Canary and BlueGreen in a namespace (or all), optionally only the one named."""
    objects = client.CustomObjectsApi(api)
    found: list[dict[str, Any]] = []
    for plural in (PLURALS[kind] for kind in RELEASE_KINDS):
        listed: dict[str, Any]
        try:
            if namespace:
                listed = cast(dict[str, Any], objects.list_namespaced_custom_object(
                    GROUP, VERSION, namespace, plural, _request_timeout=TIMEOUT))
            else:
                listed = cast(dict[str, Any], objects.list_cluster_custom_object(
                    GROUP, VERSION, plural, _request_timeout=TIMEOUT))
        except ApiException as e:
            if e.status == 404:  # a list of a served kind is never 404, even in a namespace that does not exist
                raise NotServed(f"{plural}.{GROUP}") from e
            raise
        found.extend(o for o in listed.get("items", []) if name is None or o["metadata"]["name"] == name)
    return sorted(found, key=lambda o: (o["metadata"]["namespace"], o["metadata"]["name"], o["kind"]))


def check_served(api: client.ApiClient, namespaces: Sequence[str]) -> None:
    """Fail now, in words, when the releases cannot be listed in `namespaces` (all when empty): no CRD
    (`NotServed`), no permission, unreachable. `rollout run` asks this before it starts watching, which
    would otherwise retry such errors in its logs for ever. One small request per kind and namespace."""
    objects = client.CustomObjectsApi(api)
    for plural in (PLURALS[kind] for kind in RELEASE_KINDS):
        try:
            every: list[str | None] = [*namespaces] or [None]
            for namespace in every:
                if namespace:
                    objects.list_namespaced_custom_object(GROUP, VERSION, namespace, plural, limit=1,
                                                          _request_timeout=TIMEOUT)
                else:
                    objects.list_cluster_custom_object(GROUP, VERSION, plural, limit=1, _request_timeout=TIMEOUT)
        except ApiException as e:
            if e.status == 404:
                raise NotServed(f"{plural}.{GROUP}") from e
            raise


def send(api: client.ApiClient, namespace: str, name: str, command: Command) -> str:
    """Record `command` for the release; returns its kind. Raises NotFound when there is none, and
    NotServed when the cluster serves neither kind."""
    objects = client.CustomObjectsApi(api)
    for kind in RELEASE_KINDS:
        try:
            objects.patch_namespaced_custom_object_status(
                GROUP, VERSION, namespace, PLURALS[kind], name, {"status": {"command": command.value}},
                _request_timeout=TIMEOUT, _content_type="application/merge-patch+json",
            )
        except ApiException as e:
            if e.status != 404:
                raise
            if not missing_object(e):  # the kind itself is not served: no CRD
                raise NotServed(f"{PLURALS[kind]}.{GROUP}") from e
            continue
        return kind
    raise NotFound(namespace, name)


COLUMNS = ("NAMESPACE", "NAME", "KIND", "PROVIDER", "PHASE", "WEIGHT", "FAILED", "GIT", "METRICS")


def rows(objs: Sequence[Mapping[str, Any]]) -> Iterator[tuple[str, ...]]:
    for o in objs:
        status = o.get("status") or {}
        analysis = status.get("analysis") or {}
        metrics = ", ".join(
            f"{m['name']} {_num(m.get('value'))}/{_num(m.get('primary'))} {m.get('verdict', '')}"
            for m in analysis.get("metrics") or []
        )
        ready = next((c for c in status.get("conditions") or [] if c.get("type") == "Ready"), None)
        phase = status.get("phase") or "-"
        if ready and ready.get("status") == "False":
            phase = f"{phase} ({ready.get('reason')}: {ready.get('message')})"
        promoted = next((c for c in status.get("conditions") or [] if c.get("type") == "Promoted"), None)
        if promoted and promoted.get("reason") == QUEUED and status.get("phase") == "Waiting":
            phase = f"{phase} ({promoted.get('message')})"
        threshold = (o.get("spec", {}).get("analysis") or {}).get("threshold", "-")
        yield (
            o["metadata"]["namespace"], o["metadata"]["name"], o["kind"], _provider(o), phase,
            str(status.get("canaryWeight", 0)), f"{status.get('failedChecks', 0)}/{threshold}",
            _revert(status.get("revert")), metrics or "-",
        )


def _provider(obj: Mapping[str, Any]) -> str:
    """The provider in effect (the operator records it, defaults included), else what the spec names."""
    named = (obj.get("status") or {}).get("provider") or (obj.get("spec") or {}).get("provider")
    if named:
        return str(named)
    return "kubernetes" if obj.get("kind") == "BlueGreen" else "default"


def _revert(revert: Mapping[str, Any] | None) -> str:
    """The revert in Git, in short: its state and commit (and branch, when pushed to one)."""
    if not revert:
        return "-"
    commit = str(revert.get("commit") or "")[:7]
    branch = f" on {revert['branch']}" if revert.get("branch") else ""
    return " ".join(x for x in (str(revert.get("state") or ""), commit) if x) + branch


def table(objs: Sequence[Mapping[str, Any]]) -> str:
    lines = [COLUMNS, *rows(objs)]
    widths = [max(len(line[i]) for line in lines) for i in range(len(COLUMNS) - 1)]
    return "\n".join(
        "  ".join(cell.ljust(w) for cell, w in zip(line[:-1], widths, strict=True)) + "  " + line[-1] for line in lines
    ) + "\n"


def _num(x: object) -> str:
    return f"{x:.4g}" if isinstance(x, int | float) else "-"


def detail(obj: Mapping[str, Any]) -> str:
    """One release in full, as `kubectl argo rollouts get` shows one: why it is where it is, what it
    judged, and what happened in Git."""
    spec = obj.get("spec") or {}
    analysis = spec.get("analysis") or {}
    status = ReleaseStatus.from_dict(dict(obj.get("status") or {}))
    meta = obj["metadata"]
    since = f", since {format_time(status.last_transition_time)}" if status.last_transition_time else ""
    lines = [
        f"{obj['kind']} {meta['namespace']}/{meta['name']} (provider {_provider(obj)}, "
        f"judge {analysis.get('judge') or 'threshold'}, every {analysis.get('interval') or '1m'})",
        f"  phase       {status.phase.value if status.phase else '-'}{since}",
        f"  traffic     {status.canary_weight}% to the canary; failed checks "
        f"{status.failed_checks}/{analysis.get('threshold', 1)}",
    ]
    promoted = status.condition("Promoted")
    if promoted is not None and promoted.message and promoted.message != promoted.reason:
        lines.append(f"  why         {promoted.message}")
    if status.candidate is not None:
        revision = f"revision {status.candidate.revision[:12]}" if status.candidate.revision else "no Git revision"
        started = f", started {format_time(status.candidate.started_at)}" if status.candidate.started_at else ""
        lines.append(f"  candidate   {revision}{started}")
    if status.history:
        last = status.history[-1]
        revision = f" {last.revision[:12]}" if last.revision else ""
        lines.append(f"  runs        {len(status.history)} recorded (rollout dora); "
                     f"last {last.outcome.value}{revision} at {format_time(last.ended_at)}")
    if status.revert is not None:
        lines.append(f"  git         {_revert((obj.get('status') or {}).get('revert'))}"
                     + (f": {status.revert.message}" if status.revert.message else ""))
    if status.analysis is not None and status.analysis.metrics:
        width = max(len(m.name) for m in status.analysis.metrics)
        for i, m in enumerate(status.analysis.metrics):
            label = "metrics    " if i == 0 else " " * 11
            kayenta = [m.classification] if m.effect_size is not None or m.critical else []
            kayenta += [f"effect size {_num(m.effect_size)}"] if m.effect_size is not None else []
            kayenta += ["critical"] if m.critical else []
            lines.append(f"  {label} {m.name.ljust(width)}  canary {_num(m.value)}  primary {_num(m.primary)}  "
                         f"{m.verdict}" + (f" [{', '.join(kayenta)}]" if kayenta else "")
                         + (f"  ({m.limit})" if m.limit else ""))
        if status.analysis.score is not None:
            lines.append(f"  score       {_num(status.analysis.score)} ({status.analysis.score_classification})")
    for i, c in enumerate(status.conditions):
        label = "conditions " if i == 0 else " " * 11
        lines.append(f"  {label} {c.type}={c.status} {c.reason}" + (f": {c.message}" if c.message else ""))
    return "\n".join(lines) + "\n"
