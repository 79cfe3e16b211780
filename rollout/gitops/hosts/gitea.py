"""Gitea and Forgejo (Codeberg): the v1 API's pulls.

https://gitea.com/api/swagger#/repository/repoListPullRequests (GET /repos/{owner}/{repo}/pulls,
`state=all`; it has no head filter, so the list is filtered here on `head.ref`) and
#/repository/repoCreatePullRequest (POST, {title, head, base, body}); a pull request has
`number`, `html_url`, `state` (open|closed) and `merged`. Auth: `Authorization: token ...`.
Forgejo keeps this API (https://codeberg.org/api/swagger).
"""

from __future__ import annotations

from typing import Any

from rollout.api.status import PullRequest, PullRequestState

from . import Found
from .http import Http

_PAGES = 5  # 50 a page: the newest 250 requests are searched for the branch


class Gitea:
    def __init__(self, http: Http, repository: str) -> None:
        self.http = http
        self.repository = repository
        self.headers = {"Authorization": f"token {http.token}"}

    def find(self, branch: str) -> list[Found]:
        out: list[Found] = []
        for page in range(1, _PAGES + 1):
            pulls = self.http.call("GET", f"repos/{self.repository}/pulls", headers=self.headers,
                                   params={"state": "all", "sort": "newest", "limit": "50", "page": str(page)})
            out += [_found(p) for p in pulls or () if (p.get("head") or {}).get("ref") == branch]
            if not pulls or len(pulls) < 50:
                break
        return out

    def open(self, branch: str, base: str, title: str, body: str) -> Found:
        return _found(self.http.call("POST", f"repos/{self.repository}/pulls", headers=self.headers,
                                     json={"title": title, "head": branch, "base": base, "body": body}))


def _found(p: dict[str, Any]) -> Found:
    if p.get("merged"):
        state = PullRequestState.MERGED
    else:
        state = PullRequestState.OPEN if p.get("state") == "open" else PullRequestState.CLOSED
    return Found(PullRequest(str(p["html_url"]), int(p["number"]), state), str(p.get("body") or ""))
