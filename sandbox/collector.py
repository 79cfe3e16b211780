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
import math
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
    """Sweeps after every deletion (begun or done) and every `idle_interval` seconds, which also finds
    objects whose owners never existed; each sweep is one bounded pass over the objects. Other writes
    start no sweep, so that a busy store does not pay a pass over every object per write."""

    def __init__(self, store: ObjectStore, *, idle_interval: float = 1.0) -> None:
        self._store = store
        self._idle_interval = idle_interval
        self._due = True

    def _on_write(self, spec: ResourceSpec, event: WatchEvent) -> None:
        if event.type == "DELETED" or _meta(event.obj).get("deletionTimestamp"):
            self._due = True

    async def run(self) -> None:
        loop = asyncio.get_running_loop()
        self._store.listeners.append(self._on_write)
        swept = -math.inf
        try:
            while not self._store.stopping.is_set():
                if self._due or loop.time() - swept >= self._idle_interval:
                    self._due = False
                    swept = loop.time()
                    try:
                        self.sweep()
                    except Exception:  # keep collecting: one odd object must not stop the collector
                        logger.exception("sandbox garbage collection failed")
                await self._store.wait_changed(max(swept + self._idle_interval - loop.time(), 0.0))
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
        """One pass; returns how many deletions or finalizations it started."""
        actions = 0
        live = self._store.live_objects()
        by_uid = {_meta(obj).get("uid"): obj for _, obj in live}

        for spec, obj in live:
            if (spec.group, spec.plural) != ("", "namespaces") or not _meta(obj).get("deletionTimestamp"):
                continue
            namespace = _meta(obj)["name"]
            content = [(s, o) for s, o in live if s.namespaced and _meta(o).get("namespace") == namespace]
            for s, o in content:
                if not _meta(o).get("deletionTimestamp"):
                    self._delete(s, o)
                    actions += 1
            if not content:
                self._store.finalize_namespace(namespace)
                actions += 1

        for spec, obj in live:
            refs = _meta(obj).get("ownerReferences") or []
            if not refs or _meta(obj).get("deletionTimestamp"):
                continue
            owners = [by_uid.get(ref.get("uid")) for ref in refs]
            if all(owner is None for owner in owners):
                self._delete(spec, obj)
                actions += 1
            elif any(
                owner is not None
                and _meta(owner).get("deletionTimestamp")
                and _FOREGROUND in (_meta(owner).get("finalizers") or [])
                for owner in owners
            ):
                self._delete(spec, obj, "Foreground")
                actions += 1

        for spec, obj in live:
            meta = _meta(obj)
            if not meta.get("deletionTimestamp") or _FOREGROUND not in (meta.get("finalizers") or []):
                continue
            if not self._store.dependents_of(meta.get("uid", "")):

                def release(o: dict[str, Any]) -> None:
                    o["metadata"]["finalizers"] = [
                        f for f in o["metadata"].get("finalizers") or [] if f != _FOREGROUND
                    ]

                self._store.update(spec, meta.get("namespace"), meta["name"], release)
                actions += 1
        return actions
