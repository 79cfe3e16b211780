"""Flagger's webhooks: gates and load tests the planner waits on, and notifications it sends.

A hook is an HTTP POST of a JSON payload, judged on the status code alone. The payload is
Flagger's `CanaryWebhookPayload`, so Flagger's load tester and existing gate services work
unchanged:

    {"name": <release>, "namespace": <ns>, "phase": <status phase>, "checksum": <str>,
     "metadata": {<the hook's metadata>}}            # metadata omitted when empty

`event` hooks get Flagger's event payload: the same fields with `metadata` holding
`eventMessage`, `eventType` (Normal | Warning), `timestamp` (unix milliseconds) and our
`eventReason`, then the hook's own metadata for keys not already set.

Differences from Flagger, on purpose: any 2xx is a pass (Flagger fails 203-299); each call is
bounded by the hook's `timeout` as a whole (connect, answer and body), not per socket operation,
so a tick can never hang on a hook. A hook's `retries` (Flagger's, default 0) are further attempts
after no answer, a 429 or a 5xx other than 501, waiting 1s, 2s, 4s... (at most 30s) between them,
as Flagger's HTTP client (go-retryablehttp) does; `disableTLS` skips verifying the hook's TLS
certificate. A
notification (post-rollout, event) carries `X-Rollout-Idempotency-Key`: it is sent once per
decision, and again with the same key only when the operator died between recording the decision
and hearing the answer, so a receiver that remembers keys sees each exactly once. Gates,
pre-rollout and rollout hooks are asked again whenever the planner needs their answer (at least
once), and must be free of side effects, as Flagger documents. URLs can
carry tokens (Slack and similar hooks do), so logs and messages name the hook and the URL's
scheme, host and port only.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import requests

from rollout.api.spec import Release, Webhook, WebhookType

# The most of an answer's body read (for the message of a failed hook).
MAX_BODY = 4096
MAX_MESSAGE = 200
USER_AGENT = "rollout-webhooks"
IDEMPOTENCY_HEADER = "X-Rollout-Idempotency-Key"
# go-retryablehttp's default backoff, which Flagger's webhook client keeps: 1s doubling up to 30s.
RETRY_WAIT_MIN = 1.0
RETRY_WAIT_MAX = 30.0

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class WebhookResult:
    """One hook's answer: `ok` for a 2xx; `status` is None when no HTTP answer came."""

    name: str
    ok: bool
    status: int | None
    message: str


def redact(url: str) -> str:
    """The part of a URL safe to log: scheme, host and port (no credentials, path or query)."""
    try:
        parts = urlsplit(url)
        host = parts.hostname or "?"
        port = f":{parts.port}" if parts.port else ""
    except ValueError:
        return "<invalid url>"
    return f"{parts.scheme}://{host}{port}"


def payload(release: Release, webhook: Webhook, phase: str, checksum: str | None = None) -> dict[str, Any]:
    """Flagger's `CanaryWebhookPayload` for a gate, load test or rollout hook."""
    body: dict[str, Any] = {
        "name": release.metadata.name,
        "namespace": release.metadata.namespace,
        "phase": str(phase),
        "checksum": checksum or "",
    }
    if webhook.metadata:
        body["metadata"] = dict(webhook.metadata)
    return body


def event_payload(release: Release, webhook: Webhook, phase: str, reason: str, message: str,
                  warning: bool, now: float) -> dict[str, Any]:
    """Flagger's event payload (`CallEventWebhook`), plus `eventReason`."""
    metadata = {
        "eventMessage": message,
        "eventType": "Warning" if warning else "Normal",
        "timestamp": str(int(now * 1000)),
        "eventReason": reason,
    }
    for key, value in webhook.metadata:
        metadata.setdefault(key, value)
    return {
        "name": release.metadata.name,
        "namespace": release.metadata.namespace,
        "phase": str(phase),
        "checksum": "",
        "metadata": metadata,
    }


def retryable(result: WebhookResult) -> bool:
    """go-retryablehttp's rule: no answer, 429 Too Many Requests, or a 5xx other than 501."""
    status = result.status
    return status is None or status == 429 or (500 <= status <= 599 and status != 501)


def _short(text: str) -> str:
    text = " ".join(text.split())
    return text if len(text) <= MAX_MESSAGE else text[: MAX_MESSAGE - 3] + "..."


