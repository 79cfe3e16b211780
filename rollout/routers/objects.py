"""What every router shares: names, ownership, and one careful read-modify-write against the API.

Routers keep their object-building pure (dicts in, dicts out) and come here for the few effects
they need: read an object, create or replace it with its resourceVersion (retrying a 409 a bounded
number of times), delete it. API failures become `RouterError`s that say whether a retry may help.
"""

from __future__ import annotations

import copy
import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from kubernetes import client
from kubernetes.client.exceptions import ApiException
from urllib3.exceptions import HTTPError

from rollout.api.kinds import API_VERSION
from rollout.api.spec import Release
from rollout.routers.base import RouterError

Obj = dict[str, Any]

OWNER_API_VERSION = API_VERSION
MANAGED_BY = {"app.kubernetes.io/managed-by": "rollout"}
CONFLICT_ATTEMPTS = 5
# Status codes after which sending the same request again cannot succeed.
_PERMANENT_CODES = frozenset({400, 422})


# --- names and metadata (pure) ------------------------------------------------------------------


@dataclass(frozen=True)
class Names:
    """The names Flagger's model gives the objects of one release."""

    namespace: str
    target: str  # the Deployment under test (the canary)
    apex: str  # the Service clients address
    primary: str  # `<apex>-primary`
    canary: str  # `<apex>-canary`


def names(release: Release) -> Names:
    target = release.spec.target_ref.name
    apex = release.spec.service.name or target
    return Names(release.metadata.namespace, target, apex, f"{apex}-primary", f"{apex}-canary")


def owner_reference(release: Release) -> Obj:
    return {
        "apiVersion": OWNER_API_VERSION,
        "kind": release.kind,
        "name": release.metadata.name,
        "uid": release.metadata.uid,
        "controller": True,
        "blockOwnerDeletion": True,
    }


def metadata(release: Release, name: str, labels: Mapping[str, str] | None = None) -> Obj:
    """Metadata of an object the release owns (no ownerReference without the release's uid)."""
    meta: Obj = {
        "name": name,
        "namespace": release.metadata.namespace,
        "labels": {**(labels or {}), **MANAGED_BY},
    }
    if release.metadata.uid:
        meta["ownerReferences"] = [owner_reference(release)]
    return meta


def owned_by(obj: Mapping[str, Any], release: Release) -> bool:
    refs = (obj.get("metadata") or {}).get("ownerReferences") or []
    return bool(release.metadata.uid) and any(r.get("uid") == release.metadata.uid for r in refs)


def check_weights(primary: int, canary: int) -> None:
    if not (0 <= primary <= 100 and 0 <= canary <= 100 and primary + canary == 100):
        raise RouterError(
            f"weights must be between 0 and 100 and add up to 100, got primary {primary}, canary {canary}",
            temporary=False,
        )


def weight_pair(primary: Any, canary: Any) -> tuple[int, int] | None:
    """(primary, canary) when both read as whole numbers, else None."""
    try:
        p, c = int(primary), int(canary)
    except (TypeError, ValueError):
        return None
    return (p, c) if str(p) == str(primary).strip() and str(c) == str(canary).strip() else None


def merged(existing: Mapping[str, Any], desired: Mapping[str, Any]) -> Obj | None:
    """`existing` carrying what `desired` asks for, or None when it already does.

    Every top-level field of `desired` except metadata replaces the live one; labels are added to
    the live ones; annotations replace the live ones only when `desired` states them; our
    ownerReference is added (someone else's controller reference is an error: two releases cannot
    share one route). resourceVersion stays, so the write fails with 409 if the object moved.
    """
    new = copy.deepcopy(dict(existing))
    meta = new.setdefault("metadata", {})
    want = desired.get("metadata") or {}
    meta["labels"] = {**(meta.get("labels") or {}), **(want.get("labels") or {})}
    if "annotations" in want:
        meta["annotations"] = dict(want["annotations"])
    refs = list(meta.get("ownerReferences") or [])
    for ref in want.get("ownerReferences") or []:
        # A release deleted and made again under the same name owns what its predecessor made.
        refs = [r for r in refs if r.get("uid") == ref["uid"] or not _same_owner(r, ref)]
        same = [r for r in refs if r.get("uid") == ref["uid"]]
        others = [r for r in refs if r.get("controller") and r.get("uid") != ref["uid"]]
        if others:
            other = others[0]
            raise RouterError(
                f"{existing.get('kind', 'object')} {meta.get('name')} is controlled by "
                f"{other.get('kind')} {other.get('name')}; two releases cannot share it",
                temporary=False,
            )
        if not same:
            refs.append(ref)
    if refs:
        meta["ownerReferences"] = refs
    for key, value in desired.items():
        if key not in ("metadata", "status"):
            new[key] = copy.deepcopy(value)
    return None if _comparable(new) == _comparable(existing) else new


