"""Fakes of the Git hosts' pull request APIs, one HTTP server on 127.0.0.1 per test.

GitHub, GitLab, Gitea/Forgejo, Bitbucket Cloud and Azure DevOps cannot run here (they are hosted
services, or need far more than a test machine has), so each is played by this small server that
answers with the request and response shapes of the host's own API documentation:

- GitHub: https://docs.github.com/en/rest/pulls/pulls#list-pull-requests and
  #create-a-pull-request (422 "A pull request already exists" for a second one from a head).
- GitLab: https://docs.gitlab.com/api/merge_requests/#list-project-merge-requests and #create-mr
  (409 when an open merge request from the source branch exists).
- Gitea / Forgejo: https://gitea.com/api/swagger#/repository/repoListPullRequests and
  #/repository/repoCreatePullRequest (409 for a second open one).
- Bitbucket Cloud: https://developer.atlassian.com/cloud/bitbucket/rest/api-group-pullrequests/
  (`q` filtering per https://developer.atlassian.com/cloud/bitbucket/rest/intro/#filtering; only
  OPEN ones unless `state` says otherwise).
- Azure DevOps: https://learn.microsoft.com/en-us/rest/api/azure/devops/git/pull-requests/get-pull-requests?view=azure-devops-rest-7.1
  and .../create?view=azure-devops-rest-7.1 (status defaults to active; descriptions in lists cut
  to 400 characters).

The Git side is real: a request's branch must exist in the bare repository, and `merge` moves
the base branch to the merged result with real git (a fast-forward, or a merge commit).
Each answers 401 without the token the way that host expects it.
"""

from __future__ import annotations

import base64
import json
import re
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, quote, urlsplit

from tests.gitrepo import git

HOSTS = ("github", "gitlab", "gitea", "bitbucket", "azure")


@dataclass
class Pull:
    number: int
    branch: str
    base: str
    title: str
    body: str
    state: str = "open"  # open | merged | closed