class Webhooks:
    """Calls webhooks; never raises for what a hook does (errors become results and log lines)."""

    def __init__(self, session: requests.Session | None = None, clock: Callable[[], float] = time.time,
                 sleep: Callable[[float], None] = time.sleep) -> None:
        self.session = session or requests.Session()
        self.session.headers["User-Agent"] = USER_AGENT
        self.clock = clock
        self.sleep = sleep

    # -- one call ---------------------------------------------------------------------------------

    def post(self, webhook: Webhook, body: Mapping[str, Any], key: str | None = None) -> WebhookResult:
        """POST `body` to the hook, each attempt within `webhook.timeout` seconds in all, retried
        `webhook.retries` times after an answer worth retrying; `key` marks a notification."""
        result = self._attempt(webhook, body, key)
        for attempt in range(webhook.retries):
            if result.ok or not retryable(result):
                break
            self.sleep(min(RETRY_WAIT_MIN * 2**attempt, RETRY_WAIT_MAX))
            log.info("webhook %s: %s; retry %d of %d", webhook.name, result.message, attempt + 1, webhook.retries)
            result = self._attempt(webhook, body, key)
        return result

    def _attempt(self, webhook: Webhook, body: Mapping[str, Any], key: str | None) -> WebhookResult:
        timeout = max(float(webhook.timeout), 0.001)
        box: list[WebhookResult] = []
        worker = threading.Thread(target=lambda: box.append(self._send(webhook, body, timeout, key)),
                                  name=f"webhook-{webhook.name}", daemon=True)
        worker.start()
        # The socket timeouts end the worker soon after; the caller does not wait for that.
        worker.join(timeout)
        if box:
            return box[0]
        return WebhookResult(webhook.name, False, None, f"no answer from {redact(webhook.url)} within {timeout:g}s")

    def _send(self, webhook: Webhook, body: Mapping[str, Any], timeout: float, key: str | None) -> WebhookResult:
        where = redact(webhook.url)
        headers = {"Content-Type": "application/json"}
        if key:
            headers[IDEMPOTENCY_HEADER] = f"{key}.{webhook.name}"
        try:
            with self.session.post(
                webhook.url,
                data=json.dumps(body).encode(),
                headers=headers,
                timeout=(timeout, timeout),
                stream=True,
                verify=not webhook.disable_tls,
            ) as response:
                text = response.raw.read(MAX_BODY, decode_content=True) or b""
                status = response.status_code
        except requests.Timeout:
            return WebhookResult(webhook.name, False, None, f"no answer from {where} within {timeout:g}s")
        except requests.ConnectionError as e:
            return WebhookResult(webhook.name, False, None, f"cannot connect to {where} ({_cause(e)})")
        except (requests.RequestException, OSError, ValueError) as e:
            return WebhookResult(webhook.name, False, None, f"request to {where} failed ({type(e).__name__})")
        if 200 <= status <= 299:
            return WebhookResult(webhook.name, True, status, f"HTTP {status}")
        detail = _short(text.decode(errors="replace"))
        return WebhookResult(webhook.name, False, status, f"HTTP {status} from {where}" + (f": {detail}" if detail
                                                                                         else ""))

    def call(self, release: Release, webhook: Webhook, phase: str, *, checksum: str | None = None,
             key: str | None = None) -> WebhookResult:
        """Call one hook with Flagger's payload; 2xx is ok, anything else (or no answer) is not."""
        result = self.post(webhook, payload(release, webhook, phase, checksum), key)
        if not result.ok:
            log.info("webhook %s (%s) of %s/%s: %s", webhook.name, webhook.type.value,
                     release.metadata.namespace, release.metadata.name, result.message)
        return result

    # -- by type ----------------------------------------------------------------------------------

    def gate(self, release: Release, kind: WebhookType, phase: str, *, checksum: str | None = None) -> bool:
        """True when every hook of `kind` answers 2xx (no hooks: True). Stops at the first that does
        not, as Flagger does, so a closed gate costs one call."""
        return all(self.call(release, hook, phase, checksum=checksum).ok
                   for hook in release.spec.analysis.hooks(kind))

    def notify(self, release: Release, kind: WebhookType, phase: str, *,
               checksum: str | None = None, key: str | None = None) -> tuple[WebhookResult, ...]:
        """Call every hook of `kind` (post-rollout and the like): results are logged, never raised."""
        hooks = release.spec.analysis.hooks(kind)
        results = tuple(self.call(release, hook, phase, checksum=checksum, key=key) for hook in hooks)
        for result in results:
            if not result.ok:
                log.warning("%s webhook %s of %s/%s failed: %s", kind.value, result.name,
                            release.metadata.namespace, release.metadata.name, result.message)
        return results

    def notify_event(self, release: Release, reason: str, message: str, phase: str, *,
                     warning: bool = False, key: str | None = None) -> tuple[WebhookResult, ...]:
        """Post an event to every `event` hook (Flagger's event payload); failures are logged."""
        now = self.clock()
        results = []
        for hook in release.spec.analysis.hooks(WebhookType.EVENT):
            result = self.post(hook, event_payload(release, hook, phase, reason, message, warning, now), key)
            if not result.ok:
                log.warning("event webhook %s of %s/%s failed: %s", hook.name,
                            release.metadata.namespace, release.metadata.name, result.message)
            results.append(result)
        return tuple(results)


def _cause(error: BaseException) -> str:
    """The innermost cause's class name (its text would repeat the URL, path and query included)."""
    seen: BaseException = error
    for _ in range(8):
        inner = getattr(seen, "reason", None) or seen.__cause__ or seen.__context__
        if not isinstance(inner, BaseException) or inner is seen:
            break
        seen = inner
    if isinstance(seen, OSError) and seen.strerror:
        return seen.strerror
    return type(seen).__name__
