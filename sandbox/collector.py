"""Garbage collection and namespace cleanup, as kube-controller-manager performs them.

On a real cluster, deleting an owner deletes its dependents in the background (objects
whose `ownerReferences` all point to deleted owners), `propagationPolicy=Foreground`
keeps the owner with a `foregroundDeletion` finalizer until its dependents are gone, and
deleting a namespace deletes everything in it before the namespace itself disappears.
Operators rely on this to clean up what they created, so the sandbox does it too.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

import kmock

from .resources import ResourceSpec
from .store import ObjectStore, WatchEvent

__all__ = ["GarbageCollector"]

logger = logging.getLogger(__name__)

_FOREGROUND = "foregroundDeletion"


def _meta(obj: dict[str, Any]) -> dict[str, Any]:
    meta = obj.get("metadata")
    return meta if isinstance(meta, dict) else {}


class GarbageCollector:
    """Works from the writes it sees, as kube-controller-manager's collector works from its informers:
    a write of an object with ownerReferences checks that object's owners; a deletion (begun or done)
    checks the dependents of what was deleted, the owners waiting for it (foreground deletion) and,
    in a terminating namespace, whether the namespace is empty. Each check looks up owners and
    dependents by uid (`ObjectStore.by_uid`, `dependents_of`), so a busy store pays per write, never a
    pass over every object; one pass over everything runs at start, for what was stored before."""

    def __init__(self, store: ObjectStore, *, idle_interval: float = 1.0) -> None:
        self._store = store
        self._idle_interval = idle_interval
        self._everything = True  # the pass over every object, at start
        self._dependents: set[tuple[ResourceSpec, str | None, str]] = set()  # check their owners
        self._deleted: set[str] = set()  # uids deleted or being deleted: check their dependents
        self._waiting: set[str] = set()  # owners that may wait (foreground) for dependents just gone
        self._namespaces: set[str] = set()  # terminating: delete their content, then finalize them
        self._emptied: set[str] = set()  # of those, the ones where something was deleted since the last pass

    def _on_write(self, spec: ResourceSpec, event: WatchEvent) -> None:
        meta = _meta(event.obj)
        uid = str(meta.get("uid") or "")
        refs = [str(r.get("uid")) for r in meta.get("ownerReferences") or [] if isinstance(r, dict)]
        deleting = event.type == "DELETED" or bool(meta.get("deletionTimestamp"))
        if refs and not deleting:
            self._dependents.add((spec, meta.get("namespace"), meta.get("name", "")))
        if not deleting:
            return
        if uid:
            self._deleted.add(uid)
            self._waiting.add(uid)
        self._waiting.update(refs)
        if (spec.group, spec.plural) == ("", "namespaces") and event.type != "DELETED":
            self._namespaces.add(meta.get("name", ""))
            self._emptied.add(meta.get("name", ""))
        elif meta.get("namespace") in self._namespaces:
            self._emptied.add(meta["namespace"])

    @property
    def _pending(self) -> bool:
        return bool(self._everything or self._dependents or self._deleted or self._waiting or self._emptied)

    async def run(self) -> None:
        loop = asyncio.get_running_loop()
        self._store.listeners.append(self._on_write)
        swept = loop.time()
        try:
            while not self._store.stopping.is_set():
                if loop.time() - swept >= self._idle_interval:
                    # A terminating namespace is looked at again now and then, whatever happened in it.
                    self._emptied |= self._namespaces
                if self._pending:
                    swept = loop.time()
                    try:
                        self.sweep()
                    except Exception:  # keep collecting: one odd object must not stop the collector
                        logger.exception("sandbox garbage collection failed")
                began = loop.time()
                await self._store.wait_changed(self._idle_interval)
                if loop.time() - began < 0.01:
                    await asyncio.sleep(0.01)  # let a burst of writes gather into one pass
        finally:
            self._store.listeners.remove(self._on_write)

    def _delete(self, spec: ResourceSpec, obj: dict[str, Any], policy: str = "Background") -> None:
        meta = _meta(obj)
        try:
            self._store.delete(spec, meta.get("namespace"), meta["name"], {"propagationPolicy": policy})
        except kmock.KubernetesError as exc:
            if exc.status != 404:  # already gone is the outcome we wanted
                raise

    def sweep(self) -> int:
        """One pass over what the writes since the last pass touched; returns how many deletions or
        finalizations it started."""
        if self._everything:
            self._everything = False
            for spec, obj in self._store.live_objects():
                self._on_write(spec, WatchEvent(0, "MODIFIED", obj, None))
        actions = 0
        dependents, self._dependents = self._dependents, set()
        deleted, self._deleted = self._deleted, set()
        waiting, self._waiting = self._waiting, set()
        emptied, self._emptied = self._emptied, set()

        for namespace in sorted(emptied):
            if self._store.namespace_phase(namespace) != "Terminating":
                self._namespaces.discard(namespace)
                continue
            content = [(s, o) for s, o in self._store.live_objects()
                       if s.namespaced and _meta(o).get("namespace") == namespace]
            for s, o in content:
                if not _meta(o).get("deletionTimestamp"):
                    self._delete(s, o)
                    actions += 1
            if not content:
                self._store.finalize_namespace(namespace)
                self._namespaces.discard(namespace)
                actions += 1

        for uid in deleted:
            for spec, obj in self._store.dependents_of(uid):
                dependents.add((spec, _meta(obj).get("namespace"), _meta(obj).get("name", "")))

        for spec, ns, name in dependents:
            dependent = self._store.peek(spec, ns, name)
            if dependent is None:
                continue
            refs = _meta(dependent).get("ownerReferences") or []
            if not refs or _meta(dependent).get("deletionTimestamp"):
                continue
            owners = [self._store.by_uid(str(ref.get("uid"))) for ref in refs]
            if all(owner is None for owner in owners):
                self._delete(spec, dependent)
                actions += 1
            elif any(
                owner is not None
                and _meta(owner[1]).get("deletionTimestamp")
                and _FOREGROUND in (_meta(owner[1]).get("finalizers") or [])
                for owner in owners
            ):
                self._delete(spec, dependent, "Foreground")
                actions += 1

        for uid in waiting:
            found = self._store.by_uid(uid)
            if found is None:
                continue
            spec, obj = found
            meta = _meta(obj)
            if not meta.get("deletionTimestamp") or _FOREGROUND not in (meta.get("finalizers") or []):
                continue
            if not self._store.dependents_of(uid):

                def release(o: dict[str, Any]) -> None:
                    o["metadata"]["finalizers"] = [
                        f for f in o["metadata"].get("finalizers") or [] if f != _FOREGROUND
                    ]

                self._store.update(spec, meta.get("namespace"), meta["name"], release)
                actions += 1
        return actions
