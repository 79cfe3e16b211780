"""GitLab: merge requests.

https://docs.gitlab.com/api/merge_requests/#list-project-merge-requests (GET
/projects/{id}/merge_requests, `source_branch`, `state=all`; the id may be the URL-encoded path)
and #create-mr (POST, {source_branch, target_branch, title, description}); a merge request has
`iid`, `web_url`, `state` (opened|closed|locked|merged) and `description`. Auth: PRIVATE-TOKEN.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

from rollout.api.status import PullRequest, PullRequestState

from . import Found
from .http import Http


class GitLab:
    def __init__(self, http: Http, repository: str) -> None:
        self.http = http
        self.project = quote(repository, safe="")
        self.headers = {"PRIVATE-TOKEN": http.token}

    def find(self, branch: str) -> list[Found]:
        found = self.http.call("GET", f"projects/{self.project}/merge_requests", headers=self.headers,
                               params={"source_branch": branch, "state": "all", "per_page": "100"})
        return [_found(m) for m in found or ()]

    def open(self, branch: str, base: str, title: str, body: str) -> Found:
        return _found(self.http.call("POST", f"projects/{self.project}/merge_requests", headers=self.headers,
                                     json={"source_branch": branch, "target_branch": base, "title": title,
                                           "description": body, "remove_source_branch": True}))


def _found(m: dict[str, Any]) -> Found:
    state = {"opened": PullRequestState.OPEN, "locked": PullRequestState.OPEN,
             "merged": PullRequestState.MERGED}.get(str(m.get("state")), PullRequestState.CLOSED)
    return Found(PullRequest(str(m["web_url"]), int(m["iid"]), state), str(m.get("description") or ""))
