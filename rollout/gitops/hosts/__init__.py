"""Pull/merge requests on the Git hosts, through each host's REST API: the revert as a request.

One module per host behind the `HostApi` protocol and an explicit registry (`HOSTS`); `locate`
says which host (and API base, and repository) a repository URL belongs to, from the URL or from
`git.pullRequest`. Each host is asked two things only: the requests whose source branch is this
one (any state), and to open one. A token from the Git secret authenticates; it never appears in
an error (`HostError` messages are scrubbed by the caller with the credentials' secrets).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol
from urllib.parse import urlsplit

from rollout.api.spec import GitHost, PullRequestSpec
from rollout.api.status import PullRequest

from .http import HostError, Http


@dataclass(frozen=True)
class Found:
    """One pull request as its host reports it."""

    pull_request: PullRequest
    body: str  # its description (Azure DevOps truncates it to 400 characters in lists)


class HostApi(Protocol):
    def find(self, branch: str) -> list[Found]:
        """The requests from `branch`, in any state, newest first."""

    def open(self, branch: str, base: str, title: str, body: str) -> Found:
        """Open a request from `branch` into `base`."""


@dataclass(frozen=True)
class Location:
    host: GitHost
    api_url: str
    repository: str


def locate(url: str, spec: PullRequestSpec) -> Location:
    """The host, API base and repository of the repository at `url` (as cloned); `spec` fields win.
    ValueError names what cannot be inferred."""
    host_name, path = _host_and_path(url)
    path = path.strip("/").removesuffix(".git")
    host = spec.host or _infer_host(host_name)
    if host is None:
        raise ValueError(f"cannot tell which Git host serves {url}; set git.pullRequest.host and apiURL")
    repository = spec.repository or _infer_repository(host, host_name, path)
    if not repository:
        raise ValueError(f"cannot tell the repository of {url} on {host.value}; set git.pullRequest.repository")
    api_url = spec.api_url or _infer_api(host, host_name)
    if not api_url:
        raise ValueError(f"cannot tell the {host.value} API of {url}; set git.pullRequest.apiURL")
    return Location(host, api_url, repository)


def _host_and_path(url: str) -> tuple[str, str]:
    if "://" not in url and ":" in url:  # scp-like: git@github.com:owner/name.git
        left, path = url.split(":", 1)
        return left.rsplit("@", 1)[-1].lower(), path
    parts = urlsplit(url)
    return (parts.hostname or "").lower(), parts.path


def _infer_host(name: str) -> GitHost | None:
    if name == "github.com" or name.startswith("github."):
        return GitHost.GITHUB
    if name == "gitlab.com" or name.startswith("gitlab."):
        return GitHost.GITLAB
    if name == "bitbucket.org":
        return GitHost.BITBUCKET
    if name in ("dev.azure.com", "ssh.dev.azure.com") or name.endswith(".visualstudio.com"):
        return GitHost.AZURE
    if name in ("codeberg.org",) or name.startswith(("gitea.", "forgejo.")):
        return GitHost.GITEA
    return None


def _infer_repository(host: GitHost, name: str, path: str) -> str | None:
    parts = [p for p in path.split("/") if p]
    if host is GitHost.AZURE:
        # https: <org>/<project>/_git/<repo>; ssh: v3/<org>/<project>/<repo>
        if len(parts) == 4 and parts[2] == "_git":
            return f"{parts[0]}/{parts[1]}/{parts[3]}"
        if len(parts) == 4 and parts[0] == "v3":
            return "/".join(parts[1:])
        return None
    if host is GitHost.GITLAB:
        return "/".join(parts) if len(parts) >= 2 else None  # groups nest
    return "/".join(parts) if len(parts) == 2 else None


def _infer_api(host: GitHost, name: str) -> str | None:
    if host is GitHost.GITHUB:
        return "https://api.github.com" if name == "github.com" else f"https://{name}/api/v3"
    if host is GitHost.GITLAB:
        return f"https://{name}/api/v4"
    if host is GitHost.BITBUCKET:
        return "https://api.bitbucket.org/2.0"
    if host is GitHost.AZURE:
        return "https://dev.azure.com"
    if host is GitHost.GITEA:
        return f"https://{name}/api/v1"
    return None


def _registry() -> dict[GitHost, Callable[[Http, str], HostApi]]:
    from .azure import Azure
    from .bitbucket import Bitbucket
    from .gitea import Gitea
    from .github import GitHub
    from .gitlab import GitLab

    return {GitHost.GITHUB: GitHub, GitHost.GITLAB: GitLab, GitHost.GITEA: Gitea, GitHost.BITBUCKET: Bitbucket,
            GitHost.AZURE: Azure}


def host_api(location: Location, token: str, username: str | None, *, timeout: float) -> HostApi:
    """The API client of `location`'s host, authenticated by `token` as that host expects."""
    make = _registry().get(location.host)
    if make is None:
        raise ValueError(f"unknown Git host {location.host!r}; known: {', '.join(h.value for h in GitHost)}")
    return make(Http(location.api_url, token, username, timeout=timeout), location.repository)


__all__ = ["Found", "HostApi", "HostError", "Location", "host_api", "locate"]
