"""Connect a failed release to the Git it came from, and have its revert written there.

The engine calls `GitRevertWriter(release, action, status, report)` once traffic is back on the
primary. This finds the repository (the release's GitSource, or `spec.git.url` when Flux or
Argo CD syncs), its credentials, and what the target was applied from (annotations on the
target and the primary), then lets `revert.write_revert` do the Git work. It never raises: any
problem is an outcome the planner records and retries.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, cast

from kubernetes import client
from kubernetes.client.exceptions import ApiException
from urllib3.exceptions import HTTPError

from rollout.api.annotations import SOURCE_PATH_ANNOTATION
from rollout.api.errors import ValidationError
from rollout.api.kinds import (
    DAEMONSET,
    GIT_SOURCE,
    GROUP,
    KNATIVE_GROUP,
    KNATIVE_PRIMARY_REVISION_ANNOTATION,
    KNATIVE_REVISIONS,
    KNATIVE_SERVICES,
    KNATIVE_VERSION,
    PLURALS,
    VERSION,
    is_knative_service,
)
from rollout.api.parse import parse_gitsource
from rollout.api.spec import PushMode, Release
from rollout.api.status import ReleaseStatus, RevertState
from rollout.core import RevertInGit, RevertOutcome
from rollout.settings import Settings

from . import telemetry
from .credentials import SecretError, read_credentials, secret_data
from .hosts import host_api, locate
from .manifests import WorkloadId
from .repo import Credentials
from .revert import RevertRequest, TrackedConfig, write_revert
from .revert.pullrequest import with_pull_request

log = logging.getLogger(__name__)

# (kind, name, source-path annotation) of the ConfigMaps and Secrets a release tracks with its target.
TrackedDocuments = Callable[[Release], Sequence[tuple[str, str, str | None]]]



@dataclass(frozen=True)
class Repository:
    """Where a release's manifests live in Git."""

    url: str
    branch: str
    path: str
    credentials: Credentials | None
    source: str | None  # the GitSource's name, when one syncs it
    secret: str | None = None  # the Secret the credentials (and a token, a signing key) come from


