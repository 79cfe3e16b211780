"""Bitbucket Cloud: pull requests of the 2.0 API.

https://developer.atlassian.com/cloud/bitbucket/rest/api-group-pullrequests/ : GET
/repositories/{workspace}/{repo_slug}/pullrequests with `q=source.branch.name="..."` (filtering:
https://developer.atlassian.com/cloud/bitbucket/rest/intro/#filtering) and one `state` parameter
per state wanted; POST the same with {title, description, source: {branch: {name}},
destination: {branch: {name}}}. A pull request has `id`, `state` (OPEN|MERGED|DECLINED|
SUPERSEDED), `links.html.href` and `description`. Auth: an access token as Bearer, or a
username with an app password (Basic) when the secret has a username.
"""

from __future__ import annotations

from typing import Any

from rollout.api.status import PullRequest, PullRequestState

from . import Found
from .http import Http


class Bitbucket:
    def __init__(self, http: Http, repository: str) -> None:
        self.http = http
        self.repository = repository
        self.auth = (http.username, http.token) if http.username else None
        self.headers = {} if self.auth else {"Authorization": f"Bearer {http.token}"}

    def find(self, branch: str) -> list[Found]:
        path = f"repositories/{self.repository}/pullrequests"
        query = "&".join(f"state={s}" for s in ("OPEN", "MERGED", "DECLINED", "SUPERSEDED"))
        page = self.http.call("GET", f"{path}?{query}", headers=self.headers, auth=self.auth,
                              params={"q": f'source.branch.name="{branch}"', "pagelen": "50"})
        return [_found(p) for p in (page or {}).get("values") or ()]

    def open(self, branch: str, base: str, title: str, body: str) -> Found:
        return _found(self.http.call(
            "POST", f"repositories/{self.repository}/pullrequests", headers=self.headers, auth=self.auth,
            json={"title": title, "description": body, "source": {"branch": {"name": branch}},
                  "destination": {"branch": {"name": base}}, "close_source_branch": True}))


def _found(p: dict[str, Any]) -> Found:
    state = {"OPEN": PullRequestState.OPEN, "MERGED": PullRequestState.MERGED}.get(
        str(p.get("state")), PullRequestState.CLOSED)
    href = ((p.get("links") or {}).get("html") or {}).get("href")
    return Found(PullRequest(str(href), int(p["id"]), state), str(p.get("description") or ""))
