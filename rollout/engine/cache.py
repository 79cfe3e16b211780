"""The watch-fed cache: the objects a tick reads, answered from memory.

Every tick reads its release, the target and the primary, Services, the route, autoscalers and the
tracked ConfigMaps and Secrets. Asked of the API server each time, a thousand idle releases cost
thousands of GETs a minute for nothing. Here, as client-go's informers do, each kind that is read is
held in memory from one list+watch stream (per namespace the operator serves, or cluster-wide),
resumed from its last resourceVersion and listed again after 410 Gone, and a GET of one object is
answered from it.

It sits under the official client (`CachingApiClient.call_api`), so every module calls the client as
before and none knows whether an answer came from memory. Writes always go to the API server. What a
write answers is stored at once, so a tick never reads its own write back stale; a write that fails
(409 Conflict, or anything else) drops the object, so the next read of it goes to the API server
and a 409 re-reads before it re-plans. A kind that cannot be listed or watched (not installed, not
permitted) is read from the API server, and tried again later. Until a stream has listed, and while
it lists again, its objects are read from the API server too; and memory never says "not found": an
object it does not hold may have been made a moment ago, so a miss is asked of the API server.

Who read what is remembered (`WatchCache.reading`): a watch event that brings an object newer than
the one held (not the echo of the operator's own write), or a write by another part of the operator
(a GitSource applying a new image), wakes the readers of that object (`WatchCache.wake`), so a
release looks at a change at once rather than at its next tick.
"""

from __future__ import annotations

import json
import logging
import re
import threading
import time
from collections.abc import Callable, Hashable, Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from typing import Any

import urllib3
from kubernetes import client
from kubernetes.client import rest
from kubernetes.watch.watch import iter_resp_lines
from prometheus_client import Counter, Gauge

from rollout.settings import Settings

log = logging.getLogger(__name__)

Key = tuple[str, str]  # (namespace, name)

# Built-in kinds a tick reads. Every custom resource (the releases, routes, autoscalers of other
# projects) is cached as well; no other built-in kind is (Leases, Events and Pods stay direct).
_BUILT_IN = frozenset({
    ("", "services"), ("", "configmaps"), ("", "secrets"),
    ("apps", "deployments"), ("apps", "daemonsets"),
    ("autoscaling", "horizontalpodautoscalers"),
    ("networking.k8s.io", "ingresses"),
})
_KUBERNETES_GROUPS = re.compile(r"^$|^[a-z]+$|\.k8s\.io$")
_GATEWAY_API = "gateway.networking.k8s.io"  # a custom resource despite its name

_OBJECT = re.compile(
    r"^/(?:api|apis/(?P<group>[^/]+))/(?P<version>[^/]+)/namespaces/(?P<namespace>[^/]+)"
    r"/(?P<plural>[^/]+)/(?P<name>[^/]+)(?:/(?P<subresource>[^/]+))?$"
)

_COLLECTION = re.compile(
    r"^/(?:api|apis/(?P<group>[^/]+))/(?P<version>[^/]+)/namespaces/(?P<namespace>[^/]+)/(?P<plural>[^/]+)$"
)

# A private header naming the credentials left out of a GET that memory was to answer (never sent).
_DEFERRED_AUTH = "X-Rollout-Deferred-Auth"

# A kind whose list or watch failed (not installed, forbidden) is read directly for this long.
RETRY_AFTER = 60.0
# Seconds to wait after a failed list or broken watch before listing again.
RELIST_BACKOFF = 1.0

READS = Counter("rollout_api_reads_total", "GETs of one object by the operator, by where they were answered",
                ["served_from"])
WRITES = Counter("rollout_api_writes_total", "Writes (POST, PUT, PATCH, DELETE) the operator sent to the API server",
                 ["method"])
CACHED = Gauge("rollout_cache_objects", "Objects held by the watch-fed cache, by kind", ["plural"])
RELISTS = Counter("rollout_cache_lists_total", "Lists of a kind made by the watch-fed cache (the first, and "
                                             "after a broken watch or 410 Gone)", ["plural"])


@dataclass(frozen=True)
class Collection:
    """One list+watch stream: a kind, in one namespace or (None) in all."""

    group: str
    version: str
    plural: str
    namespace: str | None

    @property
    def path(self) -> str:
        base = f"/apis/{self.group}/{self.version}" if self.group else f"/api/{self.version}"
        where = f"/namespaces/{self.namespace}" if self.namespace else ""
        return f"{base}{where}/{self.plural}"