@dataclass
class FakeHost:
    kind: str
    bare: Path  # the repository the requests are about
    repository: str  # as the host names it: owner/name, a GitLab path, Azure org/project/repo
    token: str
    port: int = 0
    pulls: list[Pull] = field(default_factory=list)
    calls: list[tuple[str, str]] = field(default_factory=list)  # (method, path) of each authorised call
    refused: int = 0

    @property
    def api_url(self) -> str:
        base = f"http://127.0.0.1:{self.port}"
        return {"github": base, "gitlab": f"{base}/api/v4", "gitea": f"{base}/api/v1",
                "bitbucket": f"{base}/2.0", "azure": base}[self.kind]

    def merge(self, number: int) -> str:
        """Merge the request into its base with real git, as the host's merge button does."""
        pull = next(p for p in self.pulls if p.number == number)
        head = git(self.bare, "rev-parse", f"refs/heads/{pull.branch}")
        base = git(self.bare, "rev-parse", f"refs/heads/{pull.base}")
        if git(self.bare, "merge-base", base, head) == base:
            merged = head  # fast-forward
        else:
            tree = git(self.bare, "merge-tree", "--write-tree", base, head)
            merged = git(self.bare, "commit-tree", tree.splitlines()[0], "-p", base, "-p", head, "-m",
                         f"Merge pull request #{number} from {pull.branch}")
        git(self.bare, "update-ref", f"refs/heads/{pull.base}", merged, base)
        pull.state = "merged"
        return merged

    # -- each host's shapes ---------------------------------------------------------------------

    def web(self, p: Pull) -> str:
        r = self.repository
        if self.kind == "github":
            return f"https://github.com/{r}/pull/{p.number}"
        if self.kind == "gitlab":
            return f"https://gitlab.com/{r}/-/merge_requests/{p.number}"
        if self.kind == "gitea":
            return f"https://codeberg.org/{r}/pulls/{p.number}"
        if self.kind == "bitbucket":
            return f"https://bitbucket.org/{r}/pull-requests/{p.number}"
        org, project, repo = r.split("/")
        return f"https://dev.azure.com/{org}/{project}/_git/{repo}/pullrequest/{p.number}"

    def shape(self, p: Pull, listed: bool = False) -> dict[str, Any]:
        owner = self.repository.split("/")[0]
        if self.kind == "github":
            return {"number": p.number, "html_url": self.web(p), "title": p.title, "body": p.body,
                    "state": "open" if p.state == "open" else "closed",
                    "merged_at": "2024-01-01T00:00:00Z" if p.state == "merged" else None,
                    "head": {"ref": p.branch, "label": f"{owner}:{p.branch}"}, "base": {"ref": p.base}}
        if self.kind == "gitlab":
            return {"id": 1000 + p.number, "iid": p.number, "web_url": self.web(p), "title": p.title,
                    "description": p.body, "state": {"open": "opened"}.get(p.state, p.state),
                    "source_branch": p.branch, "target_branch": p.base}
        if self.kind == "gitea":
            return {"number": p.number, "html_url": self.web(p), "title": p.title, "body": p.body,
                    "state": "open" if p.state == "open" else "closed", "merged": p.state == "merged",
                    "head": {"ref": p.branch, "label": p.branch}, "base": {"ref": p.base}}
        if self.kind == "bitbucket":
            return {"id": p.number, "title": p.title, "description": p.body, "type": "pullrequest",
                    "state": {"open": "OPEN", "merged": "MERGED", "closed": "DECLINED"}[p.state],
                    "source": {"branch": {"name": p.branch}}, "destination": {"branch": {"name": p.base}},
                    "links": {"html": {"href": self.web(p)}}}
        org, project, repo = self.repository.split("/")
        return {"pullRequestId": p.number, "title": p.title,
                "description": p.body[:400] if listed else p.body,
                "status": {"open": "active", "merged": "completed", "closed": "abandoned"}[p.state],
                "sourceRefName": f"refs/heads/{p.branch}", "targetRefName": f"refs/heads/{p.base}",
                "repository": {"name": repo, "webUrl": f"https://dev.azure.com/{org}/{project}/_git/{repo}"},
                "url": f"https://dev.azure.com/{org}/{project}/_apis/git/repositories/{repo}/pullRequests/{p.number}"}

    def authorised(self, headers: Any) -> bool:
        auth = headers.get("Authorization") or ""
        if self.kind == "gitlab":
            return bool(headers.get("PRIVATE-TOKEN") == self.token)
        if self.kind == "gitea":
            return bool(auth == f"token {self.token}")
        if self.kind == "azure":
            return bool(auth == "Basic " + base64.b64encode(f":{self.token}".encode()).decode())
        return bool(auth == f"Bearer {self.token}")

    def pulls_path(self) -> str:
        r = self.repository
        if self.kind == "github":
            return f"/repos/{r}/pulls"
        if self.kind == "gitlab":
            return f"/api/v4/projects/{quote(r, safe='')}/merge_requests"
        if self.kind == "gitea":
            return f"/api/v1/repos/{r}/pulls"
        if self.kind == "bitbucket":
            return f"/2.0/repositories/{r}/pullrequests"
        org, project, repo = r.split("/")
        return f"/{org}/{project}/_apis/git/repositories/{repo}/pullrequests"

    def listing(self, query: dict[str, list[str]]) -> tuple[int, Any]:
        one = {k: v[0] for k, v in query.items()}
        pulls = list(reversed(self.pulls))  # newest first
        if self.kind == "github":
            state = one.get("state", "open")
            head = one.get("head", "")
            out = [p for p in pulls if not head or head == f"{self.repository.split('/')[0]}:{p.branch}"]
            out = [p for p in out if state == "all" or (p.state == "open") == (state == "open")]
            return 200, [self.shape(p) for p in out]
        if self.kind == "gitlab":
            state = one.get("state", "all")
            out = [p for p in pulls if p.branch == one.get("source_branch", p.branch)]
            out = [p for p in out if state == "all" or {"open": "opened"}.get(p.state, p.state) == state]
            return 200, [self.shape(p) for p in out]
        if self.kind == "gitea":
            state = one.get("state", "open")
            out = [p for p in pulls if state == "all" or (p.state == "open") == (state == "open")]
            return 200, [self.shape(p) for p in out]
        if self.kind == "bitbucket":
            states = set(query.get("state") or ["OPEN"])
            m = re.fullmatch(r'source\.branch\.name\s*=\s*"([^"]*)"', one.get("q", "")) if "q" in one else None
            out = [p for p in pulls if self.shape(p)["state"] in states and (m is None or p.branch == m[1])]
            return 200, {"values": [self.shape(p) for p in out], "pagelen": 50, "size": len(out), "page": 1}
        status = one.get("searchCriteria.status", "active")
        source = one.get("searchCriteria.sourceRefName")
        out = [p for p in pulls if source is None or f"refs/heads/{p.branch}" == source]
        out = [p for p in out if status == "all" or self.shape(p)["status"] == status]
        return 200, {"value": [self.shape(p, listed=True) for p in out], "count": len(out)}

    def create(self, body: dict[str, Any]) -> tuple[int, Any]:
        if self.kind in ("github", "gitea"):
            branch, base, title, text = body.get("head"), body.get("base"), body.get("title"), body.get("body", "")
        elif self.kind == "gitlab":
            branch, base, title, text = (body.get("source_branch"), body.get("target_branch"), body.get("title"),
                                         body.get("description", ""))
        elif self.kind == "bitbucket":
            branch = ((body.get("source") or {}).get("branch") or {}).get("name")
            base = ((body.get("destination") or {}).get("branch") or {}).get("name")
            title, text = body.get("title"), body.get("description", "")
        else:
            branch = str(body.get("sourceRefName") or "").removeprefix("refs/heads/")
            base = str(body.get("targetRefName") or "").removeprefix("refs/heads/")
            title, text = body.get("title"), body.get("description", "")
            if len(text) > 4000:
                return 400, {"message": "The description exceeds the maximum length of 4000 characters."}
        if not (isinstance(branch, str) and isinstance(base, str) and title):
            return 422, {"message": "Validation Failed"}
        for ref in (branch, base):
            try:
                git(self.bare, "rev-parse", "--verify", f"refs/heads/{ref}")
            except RuntimeError:
                return 422, {"message": "Validation Failed", "errors": [{"field": "head", "code": "invalid"}]}
        if any(p.branch == branch and p.state == "open" for p in self.pulls):
            conflict = 422 if self.kind == "github" else 409
            return conflict, {"message": f"A pull request already exists for {branch}."}
        pull = Pull(len(self.pulls) + 1, branch, base, str(title), str(text))
        self.pulls.append(pull)
        return 201, self.shape(pull)