def _same_owner(a: Mapping[str, Any], b: Mapping[str, Any]) -> bool:
    return all(a.get(k) == b.get(k) for k in ("apiVersion", "kind", "name"))


def _comparable(obj: Mapping[str, Any]) -> Any:
    meta = obj.get("metadata") or {}
    rest = {k: v for k, v in obj.items() if k not in ("metadata", "status")}
    return (
        rest,
        meta.get("labels") or {},
        meta.get("annotations") or {},
        meta.get("ownerReferences") or [],
    )


# --- the API (thin effects) ---------------------------------------------------------------------


@dataclass(frozen=True)
class Kind:
    """How to reach one kind: a custom resource by group/version/plural, or a built-in by plural."""

    api_version: str
    kind: str
    plural: str
    namespaced: bool = True  # False: a cluster-scoped kind (Kuma's TrafficRoute); the namespace is ignored

    @property
    def group(self) -> str:
        return self.api_version.rpartition("/")[0]

    @property
    def version(self) -> str:
        return self.api_version.rpartition("/")[2]

    @property
    def builtin(self) -> bool:
        return self.api_version in ("v1", "networking.k8s.io/v1")


SERVICE = Kind("v1", "Service", "services")
INGRESS = Kind("networking.k8s.io/v1", "Ingress", "ingresses")


def _failure(action: str, kind: Kind, namespace: str, name: str, e: Exception) -> RouterError:
    if isinstance(e, ApiException):
        code = e.status or 0
        reason = e.reason or ""
        kind_missing = code == 404 and not _is_object_not_found(e)
        if kind_missing:
            reason = f"{reason} (is the {kind.kind} {kind.api_version} kind installed?)"
        return RouterError(
            f"{action} {kind.kind} {namespace}/{name} failed: {code} {reason}".rstrip(),
            temporary=code not in _PERMANENT_CODES, kind_missing=kind_missing,
        )
    return RouterError(f"{action} {kind.kind} {namespace}/{name} failed: {e}")