@dataclass(frozen=True)
class Address:
    """One object's URL: its collection's parts, its name and a subresource (status, scale)."""

    group: str
    version: str
    namespace: str
    plural: str
    name: str
    subresource: str | None


def address_of(path: str, body: Any = None) -> Address | None:
    """The object a request path names, or None (a list, a cluster-scoped object, anything else);
    for a path naming a collection (a create), the object `body` names in it."""
    m = _OBJECT.match(path)
    if m is not None:
        return Address(m["group"] or "", m["version"], m["namespace"], m["plural"], m["name"], m["subresource"])
    m = _COLLECTION.match(path)
    name = _name_in(body)
    if m is None or not name:
        return None
    return Address(m["group"] or "", m["version"], m["namespace"], m["plural"], name, None)


def _name_in(body: Any) -> str | None:
    if isinstance(body, dict):
        name = (body.get("metadata") or {}).get("name")
        return name if isinstance(name, str) else None
    metadata = getattr(body, "metadata", None)
    name = getattr(metadata, "name", None)
    return name if isinstance(name, str) else None


def cacheable(group: str, plural: str) -> bool:
    """Whether reads of this kind are answered from memory: the built-in kinds a tick reads, and
    every custom resource."""
    if (group, plural) in _BUILT_IN:
        return True
    return group == _GATEWAY_API or not _KUBERNETES_GROUPS.search(group)


def _version(obj: dict[str, Any]) -> int | None:
    """The resourceVersion as a number, for ordering a write's answer and a watch event; None when
    the server's versions are not numbers (then the later arrival wins)."""
    raw = str((obj.get("metadata") or {}).get("resourceVersion"))
    try:
        return int(raw)
    except (TypeError, ValueError):
        return None


