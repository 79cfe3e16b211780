"""The pod-template hash: the one number that says whether the target and the primary run the same thing.

The planner compares the target's hash with `lastPromotedSpec` to start a run, and with the
primary's to know a promotion has landed, so the hash must be EQUAL for a target and the primary
cloned from it, and must change whenever the pods would change. What it leaves out, and why:

- the selector label rename: the primary's template carries `app: <v>-primary` where the target
  has `app: <v>` (for whichever of `SELECTOR_LABELS` the Deployment selects on); one trailing
  `-primary` is stripped from those labels before hashing, on both sides alike;
- `pod-template-hash`: a label the ReplicaSet controller owns;
- annotations of the `rollout.gitops.dev` domain and its subdomains (revision, source path,
  recorded replicas): bookkeeping, never a reason to run a release;
- the names of the primary's copies of tracked ConfigMaps and Secrets (`<n>-primary`): the caller
  passes the primary's template with them renamed back (`configs.from_copies`) and the copies'
  checksums, so a primary whose copies hold what the target's configs hold hashes equal;
- everything outside `spec.template` (replicas, strategy, the Deployment's own metadata, status),
  and `null` values, which the client and the API server drop or add without meaning anything.

`kubectl.kubernetes.io/restartedAt` IS hashed: `kubectl rollout restart` on the target starts a
release, as it does in Flagger, and promotion copies it so the primary hashes equal afterwards.
"""

from __future__ import annotations

import copy
import hashlib
import json
from collections.abc import Iterable, Mapping
from datetime import datetime
from typing import Any

from rollout.api.annotations import ANNOTATION_DOMAIN, COMMITTED_AT_ANNOTATION, REVISION_ANNOTATION
from rollout.api.status import parse_time

# The labels Flagger accepts as the pod selector (its `-selector-labels` default), in its order.
SELECTOR_LABELS = ("app", "name", "app.kubernetes.io/name")
PRIMARY_SUFFIX = "-primary"
ANNOTATION_PREFIX = f"{ANNOTATION_DOMAIN}/"
IGNORED_LABELS = frozenset({"pod-template-hash"})
HASH_LENGTH = 16


def is_own_annotation(key: str) -> bool:
    """Whether an annotation is this project's bookkeeping (`rollout.gitops.dev/...` or a subdomain)."""
    domain, slash, _ = key.partition("/")
    return bool(slash) and (domain == ANNOTATION_DOMAIN or domain.endswith("." + ANNOTATION_DOMAIN))


def pod_template(deployment_or_template: Mapping[str, Any]) -> Mapping[str, Any]:
    """The pod template of a Deployment dict, or the argument itself when it is already a template."""
    spec = deployment_or_template.get("spec")
    if isinstance(spec, Mapping) and isinstance(spec.get("template"), Mapping):
        return spec["template"]  # type: ignore[no-any-return]
    return deployment_or_template


def _without_nulls(value: Any) -> Any:
    if isinstance(value, Mapping):
        return {k: _without_nulls(v) for k, v in value.items() if v is not None}
    if isinstance(value, list):
        return [_without_nulls(v) for v in value]
    return value


def normalized_template(deployment_or_template: Mapping[str, Any]) -> dict[str, Any]:
    """The pod template with every field the hash ignores taken out (a new dict; the input is untouched)."""
    template: dict[str, Any] = _without_nulls(copy.deepcopy(dict(pod_template(deployment_or_template))))
    meta = template.get("metadata") or {}
    labels = {k: v for k, v in (meta.get("labels") or {}).items() if k not in IGNORED_LABELS}
    for key in SELECTOR_LABELS:
        value = labels.get(key)
        if isinstance(value, str) and value.endswith(PRIMARY_SUFFIX):
            labels[key] = value[: -len(PRIMARY_SUFFIX)]
    annotations = {k: v for k, v in (meta.get("annotations") or {}).items() if not is_own_annotation(k)}
    # Only labels, annotations and the pod spec reach pods; name, namespace and the rest of a
    # template's metadata do not.
    template["metadata"] = {"labels": labels, "annotations": annotations}
    template.setdefault("spec", {})
    return template


def pod_template_hash(deployment_or_template: Mapping[str, Any], configs: Mapping[str, str] | None = None) -> str:
    """A stable short hash (hex) of a Deployment's pod template (or of a bare template), and of the
    checksums of its tracked ConfigMaps and Secrets (`configs`, keyed `configmap/<name>` as in
    `configs.label`). Without tracked configs it is the template's hash alone, as before tracking."""
    hashed: Any = normalized_template(deployment_or_template)
    if configs:
        hashed = {"template": hashed, "configs": dict(configs)}
    text = json.dumps(hashed, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()[:HASH_LENGTH]


def committed_at_of(deployment: Mapping[str, Any]) -> datetime | None:
    """When that revision was committed (the GitSource's annotation), if known and readable."""
    annotations = (deployment.get("metadata") or {}).get("annotations") or {}
    try:
        return parse_time(annotations.get(COMMITTED_AT_ANNOTATION))
    except (TypeError, ValueError):
        return None


def revision_of(deployment: Mapping[str, Any]) -> str | None:
    """The Git revision a Deployment was applied from (its metadata annotation), if any."""
    annotations = (deployment.get("metadata") or {}).get("annotations") or {}
    value = annotations.get(REVISION_ANNOTATION)
    return value if isinstance(value, str) and value else None


def newest_revision(objects: Iterable[Mapping[str, Any]]) -> tuple[str | None, datetime | None]:
    """(revision, commit time) of the object applied from the newest commit, by the commit times the
    GitSource annotated. A GitSource applies a revision object by object: while it is under way, a
    target's ConfigMap may carry the new revision and the target itself still the old one, and the
    change is the new revision's. Objects without a revision are left out; (None, None) when none has one."""
    best: tuple[str | None, datetime | None] = (None, None)
    for obj in objects:
        revision, at = revision_of(obj), committed_at_of(obj)
        if revision is None:
            continue
        if best[0] is None or (at is not None and (best[1] is None or at > best[1])):
            best = (revision, at)
    return best
