"""The one HTTP client the host modules share: JSON in and out, a timeout on every call, and an
error that says which call failed and how, never with the token."""

from __future__ import annotations

from typing import Any

import requests


class HostError(Exception):
    """A Git host's API refused or did not answer (the message has no credentials)."""


class Http:
    def __init__(self, base: str, token: str, username: str | None, *, timeout: float) -> None:
        self.base = base.rstrip("/")
        self.token = token
        self.username = username
        self.timeout = timeout
        self.session = requests.Session()

    def call(self, method: str, path: str, *, headers: dict[str, str], params: dict[str, str] | None = None,
             json: Any = None, auth: tuple[str, str] | None = None) -> Any:
        url = f"{self.base}/{path.lstrip('/')}"
        try:
            response = self.session.request(method, url, headers={"Accept": "application/json", **headers},
                                            params=params, json=json, auth=auth, timeout=self.timeout)
        except requests.RequestException as e:
            raise HostError(f"{method} {url}: {type(e).__name__}") from None
        if response.status_code >= 300:
            raise HostError(f"{method} {url}: HTTP {response.status_code} {response.text[:200]}")
        try:
            return response.json() if response.content else None
        except ValueError:
            raise HostError(f"{method} {url}: the answer is not JSON") from None
