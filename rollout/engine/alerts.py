"""Send alerts to AlertProviders: find the provider, read its Secret, post its service's body.

An alert is told, never waited on: a missing AlertProvider or Secret, an unreachable service or
one answering 500 is logged and counted in `rollout_alerts_total{provider,outcome}`, and never
fails, blocks or slows a release. Each post runs on a small pool of worker threads, bounded by
`--alert-timeout` per attempt and retried `--alert-retries` times after no answer, a 429 or a
5xx other than 501 (waiting 1s, 2s, 4s... as Flagger's webhook client does).

When: an alert is an action the planner decides with the Event of the same transition and the tick
records before carrying it out (`rollout.engine.tick`), so a restarted operator never decides it
again; one that died between recording the decision and finishing it sends it once more (at least
once, as `event` webhooks: a lost failure alert is worse than a repeated one), with the same
idempotency key for `generic` receivers. GitSources have no analysis; their `spec.alerts` are told
when the sync fails (stalls, or cannot fetch or apply), next to the Warning Event of that change of
Ready.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Mapping
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, replace
from typing import Any, cast

import requests
from kubernetes import client
from kubernetes.client.exceptions import ApiException
from prometheus_client import Counter
from urllib3.exceptions import HTTPError

from rollout.api.errors import ValidationError
from rollout.api.kinds import ALERT_PROVIDER, GIT_SOURCE, GROUP, PLURALS, VERSION
from rollout.api.parse import parse_alert_provider, parse_gitsource
from rollout.api.spec import AlertProvider, AlertRef, AlertSeverity, Release
from rollout.core import Alert
from rollout.engine.notifiers import Destination, Message, Post, builder
from rollout.engine.webhooks import RETRY_WAIT_MAX, RETRY_WAIT_MIN, redact
from rollout.gitops.credentials import SecretError, secret_data
from rollout.gitops.weblinks import commit_url
from rollout.settings import Settings

log = logging.getLogger(__name__)

ALERTS = Counter("rollout_alerts_total", "Alerts posted to AlertProviders, by provider (namespace/name) and outcome",
                 ["provider", "outcome"])
USER_AGENT = "rollout-alerts"
IDEMPOTENCY_HEADER = "X-Rollout-Idempotency-Key"
# Posts wait in the pool's queue when a service is slow; past this many, new ones are dropped (logged).
MAX_PENDING = 256


class AlertError(Exception):
    """Why one alert could not be delivered (said in the log, counted as failed)."""


@dataclass(frozen=True)
class Delivery:
    """One alert for one AlertProvider, as the pool carries it out."""

    ref: AlertRef
    namespace: str  # of the AlertProvider
    message: Message
    key: str | None = None


class Alerter:
    def __init__(self, api: client.ApiClient, settings: Settings, *, session: requests.Session | None = None,
                 sleep: Callable[[float], None] = time.sleep, clock: Callable[[], float] = time.time,
                 workers: int = 2) -> None:
        self.objects = client.CustomObjectsApi(api)
        self.api = api
        self.api_timeout = settings.api_timeout
        self.timeout = settings.alert_timeout
        self.retries = settings.alert_retries
        self.cluster = settings.cluster_name
        self.session = session or requests.Session()
        self.session.headers["User-Agent"] = USER_AGENT
        self.sleep = sleep
        self.clock = clock
        self.pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="alerts")
        self._pending: set[Future[bool]] = set()
        self._lock = threading.Lock()

    # -- what the engine calls ---------------------------------------------------------------------

    def release(self, release: Release, action: Alert, phase: str, *, key: str | None = None) -> None:
        """Tell the release's `analysis.alerts` that receive `action.severity`."""
        fields = list(action.fields)
        if action.commit and (link := self._commit_link(release, action.commit)):
            fields.append(("Commit", link))
        meta = release.metadata
        message = Message(release.kind, meta.name, meta.namespace, action.message, action.severity,
                          tuple(fields), phase, action.reason, int(self.clock() * 1000))
        self.send(release.spec.analysis.alerts, meta.namespace, message, key)

    def gitsource(self, obj: Mapping[str, Any], reason: str, text: str) -> None:
        """A GitSource's sync failed (its Ready turned False, or for a new reason): tell its `spec.alerts`."""
        try:
            source = parse_gitsource(obj)
        except ValidationError:
            return  # its InvalidSpec Event says why; there is no alert list to read
        meta = source.metadata
        fields = [("Repository", redact_url(source.spec.url)), ("Branch", source.spec.branch),
                  ("Path", source.spec.path)]
        revision = (obj.get("status") or {}).get("lastAppliedRevision")
        if isinstance(revision, str) and revision:
            fields.append(("Last applied revision", revision[:12]))
        message = Message(GIT_SOURCE, meta.name, meta.namespace, text, AlertSeverity.ERROR,
                          tuple(fields), "Stalled", reason, int(self.clock() * 1000))
        self.send(source.spec.alerts, meta.namespace, message)

    def send(self, alerts: tuple[AlertRef, ...], namespace: str, message: Message, key: str | None = None) -> None:
        """Queue the message for every alert whose severity receives it (Flagger's rule)."""
        message = replace(message, fields=self._with_cluster(message.fields))
        for ref in alerts:
            if not ref.severity.receives(message.severity):
                continue
            delivery = Delivery(ref, ref.provider_namespace or namespace, message, key)
            with self._lock:
                if len(self._pending) >= MAX_PENDING:
                    log.warning("alert %s of %s dropped: %d alerts are waiting to be sent", ref.name,
                                message.subject, len(self._pending))
                    ALERTS.labels(f"{delivery.namespace}/{ref.provider}", "failed").inc()
                    continue
                future = self.pool.submit(self.deliver, delivery)
                self._pending.add(future)
            future.add_done_callback(self._done)

    def flush(self, timeout: float) -> bool:
        """Wait up to `timeout` seconds for queued alerts; True when none is left."""
        deadline = time.monotonic() + timeout
        while True:
            with self._lock:
                pending = list(self._pending)
            if not pending:
                return True
            if time.monotonic() >= deadline:
                return False
            pending[0].exception(timeout=max(0.0, deadline - time.monotonic()))

    def close(self, timeout: float) -> None:
        """Give queued alerts `timeout` seconds, then drop what is left (the process is stopping)."""
        if not self.flush(timeout):
            log.warning("stopping with alerts not sent yet; they are dropped")
        self.pool.shutdown(wait=False, cancel_futures=True)

    # -- one delivery ------------------------------------------------------------------------------

    def deliver(self, delivery: Delivery) -> bool:
        """Post one alert; True when the service took it. Never raises."""
        label = f"{delivery.namespace}/{delivery.ref.provider}"
        try:
            provider = self._provider(delivery.namespace, delivery.ref.provider)
            post = builder(provider.spec.type)(delivery.message, self._destination(provider))
            if delivery.key and provider.spec.type.value == "generic":
                key = f"{delivery.key}.{delivery.ref.name}"
                post = Post(post.url, post.body, {**post.headers, IDEMPOTENCY_HEADER: key})
            self._post(post, provider.spec.proxy)
        except AlertError as e:
            log.warning("alert %s of %s %s to AlertProvider %s not sent: %s", delivery.ref.name,
                        delivery.message.kind, delivery.message.subject, label, e)
            ALERTS.labels(label, "failed").inc()
            return False
        except Exception:  # an alert must never take a release down with it
            log.exception("alert %s to AlertProvider %s failed unexpectedly", delivery.ref.name, label)
            ALERTS.labels(label, "failed").inc()
            return False
        log.info("alert %s of %s %s sent to AlertProvider %s", delivery.ref.name, delivery.message.kind,
                 delivery.message.subject, label)
        ALERTS.labels(label, "sent").inc()
        return True

    def _provider(self, namespace: str, name: str) -> AlertProvider:
        try:
            obj = cast(dict[str, Any], self.objects.get_namespaced_custom_object(
                GROUP, VERSION, namespace, PLURALS[ALERT_PROVIDER], name, _request_timeout=self.api_timeout))
        except ApiException as e:
            if e.status == 404:
                raise AlertError(f"AlertProvider {namespace}/{name} not found") from None
            raise AlertError(f"reading AlertProvider {namespace}/{name} failed: {e.reason}") from None
        except (HTTPError, OSError) as e:
            raise AlertError(f"reading AlertProvider {namespace}/{name} failed: {e}") from None
        try:
            return parse_alert_provider(obj)
        except ValidationError as e:
            raise AlertError(f"AlertProvider {namespace}/{name} is invalid: "
                             + "; ".join(str(x) for x in e.errors)) from None

    def _destination(self, provider: AlertProvider) -> Destination:
        """The URL (the Secret's `address` wins over `spec.address`, as Flagger) and the token."""
        spec, meta = provider.spec, provider.metadata
        url, token = spec.address, None
        if spec.secret_ref:
            data = self._secret(meta.namespace, spec.secret_ref)
            if "address" not in data:
                raise AlertError(f"Secret {meta.namespace}/{spec.secret_ref} has no key `address`")
            url, token = data["address"].strip(), data.get("token", "").strip() or None
        if not url:
            raise AlertError("no address: set spec.address or a Secret with the key `address`")
        return Destination(url, spec.channel, spec.username, token, spec.proxy)

    def _secret(self, namespace: str, name: str) -> dict[str, str]:
        try:
            return secret_data(self.api, namespace, name, timeout=self.api_timeout)
        except SecretError as e:
            raise AlertError(str(e)) from None
        except ApiException as e:
            raise AlertError(f"reading Secret {namespace}/{name} failed: {e.reason}") from None
        except (HTTPError, OSError) as e:
            raise AlertError(f"reading Secret {namespace}/{name} failed: {e}") from None

    def _post(self, post: Post, proxy: str | None) -> None:
        """POST with retries after no answer, 429 or a 5xx other than 501; raises AlertError at the end."""
        proxies = {"http": proxy, "https": proxy} if proxy else None
        where = redact(post.url)
        for attempt in range(self.retries + 1):
            if attempt:
                self.sleep(min(RETRY_WAIT_MIN * 2 ** (attempt - 1), RETRY_WAIT_MAX))
            try:
                response = self.session.post(post.url, json=dict(post.body), headers=dict(post.headers),
                                             timeout=(self.timeout, self.timeout), proxies=proxies)
            except requests.RequestException as e:
                problem, retry = f"no answer from {where} ({type(e).__name__})", True
            else:
                status = response.status_code
                if 200 <= status <= 299:
                    return
                body = " ".join(response.text[:200].split())
                problem = f"HTTP {status} from {where}" + (f": {body}" if body else "")
                retry = status == 429 or (500 <= status <= 599 and status != 501)
            if not retry:
                break
        raise AlertError(problem)

    # -- helpers -----------------------------------------------------------------------------------

    def _done(self, future: Future[bool]) -> None:
        with self._lock:
            self._pending.discard(future)

    def _with_cluster(self, fields: tuple[tuple[str, str], ...]) -> tuple[tuple[str, str], ...]:
        """Flagger's `-cluster-name`: a Cluster field first, when the operator is told its cluster."""
        return ((("Cluster", self.cluster),) if self.cluster else ()) + tuple(fields)

    def _commit_link(self, release: Release, sha: str) -> str | None:
        git = release.spec.git
        if git is None:
            return None
        url = git.url
        if url is None and git.source:
            try:
                obj = cast(dict[str, Any], self.objects.get_namespaced_custom_object(
                    GROUP, VERSION, release.metadata.namespace, PLURALS[GIT_SOURCE], git.source,
                    _request_timeout=self.api_timeout))
                url = (obj.get("spec") or {}).get("url")
            except (ApiException, HTTPError, OSError) as e:
                log.info("GitSource %s of %s/%s not read for the revert's link: %s", git.source,
                         release.metadata.namespace, release.metadata.name, e)
        return commit_url(url, sha) if isinstance(url, str) else None


def redact_url(url: str) -> str:
    """A repository URL without credentials (a token in an https URL must not reach a chat)."""
    if "://" not in url or "@" not in url.split("://", 1)[1].split("/", 1)[0]:
        return url
    scheme, rest = url.split("://", 1)
    return f"{scheme}://{rest.split('@', 1)[1]}"