class _Stream:
    """The objects of one Collection, from its list and then its watch, on a thread of its own."""

    def __init__(self, cache: WatchCache, collection: Collection) -> None:
        self.cache = cache
        self.collection = collection
        self.objects: dict[Key, tuple[int | None, bytes]] = {}
        # Objects to read from the API server next time (a write to them failed).
        self.dirty: set[Key] = set()
        self.lock = threading.Lock()
        self.synced = False
        self.failed_at: float | None = None  # monotonic time the list or watch last failed for good
        self._response: Any = None
        self._thread = threading.Thread(target=self._run, name=f"watch-{collection.plural}", daemon=True)
        self._thread.start()

    # -- reads and writes from ticks -----------------------------------------------------------------

    def get(self, key: Key) -> tuple[bool, bytes | None]:
        """(whether memory may answer, the object held or None: not held)."""
        with self.lock:
            if not self.synced or key in self.dirty:
                return False, None
            held = self.objects.get(key)
        return True, held[1] if held else None

    def put(self, obj: dict[str, Any], *, fresh: bool = False) -> bool:
        """Hold `obj` unless what is held is newer; True when it changed what is held. `fresh`: read
        from the API server just now, so no longer dirty."""
        meta = obj.get("metadata") or {}
        key = (meta.get("namespace") or "", meta.get("name") or "")
        version = _version(obj)
        with self.lock:
            if fresh:
                self.dirty.discard(key)
            held = self.objects.get(key)
            if held is not None and held[0] is not None and version is not None and version <= held[0]:
                return False
            self.objects[key] = (version, json.dumps(obj).encode())
        return True

    def remove(self, obj: dict[str, Any]) -> None:
        meta = obj.get("metadata") or {}
        key = (meta.get("namespace") or "", meta.get("name") or "")
        version = _version(obj)
        with self.lock:
            held = self.objects.get(key)
            if held is not None and held[0] is not None and version is not None and version < held[0]:
                return  # deleted and made again since
            self.objects.pop(key, None)
            self.dirty.discard(key)
        self.cache.changed(self.collection, key)

    def forget(self, key: Key) -> None:
        """Drop one object: the next read of it goes to the API server."""
        with self.lock:
            self.objects.pop(key, None)
            self.dirty.add(key)


    # -- the stream ------------------------------------------------------------------------------------

    def _run(self) -> None:
        stop = self.cache.stopping
        while not stop.is_set():
            try:
                version: str | None = self._list()
                while not stop.is_set() and version is not None:
                    version = self._watch(version)
            except _Unavailable as e:
                log.info("not caching %s: %s; reading them from the API server", self.collection.path, e)
                self._unsync()
                self.failed_at = self.cache.clock()
                return
            except (urllib3.exceptions.HTTPError, OSError, ValueError) as e:
                if stop.is_set():
                    return
                log.info("watch of %s broke (%s); listing again", self.collection.path, e)
            self._unsync()
            stop.wait(RELIST_BACKOFF)

    def _unsync(self) -> None:
        with self.lock:
            self.synced = False
            self.objects.clear()
            self.dirty.clear()
        CACHED.labels(self.collection.plural).set(0)

    def _list(self) -> str:
        RELISTS.labels(self.collection.plural).inc()
        response = self.cache.request(self.collection.path, [], timeout=self.cache.settings.api_timeout)
        data = json.loads(_body(response))
        kind = str(data.get("kind", "")).removesuffix("List")
        api_version = data.get("apiVersion", "")
        objects: dict[Key, tuple[int | None, bytes]] = {}
        for item in data.get("items") or ():
            # Items in a list carry no kind; a GET answers with it, and readers expect it.
            item.setdefault("kind", kind)
            item.setdefault("apiVersion", api_version)
            meta = item.get("metadata") or {}
            objects[(meta.get("namespace") or "", meta.get("name") or "")] = (_version(item), json.dumps(item).encode())
        with self.lock:
            # Newer answers to writes made while the list was under way stay.
            for key, held in self.objects.items():
                listed = objects.get(key)
                if listed is not None and held[0] is not None and listed[0] is not None and held[0] > listed[0]:
                    objects[key] = held
            self.objects = objects
            self.synced = True
        CACHED.labels(self.collection.plural).set(len(objects))
        return str((data.get("metadata") or {}).get("resourceVersion") or "")

    def _watch(self, version: str) -> str | None:
        """Follow the watch from `version` until the server ends it; the version to resume from, or
        None when the stream must be listed again (410 Gone)."""
        settings = self.cache.settings
        query = [("watch", "true"), ("allowWatchBookmarks", "true"), ("resourceVersion", version),
                 ("timeoutSeconds", str(int(settings.watch_timeout)))]
        response = self.cache.request(self.collection.path, query,
                                      timeout=(settings.api_timeout, settings.watch_timeout + settings.api_timeout))
        self._response = response.response
        try:
            for line in iter_resp_lines(response.response):  # type: ignore[no-untyped-call]
                event = json.loads(line)
                kind, obj = event.get("type"), event.get("object") or {}
                if kind == "ERROR":
                    if obj.get("code") == 410:
                        return None
                    raise ValueError(f"watch error {obj.get('code')}: {obj.get('message')}")
                version = str((obj.get("metadata") or {}).get("resourceVersion") or version)
                if kind == "BOOKMARK":
                    continue
                if kind == "DELETED":
                    self.remove(obj)
                elif self.put(obj):
                    meta = obj.get("metadata") or {}
                    key = (meta.get("namespace") or "", meta.get("name") or "")
                    self.cache.changed(self.collection, key, by=self.cache.writer(self.collection, key))
            with self.lock:
                CACHED.labels(self.collection.plural).set(len(self.objects))
            return version
        finally:
            self._response = None
            response.response.release_conn()

    def stop(self) -> None:
        if (response := self._response) is not None:
            with suppress(OSError, AttributeError):
                response.shutdown()

    def join(self, timeout: float) -> None:
        self._thread.join(timeout)


class _Unavailable(Exception):
    """A kind that cannot be listed here: not installed (404) or not permitted (403)."""


