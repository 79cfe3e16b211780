"""Reverting a workload that a kustomization builds, judged by what the kustomization renders.

When a GitSource builds a folder with `kubectl kustomize`, the workload's image is often set
outside its own manifest (an `images:` entry, a patch, a base): no file holds "the workload's
document". So the revert writer asks the renderer instead: a commit is about the workload when
the workload it renders changed, and a candidate revert is accepted only if, rendered again, the
workload runs the promoted revision's pod template and every other object is exactly as on the
branch head. Nothing else can be undone by accident.
"""

from __future__ import annotations

import io
import tarfile
import tempfile
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from .manifests import WorkloadId
from .render import KUSTOMIZATIONS, RenderError, render

Rendered = dict[tuple[str, str, str], dict[str, Any]]


def is_kustomization(list_folder: Callable[[], list[str]]) -> bool:
    """Whether a folder (given by the names in it) is built by kustomize."""
    return any(name in KUSTOMIZATIONS for name in list_folder())


def rendered(archive: bytes, folder: str, timeout: float) -> Rendered | None:
    """Every object the folder renders at one revision (a `git archive` tarball), by kind, namespace and
    name; None when it does not render (then the revision cannot be judged, and is not touched)."""
    with tempfile.TemporaryDirectory(prefix="rollout-kustomize-") as tmp:
        with tarfile.open(fileobj=io.BytesIO(archive)) as tar:
            tar.extractall(tmp, filter="data")
        return rendered_tree(Path(tmp), folder, timeout)


def rendered_tree(root: Path, folder: str, timeout: float) -> Rendered | None:
    try:
        manifests = render(root, folder, timeout=timeout)
    except RenderError:
        return None
    out: Rendered = {}
    for m in manifests:
        out[(m.kind, m.namespace or "", m.name)] = m.obj
    return out


def workload(objects: Rendered | None, target: WorkloadId) -> dict[str, Any] | None:
    if objects is None:
        return None
    return next((obj for obj in objects.values() if target.matches(obj)), None)


def others(objects: Rendered | None, target: WorkloadId,
           *more: WorkloadId) -> Mapping[tuple[str, str, str], Any] | None:
    if objects is None:
        return None
    ours = (target, *more)
    return {key: obj for key, obj in objects.items() if not any(w.matches(obj) for w in ours)}


def changed_workload(before: Rendered | None, after: Rendered | None, target: WorkloadId) -> bool:
    """Whether a commit changed the rendered workload (a revision that does not render never counts)."""
    if before is None or after is None:
        return False
    return workload(before, target) != workload(after, target)


def acceptable(result: Rendered | None, good: Rendered | None, head: Rendered | None, target: WorkloadId,
               configs: tuple[WorkloadId, ...] = ()) -> bool:
    """A revert is right when every other object is as on the head and the workload renders as at
    the good revision, or, where later commits changed it too, as on the head but with the good
    revision's pod template (what the release judged; the later changes are kept). `configs` are
    the tracked ConfigMaps and Secrets the failed commits changed: each must render as at the good
    revision (or be absent, as there)."""
    if result is None or good is None or head is None:
        return False
    before, now, latest = workload(good, target), workload(result, target), workload(head, target)
    if before is None or others(result, target, *configs) != others(head, target, *configs):
        return False
    if any(workload(result, c) != workload(good, c) for c in configs):
        return False
    return now == before or (latest is not None and now == _with_template(latest, before))


def _with_template(body: dict[str, Any], source: dict[str, Any]) -> dict[str, Any]:
    spec = dict(body.get("spec") or {})
    spec["template"] = (source.get("spec") or {}).get("template")
    return {**body, "spec": spec}