class Objects:
    """get / create / replace / delete of the few kinds routers touch, every call with a timeout."""

    def __init__(self, api: client.ApiClient, timeout: float) -> None:
        self.api = api
        self.timeout = timeout
        self.custom = client.CustomObjectsApi(api)
        self.core = client.CoreV1Api(api)
        self.networking = client.NetworkingV1Api(api)

    def _plain(self, obj: Any) -> Obj:
        if isinstance(obj, dict):
            return obj
        plain: Obj = self.api.sanitize_for_serialization(obj)  # type: ignore[no-untyped-call]
        return plain

    def get(self, kind: Kind, namespace: str, name: str) -> Obj | None:
        t = self.timeout
        try:
            if kind == SERVICE:
                return self._plain(self.core.read_namespaced_service(name, namespace, _request_timeout=t))
            if kind == INGRESS:
                return self._plain(self.networking.read_namespaced_ingress(name, namespace, _request_timeout=t))
            if not kind.namespaced:
                return self._plain(
                    self.custom.get_cluster_custom_object(kind.group, kind.version, kind.plural, name,
                                                          _request_timeout=t)
                )
            return self._plain(
                self.custom.get_namespaced_custom_object(
                    kind.group, kind.version, namespace, kind.plural, name, _request_timeout=t
                )
            )
        except ApiException as e:
            if e.status == 404 and _is_object_not_found(e):
                return None
            raise _failure("reading", kind, namespace, name, e) from e
        except (HTTPError, OSError) as e:
            raise _failure("reading", kind, namespace, name, e) from e

    def _write(self, kind: Kind, namespace: str, name: str, body: Any, create: bool) -> None:
        # The client takes plain dicts as bodies as readily as its models (`body` is Any for that).
        t = self.timeout
        if kind == SERVICE:
            if create:
                self.core.create_namespaced_service(namespace, body, _request_timeout=t)
            else:
                self.core.replace_namespaced_service(name, namespace, body, _request_timeout=t)
        elif kind == INGRESS:
            if create:
                self.networking.create_namespaced_ingress(namespace, body, _request_timeout=t)
            else:
                self.networking.replace_namespaced_ingress(name, namespace, body, _request_timeout=t)
        elif not kind.namespaced:
            if create:
                self.custom.create_cluster_custom_object(kind.group, kind.version, kind.plural, body,
                                                         _request_timeout=t)
            else:
                self.custom.replace_cluster_custom_object(kind.group, kind.version, kind.plural, name, body,
                                                          _request_timeout=t)
        elif create:
            self.custom.create_namespaced_custom_object(
                kind.group, kind.version, namespace, kind.plural, body, _request_timeout=t
            )
        else:
            self.custom.replace_namespaced_custom_object(
                kind.group, kind.version, namespace, kind.plural, name, body, _request_timeout=t
            )

    def apply(
        self,
        kind: Kind,
        namespace: str,
        name: str,
        build: Callable[[Obj | None], Obj | None],
        *,
        create: bool = True,
    ) -> None:
        """Read-modify-write: `build(live or None)` gives the object to write (None: leave it).

        A 409 (someone wrote in between, or created it first) re-reads and rebuilds, a bounded
        number of times. With `create=False` a missing object is left missing.
        """
        for _ in range(CONFLICT_ATTEMPTS):
            live = self.get(kind, namespace, name)
            if live is None and not create:
                return
            body = build(live)
            if body is None:
                return
            body.setdefault("apiVersion", kind.api_version)
            body.setdefault("kind", kind.kind)
            try:
                self._write(kind, namespace, name, body, create=live is None)
                return
            except ApiException as e:
                if e.status == 409 or (e.status == 404 and live is not None and _is_object_not_found(e)):
                    continue  # moved or deleted since we read it: read again
                raise _failure("creating" if live is None else "updating", kind, namespace, name, e) from e
            except (HTTPError, OSError) as e:
                raise _failure("writing", kind, namespace, name, e) from e
        raise RouterError(
            f"{kind.kind} {namespace}/{name} kept changing under us ({CONFLICT_ATTEMPTS} conflicts in a row)"
        )

    def delete(self, kind: Kind, namespace: str, name: str) -> None:
        """Delete if present (a missing object is already what was asked for)."""
        t = self.timeout
        try:
            if kind == SERVICE:
                self.core.delete_namespaced_service(name, namespace, _request_timeout=t)
            elif kind == INGRESS:
                self.networking.delete_namespaced_ingress(name, namespace, _request_timeout=t)
            elif not kind.namespaced:
                self.custom.delete_cluster_custom_object(kind.group, kind.version, kind.plural, name,
                                                         _request_timeout=t)
            else:
                self.custom.delete_namespaced_custom_object(
                    kind.group, kind.version, namespace, kind.plural, name, _request_timeout=t
                )
        except ApiException as e:
            if e.status == 404 and _is_object_not_found(e):
                return
            raise _failure("deleting", kind, namespace, name, e) from e
        except (HTTPError, OSError) as e:
            raise _failure("deleting", kind, namespace, name, e) from e


def _is_object_not_found(e: ApiException) -> bool:
    """A 404 for a missing object, not for a kind nobody serves: both are Status NotFound, but only
    the first names the object in `details` ("the server could not find the requested resource")."""
    try:
        body = json.loads(e.body or "")
    except (TypeError, ValueError):
        return False
    return isinstance(body, dict) and body.get("reason") == "NotFound" and bool((body.get("details") or {}).get("name"))
