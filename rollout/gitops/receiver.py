"""Push webhooks for GitSources: a push to a source's branch syncs it at once instead of at its next interval.

`rollout run --webhook-addr HOST:PORT` serves `POST /hook/<namespace>/<name>` for every GitSource
with a `spec.webhook`, in a thread of its own beside kopf (as the health server). Each request is
verified the way its Git host signs it, with the key `token` of the webhook's Secret, before
anything else is done with it (Flux's Receiver does the same, per type):

- github: `X-Hub-Signature-256: sha256=<hex HMAC-SHA256 of the body>` (GitHub's "Validating
  webhook deliveries"); `X-GitHub-Event` push syncs, ping answers.
- gitea (and Forgejo): `X-Gitea-Signature` (or `X-Forgejo-Signature`): the hex HMAC-SHA256 of
  the body (Gitea's "Webhooks" docs); `X-Gitea-Event: push`.
- gitlab: `X-Gitlab-Token` equal to the secret token (GitLab's "Webhooks": the secret token is
  sent as is); `X-Gitlab-Event: Push Hook`.
- generic: `X-Signature: sha256=<hex HMAC-SHA256 of the body>`, Flux's generic-hmac receiver;
  any event, and a JSON body's `ref`, when it has one, must be the branch.

A request that fails verification is answered 401 and logged with the source and what did not
match, never with the token or the signature it carried. A verified push to another branch (or a
tag) is answered 200 and changes nothing; a push to the source's branch wakes its sync (202).
A standby replica of the leader election answers 503: only the leader syncs.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any, cast

from kubernetes import client
from kubernetes.client.exceptions import ApiException
from urllib3.exceptions import HTTPError

from rollout.api.errors import ValidationError
from rollout.api.kinds import GIT_SOURCE, GROUP, PLURALS, VERSION
from rollout.api.parse import parse_gitsource
from rollout.api.spec import ReceiverType
from rollout.serving import Served, serve_wsgi

from .credentials import SecretError, secret_data

log = logging.getLogger(__name__)

PREFIX = "/hook/"
# The largest body read: GitHub caps its payloads at 25 MB.
MAX_BODY = 25 * 1024 * 1024
TOKEN_KEY = "token"
WEBHOOK_FLAG = "--webhook-addr"
# What each host calls a push, in the event header it sends (None: any event counts).
PUSH_EVENTS: dict[ReceiverType, tuple[tuple[str, ...], str] | None] = {
    ReceiverType.GITHUB: (("x-github-event",), "push"),
    ReceiverType.GITEA: (("x-gitea-event", "x-forgejo-event"), "push"),
    ReceiverType.GITLAB: (("x-gitlab-event",), "Push Hook"),
    ReceiverType.GENERIC: None,
}


def _hmac_hex(token: str, body: bytes) -> str:
    return hmac.new(token.encode(), body, hashlib.sha256).hexdigest()


def verify(kind: ReceiverType, headers: Mapping[str, str], body: bytes, token: str) -> str | None:
    """None when the request carries `token`'s signature (or token) as its host sends it, else why
    not; the answer never contains the token or the signature. `headers` have lower-case names."""
    if kind in (ReceiverType.GITHUB, ReceiverType.GENERIC):
        header = "x-hub-signature-256" if kind is ReceiverType.GITHUB else "x-signature"
        sent = headers.get(header)
        if not sent:
            return f"no {header} header"
        algorithm, _, digest = sent.partition("=")
        if algorithm != "sha256":
            return f"{header} is not sha256=<hex>"
        return None if hmac.compare_digest(digest.lower().encode(), _hmac_hex(token, body).encode()) else \
            f"{header} does not match the body signed with the Secret's token"
    if kind is ReceiverType.GITEA:
        signed = next((h for h in ("x-gitea-signature", "x-forgejo-signature") if headers.get(h)), None)
        if signed is None:
            return "no x-gitea-signature header"
        return None if hmac.compare_digest(headers[signed].lower().encode(), _hmac_hex(token, body).encode()) else \
            f"{signed} does not match the body signed with the Secret's token"
    sent = headers.get("x-gitlab-token")
    if not sent:
        return "no x-gitlab-token header"
    return None if hmac.compare_digest(sent.encode(), token.encode()) else "x-gitlab-token is not the Secret's token"


def pushed(kind: ReceiverType, headers: Mapping[str, str], body: bytes, branch: str) -> str | None:
    """None when this verified request is a push to `branch` (or a generic call naming no ref),
    else what it is instead (it is answered without a sync)."""
    events = PUSH_EVENTS[kind]
    if events is not None:
        names, push = events
        event = next((headers[h] for h in names if headers.get(h)), None)
        if event != push:
            return f"event {event or 'none'} is not a push"
    try:
        payload = json.loads(body) if body.strip() else {}
    except ValueError:
        if kind is ReceiverType.GENERIC:
            return None
        return "the body is not JSON"
    ref = payload.get("ref") if isinstance(payload, Mapping) else None
    if ref is None and kind is ReceiverType.GENERIC:
        return None
    if ref != f"refs/heads/{branch}":
        return f"a push to {ref}, not to refs/heads/{branch}"
    return None


@dataclass(frozen=True)
class Answer:
    status: str
    text: str


class Receiver:
    """Answers `POST /hook/<namespace>/<name>`: verifies it against that GitSource's webhook and,
    for a push to its branch, calls `request(namespace, name)` (the sync's wake-up)."""

    def __init__(self, api: client.ApiClient, request: Callable[[str, str], None], *, timeout: float,
                 leading: Callable[[], bool] = lambda: True) -> None:
        self.api = api
        self.objects = client.CustomObjectsApi(api)
        self.request = request
        self.timeout = timeout
        self.leading = leading

    def handle(self, method: str, path: str, headers: Mapping[str, str], body: bytes) -> Answer:
        parts = path.removeprefix(PREFIX).strip("/").split("/") if path.startswith(PREFIX) else []
        if len(parts) != 2 or not all(parts):
            return Answer("404 Not Found", "not found: push webhooks are POST /hook/<namespace>/<name>")
        if method != "POST":
            return Answer("405 Method Not Allowed", "POST only")
        namespace, name = parts
        ident = f"{namespace}/{name}"
        try:
            obj = cast(dict[str, Any], self.objects.get_namespaced_custom_object(
                GROUP, VERSION, namespace, PLURALS[GIT_SOURCE], name, _request_timeout=self.timeout))
            source = parse_gitsource(obj)
        except ApiException as e:
            if e.status == 404:
                return Answer("404 Not Found", f"no GitSource {ident} with a webhook")
            log.warning("webhook for GitSource %s: reading it failed: %s", ident, e.reason)
            return Answer("503 Service Unavailable", "the GitSource cannot be read now; try again")
        except (HTTPError, OSError) as e:
            log.warning("webhook for GitSource %s: reading it failed: %s", ident, e)
            return Answer("503 Service Unavailable", "the GitSource cannot be read now; try again")
        except ValidationError:
            return Answer("409 Conflict", f"GitSource {ident} is invalid (see its Ready condition)")
        hook = source.spec.webhook
        if hook is None:
            return Answer("404 Not Found", f"no GitSource {ident} with a webhook")
        try:
            token = secret_data(self.api, namespace, hook.secret_ref, timeout=self.timeout).get(TOKEN_KEY)
        except SecretError as e:
            log.warning("webhook for GitSource %s: %s", ident, e)
            return Answer("500 Internal Server Error", "the webhook's Secret cannot be read")
        except (ApiException, HTTPError, OSError) as e:
            log.warning("webhook for GitSource %s: reading its Secret failed: %s", ident, e)
            return Answer("503 Service Unavailable", "the webhook's Secret cannot be read now; try again")
        if not token:
            log.warning("webhook for GitSource %s: Secret %s/%s has no key %r", ident, namespace, hook.secret_ref,
                        TOKEN_KEY)
            return Answer("500 Internal Server Error", "the webhook's Secret has no token")
        problem = verify(hook.type, headers, body, token)
        if problem is not None:
            log.warning("webhook for GitSource %s refused (401): %s", ident, problem)
            return Answer("401 Unauthorized", f"refused: {problem}")
        if (other := pushed(hook.type, headers, body, source.spec.branch)) is not None:
            return Answer("200 OK", f"nothing to do: {other}")
        if not self.leading():
            return Answer("503 Service Unavailable", "this replica is a standby; the leader syncs")
        log.info("webhook for GitSource %s: a push to %s, syncing now", ident, source.spec.branch)
        self.request(namespace, name)
        return Answer("202 Accepted", f"syncing GitSource {ident}")

    def app(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        """The WSGI application."""
        try:
            length = int(environ.get("CONTENT_LENGTH") or 0)
        except ValueError:
            length = -1
        if length < 0 or length > MAX_BODY:
            answer = Answer("413 Content Too Large", f"the body must be at most {MAX_BODY} bytes")
        else:
            body = environ["wsgi.input"].read(length) if length else b""
            headers = {k[5:].replace("_", "-").lower(): str(v) for k, v in environ.items() if k.startswith("HTTP_")}
            answer = self.handle(environ.get("REQUEST_METHOD", "GET"), environ.get("PATH_INFO") or "/", headers, body)
        data = (answer.text + "\n").encode()
        start_response(answer.status, [("Content-Type", "text/plain; charset=utf-8"),
                                       ("Content-Length", str(len(data)))])
        return [data]


ReceiverServer = Served


def serve(addr: str, receiver: Receiver) -> ReceiverServer | None:
    """Serve `receiver` on `addr` (`HOST:PORT`) in a thread; None when `addr` is `0` or empty.
    OSError (its filename `--webhook-addr`) when the port cannot be bound."""
    return serve_wsgi(addr, receiver.app, "rollout-webhooks",
                      "GitSource push webhooks (POST /hook/<namespace>/<name>)", WEBHOOK_FLAG)
