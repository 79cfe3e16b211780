"""What a GitSource wants in the cluster, and how that compares with what is there: pure functions.

The object to apply is the manifest plus the bookkeeping annotations (revision, file, source),
with the fields the canary controller owns taken from the live object instead of Git (a
release's target is scaled by the release, not by the sync). Drift is judged the way server-side
apply sees it: every field Git sets must have Git's value; fields Git does not set (defaults,
status, other managers' fields) are not drift.
"""

from __future__ import annotations

import base64
import copy
from collections.abc import Iterable, Mapping
from typing import Any

from rollout.api.annotations import (
    COMMITTED_AT_ANNOTATION,
    REVISION_ANNOTATION,
    SOURCE_ANNOTATION,
    SOURCE_PATH_ANNOTATION,
)

InventoryKey = tuple[str, str, str, str]  # (group, kind, namespace or "", name)


def group_of(api_version: str) -> str:
    return api_version.split("/", 1)[0] if "/" in api_version else ""


def key_of(obj: Mapping[str, Any]) -> InventoryKey:
    meta = obj.get("metadata") or {}
    return (group_of(str(obj.get("apiVersion", ""))), str(obj.get("kind", "")),
            str(meta.get("namespace") or ""), str(meta.get("name", "")))


def desired_object(
    obj: Mapping[str, Any],
    *,
    path: str,
    revision: str,
    source: str,
    namespace: str | None,
    live: Mapping[str, Any] | None,
    keep_replicas: bool,
    committed_at: str | None = None,
) -> dict[str, Any]:
    """The object to apply: `namespace` is set when the kind is namespaced and Git left it out;
    `committed_at` (the revision's commit time) is annotated when known."""
    out = copy.deepcopy(dict(obj))
    meta = out.setdefault("metadata", {})
    if namespace is None:
        meta.pop("namespace", None)
    elif not meta.get("namespace"):
        meta["namespace"] = namespace
    annotations = meta.get("annotations") or {}
    meta["annotations"] = {**annotations, REVISION_ANNOTATION: revision, SOURCE_PATH_ANNOTATION: path,
                           SOURCE_ANNOTATION: source}
    if committed_at:
        meta["annotations"][COMMITTED_AT_ANNOTATION] = committed_at
    if keep_replicas and live is not None:
        replicas = (live.get("spec") or {}).get("replicas")
        if replicas is not None:
            out.setdefault("spec", {})["replicas"] = replicas
    return out


def matches(want: Any, have: Any) -> bool:
    """Whether every field of `want` has the same value in `have` (lists element by element)."""
    if isinstance(want, Mapping):
        return isinstance(have, Mapping) and all(
            matches(v, have.get(k)) for k, v in want.items() if v is not None
        )
    if isinstance(want, list):
        return isinstance(have, list) and len(want) == len(have) and all(
            matches(w, h) for w, h in zip(want, have, strict=True)
        )
    if isinstance(want, bool) or isinstance(have, bool):
        return want is have
    if isinstance(want, int | float) and isinstance(have, int | float):
        return float(want) == float(have)
    return bool(want == have)


def drifted(desired: Mapping[str, Any], live: Mapping[str, Any] | None) -> bool:
    """Whether the live object lost something Git sets (or is gone). The commit-time annotation is
    bookkeeping written with each new revision: an object applied before it existed has not drifted."""
    if live is None:
        return True
    want = {k: v for k, v in desired.items() if k != "status"}
    annotations = (want.get("metadata") or {}).get("annotations") or {}
    if COMMITTED_AT_ANNOTATION in annotations:
        want["metadata"] = {**want["metadata"],
                            "annotations": {k: v for k, v in annotations.items() if k != COMMITTED_AT_ANNOTATION}}
    return not (matches(want, live) or matches(_secret_as_stored(want), live))


def _secret_as_stored(obj: dict[str, Any]) -> dict[str, Any]:
    """A Secret's `stringData` as the API server stores it: base64 under `data` (a SOPS-decrypted
    Secret usually comes as stringData), so that it is not drift at every sync."""
    string_data = obj.get("stringData")
    if obj.get("kind") != "Secret" or obj.get("apiVersion") != "v1" or not isinstance(string_data, dict):
        return obj
    encoded = {k: base64.b64encode(str(v).encode()).decode() for k, v in string_data.items()}
    out = {k: v for k, v in obj.items() if k != "stringData"}
    out["data"] = {**(obj.get("data") or {}), **encoded}
    return out


def inventory_entry(obj: Mapping[str, Any]) -> dict[str, str]:
    meta = obj.get("metadata") or {}
    entry = {"apiVersion": str(obj["apiVersion"]), "kind": str(obj["kind"]), "name": str(meta["name"])}
    if meta.get("namespace"):
        entry["namespace"] = str(meta["namespace"])
    return entry


def to_prune(before: Iterable[Mapping[str, Any]], now: Iterable[Mapping[str, Any]]) -> list[dict[str, str]]:
    """Inventory entries applied before that Git no longer declares (by group, kind, namespace, name)."""
    keep = {key_of(_as_object(e)) for e in now}
    return [dict(e) for e in before if key_of(_as_object(e)) not in keep]


def _as_object(entry: Mapping[str, Any]) -> dict[str, Any]:
    return {"apiVersion": entry.get("apiVersion", ""), "kind": entry.get("kind", ""),
            "metadata": {"namespace": entry.get("namespace"), "name": entry.get("name", "")}}


def owned_by(live: Mapping[str, Any], source: str) -> bool:
    """Whether this GitSource applied the live object (pruning touches nothing else)."""
    annotations = (live.get("metadata") or {}).get("annotations") or {}
    return annotations.get(SOURCE_ANNOTATION) == source


def release_targets(releases: Iterable[Mapping[str, Any]]) -> set[tuple[str, str]]:
    """(namespace, name) of the Deployments that Canaries and BlueGreens release: the sync leaves
    their replicas to the release. A release too malformed to name one is passed over: it is its
    own problem (its condition says so), never every GitSource's."""
    out: set[tuple[str, str]] = set()
    for release in releases:
        if not isinstance(release, Mapping):
            continue
        spec, meta = _mapping(release.get("spec")), _mapping(release.get("metadata"))
        ref = _mapping(spec.get("targetRef"))
        name, namespace = ref.get("name"), meta.get("namespace")
        if ref.get("kind", "Deployment") == "Deployment" and isinstance(name, str) and name \
                and isinstance(namespace, str):
            out.add((namespace, name))
    return out


def _mapping(value: Any) -> Mapping[str, Any]:
    return value if isinstance(value, Mapping) else {}
