"""`git.push: pullRequest` against a real Git remote and each Git host's pull request API.

The hosts cannot run here, so each is a fake on 127.0.0.1 (`tests.githosts`) answering with the
shapes of that host's API documentation (cited there); the Git side is real: the revert branch
is pushed to a bare repository, and a merge moves `main` with real git. Every host is asked the
same story: a request is opened with the report, asking again finds it (never a second one),
a merge is reported as merged, a foreign request from the branch is refused, a wrong token fails
without showing it.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from rollout.api.spec import GitHost, PullRequestSpec, PushMode
from rollout.api.status import PullRequestState, RevertState
from rollout.core import RevertOutcome
from rollout.gitops.hosts import Location, host_api, locate
from rollout.gitops.revert.pullrequest import with_pull_request
from tests.component.test_revert import GOOD, PODINFO, Remote, bad_release, failed_release
from tests.githosts import HOSTS, FakeHost, fake_host, repository_for
from tests.gitrepo import git
from tests.tools import missing_tool

pytestmark = pytest.mark.component

TOKEN = "host-token-never-shown"


@pytest.fixture
def remote(tmp_path: Path) -> Remote:
    if shutil.which("git") is None:
        missing_tool("GIT NOT FOUND - the revert writer's tests need the git program")
    return Remote(tmp_path, "file")


def ask(host: FakeHost, remote: Remote, release: tuple[str, str], token: str = TOKEN) -> RevertOutcome:
    """The writer's push, then the pull request step, as `GitRevertWriter` runs them."""
    promoted, candidate = release
    request = failed_release(candidate_revision=candidate, promoted_revision=promoted, push=PushMode.PULL_REQUEST)
    pushed = remote.revert(request)
    api = host_api(Location(GitHost(host.kind), host.api_url, host.repository), token, None, timeout=5)
    return with_pull_request(pushed, request, "main", api, (token,), "https://reports.example/prod-podinfo.html")


@pytest.mark.parametrize("kind", HOSTS)
def test_a_revert_pull_request_is_opened_once_and_followed_to_merged(remote: Remote, kind: str) -> None:
    release = bad_release(remote)
    candidate = release[1]
    head = remote.head()
    with fake_host(kind, remote.bare, repository_for(kind), TOKEN) as host:
        outcome = ask(host, remote, release)
        branch = f"rollout/revert-prod-podinfo-{candidate[:7]}"
        assert outcome.state is RevertState.PUSHED, outcome.message
        pr = outcome.pull_request
        assert pr is not None and pr.state is PullRequestState.OPEN and pr.number == 1
        assert pr.url == host.web(host.pulls[0])
        assert outcome.branch == branch and remote.head() == head
        assert [(p.branch, p.base) for p in host.pulls] == [(branch, "main")]
        body = host.pulls[0].body
        assert host.pulls[0].title == f"revert(podinfo): roll back {failed_release().image} after failed canary"
        assert "| request-success-rate | fail | 91.20 | 99.95 | >= 99 |" in body
        assert "[Full analysis report with plots](https://reports.example/prod-podinfo.html)" in body
        assert "Rollout-Canary: prod/podinfo" in body
        assert f"Rollout-Reverts: {candidate}" in body

        again = ask(host, remote, release)
        assert again.pull_request == pr and len(host.pulls) == 1
        assert sum(m == "POST" for m, _ in host.calls) == 1

        merged_head = host.merge(pr.number)
        assert f"image: {GOOD}" in remote.show("main", PODINFO)
        merged = ask(host, remote, release)
        assert merged.state is RevertState.PUSHED
        assert merged.pull_request is not None and merged.pull_request.state is PullRequestState.MERGED
        assert remote.head() == merged_head and len(host.pulls) == 1


@pytest.mark.parametrize("kind", ["github", "azure"])
def test_a_closed_request_is_reported_and_never_opened_again(remote: Remote, kind: str) -> None:
    release = bad_release(remote)
    with fake_host(kind, remote.bare, repository_for(kind), TOKEN) as host:
        ask(host, remote, release)
        host.pulls[0].state = "closed"  # a person closed it without merging
        outcome = ask(host, remote, release)
        assert outcome.pull_request is not None and outcome.pull_request.state is PullRequestState.CLOSED
        assert len(host.pulls) == 1


def test_a_foreign_request_from_the_branch_is_refused_not_doubled(remote: Remote) -> None:
    release = bad_release(remote)
    candidate = release[1]
    branch = f"rollout/revert-prod-podinfo-{candidate[:7]}"
    git(remote.bare, "branch", branch, "main")
    with fake_host("github", remote.bare, "platform/deploy", TOKEN) as host:
        host.create({"head": branch, "base": "main", "title": "someone's", "body": "not ours"})
        outcome = ask(host, remote, release)
        assert outcome.state is RevertState.FAILED
        assert "not this Canary's revert" in outcome.message
        assert len(host.pulls) == 1


@pytest.mark.parametrize("kind", HOSTS)
def test_a_wrong_token_fails_without_showing_it(remote: Remote, kind: str) -> None:
    release = bad_release(remote)
    with fake_host(kind, remote.bare, repository_for(kind), TOKEN) as host:
        wrong = "wrong-token-also-secret"
        outcome = ask(host, remote, release, token=wrong)
        assert outcome.state is RevertState.FAILED and "401" in outcome.message
        assert wrong not in outcome.message and host.refused >= 1 and not host.pulls


@pytest.mark.parametrize(("url", "expected"), [
    ("https://github.com/acme/deploy.git", (GitHost.GITHUB, "https://api.github.com", "acme/deploy")),
    ("git@github.com:acme/deploy.git", (GitHost.GITHUB, "https://api.github.com", "acme/deploy")),
    ("https://gitlab.com/acme/platform/deploy.git",
     (GitHost.GITLAB, "https://gitlab.com/api/v4", "acme/platform/deploy")),
    ("ssh://git@codeberg.org/acme/deploy.git", (GitHost.GITEA, "https://codeberg.org/api/v1", "acme/deploy")),
    ("https://bitbucket.org/acme/deploy.git", (GitHost.BITBUCKET, "https://api.bitbucket.org/2.0", "acme/deploy")),
    ("https://dev.azure.com/acme/shop/_git/deploy", (GitHost.AZURE, "https://dev.azure.com", "acme/shop/deploy")),
    ("git@ssh.dev.azure.com:v3/acme/shop/deploy", (GitHost.AZURE, "https://dev.azure.com", "acme/shop/deploy")),
])
def test_the_host_is_inferred_from_the_repository_url(url: str, expected: tuple[GitHost, str, str]) -> None:
    assert locate(url, PullRequestSpec()) == Location(*expected)


def test_an_unknown_host_needs_the_pull_request_fields() -> None:
    with pytest.raises(ValueError, match=r"set git\.pullRequest\.host"):
        locate("file:///srv/git/deploy.git", PullRequestSpec())
    spec = PullRequestSpec(GitHost.GITEA, "http://127.0.0.1:3000/api/v1", "acme/deploy")
    assert locate("file:///srv/git/deploy.git", spec) == Location(GitHost.GITEA, spec.api_url or "", "acme/deploy")
