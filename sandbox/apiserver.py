"""The sandbox's Kubernetes API server: kmock's KubernetesEmulator with a fidelity layer.

kmock parses each request into its Kubernetes meaning (resource, namespace, name,
subresource, action), routes it through its reaction DSL, renders Kubernetes `Status`
errors, and keeps the objects with their history. The emulator's own handlers merge
writes into plain dicts; this subclass replaces them with handlers backed by
`ObjectStore`, which carries the rules of a real API server. Because the handlers stay
kmock fallbacks, a test can still put a reaction in front of them to inject faults, e.g.
`api['patch', kmock.resource('apps/v1/deployments')] << 500`.
"""

from __future__ import annotations

import collections
import contextlib
import copy
import logging
import re
from collections.abc import AsyncIterator, Iterable
from typing import Any

import aiohttp.web
import attrs
import kmock
from kmock._internal import parsing, rendering  # the request parser and the Response type

from . import patches
from .resources import ResourceSpec, version_priority
from .selectors import FieldSelector, LabelSelector, SelectorError
from .store import ObjectStore, api_error, bad_request

__all__ = ["REQUESTS_PATH", "SandboxAPI"]

logger = logging.getLogger(__name__)

# kmock records every request, and matching a request walks the recorded ones (per reaction, through
# its filters): keep only the last few, or every request costs more as a run goes on (16 cost ~2.5 ms
# of CPU per request, 4 ~0.5 ms).
_KEEP_REQUESTS = 4
# The requests served so far by client, as JSON (not itself counted): {"agents": {agent: {"GET /path": n}}}.
REQUESTS_PATH = "/sandbox/requests"
_NAMESPACES_PATH = re.compile(r"/api/v1/namespaces(?:/(?P<name>[^/]+)(?:/(?P<sub>status|finalize))?)?/?")


def _flag(value: str | None) -> bool:
    return (value or "").lower() in ("true", "1")


def _answer(payload: Any, status: int = 200) -> rendering.Response:
    return rendering.Response(status=status, payload=payload)


