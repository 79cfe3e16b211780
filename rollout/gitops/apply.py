"""Server-side apply of arbitrary objects, found through the API's discovery.

A GitSource may hold any kind the cluster serves, so objects go through the dynamic client: the
kind is looked up in discovery (refreshed once when a CRD may just have been installed), applied
with field manager `rollout`, first as a dry run so a revision the API rejects is applied not at
all, and read back for drift.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from kubernetes import client
from kubernetes.client.exceptions import ApiException
from kubernetes.dynamic import DynamicClient, Resource
from kubernetes.dynamic.exceptions import DynamicApiError, NotFoundError, ResourceNotFoundError

FIELD_MANAGER = "rollout"


class ApplyError(Exception):
    """The API refused an object (or does not serve its kind); the message says which and why."""


def api_message(error: ApiException | DynamicApiError) -> str:
    """The Status message of an API error, without the HTTP noise."""
    body = getattr(error, "body", None)
    try:
        text = body.decode() if isinstance(body, bytes) else body
        message = json.loads(text or "").get("message") if text else None
    except (ValueError, AttributeError):
        message = None
    return str(message or getattr(error, "reason", None) or error)


class Applier:
    def __init__(self, api: client.ApiClient, timeout: float) -> None:
        self.api = api
        self.timeout = timeout
        self._dynamic: DynamicClient | None = None

    @property
    def dynamic(self) -> DynamicClient:
        if self._dynamic is None:
            self._dynamic = DynamicClient(self.api)  # type: ignore[no-untyped-call]
        return self._dynamic

    def resource(self, api_version: str, kind: str, *, refresh: bool = False) -> Resource:
        """The API resource serving this kind; ApplyError when the cluster does not serve it."""
        try:
            if refresh:
                self.dynamic.resources.invalidate_cache()
            found: Resource = self.dynamic.resources.get(api_version=api_version, kind=kind)
            return found
        except ResourceNotFoundError:
            if not refresh:
                return self.resource(api_version, kind, refresh=True)
            raise ApplyError(f"the cluster serves no kind {kind} in {api_version} (is its CRD installed?)") from None

    def namespaced(self, api_version: str, kind: str) -> bool:
        return bool(self.resource(api_version, kind).namespaced)

    def apply(self, obj: Mapping[str, Any], *, dry_run: bool = False) -> dict[str, Any]:
        resource = self.resource(obj["apiVersion"], obj["kind"])
        meta = obj["metadata"]
        try:
            out = resource.server_side_apply(
                body=dict(obj), name=meta["name"], namespace=meta.get("namespace"), field_manager=FIELD_MANAGER,
                force_conflicts=True, dry_run="All" if dry_run else None, _request_timeout=self.timeout,
            )
        except (ApiException, DynamicApiError) as e:
            raise ApplyError(api_message(e)) from None
        return dict(out.to_dict())

    def get(self, api_version: str, kind: str, namespace: str | None, name: str) -> dict[str, Any] | None:
        resource = self.resource(api_version, kind)
        try:
            out = resource.get(name=name, namespace=namespace if resource.namespaced else None,
                               _request_timeout=self.timeout)
        except NotFoundError:
            return None
        return dict(out.to_dict())

    def delete(self, api_version: str, kind: str, namespace: str | None, name: str) -> None:
        resource = self.resource(api_version, kind)
        try:
            resource.delete(name=name, namespace=namespace if resource.namespaced else None,
                            body={"propagationPolicy": "Background"}, _request_timeout=self.timeout)
        except NotFoundError:
            return

    def list(self, api_version: str, kind: str) -> list[dict[str, Any]]:
        try:
            resource = self.resource(api_version, kind)
        except ApplyError:
            return []
        return [dict(item.to_dict()) for item in resource.get(_request_timeout=self.timeout).items]
