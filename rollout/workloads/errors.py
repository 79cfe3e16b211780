"""Why a workload action could not be carried out, and whether trying again can help.

The engine sorts errors in two kinds: temporary (retry with backoff) and permanent (a condition
and an Event, no crash loop). A missing target is permanent until someone creates it; a target
without a selector label this operator understands is permanent until its manifest changes.
"""

from __future__ import annotations


class WorkloadError(Exception):
    """A workload action failed; `temporary` says whether a retry may help."""

    def __init__(self, message: str, *, temporary: bool = True) -> None:
        super().__init__(message)
        self.temporary = temporary


class TargetMissing(WorkloadError):
    """The release's target (a Deployment or a DaemonSet) does not exist."""

    def __init__(self, namespace: str, name: str, kind: str = "Deployment") -> None:
        super().__init__(f"target {kind} {namespace}/{name} not found", temporary=False)
        self.namespace = namespace
        self.name = name


class NotReady(WorkloadError):
    """A Deployment has not rolled out yet; the action is done once it has (retry later)."""
