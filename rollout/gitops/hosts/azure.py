"""Azure DevOps (Azure Repos): Git pull requests.

https://learn.microsoft.com/en-us/rest/api/azure/devops/git/pull-requests/get-pull-requests?view=azure-devops-rest-7.1
(GET {org}/{project}/_apis/git/repositories/{repo}/pullrequests with
`searchCriteria.sourceRefName=refs/heads/...` and `searchCriteria.status=all`; the answer is
{value: [...], count}, descriptions cut to 400 characters) and .../pull-requests/create (POST,
{sourceRefName, targetRefName, title, description}, a description of at most 4000 characters).
A pull request has `pullRequestId`, `status` (active|completed|abandoned) and
`repository.webUrl`; its page is `<webUrl>/pullrequest/<id>`. Auth: a PAT as Basic (empty user).
"""

from __future__ import annotations

from typing import Any

from rollout.api.status import PullRequest, PullRequestState

from . import Found
from .http import Http

API_VERSION = "7.1"
DESCRIPTION_LIMIT = 4000


class Azure:
    def __init__(self, http: Http, repository: str) -> None:
        org, project, repo = [*repository.split("/"), "", "", ""][:3]
        self.http = http
        self.path = f"{org}/{project}/_apis/git/repositories/{repo}/pullrequests"
        self.auth = (http.username or "", http.token)

    def find(self, branch: str) -> list[Found]:
        page = self.http.call("GET", self.path, headers={}, auth=self.auth, params={
            "searchCriteria.sourceRefName": f"refs/heads/{branch}", "searchCriteria.status": "all",
            "api-version": API_VERSION})
        return [_found(p) for p in (page or {}).get("value") or ()]

    def open(self, branch: str, base: str, title: str, body: str) -> Found:
        if len(body) > DESCRIPTION_LIMIT:
            body = body[: DESCRIPTION_LIMIT - 20].rsplit("\n", 1)[0] + "\n\n(report cut)"
        return _found(self.http.call("POST", self.path, headers={}, auth=self.auth,
                                     params={"api-version": API_VERSION},
                                     json={"sourceRefName": f"refs/heads/{branch}",
                                           "targetRefName": f"refs/heads/{base}", "title": title,
                                           "description": body}))


def _found(p: dict[str, Any]) -> Found:
    state = {"active": PullRequestState.OPEN, "completed": PullRequestState.MERGED}.get(
        str(p.get("status")), PullRequestState.CLOSED)
    number = int(p["pullRequestId"])
    web = str((p.get("repository") or {}).get("webUrl") or "").rstrip("/")
    return Found(PullRequest(f"{web}/pullrequest/{number}", number, state), str(p.get("description") or ""))