@contextmanager
def fake_host(kind: str, bare: Path, repository: str, token: str) -> Iterator[FakeHost]:
    host = FakeHost(kind, bare, repository, token)
    lock = threading.Lock()

    class Handler(BaseHTTPRequestHandler):
        def log_message(self, format: str, *args: Any) -> None:
            pass

        def answer(self, status: int, payload: Any) -> None:
            data = json.dumps(payload).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def handle_any(self, method: str) -> None:
            parts = urlsplit(self.path)
            length = int(self.headers.get("Content-Length") or 0)
            raw = self.rfile.read(length) if length else b""
            with lock:
                if not host.authorised(self.headers):
                    host.refused += 1
                    self.answer(401, {"message": "Bad credentials"})
                    return
                if parts.path.rstrip("/") != host.pulls_path():
                    self.answer(404, {"message": "Not Found"})
                    return
                host.calls.append((method, parts.path))
                if method == "GET":
                    self.answer(*host.listing(parse_qs(parts.query)))
                else:
                    self.answer(*host.create(json.loads(raw or b"{}")))

        def do_GET(self) -> None:
            self.handle_any("GET")

        def do_POST(self) -> None:
            self.handle_any("POST")

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    host.port = server.server_address[1]
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield host
    finally:
        server.shutdown()
        server.server_close()


def repository_for(kind: str) -> str:
    return "platform/apps/deploy" if kind == "azure" else "platform/deploy"