class WatchCache:
    """The streams, one per kind (and namespace, for an operator on some namespaces only), started
    when a kind is first read."""

    def __init__(self, api: CachingApiClient, settings: Settings, namespaces: tuple[str, ...] = (),
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.api = api
        self.settings = settings
        self.namespaces = namespaces
        self.clock = clock
        self.stopping = threading.Event()
        self.streams: dict[Collection, _Stream] = {}
        self.lock = threading.Lock()
        # Who reads what: a reader (a release's key) and the objects its last look read.
        self._reader = threading.local()
        self._reads: dict[Hashable, set[tuple[str, str, str, str]]] = {}
        self._readers: dict[tuple[str, str, str, str], set[Hashable]] = {}
        # Objects a reader is writing (the request is in flight), and that reader.
        self._writers: dict[tuple[str, str, str, str], Hashable] = {}
        # Called with a reader whose objects changed (from any thread).
        self.wake: Callable[[Hashable], None] = lambda reader: None

    @contextmanager
    def reading(self, reader: Hashable) -> Iterator[None]:
        """Remember what `reader` reads in this block (on this thread), in place of what it read before."""
        self._reader.current, self._reader.seen = reader, set()
        try:
            yield
        finally:
            seen: set[tuple[str, str, str, str]] = self._reader.seen
            self._reader.current = None
            with self.lock:
                for address in self._reads.pop(reader, set()) - seen:
                    if (readers := self._readers.get(address)) is not None:
                        readers.discard(reader)
                        if not readers:
                            del self._readers[address]
                for address in seen:
                    self._readers.setdefault(address, set()).add(reader)
                if seen:
                    self._reads[reader] = seen

    def forget_reader(self, reader: Hashable) -> None:
        with self.lock:
            for address in self._reads.pop(reader, set()):
                if (readers := self._readers.get(address)) is not None:
                    readers.discard(reader)
                    if not readers:
                        del self._readers[address]

    def read(self, address: Address) -> None:
        if (seen := getattr(self._reader, "seen", None)) is not None and self._reader.current is not None:
            seen.add((address.group, address.plural, address.namespace, address.name))

    def current_reader(self) -> Hashable | None:
        return getattr(self._reader, "current", None)

    @contextmanager
    def writing(self, address: Address) -> Iterator[None]:
        """While a reader's write to `address` is in flight: its watch echo may arrive before the
        answer, and must not wake the reader that made it."""
        where = (address.group, address.plural, address.namespace or "", address.name)
        reader = self.current_reader()
        if reader is None:
            yield
            return
        with self.lock:
            self._writers[where] = reader
        try:
            yield
        finally:
            with self.lock:
                if self._writers.get(where) == reader:
                    del self._writers[where]

    def writer(self, collection: Collection, key: Key) -> Hashable | None:
        """The reader whose write to the object is in flight, if any."""
        return self._writers.get((collection.group, collection.plural, key[0], key[1]))

    def collection(self, address: Address) -> Collection | None:
        if not cacheable(address.group, address.plural):
            return None
        if self.namespaces:
            if address.namespace not in self.namespaces:
                return None
            return Collection(address.group, address.version, address.plural, address.namespace)
        return Collection(address.group, address.version, address.plural, None)

    def stream(self, address: Address, *, start: bool) -> _Stream | None:
        """The stream holding `address`'s kind; with `start`, started if there is none yet (or its last
        failure is old enough to try again)."""
        collection = self.collection(address)
        if collection is None or self.stopping.is_set():
            return None
        # Every read asks: the common answer (a healthy stream) needs no lock, which every tick and
        # watch thread would otherwise queue on.
        stream = self.streams.get(collection)
        if stream is not None and (stream.failed_at is None or not start):
            return stream
        with self.lock:
            stream = self.streams.get(collection)
            if stream is not None and stream.failed_at is not None and start \
                    and self.clock() - stream.failed_at > RETRY_AFTER:
                stream = None
            if stream is None and start:
                stream = self.streams[collection] = _Stream(self, collection)
        return stream

    def request(self, path: str, query: list[tuple[str, str]], *, timeout: Any) -> rest.RESTResponse:
        """A GET of `path` straight to the API server; _Unavailable for 403 and 404."""
        method, url, headers, body, post = self.api.param_serialize(
            "GET", path, query_params=query, header_params={"Accept": "application/json"},
            auth_settings=["BearerToken"])
        response = self.api.direct(method, url, headers, body, post, timeout)
        if response.status in (403, 404):
            _body(response)
            raise _Unavailable(f"{response.status} {response.reason}")
        if not 200 <= response.status <= 299:
            _body(response)
            raise ValueError(f"{response.status} {response.reason}")
        return response

    def changed(self, collection: Collection, key: Key, *, by: Hashable | None = None) -> None:
        """Wake the readers of an object that changed, but not `by`, the reader that changed it."""
        with self.lock:
            readers = set(self._readers.get((collection.group, collection.plural, key[0], key[1]), ()))
        for reader in readers - {by}:
            self.wake(reader)

    def stop(self, timeout: float = 5.0) -> None:
        self.stopping.set()
        with self.lock:
            streams = list(self.streams.values())
        for stream in streams:
            stream.stop()
        for stream in streams:
            stream.join(timeout)


class CachingApiClient(client.ApiClient):
    """The official ApiClient, whose GETs of one object of a cached kind are answered from memory."""

    def __init__(self, configuration: client.Configuration, settings: Settings,
                 namespaces: tuple[str, ...] = ()) -> None:
        super().__init__(configuration)
        self.cache = WatchCache(self, settings, namespaces)

    def direct(self, method: str, url: str, headers: Any, body: Any, post: Any, timeout: Any) -> rest.RESTResponse:
        response: rest.RESTResponse = super().call_api(method, url, headers, body, post, _request_timeout=timeout)
        return response

    def update_params_for_auth(self, headers: Any, queries: Any, auth_settings: Any, resource_path: str,
                               method: str, body: Any, request_auth: Any = None) -> None:
        """Credentials for a request, except a GET that memory will answer: the kubeconfig's refresh of
        them costs a third of a tick that reads only memory. Should memory no longer hold the object
        when the request is made, `call_api` adds them then."""
        if method == "GET" and not queries and auth_settings and request_auth is None and self._held(resource_path):
            headers[_DEFERRED_AUTH] = ",".join(auth_settings)
            return
        super().update_params_for_auth(headers, queries, auth_settings, resource_path, method, body,
                                       request_auth=request_auth)

    def _held(self, path: str) -> bool:
        address = address_of(path)
        if address is None or address.subresource:
            return False
        stream = self.cache.stream(address, start=False)
        return stream is not None and stream.get((address.namespace, address.name))[1] is not None

    def call_api(self, method: str, url: str, header_params: Any = None, body: Any = None, post_params: Any = None,
                 _request_timeout: Any = None) -> rest.RESTResponse:
        path, _, query = url.removeprefix(self.configuration.host).partition("?")
        if header_params and _DEFERRED_AUTH in header_params:
            deferred = header_params.pop(_DEFERRED_AUTH).split(",")
            if not self._held(path):
                super().update_params_for_auth(header_params, [], deferred, path, method, body)
        address = address_of(path, body if method == "POST" else None)
        if address is None:
            return self.direct(method, url, header_params, body, post_params, _request_timeout)
        if method == "GET":
            return self._get(address, query, url, header_params, _request_timeout)
        WRITES.labels(method).inc()
        with self.cache.writing(address):
            try:
                response = self.direct(method, url, header_params, body, post_params, _request_timeout)
            except Exception:
                self._forget(address)
                raise
            self._written(method, address, query, response)
        return response

    def _get(self, address: Address, query: str, url: str, headers: Any, timeout: Any) -> rest.RESTResponse:
        stream = None if query or address.subresource else self.cache.stream(address, start=True)
        self.cache.read(address)
        key = (address.namespace, address.name)
        if stream is not None:
            answers, held = stream.get(key)
            # Only what memory holds is answered from it: an object it lacks may have been made a moment
            # ago (kopf starts a release's daemon on its own watch's event), so a miss asks the API server.
            if answers and held is not None:
                READS.labels("cache").inc()
                return _answer(200, "OK", held)
        READS.labels("api").inc()
        response = self.direct("GET", url, headers, None, None, timeout)
        if stream is not None and response.status == 200:
            stream.put(json.loads(_body(response)), fresh=True)
        return response

    def _written(self, method: str, address: Address, query: str, response: rest.RESTResponse) -> None:
        stream = self.cache.stream(address, start=False)
        if stream is None or "dryRun" in query:
            return
        if not 200 <= response.status <= 299 or address.subresource not in (None, "status"):
            stream.forget((address.namespace, address.name))  # a 409 (or a scale) reads afresh next time
            return
        data = _body(response)
        try:
            obj = json.loads(data)
        except ValueError:
            obj = None
        key = (address.namespace, address.name)
        if method != "DELETE" and isinstance(obj, dict) and obj.get("kind") not in (None, "Status") \
                and (obj.get("metadata") or {}).get("name") == address.name:
            if stream.put(obj):
                self.cache.changed(stream.collection, key, by=self.cache.current_reader())
        else:
            stream.forget(key)

    def _forget(self, address: Address) -> None:
        if (stream := self.cache.stream(address, start=False)) is not None:
            stream.forget((address.namespace, address.name))

    def close(self) -> None:
        self.cache.stop()
        super().close()  # type: ignore[no-untyped-call]


def _body(response: rest.RESTResponse) -> bytes:
    data: bytes = response.read()  # type: ignore[no-untyped-call]
    return data


def _answer(status: int, reason: str, data: bytes) -> rest.RESTResponse:
    response = urllib3.HTTPResponse(body=data, status=status, reason=reason, preload_content=True,
                                    headers={"Content-Type": "application/json"})
    return rest.RESTResponse(response)
