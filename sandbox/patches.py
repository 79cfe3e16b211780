"""The patch formats of the Kubernetes API: JSON patch, merge patch, strategic merge, apply.

A real API server accepts four PATCH content types. kopf sends merge patches and JSON
patches with a `test` of `metadata.resourceVersion`; the official client sends strategic
merge patches for built-in kinds and merge patches for custom objects; GitOps appliers
send server-side apply. The functions here compute the patched object; the store then
applies the API rules (status isolation, preconditions, generation) to the result.
Strategic merge uses the merge keys of the fields that built-in kinds declare; fields not
listed are replaced, as for a field without a patch strategy.
"""

from __future__ import annotations

import copy
from typing import Any

import jsonpatch
import jsonpointer

__all__ = [
    "PatchError",
    "PatchTestFailed",
    "apply_json_patch",
    "apply_merge_patch",
    "apply_strategic_merge_patch",
    "merge_key_for",
    "prune_unapplied",
]


class PatchError(ValueError):
    """A patch that cannot be applied; the API answers 422 Unprocessable Entity."""


class PatchTestFailed(PatchError):
    """A JSON patch `test` operation did not hold."""


def apply_json_patch(obj: dict[str, Any], ops: Any) -> dict[str, Any]:
    """RFC 6902. A failed `test` op and a missing path both raise PatchError (422)."""
    if not isinstance(ops, list):
        raise PatchError("json patch must be a list of operations")
    try:
        result = jsonpatch.JsonPatch(ops).apply(copy.deepcopy(obj))
    except jsonpatch.JsonPatchTestFailed as exc:
        raise PatchTestFailed(
            f"the server rejected our request due to an error in our request: {exc}"
        ) from exc
    except (jsonpatch.JsonPatchException, jsonpointer.JsonPointerException, KeyError, IndexError) as exc:
        raise PatchError(f"the server rejected our request due to an error in our request: {exc}") from exc
    if not isinstance(result, dict):
        raise PatchError("json patch must result in an object")
    return result


def apply_merge_patch(target: Any, patch: Any) -> Any:
    """RFC 7386: objects merge recursively, null deletes, everything else replaces."""
    if not isinstance(patch, dict):
        return copy.deepcopy(patch)
    result: dict[str, Any] = copy.deepcopy(target) if isinstance(target, dict) else {}
    for key, value in patch.items():
        if value is None:
            result.pop(key, None)
        else:
            result[key] = apply_merge_patch(result.get(key), value)
    return result


# patchMergeKey of list fields in the built-in kinds (k8s.io/api types). Lists of maps not
# listed here are atomic: the patch replaces them.
_MERGE_KEYS: dict[str, str] = {
    "containers": "name",
    "initContainers": "name",
    "ephemeralContainers": "name",
    "env": "name",
    "volumes": "name",
    "volumeMounts": "mountPath",
    "volumeDevices": "devicePath",
    "imagePullSecrets": "name",
    "conditions": "type",
    "ownerReferences": "uid",
    "hostAliases": "ip",
    "readinessGates": "conditionType",
    "resourceClaims": "name",
}
# Lists of scalars with patchStrategy=merge: the patch adds values instead of replacing.
_MERGED_SCALAR_LISTS = frozenset({"finalizers"})


def merge_key_for(field: str, items: list[Any]) -> str | None:
    """The merge key of a list field, telling container ports from Service ports by content."""
    if field == "ports":
        sample = next((item for item in items if isinstance(item, dict)), None)
        if sample is None:
            return None
        return "containerPort" if "containerPort" in sample else "port"
    return _MERGE_KEYS.get(field)


def apply_strategic_merge_patch(target: Any, patch: Any) -> Any:
    """Strategic merge: merge-patch plus keyed list merging and the `$patch` directives."""
    if not isinstance(patch, dict):
        return copy.deepcopy(patch)
    base: dict[str, Any] = copy.deepcopy(target) if isinstance(target, dict) else {}
    directive = patch.get("$patch")
    if directive == "delete":
        return None
    if directive == "replace":
        return {k: copy.deepcopy(v) for k, v in patch.items() if not k.startswith("$")}
    retain = patch.get("$retainKeys")
    for key, value in patch.items():
        if key.startswith("$deleteFromPrimitiveList/"):
            field = key.split("/", 1)[1]
            if isinstance(base.get(field), list):
                base[field] = [item for item in base[field] if item not in (value or [])]
            continue
        if key.startswith("$"):
            continue  # $setElementOrder and other ordering hints do not change content
        if value is None:
            base.pop(key, None)
        elif isinstance(value, list):
            base[key] = _merge_list(key, base.get(key), value)
        elif isinstance(value, dict):
            merged = apply_strategic_merge_patch(base.get(key), value)
            if merged is None:
                base.pop(key, None)
            else:
                base[key] = merged
        else:
            base[key] = copy.deepcopy(value)
    if isinstance(retain, list):
        base = {k: v for k, v in base.items() if k in retain}
    return base


def _merge_list(field: str, current: Any, patch: list[Any]) -> list[Any]:
    existing: list[Any] = copy.deepcopy(current) if isinstance(current, list) else []
    if field in _MERGED_SCALAR_LISTS and all(not isinstance(item, dict) for item in patch):
        return existing + [copy.deepcopy(item) for item in patch if item not in existing]
    key = merge_key_for(field, patch + existing)
    if key is None or not all(isinstance(item, dict) for item in patch):
        return [item for item in copy.deepcopy(patch) if not (isinstance(item, dict) and item.get("$patch"))]
    if any(item.get("$patch") == "replace" for item in patch):
        return [copy.deepcopy(item) for item in patch if "$patch" not in item]
    result = existing
    for item in patch:
        index = next(
            (i for i, old in enumerate(result) if isinstance(old, dict) and old.get(key) == item.get(key)),
            None,
        )
        if item.get("$patch") == "delete":
            if index is not None:
                del result[index]
        elif index is None:
            result.append(apply_strategic_merge_patch({}, item))
        else:
            result[index] = apply_strategic_merge_patch(result[index], item)
    return result


def prune_unapplied(live: Any, previous: Any, current: Any) -> Any:
    """Remove from `live` the fields a manager applied before but no longer applies.

    This is the part of server-side apply that makes a GitOps applier able to delete a
    field by deleting it from the manifest. Ownership conflicts between managers are not
    modelled: the fields are removed even if another manager set them since.
    """
    if not isinstance(live, dict) or not isinstance(previous, dict):
        return live
    current = current if isinstance(current, dict) else {}
    for key, old_value in previous.items():
        if key not in current:
            live.pop(key, None)
        elif isinstance(old_value, dict) and isinstance(live.get(key), dict):
            live[key] = prune_unapplied(live[key], old_value, current[key])
        elif (
            isinstance(old_value, list) and isinstance(live.get(key), list) and isinstance(current[key], list)
        ):
            merge_key = merge_key_for(key, old_value + current[key])
            if merge_key is None:
                continue
            kept = {item.get(merge_key) for item in current[key] if isinstance(item, dict)}
            gone = {item.get(merge_key) for item in old_value if isinstance(item, dict)} - kept
            live[key] = [
                item for item in live[key] if not (isinstance(item, dict) and item.get(merge_key) in gone)
            ]
    return live
