"""Kubernetes Events for a release: what a person sees with `kubectl describe canary`.

Best effort by design: an Event that cannot be written is logged and dropped, never a reason to
stop a release.
"""

from __future__ import annotations

import hashlib
import logging
import uuid
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from kubernetes import client
from kubernetes.client.exceptions import ApiException
from urllib3.exceptions import HTTPError

from rollout.api.kinds import API_VERSION
from rollout.api.spec import BlueGreen, Canary
from rollout.settings import Settings

log = logging.getLogger(__name__)


class EventRecorder:
    def __init__(self, api: client.ApiClient, settings: Settings) -> None:
        self.core = client.CoreV1Api(api)
        self.timeout = settings.api_timeout

    def emit(self, about: Canary | BlueGreen | Mapping[str, Any], reason: str, message: str,
             warning: bool = False, *, key: str | None = None) -> None:
        """An Event about a release, parsed or (when its spec does not parse) as the raw object.

        With `key` (a recorded side effect) the Event's name is made from it, so a second create
        is refused by the API and the Event exists once however often it is carried out; and a
        failure raises, so the tick is tried again rather than the Event lost. Without a key it
        is best effort."""
        if isinstance(about, Canary | BlueGreen):
            meta_ = about.metadata
            kind, name, namespace, uid = about.kind, meta_.name, meta_.namespace, meta_.uid
        else:
            meta = about.get("metadata", {})
            kind, name, namespace, uid = about.get("kind", ""), meta.get("name"), meta.get("namespace"), meta.get("uid")
        now = datetime.now(UTC)
        event = client.CoreV1Event(
            metadata=client.V1ObjectMeta(name=f"{name}.{_suffix(key)}", namespace=namespace),
            involved_object=client.V1ObjectReference(
                api_version=API_VERSION, kind=kind, name=name, namespace=namespace, uid=uid
            ),
            reason=reason,
            message=message[:1024],
            type="Warning" if warning else "Normal",
            first_timestamp=now,
            last_timestamp=now,
            count=1,
            source=client.V1EventSource(component="rollout"),
            reporting_component="rollout",
            reporting_instance="rollout",
        )
        try:
            self.core.create_namespaced_event(namespace, event, _request_timeout=self.timeout)
        except ApiException as e:
            if key is not None and e.status == 409:
                return  # created before the operator was restarted
            if key is not None:
                raise
            log.warning("event %s for %s/%s not recorded: %s", reason, namespace, name, e)
        except (HTTPError, OSError) as e:
            if key is not None:
                raise
            log.warning("event %s for %s/%s not recorded: %s", reason, namespace, name, e)


def _suffix(key: str | None) -> str:
    if key is None:
        return uuid.uuid4().hex[:16]
    return hashlib.sha256(key.encode()).hexdigest()[:16]