@attrs.define(kw_only=True)
class SandboxAPI(kmock.KubernetesEmulator):
    """A KubernetesEmulator whose state handlers follow the Kubernetes API rules."""

    watch_timeout: float = 1800.0
    _store: ObjectStore | None = attrs.field(default=None, init=False)
    # Every request served, by "METHOD path" without the query: how much a client costs the API.
    served: collections.Counter[str] = attrs.field(factory=collections.Counter, init=False)
    # The same by client (User-Agent), a watch counted as "WATCH path" when opened; a process outside
    # reads it from REQUESTS_PATH (the scale benchmark tells the operator's requests from its own).
    by_agent: dict[str, collections.Counter[str]] = attrs.field(
        factory=lambda: collections.defaultdict(collections.Counter), init=False)

    def __attrs_post_init__(self) -> None:
        super().__attrs_post_init__()  # kmock registers discovery and the per-action fallbacks
        self._store = ObjectStore(self._objects, self._resources)
        self.fallback[kmock.method.PUT] << self._serve_replace
        self.fallback[kmock.method.DELETE] << self._serve_delete_collection
        self.fallback["get /version/"] << self._serve_server_version  # the official client adds a slash
        for probe in ("/healthz", "/readyz", "/livez"):
            self.fallback["get " + probe] << b"ok"

    @property
    def store(self) -> ObjectStore:
        assert self._store is not None
        return self._store

    def register(self, specs: Iterable[ResourceSpec]) -> None:
        for spec in specs:
            self.store.register(spec)

    async def _serve_version(self, request: rendering.Request) -> Any:
        """kmock's resource list, with subresources (`canaries/status`) described as a real server
        does: no categories or short names (else `kubectl get <category>` asks for the status
        subresource as if it were a kind), and only the verbs a subresource has."""
        listing: dict[str, Any] = await super()._serve_version(request)  # type: ignore[assignment]
        # kmock writes the core group's version as "/v1"; clients (kubectl) then find no v1 kinds.
        listing["groupVersion"] = str(listing.get("groupVersion", "")).lstrip("/")
        for entry in listing.get("resources", []):
            if "/" in entry["name"]:
                entry.update(categories=[], shortNames=[], verbs=["get", "patch", "update"])
        return listing

    # -- plumbing ------------------------------------------------------------------------------

    async def __call__(self, raw_request: aiohttp.web.BaseRequest) -> aiohttp.web.StreamResponse:
        if raw_request.path == REQUESTS_PATH and raw_request.method == "GET":
            return aiohttp.web.json_response({"agents": self.by_agent})
        self.served[f"{raw_request.method} {raw_request.path}"] += 1
        watch = _flag(raw_request.query.get("watch")) and raw_request.method == "GET"
        agent = raw_request.headers.get("User-Agent", "")
        self.by_agent[agent][f"{'WATCH' if watch else raw_request.method} {raw_request.path}"] += 1
        match = _NAMESPACES_PATH.fullmatch(raw_request.path)
        if match is None:
            return await super().__call__(raw_request)
        # kmock 0.8 cannot parse the URLs of the namespaces resource itself (it reads
        # `/api/v1/namespaces/x` as "namespace x, no resource"), so these requests are parsed
        # here and then served like all others, with kmock's error handling repeated.
        try:
            clone = raw_request.clone(rel_url=raw_request.rel_url.with_path("/sandbox-namespaces"))
            parsed = await rendering.Request._parse(clone, id=len(self._requests))
            name, subresource = match.group("name"), match.group("sub")
            path = parsing.ParsedPath(
                group="", version="v1", plural="namespaces", name=name, subresource=subresource
            )
            action = parsing.guess_k8s(path, kmock.method(raw_request.method), dict(raw_request.query))
            request = attrs.evolve(
                parsed,
                url=raw_request.url,
                raw_request=raw_request,
                action=action,
                resource=kmock.resource("", "v1", "namespaces"),
                namespace=None,
                name=name,
                subresource=subresource,
            )
            self._requests.append(request)
            return await self._handle(request)
        except rendering.StreamingError as exc:  # the stream has started: report in-stream, as kmock does
            response: aiohttp.web.StreamResponse = exc.args[0]
            cause = exc.__cause__ if isinstance(exc.__cause__, Exception) else exc
            await self._stream_error(cause, response)
            await response.write_eof()
            return response
        except Exception as exc:
            if self._errors:
                self._errors[-1].append(exc)
            return await self._render_error(exc)

    async def _handle(self, request: kmock.Request) -> aiohttp.web.StreamResponse:
        # Bypass KubernetesEmulator._handle, which merges every write into the stored dicts
        # before any reaction runs; here the fallbacks below own all state changes.
        self._trim_logs()
        return await kmock.RawHandler._handle(self, request)

    def _trim_logs(self) -> None:
        if len(self._requests) > 2 * _KEEP_REQUESTS:
            del self._requests[:-_KEEP_REQUESTS]
        for payload in self._payloads:
            if len(payload._requests) > 2 * _KEEP_REQUESTS:
                del payload._requests[:-_KEEP_REQUESTS]
        for errors in self._errors:
            if len(errors) > 2 * _KEEP_REQUESTS:
                del errors[:-_KEEP_REQUESTS]

    async def _render_error(self, exc: Exception) -> aiohttp.web.StreamResponse:
        if type(exc) is kmock.KubernetesError:
            code, reason, message = exc.status, exc.reason or "InternalError", exc.message or ""
        elif isinstance(exc, kmock.KubernetesNotFoundError):
            code, reason, message = 404, "NotFound", "the server could not find the requested resource"
        else:
            logger.error("sandbox API server failed on a request", exc_info=exc)
            code, reason, message = 500, "InternalError", f"an error on the server ({exc!r})"
        payload: dict[str, Any] = {
            "kind": "Status",
            "apiVersion": "v1",
            "metadata": {},
            "status": "Failure",
            "message": message,
            "reason": reason,
            "code": code,
        }
        if isinstance(exc, kmock.KubernetesError) and exc.details and type(exc) is kmock.KubernetesError:
            payload["details"] = exc.details
        return aiohttp.web.json_response(payload, status=code)

    def _get_resources(self) -> list[kmock.resource]:
        return [kmock.resource(s.group, v, s.plural) for s in self.store.specs() for v in s.versions]

    def _resolve(self, request: kmock.Request) -> tuple[ResourceSpec, str]:
        res = request.resource
        spec = self.store.lookup(res.group, res.version, res.plural) if res is not None else None
        if spec is None or res is None or res.version is None:
            raise api_error(404, "NotFound", "the server could not find the requested resource")
        if spec.namespaced is False and request.namespace is not None:
            raise api_error(404, "NotFound", "the server could not find the requested resource")
        return spec, res.version

    @staticmethod
    def _selectors(request: kmock.Request) -> tuple[LabelSelector, FieldSelector]:
        try:
            labels = LabelSelector.parse(request.params.get("labelSelector"))
            fields = FieldSelector.parse(request.params.get("fieldSelector"))
        except SelectorError as exc:
            raise bad_request(str(exc)) from exc
        return labels, fields

    @staticmethod
    def _check_subresource(spec: ResourceSpec, subresource: str | None, *, allow_scale: bool = False) -> None:
        allowed = (
            {None}
            | ({"status"} if spec.status else set())
            | ({"scale"} if spec.scale and allow_scale else set())
        )
        if subresource not in allowed:
            raise api_error(404, "NotFound", "the server could not find the requested resource")

    # -- discovery -----------------------------------------------------------------------------

    def _group_versions(self) -> dict[str, list[str]]:
        groups: dict[str, set[str]] = {}
        for spec in self.store.specs():
            if spec.group:
                groups.setdefault(spec.group, set()).update(spec.versions)
        return {group: sorted(versions, key=version_priority) for group, versions in sorted(groups.items())}

    @staticmethod
    def _group_doc(group: str, versions: list[str]) -> dict[str, Any]:
        return {
            "name": group,
            "versions": [{"groupVersion": f"{group}/{v}", "version": v} for v in versions],
            "preferredVersion": {"groupVersion": f"{group}/{versions[0]}", "version": versions[0]},
        }

    async def _serve_apis(self, request: kmock.Request) -> kmock.Payload:
        groups = [self._group_doc(g, vs) for g, vs in self._group_versions().items()]
        return {"kind": "APIGroupList", "apiVersion": "v1", "groups": groups}

    async def _serve_group(self, request: kmock.Request) -> kmock.Payload:
        group = request.resource.group if request.resource is not None else None
        versions = self._group_versions().get(group or "")
        if not versions or group is None:
            raise api_error(404, "NotFound", "the server could not find the requested resource")
        return {"kind": "APIGroup", "apiVersion": "v1", **self._group_doc(group, versions)}

    # -- reading -------------------------------------------------------------------------------

    async def _serve_list(self, request: kmock.Request) -> kmock.Payload:
        spec, version = self._resolve(request)
        labels, fields = self._selectors(request)
        try:
            limit = int(request.params.get("limit") or 0) or None
        except ValueError as exc:
            raise bad_request(f"invalid limit: {request.params.get('limit')!r}") from exc
        return _answer(
            self.store.list_objects(
                spec,
                version,
                request.namespace,
                labels=labels,
                fields=fields,
                limit=limit,
                continue_token=request.params.get("continue"),
            )
        )

    async def _serve_watch(self, request: kmock.Request) -> kmock.Payload:  # type: ignore[override]
        spec, version = self._resolve(request)
        labels, fields = self._selectors(request)
        if request.name is not None:  # the deprecated watch of one object by its URL
            fields = FieldSelector((*fields.terms, ("metadata.name", True, request.name)))
        params = request.params
        try:
            timeout = float(params.get("timeoutSeconds") or self.watch_timeout)
        except ValueError as exc:
            raise bad_request(f"invalid timeoutSeconds: {params.get('timeoutSeconds')!r}") from exc
        raw = request._raw_request
        transport = raw.transport if raw is not None else None

        async def stream() -> AsyncIterator[kmock.Payload]:
            yield b""  # send the headers now: a quiet watch must not look like a hung connection
            async for event in self.store.watch(
                spec,
                version,
                request.namespace,
                labels=labels,
                fields=fields,
                since=params.get("resourceVersion"),
                send_initial=_flag(params.get("sendInitialEvents")),
                bookmarks=_flag(params.get("allowWatchBookmarks")),
                timeout=timeout,
                closed=lambda: transport is None or transport.is_closing(),
            ):
                yield event

        return rendering.Response(status=200, headers={"Content-Type": "application/json"}, payload=stream())

    async def _serve_fetch(self, request: kmock.Request) -> kmock.Payload:
        spec, version = self._resolve(request)
        self._check_subresource(spec, request.subresource, allow_scale=True)
        assert request.name is not None
        obj = self.store.get(spec, request.namespace, request.name)
        if obj is None:
            raise api_error(
                404,
                "NotFound",
                f'{spec.group_resource} "{request.name}" not found',
                spec=spec,
                name=request.name,
            )
        if request.subresource == "scale":
            return _answer(self._scale_view(obj))
        return _answer(self.store.present(spec, version, obj))

    # -- writing -------------------------------------------------------------------------------

    def _dry_run(self, request: kmock.Request) -> contextlib.AbstractContextManager[None]:
        """The store's dry-run mode for a `?dryRun=All` write; nothing special otherwise."""
        value = request.params.get("dryRun")
        if not value:
            return contextlib.nullcontext()
        if value != "All":
            raise bad_request(f'invalid dry run value "{value}": only "All" is supported')
        return self.store.dry_run()

    async def _serve_create(self, request: kmock.Request) -> kmock.Payload:
        spec, version = self._resolve(request)
        if request.subresource is not None:
            raise api_error(
                405, "MethodNotAllowed", "the server does not allow this method on the requested resource"
            )
        with self._dry_run(request):
            obj = self.store.create(spec, version, request.namespace, request.data)
        return _answer(self.store.present(spec, version, obj), 201)

    async def _serve_update(self, request: kmock.Request) -> kmock.Payload:
        spec, version = self._resolve(request)
        self._check_subresource(spec, request.subresource, allow_scale=True)
        assert request.name is not None
        content_type = request.headers.get("Content-Type", "")
        if request.subresource == "scale":
            return _answer(self._patch_scale(spec, request, content_type))
        with self._dry_run(request):
            obj, created = self.store.patch(
                spec,
                version,
                request.namespace,
                request.name,
                content_type=content_type,
                data=request.data,
                text=request.text,
                subresource=request.subresource,
                field_manager=request.params.get("fieldManager"),
            )
        return _answer(self.store.present(spec, version, obj), 201 if created else 200)

    async def _serve_replace(self, request: kmock.Request) -> kmock.Payload:
        if request.resource is None or request.name is None:
            raise api_error(
                405, "MethodNotAllowed", "the server does not allow this method on the requested resource"
            )
        spec, version = self._resolve(request)
        self._check_subresource(spec, request.subresource, allow_scale=True)
        if request.subresource == "scale":
            replicas = ((request.data or {}).get("spec") or {}).get("replicas")
            return _answer(self._set_replicas(spec, request.namespace, request.name, replicas))
        with self._dry_run(request):
            obj = self.store.replace(
                spec, version, request.namespace, request.name, request.data, request.subresource
            )
        return _answer(self.store.present(spec, version, obj))

    def _delete_options(self, request: kmock.Request) -> dict[str, Any]:
        options = dict(request.data) if isinstance(request.data, dict) else {}
        if request.params.get("propagationPolicy"):
            options["propagationPolicy"] = request.params["propagationPolicy"]
        return options

    async def _serve_delete(self, request: kmock.Request) -> kmock.Payload:
        spec, version = self._resolve(request)
        self._check_subresource(spec, request.subresource)
        assert request.name is not None
        obj, gone = self.store.delete(spec, request.namespace, request.name, self._delete_options(request))
        if spec.custom or not gone:
            return _answer(self.store.present(spec, version, obj))
        return _answer(
            {
                "kind": "Status",
                "apiVersion": "v1",
                "metadata": {},
                "status": "Success",
                "details": {
                    "name": request.name,
                    "group": spec.group,
                    "kind": spec.plural,
                    "uid": obj["metadata"].get("uid"),
                },
            }
        )

    async def _serve_delete_collection(self, request: kmock.Request) -> kmock.Payload:
        if request.resource is None or request.name is not None:
            raise api_error(
                405, "MethodNotAllowed", "the server does not allow this method on the requested resource"
            )
        spec, version = self._resolve(request)
        labels, fields = self._selectors(request)
        listing = self.store.list_objects(spec, version, request.namespace, labels=labels, fields=fields)
        options = self._delete_options(request)
        items = []
        for obj in listing["items"]:
            meta = obj["metadata"]
            deleted, _ = self.store.delete(spec, meta.get("namespace"), meta["name"], options)
            items.append(self.store.present(spec, version, deleted))
        return _answer({**listing, "items": items})

    # -- the scale subresource -----------------------------------------------------------------

    @staticmethod
    def _scale_view(obj: dict[str, Any]) -> dict[str, Any]:
        meta = obj["metadata"]
        selector = ((obj.get("spec") or {}).get("selector") or {}).get("matchLabels") or {}
        return {
            "kind": "Scale",
            "apiVersion": "autoscaling/v1",
            "metadata": {
                k: meta[k]
                for k in ("name", "namespace", "uid", "resourceVersion", "creationTimestamp")
                if k in meta
            },
            "spec": {"replicas": (obj.get("spec") or {}).get("replicas", 0)},
            "status": {
                "replicas": (obj.get("status") or {}).get("replicas", 0),
                "selector": ",".join(f"{k}={v}" for k, v in sorted(selector.items())),
            },
        }

    def _set_replicas(
        self, spec: ResourceSpec, namespace: str | None, name: str, replicas: Any
    ) -> dict[str, Any]:
        if not isinstance(replicas, int) or isinstance(replicas, bool) or replicas < 0:
            raise api_error(
                422,
                "Invalid",
                f'Scale "{name}" is invalid: spec.replicas: must be a non-negative integer',
                spec=spec,
                name=name,
            )

        def scale(obj: dict[str, Any]) -> None:
            obj.setdefault("spec", {})["replicas"] = replicas

        obj = self.store.update(spec, namespace, name, scale)
        if obj is None:
            raise api_error(
                404, "NotFound", f'{spec.group_resource} "{name}" not found', spec=spec, name=name
            )
        return self._scale_view(obj)

    def _patch_scale(self, spec: ResourceSpec, request: kmock.Request, content_type: str) -> dict[str, Any]:
        assert request.name is not None
        obj = self.store.get(spec, request.namespace, request.name)
        if obj is None:
            raise api_error(
                404,
                "NotFound",
                f'{spec.group_resource} "{request.name}" not found',
                spec=spec,
                name=request.name,
            )
        current = self._scale_view(obj)
        try:
            if content_type.startswith("application/json-patch+json"):
                patched = patches.apply_json_patch(current, request.data)
            else:
                patched = patches.apply_merge_patch(current, copy.deepcopy(request.data or {}))
        except patches.PatchError as exc:
            raise api_error(422, "Invalid", str(exc), spec=spec, name=request.name) from exc
        return self._set_replicas(
            spec, request.namespace, request.name, (patched.get("spec") or {}).get("replicas")
        )
