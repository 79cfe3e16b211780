"""Reconcile one Canary or BlueGreen: read it, parse it, tick, write its status once.

This is everything the kopf handlers call. State lives in the object's status; what this class
keeps in memory (metric readings for the report, clients) is a cache whose loss costs nothing but
report history. Failures of Prometheus, webhooks or the API never escape: they are logged, put in
a condition where a person will look, and retried after a delay.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, cast

from kubernetes import client
from kubernetes.client.exceptions import ApiException
from urllib3.exceptions import HTTPError

from analysis.providers.base import ProviderConfig
from analysis.providers.registry import build
from analysis.report import Outcome, to_markdown, write_reports
from rollout.api.errors import ValidationError
from rollout.api.kinds import GROUP, METRIC_TEMPLATE, PLURALS, VERSION
from rollout.api.parse import parse_bluegreen, parse_canary, parse_metric_template
from rollout.api.spec import MetricTemplate, Release, provider_named, provider_names
from rollout.api.status import IDLE_PHASES, Condition, Phase, ReleaseStatus
from rollout.core import RouteProblem
from rollout.core.spread import spread
from rollout.engine import dora, telemetry
from rollout.engine.admission import Admission, Key, release_lister
from rollout.engine.alerts import Alerter
from rollout.engine.cache import CachingApiClient
from rollout.engine.checks import MetricChecks
from rollout.engine.cluster import ClusterPorts, RevertWriter, no_revert_writer
from rollout.engine.events import EventRecorder
from rollout.engine.reports import TickRecord, build_report, markdown_from_status, run_series
from rollout.engine.sources import SourceError, Sources
from rollout.engine.tick import tick
from rollout.engine.webhooks import Webhooks
from rollout.gitops.credentials import SecretError, secret_data
from rollout.routers import router_for
from rollout.routers.base import RouterError
from rollout.settings import Settings
from rollout.workloads import Workloads
from rollout.workloads.errors import WorkloadError

log = logging.getLogger(__name__)

_RECONCILE_ERROR = "ReconcileError"
_ROUTER_ERROR = "RouterError"
# An error's text in a condition and an Event stays short (the log keeps the traceback).
_MESSAGE_LIMIT = 500
# Tries of a finalizer whose router or workload step failed for a temporary reason, before the
# release is let go anyway: with the error backoff between tries, about a minute.
FINALIZE_RETRIES = 12


@dataclass
class _Memory:
    """Per-release cache: the readings and ticks of the current run, for its report."""

    candidate: str | None = None
    checks: MetricChecks | None = None
    ticks: list[TickRecord] = field(default_factory=list)
    # The failed run's report as Markdown, for the revert commit's message.
    markdown: str = ""
    # The end of the run whose report is written.
    reported: Phase | None = None


class Operator:
    def __init__(
        self,
        api: client.ApiClient,
        *,
        settings: Settings,
        reports: Path | None = None,
        revert: RevertWriter = no_revert_writer,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
        alerts: Alerter | None = None,
        namespaces: Sequence[str] = (),
    ) -> None:
        self.api = api
        self.objects = client.CustomObjectsApi(api)
        self.settings = settings
        self.timeout = settings.api_timeout
        # An invalid spec is looked at again this often (a spec change is seen at the next look).
        self.invalid_recheck = timedelta(seconds=settings.invalid_recheck)
        # After an unexpected error: retry soon, but not in a tight loop.
        self.error_backoff = timedelta(seconds=settings.error_backoff)
        self.prometheus = build(ProviderConfig("prometheus", settings.prometheus, timeout=settings.prometheus_timeout,
                                               retries=settings.prometheus_retries))
        # Built-in metrics and inline queries ask the operator-wide Prometheus; a MetricTemplate its own provider.
        self.sources = Sources(self.prometheus, self._template_secret, timeout=settings.prometheus_timeout,
                               retries=settings.prometheus_retries)
        self.reports = reports
        self.revert = revert
        self.clock = clock
        self.workloads = Workloads(api, settings)
        self.webhooks = Webhooks()
        self.events = EventRecorder(api, settings)
        self.alerts = alerts or Alerter(api, settings)
        self.memory: dict[str, _Memory] = {}
        mesh_provider = provider_named(settings.mesh_provider)
        if mesh_provider is None:
            raise ValueError(f"mesh provider must be one of {', '.join(provider_names())}, "
                             f"got {settings.mesh_provider!r}")
        self.mesh_provider = mesh_provider
        telemetry.set_info(settings.mesh_provider)
        # Per release (kind, namespace, name): when its next tick is due (monotonic), for the tick lag;
        # and every release seen, for flagger_canary_total.
        self._due: dict[tuple[str, str, str], float] = {}
        # Per release: whether its last tick left it idle (no run under way), for the pool its next
        # tick runs on. Known here at once; kopf's copy of the status follows a watch event later.
        self._idle: dict[tuple[str, str, str], bool] = {}
        self._known: set[tuple[str, str, str]] = set()
        self._lock = threading.Lock()
        # The slots of --max-concurrent-releases, learnt from every release in scope (`namespaces`).
        self.admission = Admission(settings.max_concurrent_releases,
                                   release_lister(self.objects, namespaces, settings.api_timeout))

    def parse(self, obj: Mapping[str, Any]) -> Release:
        """The release `obj` holds; a Canary without spec.provider routes with the mesh provider."""
        if obj.get("kind") == "BlueGreen":
            return parse_bluegreen(obj)
        return parse_canary(obj, self.mesh_provider)

    # -- one tick ------------------------------------------------------------------------------

    def reconcile(self, kind: str, namespace: str, name: str) -> timedelta | None:
        """One tick for one release; returns when to look again, or None when it is gone. With the
        watch-fed cache, what the tick reads is remembered: a change to any of it wakes the release."""
        key = (kind, namespace, name)
        if not isinstance(self.api, CachingApiClient):
            return self._reconcile(key)
        with self.api.cache.reading(key):
            delay = self._reconcile(key)
        if delay is None:
            self.api.cache.forget_reader(key)
        return delay

    def idle(self, kind: str, namespace: str, name: str) -> bool:
        """Whether the release's last tick left it idle (Initialized, Succeeded...): its next tick, unless
        something it reads changes, only looks. False for a release not yet ticked."""
        return self._idle.get((kind, namespace, name), False)

    def _reconcile(self, key: tuple[str, str, str]) -> timedelta | None:
        kind, namespace, name = key
        due = self._due.pop(key, None)
        if due is not None:
            telemetry.tick_late(kind, time.monotonic() - due)
        obj: dict[str, Any]
        try:
            obj = cast(dict[str, Any], self.objects.get_namespaced_custom_object(
                GROUP, VERSION, namespace, PLURALS[kind], name, _request_timeout=self.timeout
            ))
        except ApiException as e:
            if e.status == 404:
                self._known_as(key, present=False)
                self.admission.forget(key)
                return None
            log.warning("reading %s %s/%s failed: %s", kind, namespace, name, e.reason)
            telemetry.reconcile_failed(kind)
            return self.error_backoff
        except (HTTPError, OSError) as e:
            log.warning("reading %s %s/%s failed: %s", kind, namespace, name, e)
            telemetry.reconcile_failed(kind)
            return self.error_backoff
        if obj.get("metadata", {}).get("deletionTimestamp"):
            self._known_as(key, present=False)
            self.admission.forget(key)
            return None
        self._known_as(key, present=True)
        delay = self.reconcile_object(obj)
        self._due[key] = time.monotonic() + delay.total_seconds()
        return delay

    def _known_as(self, key: tuple[str, str, str], *, present: bool) -> None:
        with self._lock:
            if not present:
                self._idle.pop(key, None)
            if present == (key in self._known):
                return
            if present:
                self._known.add(key)
            else:
                self._known.discard(key)
            telemetry.totals(self._known, (key[1],))

    def reconcile_object(self, obj: Mapping[str, Any]) -> timedelta:
        now, began = self.clock(), time.monotonic()
        status = ReleaseStatus.from_dict(obj.get("status"))
        try:
            release = self.parse(obj)
        except ValidationError as e:
            return self._invalid(obj, status, e, now)
        try:
            return self._tick(obj, release, status, now, began)
        except (RouterError, WorkloadError) as e:
            telemetry.reconcile_failed(str(obj.get("kind")))
            reason = _ROUTER_ERROR if isinstance(e, RouterError) else "WorkloadError"
            old = status.condition("Ready")
            if old is not None and old.reason != reason:
                # The error's clock (progressDeadlineSeconds) starts now, not when Ready last turned False.
                status = replace(status, conditions=tuple(c for c in status.conditions if c.type != "Ready"))
            self._condition(obj, replace(status, provider=release.spec.provider.value,
                                         observed_generation=release.metadata.generation),
                            Condition("Ready", "False", reason, str(e), now))
            if not e.temporary:
                self.events.emit(release, reason, str(e), warning=True)
            return self.error_backoff if e.temporary else self.invalid_recheck
        except (ApiException, HTTPError, OSError) as e:
            log.warning("tick of %s/%s failed, retrying: %s", release.metadata.namespace, release.metadata.name, e)
            telemetry.reconcile_failed(str(obj.get("kind")))
            return self.error_backoff
        finally:
            self.admission.done(_release_key(obj))

    def _tick(self, obj: Mapping[str, Any], release: Release, status: ReleaseStatus, now: datetime,
              began: float) -> timedelta:
        memory = self._memory(release, status)
        stored = dict(obj.get("status") or {})  # the status as the API holds it, write after write

        def record(intended: ReleaseStatus) -> None:
            # A run's report is written (under its run's name) before its end is recorded.
            self._report_end(release, status, intended, memory, now)
            self._write_status(obj, intended, stored)

        ports = ClusterPorts(
            release=release,
            status=status,
            now=now,
            workloads=self.workloads,
            router=router_for(release.spec.provider, self.api, self.settings),
            checks=memory.checks,
            webhooks=self.webhooks,
            events=self.events,
            revert=self.revert,
            report=lambda: memory.markdown or markdown_from_status(release, status),
            recorder=record,
            routing=_routing(status),
            alerts=self.alerts,
            admit=lambda: self.admission.ask(_release_key(obj), status.queued_at or now),
        )
        before = len(memory.checks.readings) if memory.checks else 0
        decision = tick(release.spec, status, ports, now, uid=release.metadata.uid)
        new = decision.status.with_condition(Condition("Ready", "True", "Reconciled", "", now))
        checked = tuple(r.check for r in memory.checks.readings[before:]) if memory.checks else ()
        score = new.analysis.score if checked and new.analysis else None
        memory.ticks.append(TickRecord(now, new.canary_weight, checked, new.phase.value if new.phase else "",
                                       score=score))
        self._report_end(release, status, new, memory, now)
        self._write_status(obj, new, stored)
        telemetry.tick_recorded(release, status, new, time.monotonic() - began)
        self._idle[_release_key(obj)] = new.phase in IDLE_PHASES
        interval = release.spec.analysis.interval
        if new.phase in IDLE_PHASES and decision.requeue_after.total_seconds() >= interval:
            # Idle releases started together (a restart) would otherwise tick together forever.
            key = "/".join(_release_key(obj))
            return timedelta(seconds=spread(decision.requeue_after.total_seconds(), time.time(), key, interval))
        return decision.requeue_after

    def _report_end(self, release: Release, old: ReleaseStatus, new: ReleaseStatus, memory: _Memory,
                    now: datetime) -> None:
        if new.phase != old.phase and new.phase in (Phase.SUCCEEDED, Phase.FAILED) and memory.reported != new.phase:
            self._report(release, new, memory, now)
            memory.reported = new.phase

    def _memory(self, release: Release, status: ReleaseStatus) -> _Memory:
        key = _key(release)
        candidate = status.candidate.spec if status.candidate else None
        memory = self.memory.get(key)
        if memory is None or memory.candidate != candidate:
            checks = (MetricChecks(release, self.sources, reload=self._templates)
                      if release.spec.analysis.metrics else None)
            memory = self.memory[key] = _Memory(candidate, checks)
        elif memory.checks is not None:
            memory.checks.release = release
        return memory

    def _templates(self, checks: MetricChecks) -> None:
        """Before each check, as Flagger does, the MetricTemplates the release's metrics name: an edited
        template (or its Secret, read with it) counts from the next check. One the API server could not
        be asked for just now stays as it was; an invalid one is `unusable`, with its problems."""
        release, known = checks.release, checks.templates
        try:
            checks.routes = self.workloads.routes(release)
        except (ApiException, HTTPError, OSError) as e:  # kept as they were; the check says no data if none
            log.warning("reading the routes of %s/%s: %s", release.metadata.namespace, release.metadata.name, e)
        found: dict[tuple[str, str], MetricTemplate] = {}
        unusable = checks.unusable
        unusable.clear()
        for metric in release.spec.analysis.metrics:
            ref = metric.template_ref
            if ref is None:
                continue
            key = (ref.namespace or release.metadata.namespace, ref.name)
            raw: dict[str, Any]
            try:
                raw = cast(dict[str, Any], self.objects.get_namespaced_custom_object(
                    GROUP, VERSION, key[0], PLURALS[METRIC_TEMPLATE], ref.name, _request_timeout=self.timeout
                ))
                found[key] = parse_metric_template(raw)
            except (ApiException, HTTPError, OSError) as e:
                gone = isinstance(e, ApiException) and e.status == 404
                if gone:
                    self.sources.forget(*key)
                elif known and key in known:
                    found[key] = known[key]
                log.warning("MetricTemplate %s/%s unusable: %s", *key, e)
            except ValidationError as e:
                unusable[key] = "; ".join(str(x) for x in e.errors)
                log.warning("MetricTemplate %s/%s unusable: %s", *key, e)
        checks.templates = found

    def _template_secret(self, namespace: str, name: str) -> Mapping[str, str]:
        """A MetricTemplate's Secret, decoded, as Flagger reads it: in the template's namespace."""
        try:
            return secret_data(self.api, namespace, name, timeout=self.timeout)
        except SecretError as e:
            raise SourceError(str(e)) from None
        except ApiException as e:
            temporary = e.status is None or e.status == 429 or e.status >= 500
            raise SourceError(f"reading Secret {namespace}/{name} (provider.secretRef) failed: {e.status} {e.reason}",
                              temporary=temporary) from None
        except (HTTPError, OSError) as e:
            raise SourceError(f"reading Secret {namespace}/{name} (provider.secretRef) failed: {e}",
                              temporary=True) from None

    # -- status --------------------------------------------------------------------------------

    def _invalid(self, obj: Mapping[str, Any], status: ReleaseStatus, error: ValidationError, now: datetime
                 ) -> timedelta:
        """An invalid spec: a condition and one Event per generation, then wait for a new spec."""
        message = "; ".join(str(e) for e in error.errors)
        generation = obj.get("metadata", {}).get("generation")
        old = status.condition("Ready")
        if old and old.reason == "InvalidSpec" and old.message == message and status.observed_generation == generation:
            return self.invalid_recheck
        new = replace(status.with_condition(Condition("Ready", "False", "InvalidSpec", message, now)),
                      observed_generation=generation)
        self._write_status(obj, new)
        self.events.emit(obj, "InvalidSpec", message, warning=True)
        return self.invalid_recheck

    def _condition(self, obj: Mapping[str, Any], status: ReleaseStatus, condition: Condition) -> None:
        self._write_status(obj, status.with_condition(condition))

    def _write_status(self, obj: Mapping[str, Any], new: ReleaseStatus, stored: dict[str, Any] | None = None) -> None:
        """ONE merge patch of the status subresource with only what changed; none when nothing did.

        The diff is against the status as stored (`stored`, kept up to date write after write, or
        the object's), so every field is written once; sending only changed keys keeps a
        `rollout promote|abort|retry` written meanwhile."""
        before = stored if stored is not None else (obj.get("status") or {})
        diff = {k: v for k, v in new.to_dict().items() if before.get(k) != v}
        if not diff:
            self.admission.settle(_release_key(obj), new)
            return
        meta = obj["metadata"]
        self.objects.patch_namespaced_custom_object_status(
            GROUP, VERSION, meta["namespace"], PLURALS[obj["kind"]], meta["name"], {"status": diff},
            _request_timeout=self.timeout, _content_type="application/merge-patch+json",
        )
        dora.written(meta["namespace"], meta["name"], before, new.history)
        self.admission.settle(_release_key(obj), new)
        if stored is not None:
            stored.update(diff)

    # -- end of a run --------------------------------------------------------------------------

    def _report(self, release: Release, status: ReleaseStatus, memory: _Memory, now: datetime) -> None:
        if memory.checks is None:
            return
        outcome = Outcome.SUCCEEDED if status.phase == Phase.SUCCEEDED else Outcome.FAILED
        promoted = status.condition("Promoted")
        started = status.candidate.started_at if status.candidate and status.candidate.started_at else None
        started = started or (memory.ticks[0].at if memory.ticks else None)
        series = {}
        if started is not None and self.reports is not None:
            # Each metric as its source recorded it over the whole run, not only at the checks.
            series = run_series(memory.checks, started, now)
        run = build_report(release, memory.checks.readings, memory.ticks, outcome, now,
                           summary=promoted.message if promoted else "",
                           revision=status.candidate.revision if status.candidate else None,
                           series=series, started_at=started)
        memory.markdown = to_markdown(run)
        if self.reports is None:
            return
        spec = status.candidate.spec if status.candidate else "run"
        stem = f"{release.metadata.namespace}-{release.metadata.name}-{spec[:10]}"
        try:
            paths = write_reports(run, self.reports, stem)
        except OSError as e:
            log.warning("report for %s/%s not written: %s", release.metadata.namespace, release.metadata.name, e)
            return
        log.info("report for %s/%s: %s", release.metadata.namespace, release.metadata.name, paths["html"])

    # -- unexpected errors ---------------------------------------------------------------------

    def fail(self, kind: str, namespace: str, name: str, error: BaseException) -> None:
        """A tick raised what nothing expected: say so where a person looks, best effort.

        `Ready=False` with reason ReconcileError and one Warning Event per distinct error; the
        traceback is logged with it, and a repeat of the same error only as one line. Nothing here
        raises: the caller is the daemon's edge, which must keep looking at the release."""
        what = f"{type(error).__name__}: {error}"[:_MESSAGE_LIMIT]
        message = f"reconcile of {kind} {namespace}/{name} failed: {what}"
        try:
            obj = cast(dict[str, Any], self.objects.get_namespaced_custom_object(
                GROUP, VERSION, namespace, PLURALS[kind], name, _request_timeout=self.timeout))
            status = ReleaseStatus.from_dict(obj.get("status"))
            old = status.condition("Ready")
            if old and old.status == "False" and old.reason == _RECONCILE_ERROR and old.message == message:
                log.warning("%s (again)", message)
                return
            log.error("%s", message, exc_info=error)
            self._condition(obj, status, Condition("Ready", "False", _RECONCILE_ERROR, message, self.clock()))
            self.events.emit(obj, _RECONCILE_ERROR, message, warning=True)
        except Exception as e:  # the status may be what cannot be read or written
            log.error("%s", message, exc_info=error)
            log.warning("recording the failure of %s %s/%s failed too: %s", kind, namespace, name, e)

    # -- deletion ------------------------------------------------------------------------------

    def finalize(self, obj: Mapping[str, Any], attempt: int = 0) -> timedelta | None:
        """The release is being deleted: all traffic to the primary, the target back as it was.

        Returns None when the finalizer may go, or how soon to try again: only after a temporary
        router or workload error (the primary still scaling back), and only `FINALIZE_RETRIES`
        times, after which the release is let go with a Warning Event. An invalid spec or any other
        error lets go at once, so a deletion always completes."""
        meta = obj.get("metadata") or {}
        where = f"{obj.get('kind')} {meta.get('namespace')}/{meta.get('name')}"
        try:
            release = self.parse(obj)
        except ValidationError:
            return None
        except Exception:  # a spec the parser chokes on is still deletable
            log.exception("finalizing %s: its spec could not be read; letting go", where)
            return None
        self.memory.pop(_key(release), None)
        telemetry.forget(release)
        self.admission.forget(_release_key(obj))
        self._known_as((str(obj.get("kind")), release.metadata.namespace, release.metadata.name), present=False)
        try:
            try:
                router_for(release.spec.provider, self.api, self.settings).finalize(release)
            except RouterError as e:
                if not e.kind_missing:
                    raise
                log.info("finalizing %s: %s; there is no route to hand back", where, e)
            self.workloads.finalize(release)
        except (RouterError, WorkloadError, ApiException, HTTPError, OSError) as e:
            if _temporary(e) and attempt < FINALIZE_RETRIES:
                log.info("finalizing %s: %s; trying again", where, e)
                return self.error_backoff
            self._let_go(obj, f"traffic could not be returned to the primary: {e}")
        except Exception as e:  # deletion must complete whatever went wrong
            log.exception("finalizing %s failed; letting go", where)
            self._let_go(obj, f"finalizing failed: {type(e).__name__}: {e}")
        return None

    def _let_go(self, obj: Mapping[str, Any], message: str) -> None:
        try:
            self.events.emit(obj, "FinalizeFailed", f"{message}; the finalizer is removed anyway", warning=True)
        except Exception as e:  # best effort: the deletion goes on
            log.warning("event FinalizeFailed not recorded: %s", e)


def _temporary(error: Exception) -> bool:
    """Whether trying again may help: a router or workload says so; the API when it is busy or down."""
    if isinstance(error, RouterError | WorkloadError):
        return error.temporary
    if isinstance(error, ApiException):
        return error.status is None or error.status == 429 or error.status >= 500
    return True


def _routing(status: ReleaseStatus) -> RouteProblem | None:
    """The router error the last tick stopped on, if it did, and since when it keeps stopping ticks."""
    ready = status.condition("Ready")
    if ready is None or ready.status != "False" or ready.reason != _ROUTER_ERROR:
        return None
    return RouteProblem(ready.message, ready.last_transition_time)


def _release_key(obj: Mapping[str, Any]) -> Key:
    meta = obj.get("metadata") or {}
    return (str(obj.get("kind")), meta.get("namespace") or "default", meta.get("name") or "")


def _key(release: Release) -> str:
    return release.metadata.uid or f"{release.metadata.namespace}/{release.metadata.name}"
