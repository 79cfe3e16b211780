"""GitHub (and GitHub Enterprise): REST API pulls.

https://docs.github.com/en/rest/pulls/pulls#list-pull-requests (GET /repos/{owner}/{repo}/pulls,
`head=owner:branch`, `state=all`) and #create-a-pull-request (POST, {title, head, base, body});
a pull request has `number`, `html_url`, `state` (open|closed) and `merged_at`.
"""

from __future__ import annotations

from typing import Any

from rollout.api.status import PullRequest, PullRequestState

from . import Found
from .http import Http


class GitHub:
    def __init__(self, http: Http, repository: str) -> None:
        self.http = http
        self.repository = repository
        self.headers = {"Authorization": f"Bearer {http.token}", "Accept": "application/vnd.github+json",
                        "X-GitHub-Api-Version": "2022-11-28"}

    def find(self, branch: str) -> list[Found]:
        owner = self.repository.split("/")[0]
        pulls = self.http.call("GET", f"repos/{self.repository}/pulls", headers=self.headers,
                               params={"head": f"{owner}:{branch}", "state": "all", "per_page": "100"})
        return [_found(p) for p in pulls or () if (p.get("head") or {}).get("ref", branch) == branch]

    def open(self, branch: str, base: str, title: str, body: str) -> Found:
        return _found(self.http.call("POST", f"repos/{self.repository}/pulls", headers=self.headers,
                                     json={"title": title, "head": branch, "base": base, "body": body}))


def _found(p: dict[str, Any]) -> Found:
    if p.get("merged_at"):
        state = PullRequestState.MERGED
    else:
        state = PullRequestState.OPEN if p.get("state") == "open" else PullRequestState.CLOSED
    return Found(PullRequest(str(p["html_url"]), int(p["number"]), state), str(p.get("body") or ""))
