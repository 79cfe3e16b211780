"""The object store with the semantics of the Kubernetes API, kept in kmock's object array.

kmock's KubernetesEmulator stores objects as plain dicts and merges every write into
them. Controllers depend on more than that, so this store adds what a real API server
guarantees: a resourceVersion on every write and 409 Conflict for a stale one, uid and
creationTimestamp, generation bumped only by spec changes, isolation of the `status`
subresource, no-op writes that change nothing, deletion with finalizers, namespaces that
must exist, and a bounded event log so a watch can resume after a resourceVersion (410
Gone once it is compacted away). All writes are synchronous and run on the sandbox's
event loop, so each one is atomic with respect to the others.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import copy
import datetime
import json
import logging
import re
import secrets
import uuid
from collections import deque
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass
from typing import Any

import kmock
import yaml

from . import defaults, patches
from .resources import ResourceSpec, spec_from_crd
from .selectors import FieldSelector, LabelSelector

__all__ = ["ObjectStore", "WatchEvent", "api_error"]

logger = logging.getLogger(__name__)

Key = tuple[kmock.resource, str | None, str]

_NAME_SUFFIX_ALPHABET = "bcdfghjklmnpqrstvwxz2456789"
_SUBDOMAIN_RE = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")
_LABEL_RE = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
_LABEL_NAMED = {("", "namespaces"), ("", "services")}
_IMMUTABLE_META = (
    "uid",
    "creationTimestamp",
    "deletionTimestamp",
    "deletionGracePeriodSeconds",
    "name",
    "namespace",
    "generation",
)
_PROTECTED_NAMESPACES = frozenset({"default", "kube-system", "kube-public"})
BOOKMARK_INTERVAL = 30.0
_CLIENT_CHECK = 5.0  # how often a quiet watch looks whether its client is still there


def api_error(
    code: int, reason: str, message: str, *, spec: ResourceSpec | None = None, name: str | None = None
) -> kmock.KubernetesError:
    """A Kubernetes `Status` failure; kmock renders it as the response."""
    details: dict[str, Any] = {}
    if name is not None:
        details["name"] = name
    if spec is not None:
        details["group"] = spec.group
        details["kind"] = spec.plural
    return kmock.KubernetesError(status=code, reason=reason, message=message, details=details)


def _not_found(spec: ResourceSpec, name: str) -> kmock.KubernetesError:
    return api_error(404, "NotFound", f'{spec.group_resource} "{name}" not found', spec=spec, name=name)


def _conflict(spec: ResourceSpec, name: str, why: str) -> kmock.KubernetesError:
    return api_error(
        409,
        "Conflict",
        f'Operation cannot be fulfilled on {spec.group_resource} "{name}": {why}',
        spec=spec,
        name=name,
    )


def _invalid(spec: ResourceSpec, name: str, why: str) -> kmock.KubernetesError:
    return api_error(422, "Invalid", f'{spec.kind} "{name}" is invalid: {why}', spec=spec, name=name)


def bad_request(message: str) -> kmock.KubernetesError:
    return api_error(400, "BadRequest", message)


_STALE = "the object has been modified; please apply your changes to the latest version and try again"


def _now() -> str:
    return datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _owner_uids(obj: dict[str, Any] | None) -> set[str]:
    refs = _meta(obj or {}).get("ownerReferences") or []
    return {str(ref["uid"]) for ref in refs if isinstance(ref, dict) and ref.get("uid")}


def _meta(obj: dict[str, Any]) -> dict[str, Any]:
    meta = obj.get("metadata")
    if not isinstance(meta, dict):
        meta = obj["metadata"] = {}
    return meta


@dataclass(frozen=True)
class WatchEvent:
    """One change in the log; `old` lets selector-filtered watches see objects leave."""

    rv: int
    type: str
    obj: dict[str, Any]
    old: dict[str, Any] | None


class ObjectStore:
    """Kubernetes API semantics over kmock's ObjectsArray (which keeps each object's history)."""

    def __init__(
        self,
        objects: kmock.ObjectsArray,
        discovery: kmock.ResourcesArray,
        *,
        history: int = 8,
        log_size: int = 4096,
    ) -> None:
        self.objects = objects
        self._discovery = discovery
        self._history = history
        self._log_size = log_size
        self._specs: dict[tuple[str, str, str], ResourceSpec] = {}
        self._rv = 0
        self._logs: dict[tuple[str, str], deque[WatchEvent]] = {}
        self._compacted: dict[tuple[str, str], int] = {}
        self._applied: dict[tuple[str, str, str | None, str, str], Any] = {}
        # Every key ever stored, by kind (storage key), in the order stored: one kind's objects are
        # read without a pass over every other kind's (the controllers read theirs after each write).
        self._kinds: dict[kmock.resource, dict[Key, None]] = {}
        # Live objects by uid, and by the uid of each owner their ownerReferences name: the garbage
        # collector and cascading deletes look owners and dependents up without a pass over everything.
        self._uids: dict[str, tuple[ResourceSpec, Key]] = {}
        self._owned: dict[str, dict[Key, ResourceSpec]] = {}
        self._changed = asyncio.Event()
        self._dry = False
        self.stopping = asyncio.Event()
        self.listeners: list[Callable[[ResourceSpec, WatchEvent], None]] = []

    @contextlib.contextmanager
    def dry_run(self) -> Iterator[None]:
        """`?dryRun=All`: every check and default runs, nothing is stored, watched or registered."""
        self._dry = True
        try:
            yield
        finally:
            self._dry = False

    # -- kinds ---------------------------------------------------------------------------------

    def register(self, spec: ResourceSpec) -> None:
        for version in spec.versions:
            self._specs[spec.group, version, spec.plural] = spec
            self._discovery[kmock.resource(spec.group, version, spec.plural)] = spec.info()

    def unregister(self, spec: ResourceSpec) -> None:
        for version in spec.versions:
            self._specs.pop((spec.group, version, spec.plural), None)
            key = kmock.resource(spec.group, version, spec.plural)
            if key in self._discovery:
                del self._discovery[key]

    def lookup(self, group: str | None, version: str | None, plural: str | None) -> ResourceSpec | None:
        return self._specs.get((group or "", version or "", plural or ""))

    def specs(self) -> list[ResourceSpec]:
        return list({id(s): s for s in self._specs.values()}.values())

    @property
    def resource_version(self) -> int:
        return self._rv

    # -- reading -------------------------------------------------------------------------------

    def _key(self, spec: ResourceSpec, namespace: str | None, name: str) -> Key:
        return (spec.storage_key, namespace if spec.namespaced else None, name)

    def _live(self, key: Key) -> dict[str, Any] | None:
        if key not in self.objects:
            return None
        obj = self.objects[key]
        return None if obj.deleted else obj.last.raw

    def get(self, spec: ResourceSpec, namespace: str | None, name: str) -> dict[str, Any] | None:
        live = self._live(self._key(spec, namespace, name))
        return copy.deepcopy(live) if live is not None else None

    def peek(self, spec: ResourceSpec, namespace: str | None, name: str) -> dict[str, Any] | None:
        """The live object itself, not a copy, for the controllers inside the sandbox: read, never change."""
        return self._live(self._key(spec, namespace, name))

    def live_objects(self, spec: ResourceSpec | None = None) -> list[tuple[ResourceSpec, dict[str, Any]]]:
        """All live objects (of one kind or of all), for the controllers inside the sandbox."""
        by_key = {s.storage_key: s for s in self.specs()}
        result: list[tuple[ResourceSpec, dict[str, Any]]] = []
        if spec is not None:
            if by_key.get(spec.storage_key) is not spec:
                return result
            for key in list(self._kinds.get(spec.storage_key, ())):
                obj = self.objects[key]
                if not obj.deleted:
                    result.append((spec, obj.last.raw))
            return result
        for (resource, _, _), obj in list(self.objects.items()):
            owner_spec = by_key.get(resource)
            if owner_spec is None or obj.deleted or (spec is not None and owner_spec is not spec):
                continue
            result.append((owner_spec, obj.last.raw))
        return result

    def namespace_phase(self, name: str) -> str | None:
        ns = self.lookup("", "v1", "namespaces")
        obj = self._live(self._key(ns, None, name)) if ns else None
        if obj is None:
            return None
        return "Terminating" if _meta(obj).get("deletionTimestamp") else "Active"

    def present(self, spec: ResourceSpec, version: str | None, obj: dict[str, Any]) -> dict[str, Any]:
        """The object as served in the requested version (one storage, several versions)."""
        api_version = spec.api_version(version)
        if obj.get("apiVersion") == api_version:
            return obj
        return {**obj, "apiVersion": api_version}

    def list_objects(
        self,
        spec: ResourceSpec,
        version: str | None,
        namespace: str | None,
        *,
        labels: LabelSelector,
        fields: FieldSelector,
        limit: int | None = None,
        continue_token: str | None = None,
    ) -> dict[str, Any]:
        items = sorted(
            (
                obj
                for _, obj in self.live_objects(spec)
                if (namespace is None or _meta(obj).get("namespace") == namespace)
                and labels.matches(obj)
                and fields.matches(obj)
            ),
            key=lambda o: (_meta(o).get("namespace") or "", _meta(o).get("name") or ""),
        )
        if continue_token:
            try:
                after = tuple(json.loads(base64.urlsafe_b64decode(continue_token.encode())))
            except ValueError as exc:
                raise bad_request(f"invalid continue token: {continue_token!r}") from exc
            items = [
                o for o in items if (_meta(o).get("namespace") or "", _meta(o).get("name") or "") > after
            ]
        metadata: dict[str, Any] = {"resourceVersion": str(self._rv)}
        if limit and len(items) > limit:
            last = items[limit - 1]
            position = [_meta(last).get("namespace") or "", _meta(last).get("name") or ""]
            metadata["continue"] = base64.urlsafe_b64encode(json.dumps(position).encode()).decode()
            metadata["remainingItemCount"] = len(items) - limit
            items = items[:limit]
        return {
            "apiVersion": spec.api_version(version),
            "kind": f"{spec.kind}List",
            "metadata": metadata,
            "items": [self.present(spec, version, obj) for obj in items],
        }

    # -- writing -------------------------------------------------------------------------------

    def _commit(
        self, spec: ResourceSpec, key: Key, event_type: str, new: dict[str, Any], old: dict[str, Any] | None
    ) -> dict[str, Any]:
        if self._dry:
            return copy.deepcopy(new)
        self._rv += 1
        new = copy.deepcopy(new)
        _meta(new)["resourceVersion"] = str(self._rv)
        if key not in self.objects:
            self.objects[key] = new
            self._kinds.setdefault(key[0], {})[key] = None
        else:
            stored = self.objects[key]
            stored.history.append(new)
            if event_type == "DELETED":
                stored.delete()
            if len(stored.history) > self._history:
                del stored.history[: -self._history]
        self._index(spec, key, event_type, new, old)
        event = WatchEvent(self._rv, event_type, new, old)
        log = self._logs.setdefault((spec.group, spec.plural), deque())
        if len(log) >= self._log_size:
            self._compacted[spec.group, spec.plural] = log.popleft().rv
        log.append(event)
        self._changed.set()
        self._changed = asyncio.Event()
        for listener in list(self.listeners):
            try:
                listener(spec, event)
            except Exception:  # a listener must never break a write that already happened
                logger.exception("sandbox store listener failed")
        return new

    def _index(self, spec: ResourceSpec, key: Key, event_type: str, new: dict[str, Any],
               old: dict[str, Any] | None) -> None:
        uid = _meta(new).get("uid") or _meta(old or {}).get("uid")
        owners = _owner_uids(new)
        for owner in _owner_uids(old) - (set() if event_type == "DELETED" else owners):
            if (dependents := self._owned.get(owner)) is not None:
                dependents.pop(key, None)
                if not dependents:
                    del self._owned[owner]
        if event_type == "DELETED":
            for owner in owners:
                if (dependents := self._owned.get(owner)) is not None:
                    dependents.pop(key, None)
                    if not dependents:
                        del self._owned[owner]
            if uid:
                self._uids.pop(uid, None)
            return
        if uid:
            self._uids[uid] = (spec, key)
        for owner in owners:
            self._owned.setdefault(owner, {})[key] = spec

    def by_uid(self, uid: str) -> tuple[ResourceSpec, dict[str, Any]] | None:
        """The live object with `uid` (for the controllers inside the sandbox: read, never change)."""
        found = self._uids.get(uid)
        if found is None:
            return None
        obj = self._live(found[1])
        return (found[0], obj) if obj is not None else None

    def create(
        self, spec: ResourceSpec, version: str | None, namespace: str | None, body: Any
    ) -> dict[str, Any]:
        if not isinstance(body, dict):
            raise bad_request("the body of the request must be a JSON object")
        obj = copy.deepcopy(body)
        meta = _meta(obj)
        if obj.get("kind") and obj["kind"] != spec.kind:
            raise bad_request(f"the kind {obj['kind']!r} does not match the resource {spec.kind!r}")
        if spec.namespaced:
            namespace = namespace or meta.get("namespace")
            if not namespace:
                raise api_error(
                    405, "MethodNotAllowed", "the server does not allow this method on the requested resource"
                )
            if meta.get("namespace") and meta["namespace"] != namespace:
                raise bad_request(
                    "the namespace of the provided object does not match the namespace sent on the request"
                )
            meta["namespace"] = namespace
            phase = self.namespace_phase(namespace)
            if phase is None:
                raise api_error(404, "NotFound", f'namespaces "{namespace}" not found', name=namespace)
            if phase == "Terminating":
                raise api_error(
                    403,
                    "Forbidden",
                    f"unable to create new content in namespace {namespace} because it is being terminated",
                )
        else:
            meta.pop("namespace", None)
        name = meta.get("name")
        for _attempt in range(8):
            if name or not meta.get("generateName"):
                break
            candidate = meta["generateName"] + "".join(
                secrets.choice(_NAME_SUFFIX_ALPHABET) for _ in range(5)
            )
            if self._live(self._key(spec, namespace, candidate)) is None:
                name = candidate
        if not name:
            raise _invalid(spec, "", "metadata.name: Required value: name or generateName is required")
        pattern = _LABEL_RE if (spec.group, spec.plural) in _LABEL_NAMED else _SUBDOMAIN_RE
        if not pattern.match(name) or len(name) > 253:
            raise _invalid(
                spec,
                name,
                f'metadata.name: Invalid value: "{name}": a lowercase RFC 1123 name '
                "must consist of lower case alphanumeric characters, '-' or '.'",
            )
        meta["name"] = name
        key = self._key(spec, namespace, name)
        if self._live(key) is not None:
            raise api_error(
                409, "AlreadyExists", f'{spec.group_resource} "{name}" already exists', spec=spec, name=name
            )
        for field in (
            "resourceVersion",
            "deletionTimestamp",
            "deletionGracePeriodSeconds",
            "selfLink",
            "managedFields",
        ):
            meta.pop(field, None)
        meta["uid"] = str(uuid.uuid4())
        meta["creationTimestamp"] = _now()
        if spec.generation:
            meta["generation"] = 1
        else:
            meta.pop("generation", None)
        if spec.status:
            obj.pop("status", None)
        obj["apiVersion"] = spec.api_version(version)
        obj["kind"] = spec.kind
        defaults.apply_defaults(spec.group, spec.plural, obj, None)
        if (spec.group, spec.plural) == ("", "namespaces"):
            obj["status"] = {"phase": "Active"}
        self._crd_hook(spec, obj, None)
        return self._commit(spec, key, "ADDED", obj, None)

    def _crd_hook(self, spec: ResourceSpec, obj: dict[str, Any], old: dict[str, Any] | None) -> None:
        """A CustomResourceDefinition becomes a served kind when created (and is Established)."""
        if (spec.group, spec.plural) != ("apiextensions.k8s.io", "customresourcedefinitions"):
            return
        name = _meta(obj).get("name", "")
        try:
            new_spec = spec_from_crd(obj)
        except ValueError as exc:
            raise _invalid(spec, name, str(exc)) from exc
        if name != f"{new_spec.plural}.{new_spec.group}":
            raise _invalid(
                spec,
                name,
                f'metadata.name: Invalid value: "{name}": must be spec.names.plural+"."+spec.group',
            )
        if self._dry:
            return
        if old is not None:
            self.unregister(spec_from_crd(old))
        self.register(new_spec)
        names = (obj.get("spec") or {}).get("names") or {}
        obj["status"] = {
            "acceptedNames": copy.deepcopy(names),
            "storedVersions": [new_spec.storage_version],
            "conditions": [
                {"type": t, "status": "True", "reason": r, "message": m, "lastTransitionTime": _now()}
                for t, r, m in (
                    ("NamesAccepted", "NoConflicts", "no conflicts found"),
                    ("Established", "InitialNamesAccepted", "the initial names have been accepted"),
                )
            ],
        }

    def _generation_part(self, spec: ResourceSpec, obj: dict[str, Any]) -> Any:
        skipped = {"metadata", "apiVersion", "kind"} | ({"status"} if spec.status else set())
        part = {k: v for k, v in obj.items() if k not in skipped}
        if spec.generation_on_annotations:
            part["metadata.annotations"] = _meta(obj).get("annotations") or {}
        return part

    def _is_blocked(self, spec: ResourceSpec, obj: dict[str, Any]) -> bool:
        if _meta(obj).get("finalizers"):
            return True
        return (spec.group, spec.plural) == ("", "namespaces") and bool(
            (obj.get("spec") or {}).get("finalizers")
        )

    def _update(
        self,
        spec: ResourceSpec,
        key: Key,
        old: dict[str, Any],
        candidate: dict[str, Any],
        subresource: str | None,
    ) -> dict[str, Any]:
        name = key[2]
        if subresource == "status":
            new = copy.deepcopy(old)
            if "status" in candidate:
                new["status"] = copy.deepcopy(candidate["status"])
            else:
                new.pop("status", None)
        else:
            new = copy.deepcopy(candidate)
            meta, old_meta = _meta(new), old["metadata"]
            for field in _IMMUTABLE_META:
                if field in old_meta:
                    meta[field] = old_meta[field]
                else:
                    meta.pop(field, None)
            if spec.status:
                if "status" in old:
                    new["status"] = copy.deepcopy(old["status"])
                else:
                    new.pop("status", None)
            new["apiVersion"], new["kind"] = old["apiVersion"], old["kind"]
            if old_meta.get("deletionTimestamp"):
                added = set(meta.get("finalizers") or []) - set(old_meta.get("finalizers") or [])
                if added:
                    raise api_error(
                        422,
                        "Invalid",
                        f'{spec.kind} "{name}" is invalid: metadata.finalizers: '
                        "Forbidden: no new finalizers can be added if the object "
                        "is being deleted",
                        spec=spec,
                        name=name,
                    )
            defaults.apply_defaults(spec.group, spec.plural, new, old)
            self._crd_hook(spec, new, old)
            if spec.generation and self._generation_part(spec, new) != self._generation_part(spec, old):
                meta["generation"] = int(old_meta.get("generation") or 0) + 1
        _meta(new)["resourceVersion"] = old["metadata"].get("resourceVersion")
        if new == old:
            return old  # a no-op write changes nothing, not even the resourceVersion
        if _meta(new).get("deletionTimestamp") and not self._is_blocked(spec, new):
            return self._remove(spec, key, new, old)
        return self._commit(spec, key, "MODIFIED", new, old)

    def _remove(
        self, spec: ResourceSpec, key: Key, final: dict[str, Any], old: dict[str, Any]
    ) -> dict[str, Any]:
        result = self._commit(spec, key, "DELETED", final, old)
        ns, name = key[1], key[2]
        for applied in [k for k in self._applied if k[:4] == (spec.group, spec.plural, ns, name)]:
            del self._applied[applied]
        if (spec.group, spec.plural) == ("apiextensions.k8s.io", "customresourcedefinitions"):
            try:
                served = spec_from_crd(final)
            except ValueError:
                return result
            for _, obj in self.live_objects(self.lookup(served.group, served.storage_version, served.plural)):
                self._commit(
                    served,
                    self._key(served, _meta(obj).get("namespace"), _meta(obj)["name"]),
                    "DELETED",
                    obj,
                    obj,
                )
            self.unregister(served)
        return result

    def _existing(self, spec: ResourceSpec, namespace: str | None, name: str) -> tuple[Key, dict[str, Any]]:
        key = self._key(spec, namespace, name)
        live = self._live(key)
        if live is None:
            raise _not_found(spec, name)
        return key, live

    @staticmethod
    def _check_version(spec: ResourceSpec, name: str, old: dict[str, Any], candidate: dict[str, Any]) -> None:
        wanted = (candidate.get("metadata") or {}).get("resourceVersion")
        if wanted and str(wanted) != old["metadata"].get("resourceVersion"):
            raise _conflict(spec, name, _STALE)

    def replace(
        self,
        spec: ResourceSpec,
        version: str | None,
        namespace: str | None,
        name: str,
        body: Any,
        subresource: str | None = None,
    ) -> dict[str, Any]:
        if not isinstance(body, dict):
            raise bad_request("the body of the request must be a JSON object")
        key, old = self._existing(spec, namespace, name)
        meta = body.get("metadata") or {}
        if meta.get("name") and meta["name"] != name:
            raise bad_request(
                f"the name of the object ({meta['name']}) does not match the name on the URL ({name})"
            )
        if spec.namespaced and meta.get("namespace") and meta["namespace"] != namespace:
            raise bad_request(
                "the namespace of the provided object does not match the namespace sent on the request"
            )
        self._check_version(spec, name, old, body)
        return self._update(spec, key, old, body, subresource)

    def patch(
        self,
        spec: ResourceSpec,
        version: str | None,
        namespace: str | None,
        name: str,
        *,
        content_type: str,
        data: Any,
        text: str,
        subresource: str | None = None,
        field_manager: str | None = None,
    ) -> tuple[dict[str, Any], bool]:
        """Apply a PATCH; returns the object and whether it was created (apply only)."""
        media = content_type.split(";")[0].strip().lower()
        if media == "application/apply-patch+yaml":
            return self.apply(spec, version, namespace, name, text, subresource, field_manager)
        key, old = self._existing(spec, namespace, name)
        try:
            if media == "application/json-patch+json":
                candidate = patches.apply_json_patch(old, data)
            elif media == "application/merge-patch+json":
                if not isinstance(data, dict):
                    raise bad_request("a merge patch must be a JSON object")
                candidate = patches.apply_merge_patch(old, data)
            elif media == "application/strategic-merge-patch+json" and not spec.custom:
                if not isinstance(data, dict):
                    raise bad_request("a strategic merge patch must be a JSON object")
                candidate = patches.apply_strategic_merge_patch(old, data)
            else:
                smp = "" if spec.custom else ", application/strategic-merge-patch+json"
                raise api_error(
                    415,
                    "UnsupportedMediaType",
                    f"the body of the request was in an unknown format - accepted media types include: "
                    f"application/json-patch+json, application/merge-patch+json, "
                    f"application/apply-patch+yaml{smp}",
                )
        except patches.PatchError as exc:
            raise api_error(422, "Invalid", str(exc), spec=spec, name=name) from exc
        if not isinstance(candidate, dict):
            raise api_error(422, "Invalid", "the patch did not result in an object", spec=spec, name=name)
        self._check_version(spec, name, old, candidate)
        return self._update(spec, key, old, candidate, subresource), False

    def apply(
        self,
        spec: ResourceSpec,
        version: str | None,
        namespace: str | None,
        name: str,
        text: str,
        subresource: str | None,
        field_manager: str | None,
    ) -> tuple[dict[str, Any], bool]:
        """Server-side apply as a merge that creates when missing and forgets fields no longer applied."""
        if not field_manager:
            raise bad_request("PATCH: fieldManager is required for apply requests")
        try:
            config = yaml.safe_load(text)
        except yaml.YAMLError as exc:
            raise bad_request(f"error decoding YAML: {exc}") from exc
        if not isinstance(config, dict):
            raise bad_request("the applied configuration must be an object")
        meta = _meta(config)
        if meta.get("name") and meta["name"] != name:
            raise bad_request(
                f"the name of the object ({meta['name']}) does not match the name on the URL ({name})"
            )
        if config.get("kind") and config["kind"] != spec.kind:
            raise bad_request(f"the kind {config['kind']!r} does not match the resource {spec.kind!r}")
        meta["name"] = name
        applied_key = (spec.group, spec.plural, namespace if spec.namespaced else None, name, field_manager)
        remembered = copy.deepcopy(config)
        remembered["metadata"].pop("resourceVersion", None)
        key = self._key(spec, namespace, name)
        old = self._live(key)
        if old is None:
            if subresource:
                raise _not_found(spec, name)
            created = self.create(spec, version, namespace, config)
            if not self._dry:
                self._applied[applied_key] = remembered
            return created, True
        self._check_version(spec, name, old, config)
        live = copy.deepcopy(old)
        previous = self._applied.get(applied_key)
        if previous is not None:
            live = patches.prune_unapplied(live, previous, remembered)
        merge = patches.apply_merge_patch if spec.custom else patches.apply_strategic_merge_patch
        candidate = merge(live, config)
        _meta(candidate)["resourceVersion"] = old["metadata"]["resourceVersion"]
        result = self._update(spec, key, old, candidate, subresource)
        if not self._dry:
            self._applied[applied_key] = remembered
        return result, False

    def update_status(
        self, spec: ResourceSpec, namespace: str | None, name: str, status: dict[str, Any]
    ) -> dict[str, Any] | None:
        """Write the status subresource from inside the sandbox (the simulated controllers)."""
        key = self._key(spec, namespace, name)
        old = self._live(key)
        if old is None:
            return None
        return self._update(spec, key, old, {**old, "status": status}, "status")

    def update(
        self, spec: ResourceSpec, namespace: str | None, name: str, mutate: Callable[[dict[str, Any]], None]
    ) -> dict[str, Any] | None:
        """Change the main resource from inside the sandbox (garbage collector, finalizers)."""
        key = self._key(spec, namespace, name)
        old = self._live(key)
        if old is None:
            return None
        candidate = copy.deepcopy(old)
        mutate(candidate)
        return self._update(spec, key, old, candidate, None)

    def delete(
        self, spec: ResourceSpec, namespace: str | None, name: str, options: dict[str, Any] | None = None
    ) -> tuple[dict[str, Any], bool]:
        """Delete, or mark for deletion when finalizers remain; returns the object and whether it is gone."""
        options = options or {}
        key, old = self._existing(spec, namespace, name)
        meta = old["metadata"]
        preconditions = options.get("preconditions") or {}
        if preconditions.get("uid") and preconditions["uid"] != meta.get("uid"):
            raise _conflict(
                spec,
                name,
                f"Precondition failed: UID in precondition: {preconditions['uid']}, "
                f"UID in object meta: {meta.get('uid')}",
            )
        if preconditions.get("resourceVersion") and preconditions["resourceVersion"] != meta.get(
            "resourceVersion"
        ):
            raise _conflict(
                spec,
                name,
                f"Precondition failed: ResourceVersion in precondition: "
                f"{preconditions['resourceVersion']}, ResourceVersion in object meta: "
                f"{meta.get('resourceVersion')}",
            )
        if (spec.group, spec.plural) == ("", "namespaces") and name in _PROTECTED_NAMESPACES:
            raise api_error(
                403,
                "Forbidden",
                f'namespaces "{name}" is forbidden: this namespace may not be deleted',
                spec=spec,
                name=name,
            )
        policy = options.get("propagationPolicy")
        if policy is None and options.get("orphanDependents") is not None:
            policy = "Orphan" if options["orphanDependents"] else "Background"
        if policy == "Orphan":
            self.orphan_dependents(meta.get("uid", ""))
        if meta.get("deletionTimestamp"):
            return old, False
        finalizers = list(meta.get("finalizers") or [])
        if policy == "Foreground" and self.dependents_of(meta.get("uid", "")):
            finalizers.append("foregroundDeletion")
        new = copy.deepcopy(old)
        if finalizers:
            new["metadata"]["finalizers"] = finalizers
        if finalizers or self._is_blocked(spec, new):
            new["metadata"]["deletionTimestamp"] = _now()
            new["metadata"]["deletionGracePeriodSeconds"] = 0
            if (spec.group, spec.plural) == ("", "namespaces"):
                new.setdefault("status", {})["phase"] = "Terminating"
            return self._commit(spec, key, "MODIFIED", new, old), False
        return self._remove(spec, key, new, old), True

    def finalize_namespace(self, name: str) -> None:
        """The namespace controller's last step: an emptied terminating namespace goes away."""
        spec = self.lookup("", "v1", "namespaces")
        if spec is None:
            return
        key = self._key(spec, None, name)
        old = self._live(key)
        if old is None or not old["metadata"].get("deletionTimestamp"):
            return
        new = copy.deepcopy(old)
        new.setdefault("spec", {})["finalizers"] = []
        if old["metadata"].get("finalizers"):
            self._update(spec, key, old, new, None)  # still waits for its metadata finalizers
        else:
            self._remove(spec, key, new, old)

    def dependents_of(self, uid: str) -> list[tuple[ResourceSpec, dict[str, Any]]]:
        """The live objects whose ownerReferences name `uid`."""
        found = []
        for key, spec in list(self._owned.get(uid, {}).items()):
            obj = self._live(key)
            if obj is not None:
                found.append((spec, obj))
        return found

    def orphan_dependents(self, uid: str) -> None:
        for spec, obj in self.dependents_of(uid):

            def strip(o: dict[str, Any]) -> None:
                refs = [r for r in _meta(o).get("ownerReferences") or [] if r.get("uid") != uid]
                if refs:
                    o["metadata"]["ownerReferences"] = refs
                else:
                    o["metadata"].pop("ownerReferences", None)

            self.update(spec, _meta(obj).get("namespace"), _meta(obj)["name"], strip)

    # -- watching ------------------------------------------------------------------------------

    def stop(self) -> None:
        self.stopping.set()
        self._changed.set()

    def nudge(self) -> None:
        """Wake everything waiting for a change (a controller's input changed outside the store)."""
        self._changed.set()
        self._changed = asyncio.Event()

    async def wait_changed(self, timeout: float) -> None:
        """Return after the next write, or after `timeout` seconds."""
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._changed.wait(), timeout=max(timeout, 0.0))

    async def watch(
        self,
        spec: ResourceSpec,
        version: str | None,
        namespace: str | None,
        *,
        labels: LabelSelector,
        fields: FieldSelector,
        since: str | None,
        send_initial: bool,
        bookmarks: bool,
        timeout: float,
        closed: Callable[[], bool] = lambda: False,
    ) -> AsyncIterator[dict[str, Any]]:
        """Watch events as a real API server streams them (see the module docstring).

        The stream ends at `timeout`, when the sandbox stops, or soon after the client
        went away (`closed`), so abandoned watches do not pile up.
        """
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        log_key = (spec.group, spec.plural)

        def matches(obj: dict[str, Any] | None) -> bool:
            if obj is None:
                return False
            if namespace is not None and _meta(obj).get("namespace") != namespace:
                return False
            return labels.matches(obj) and fields.matches(obj)

        def bookmark(rv: int, initial_end: bool = False) -> dict[str, Any]:
            meta: dict[str, Any] = {"resourceVersion": str(rv)}
            if initial_end:
                meta["annotations"] = {"k8s.io/initial-events-end": "true"}
            return {
                "type": "BOOKMARK",
                "object": {"kind": spec.kind, "apiVersion": spec.api_version(version), "metadata": meta},
            }

        if since in (None, "", "0") or send_initial:
            seen = self._rv
            initial = [obj for _, obj in self.live_objects(spec) if matches(obj)]
            for obj in initial:
                yield {"type": "ADDED", "object": self.present(spec, version, obj)}
            if send_initial and bookmarks:
                yield bookmark(seen, initial_end=True)
        else:
            try:
                seen = int(str(since))
            except ValueError:
                yield {
                    "type": "ERROR",
                    "object": {
                        "kind": "Status",
                        "apiVersion": "v1",
                        "metadata": {},
                        "status": "Failure",
                        "code": 400,
                        "reason": "BadRequest",
                        "message": f"invalid resource version: {since}",
                    },
                }
                return
        next_bookmark = loop.time() + BOOKMARK_INTERVAL
        while not self.stopping.is_set() and not closed():
            changed = self._changed
            if self._compacted.get(log_key, 0) > seen:
                yield {
                    "type": "ERROR",
                    "object": {
                        "kind": "Status",
                        "apiVersion": "v1",
                        "metadata": {},
                        "status": "Failure",
                        "code": 410,
                        "reason": "Expired",
                        "message": f"too old resource version: {seen} ({self._compacted[log_key]})",
                    },
                }
                return
            fresh: list[WatchEvent] = []
            for event in reversed(self._logs.get(log_key, ())):
                if event.rv <= seen:
                    break
                fresh.append(event)
            seen = self._rv
            for event in reversed(fresh):
                new_match, old_match = matches(event.obj), matches(event.old)
                if event.type == "MODIFIED":
                    kind = (
                        "MODIFIED"
                        if new_match and old_match
                        else "ADDED"
                        if new_match
                        else "DELETED"
                        if old_match
                        else None
                    )
                else:
                    kind = event.type if new_match else None
                if kind is not None:
                    yield {"type": kind, "object": self.present(spec, version, event.obj)}
            now = loop.time()
            if now >= deadline:
                return
            if bookmarks and now >= next_bookmark:
                yield bookmark(seen)
                next_bookmark = now + BOOKMARK_INTERVAL
            wait = min(deadline, next_bookmark if bookmarks else deadline, now + _CLIENT_CHECK) - now
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(changed.wait(), timeout=max(wait, 0.0))
