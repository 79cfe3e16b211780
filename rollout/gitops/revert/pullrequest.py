"""`git.push: pullRequest`: the pushed revert branch gets a pull/merge request carrying the report.

It runs after the push loop, on its outcome, and may run any number of times for one failed
revision: it first looks for a request from the revert branch (one branch per Canary and reverted
commit) whose body names this Canary in the `Rollout-Canary` trailer, and reports that one's state
(open, merged, closed) instead of opening another. A request from the branch that is not ours is
a failure to resolve by hand, never a second request.
"""

from __future__ import annotations

from dataclasses import replace

from rollout.api.status import PullRequestState, RevertState
from rollout.core import RevertOutcome
from rollout.gitops.hosts import Found, HostApi, HostError

from .message import CANARY_TRAILER, REVERTS_TRAILER, revert_branch, revert_message, short
from .request import RevertRequest, failed

# A request found in more than one state: the one that still matters most.
_RANK = {PullRequestState.MERGED: 0, PullRequestState.OPEN: 1, PullRequestState.CLOSED: 2}


def pull_request_body(request: RevertRequest, outcome: RevertOutcome, base: str, report_link: str | None) -> str:
    """Markdown: the reason, the analysis table, the HTML report's link, and the trailers (first as
    an HTML comment, so they survive hosts that cut long descriptions in lists)."""
    shorts = ", ".join(short(c) for c in outcome.reverts)
    marker = f"<!-- {CANARY_TRAILER}: {request.canary} -->"
    reason = " ".join(request.reason.split()) or "the canary analysis failed"
    parts = [
        marker,
        f"The release of `{request.kind} {request.workload_namespace}/{request.workload}` failed: {reason}.",
        f"Traffic is back on the primary. Merging this reverts {shorts} on `{base}`"
        + (f" (revert commit {short(outcome.commit)})" if outcome.commit else "") + ".",
    ]
    if request.report.strip():
        parts.append(request.report.strip("\n"))
    if report_link:
        parts.append(f"[Full analysis report with plots]({report_link})")
    trailers = [f"{CANARY_TRAILER}: {request.canary}", *(f"{REVERTS_TRAILER}: {c}" for c in outcome.reverts)]
    parts.append("\n".join(trailers))
    return "\n\n".join(parts) + "\n"


def with_pull_request(outcome: RevertOutcome, request: RevertRequest, base: str, api: HostApi,
                      secrets: tuple[str, ...], report_link: str | None = None) -> RevertOutcome:
    """The push loop's outcome with the revert's request found or opened (unchanged unless pushed)."""
    if outcome.state != RevertState.PUSHED or not outcome.reverts:
        return outcome
    branch = outcome.branch or revert_branch(request, outcome.reverts[0])
    try:
        found = api.find(branch)
        ours = sorted((f for f in found if f"{CANARY_TRAILER}: {request.canary}" in f.body),
                      key=lambda f: _RANK[f.pull_request.state])
        if found and not ours:
            return RevertOutcome(RevertState.FAILED, message=(
                f"a pull request from {branch} exists ({found[0].pull_request.url}) that is not this Canary's "
                f"revert; close it and delete the branch"))
        if ours:
            pr: Found = ours[0]
        elif outcome.branch is None:
            return outcome  # the revert is on the branch already, and no request ever carried it
        else:
            title = revert_message(request, outcome.reverts).split("\n", 1)[0]
            pr = api.open(branch, base, title, pull_request_body(request, outcome, base, report_link))
    except HostError as e:
        return failed(f"pull request for {branch}: {e}", secrets)
    p = pr.pull_request
    return replace(outcome, branch=branch, pull_request=p,
                   message=f"{outcome.message}; pull request {p.url} {p.state.value.lower()}")