class GitRevertWriter:
    def __init__(self, api: client.ApiClient, cache: Path, settings: Settings,
                 on_pushed: Callable[[str, str], None] | None = None,
                 tracked: TrackedDocuments = lambda release: ()) -> None:
        """`on_pushed(namespace, gitsource)` is told when a revert lands, so the source syncs at once;
        `tracked(release)` names the ConfigMaps and Secrets reverted with the workload (config tracking)."""
        self.api = api
        self.settings = settings
        self.timeout = settings.api_timeout
        self.cache = cache
        self.on_pushed = on_pushed
        self.tracked = tracked
        self.apps = client.AppsV1Api(api)
        self.objects = client.CustomObjectsApi(api)

    def __call__(self, release: Release, action: RevertInGit, status: ReleaseStatus, report: str) -> RevertOutcome:
        outcome = self._outcome(release, action, report, status)
        telemetry.reverted(release.metadata.namespace, release.metadata.name, outcome.state)
        return outcome

    def _outcome(self, release: Release, action: RevertInGit, report: str, status: ReleaseStatus) -> RevertOutcome:
        try:
            return self._write(release, action, report, status)
        except (SecretError, LookupError, ValidationError) as e:
            return RevertOutcome(RevertState.FAILED, message=str(e))
        except (ApiException, HTTPError, OSError) as e:
            log.warning("revert of %s/%s not written: %s", release.metadata.namespace, release.metadata.name, e)
            return RevertOutcome(RevertState.FAILED, message=f"cannot read the cluster: {getattr(e, 'reason', e)}")

    def _write(self, release: Release, action: RevertInGit, report: str, status: ReleaseStatus) -> RevertOutcome:
        git = release.spec.git
        if git is None:
            return RevertOutcome(RevertState.SKIPPED, message="spec.git is not set")
        repo = self.repository(release)
        namespace = release.metadata.namespace
        ref = release.spec.target_ref
        if is_knative_service(ref.api_version, ref.kind):
            target, primary = self._knative(namespace, ref.name)
        else:
            target = self._workload(ref.kind, namespace, ref.name)
            primary = self._workload(ref.kind, namespace, f"{ref.name}-primary")
        annotations = ((target or {}).get("metadata") or {}).get("annotations") or {}
        request = RevertRequest(
            namespace=namespace,
            name=release.metadata.name,
            kind=ref.kind,
            workload=ref.name,
            workload_namespace=namespace,
            candidate_revision=action.candidate_revision,
            promoted_revision=action.promoted_revision,
            source_path=annotations.get(SOURCE_PATH_ANNOTATION),
            search_path=repo.path,
            configs=tuple(TrackedConfig(WorkloadId(kind, name, namespace), path)
                          for kind, name, path in self.tracked(release)),
            images=tuple(_images(target)),
            promoted_images=tuple(_images(primary)),
            reason=action.reason,
            report=report,
            mode=git.revert,
            push=git.push,
            author=git.author,
        )
        extras = self._secret(namespace, repo.secret)
        if extras.get("signingKey"):
            request = replace(request, signing_key=extras["signingKey"])
        outcome = write_revert(repo.url, repo.branch, repo.credentials, request, self.cache, settings=self.settings)
        if git.push is PushMode.PULL_REQUEST:
            outcome = self._pull_request(release, repo, request, outcome, extras, self._report_link(release, status))
        if outcome.state == RevertState.PUSHED and repo.source and self.on_pushed and not outcome.branch:
            self.on_pushed(namespace, repo.source)
        return outcome

    def repository(self, release: Release) -> Repository:
        git = release.spec.git
        assert git is not None
        namespace = release.metadata.namespace
        if git.source:
            try:
                raw = cast(dict[str, Any], self.objects.get_namespaced_custom_object(
                    GROUP, VERSION, namespace, PLURALS[GIT_SOURCE], git.source, _request_timeout=self.timeout))
            except ApiException as e:
                if e.status == 404:
                    raise LookupError(f"GitSource {namespace}/{git.source} (spec.git.source) does not exist") from None
                raise
            spec = parse_gitsource(raw).spec
            return Repository(spec.url, spec.branch, spec.path, self._credentials(namespace, spec.secret_ref),
                              git.source, spec.secret_ref)
        assert git.url is not None
        return Repository(git.url, git.branch, git.path, self._credentials(namespace, git.secret_ref), None,
                          git.secret_ref)

    def _credentials(self, namespace: str, secret: str | None) -> Credentials | None:
        return read_credentials(self.api, namespace, secret, timeout=self.timeout) if secret else None

    # -- push: pullRequest, and signing keys ---------------------------------------------------------

    def _secret(self, namespace: str, secret: str | None) -> dict[str, str]:
        """The Git secret's keys beyond the credentials: `token` (a host API's), `signingKey`."""
        return secret_data(self.api, namespace, secret, timeout=self.timeout) if secret else {}

    def _pull_request(self, release: Release, repo: Repository, request: RevertRequest, outcome: RevertOutcome,
                      extras: Mapping[str, str], report_link: str | None) -> RevertOutcome:
        git = release.spec.git
        assert git is not None
        token = extras.get("token") or (repo.credentials.password if repo.credentials else None)
        if not token:
            return RevertOutcome(RevertState.FAILED, message=(
                f"git.push is pullRequest but Secret {repo.secret or '(none)'} has no `token` (or `password`) "
                "for the Git host's API"))
        try:
            location = locate(repo.url, git.pull_request)
        except ValueError as e:
            return RevertOutcome(RevertState.FAILED, message=str(e))
        username = repo.credentials.username if repo.credentials else None
        api = host_api(location, token, username, timeout=self.settings.git_api_timeout)
        secrets = (token, *(repo.credentials.secrets if repo.credentials else ()))
        return with_pull_request(outcome, request, repo.branch, api, secrets, report_link)

    def _report_link(self, release: Release, status: ReleaseStatus) -> str | None:
        """Where `rollout run --reports` wrote this run's HTML report, under `--report-url`."""
        base = self.settings.report_url.rstrip("/")
        candidate = status.candidate
        if not base or candidate is None:
            return None
        return f"{base}/{release.metadata.namespace}-{release.metadata.name}-{candidate.spec[:10]}.html"

    def _knative(self, namespace: str, name: str) -> tuple[dict[str, Any] | None, dict[str, Any] | None]:
        """A Knative Service target, and its primary Revision shaped as a workload (for its images)."""
        def get(plural: str, name: str) -> dict[str, Any] | None:
            try:
                return cast(dict[str, Any], self.objects.get_namespaced_custom_object(
                    KNATIVE_GROUP, KNATIVE_VERSION, namespace, plural, name, _request_timeout=self.timeout))
            except ApiException as e:
                if e.status == 404:
                    return None
                raise

        service = get(KNATIVE_SERVICES, name)
        annotations = ((service or {}).get("metadata") or {}).get("annotations") or {}
        revision = annotations.get(KNATIVE_PRIMARY_REVISION_ANNOTATION)
        primary = get(KNATIVE_REVISIONS, revision) if revision else None
        return service, ({"spec": {"template": {"spec": primary.get("spec") or {}}}} if primary else None)

    def _workload(self, kind: str, namespace: str, name: str) -> dict[str, Any] | None:
        """The target's (or its primary's) Deployment or DaemonSet, for the images the revert names."""
        read = self.apps.read_namespaced_daemon_set if kind == DAEMONSET else self.apps.read_namespaced_deployment
        try:
            return cast(dict[str, Any], self.api.sanitize_for_serialization(  # type: ignore[no-untyped-call]
                read(name, namespace, _request_timeout=self.timeout)))
        except ApiException as e:
            if e.status == 404:
                return None
            raise


def _images(deployment: Mapping[str, Any] | None) -> list[str]:
    if not deployment:
        return []
    containers = ((deployment.get("spec") or {}).get("template") or {}).get("spec", {}).get("containers") or []
    return [str(c.get("image")) for c in containers if c.get("image")]
