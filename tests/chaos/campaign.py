"""The chaos cycles: release on every lane, break things at seeded random instants, then check that
Git, the cluster, the Canary's status, its Events and its webhooks tell one consistent story.

A cycle commits a new version (good, or failing 30% of requests) to each lane's remote, SIGKILLs
the operator at a random instant and restarts it, maybe kills or freezes Prometheus, takes a
failing release's remote away or pushes a human commit while it reverts, and applies mutated specs
beside it; it then waits (bounded) until every release is terminal and asserts the invariants.
"""

from __future__ import annotations

import contextlib
import os
import random
import time
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml
from kubernetes import client

from rollout.api.kinds import GROUP, VERSION
from rollout.api.parse import parse_canary
from rollout.routers import router_for
from rollout.settings import Settings
from tests.chaos import mutants
from tests.chaos.ledger import Ledger
from tests.chaos.receiver import Receiver
from tests.chaos.world import APP, Lane, Operator, PrometheusProcess, create_lane
from tests.e2e.conftest import image_of, release_status
from tests.gitrepo import git
from tests.tools import wait_for

# Events (and event webhooks) a run emits at most once; Halted, NoData, Waiting, GitRevertFailed and
# the like legitimately repeat every tick while their cause lasts.
ONE_SHOT = {"Progressing", "Promoting", "Finalising", "Succeeded", "Failed", "Reverting", "GitReverted",
            "GitRevertSkipped", "Reverted"}
FAILED = ("Failed", "Reverting", "Reverted")
ACTIVE = ("Progressing", "Promoting", "Finalising", "WaitingPromotion", "Waiting", "Reverting")
RELEASE_BOUND = 90.0  # seconds from commit to a terminal phase, faults included
AGREE_BOUND = 30.0  # seconds for Git, the cluster and status to agree once terminal
ROUTE_GRACE = 5.0  # a route may lag a Failed status while a freshly restarted operator catches up
KILL_WINDOW = 8.0
SLOW = 40.0  # a release slower than this is within the bound but printed with what was seen
LOOPING = 3  # runs of one commit after which a release is judged stuck in a loop without waiting longer
POLL = 0.25
# A check sees few requests (one second of traffic at 10-20% of 80 requests/s, plus the tail of the
# step before: 6 to 40 requests in its 4s window), so a version failing 10% of them passed a whole
# run by chance about once in 150 (0.9^17 = 17% per check at 20%; seen twice in 100 cycles, and
# in none of 60 fault-free ones). That is the judge's sampling, not a crash, and it hid what this
# suite looks for: at 30% a chance promotion needs 0.7^17 = 0.2% at one check and about 1e-6 for a
# run, so a failing version promoted here is the operator's doing.
BAD_ERROR_RATE = 0.3


@dataclass
class Release:
    lane: Lane
    cycle: int
    good: bool
    image: str
    sha: str
    head_before: str
    events_before: set[str]
    committed: float
    phases: list[str] = field(default_factory=list)
    started: bool = False
    outcome: str | None = None
    finished: float | None = None
    failed_since: float | None = None
    git_fault: str | None = None  # "push" or "outage", done when the release first looks failed
    outage_seconds: float = 0.0
    human_sha: str | None = None
    prometheus_fault: bool = False
    runs: int = 1  # a run that starts again after this one ended or failed is one more
    trace: list[str] = field(default_factory=list)  # what was seen, in order: printed with a violation

    def note(self, now: float, what: str) -> None:
        if not self.trace or self.trace[-1].split(" ", 1)[1] != what:
            self.trace.append(f"{now - self.committed:.1f}s {what}")

    @property
    def where(self) -> str:
        kind = "good" if self.good else "bad"
        return f"{self.lane.namespace}/{APP} ({self.lane.mode} mode, {kind} {self.image}, commit {self.sha[:10]})"


class Campaign:
    def __init__(self, api: client.ApiClient, lanes: list[Lane], operator: Operator, prometheus: PrometheusProcess,
                 receiver: Receiver, mutant_namespace: str, root: Path, ledger: Ledger, *, faults: bool = True,
                 sandbox_log: Path | None = None) -> None:
        self.api, self.lanes, self.operator, self.prometheus = api, lanes, operator, prometheus
        self.receiver, self.mutant_namespace, self.root, self.ledger = receiver, mutant_namespace, root, ledger
        self.rng = random.Random(ledger.seed)
        self.faults = faults  # off: a control campaign, the same releases with nothing broken
        self.sandbox_log = sandbox_log
        self.raw_mutants = os.environ.get("CHAOS_RAW_MUTANTS") == "1"
        self.core, self.custom = client.CoreV1Api(api), client.CustomObjectsApi(api)
        self.router = router_for("gatewayapi", api, Settings())
        self.version = 0
        self.operator_since = time.monotonic()
        self.restart_at: float | None = None

    # -- a cycle --------------------------------------------------------------------------------

    def run(self, cycles: int) -> None:
        for cycle in range(1, cycles + 1):
            self.cycle(cycle)

    def cycle(self, cycle: int) -> None:
        rng, ledger = self.rng, self.ledger
        releases = [self.release(lane, cycle) for lane in self.lanes]
        t0 = time.monotonic()
        kills = [t0 + rng.uniform(0, KILL_WINDOW)] if self.faults else []
        if self.faults and rng.random() < 0.25:
            kills.append(kills[0] + rng.uniform(2, 6))
        gaps = [rng.uniform(0, 1.5) for _ in kills]
        prometheus: tuple[str, float, float] | None = None
        draw = rng.random() if self.faults else 1.0
        if draw < 0.15:
            prometheus = ("kill", t0 + rng.uniform(0, 6), rng.uniform(1, 3))
        elif draw < 0.3:
            prometheus = ("freeze", t0 + rng.uniform(0, 6), rng.uniform(1, 4))
        for r in releases:
            draw = rng.random() if self.faults else 1.0
            if not r.good and draw < 0.2:
                r.git_fault = "push"
            elif not r.good and draw < 0.4:
                r.git_fault, r.outage_seconds = "outage", rng.uniform(2, 6)
        if self.faults and rng.random() < 0.35:
            self.mutants(cycle, rng.randint(2, 5))
        outage_ends: dict[str, float] = {}
        prometheus_end: float | None = None
        deadline = t0 + RELEASE_BOUND
        faults: list[str] = []
        while time.monotonic() < deadline:
            now = time.monotonic()
            self.keep_operator(cycle, now)
            if kills and now >= kills[0]:
                kills.pop(0)
                self.operator.sigkill()
                for r in releases:
                    r.note(now, "OPERATOR KILLED")
                ledger.count("kills")
                self.restart_at = now + gaps.pop(0)
                faults.append(f"kill at {now - t0:.1f}s")
            if self.restart_at is not None and now >= self.restart_at:
                self.start_operator()
            if prometheus is not None and now >= prometheus[1]:
                kind, _, seconds = prometheus
                prometheus, prometheus_end = None, now + seconds
                if kind == "kill":
                    self.prometheus.kill()
                    ledger.count("prometheus kills")
                else:
                    self.prometheus.freeze()
                    ledger.count("prometheus freezes")
                for r in releases:
                    r.prometheus_fault = True
                faults.append(f"prometheus {kind} {seconds:.1f}s at {now - t0:.1f}s")
            if prometheus_end is not None and now >= prometheus_end:
                self.restore_prometheus()
                prometheus_end = None
            for r in releases:
                self.sample(r, now, outage_ends, faults, t0)
            for namespace, end in list(outage_ends.items()):
                if now >= end:
                    next(lane for lane in self.lanes if lane.namespace == namespace).come_back()
                    del outage_ends[namespace]
            if (all(r.outcome or r.runs >= LOOPING for r in releases) and not kills and self.restart_at is None
                    and prometheus is None and prometheus_end is None and not outage_ends):
                break
            time.sleep(POLL)
        # whatever the deadline interrupted is put back before the checks
        for lane in self.lanes:
            lane.come_back()
        self.restore_prometheus()
        if not self.operator.alive():
            self.start_operator()
        for r in releases:
            self.check(r)
        ledger.count("cycles")
        for r in releases:
            if r.outcome is None or r.runs > 1:
                self.replace(r.lane, cycle)
        for r in releases:
            if r.finished is not None and r.finished - r.committed > SLOW:
                ledger.say(f"NOTE cycle {cycle}: {r.where} took {r.finished - r.committed:.0f}s; seen: "
                           f"{' | '.join(r.trace)}")
        outcomes = ", ".join(f"{r.lane.namespace} {'good' if r.good else 'bad'} {r.outcome or 'STUCK'}"
                             f"{'' if r.finished is None else f' {r.finished - r.committed:.1f}s'}" for r in releases)
        ledger.say(f"chaos cycle {cycle}: {outcomes}; {'; '.join(faults) or 'no fault fired'}")

    def replace(self, lane: Lane, cycle: int) -> None:
        """A lane whose release is stuck, or ran more than once, would poison every later cycle: retire
        its namespace and go on with a fresh one (same mode), so the campaign keeps measuring."""
        with contextlib.suppress(client.exceptions.ApiException):
            self.core.delete_namespace(lane.namespace)
        lane.retired = True
        name = f"{lane.namespace.rsplit('-r', 1)[0]}-r{cycle}"
        fresh = create_lane(self.api, self.root, name, lane.mode, lane.hooks, lane.promoted_image)
        self.lanes[self.lanes.index(lane)] = fresh
        self.ledger.say(f"NOTE cycle {cycle}: {lane.namespace} is stuck; it is retired and {name} replaces it")
        try:
            wait_for(f"{name}/{APP} initialized", lambda: release_status(self.api, name, APP).get("phase") ==
                     "Initialized", timeout=90)
        except AssertionError as e:
            self.ledger.violation("stuck releases", cycle, f"{name}/{APP}", f"a fresh lane did not initialize: {e}")

    def release(self, lane: Lane, cycle: int, good: bool | None = None) -> Release:
        """Commit a new version to the lane's remote: good or failing as `good` says, else drawn."""
        self.version += 1
        good = self.rng.random() < 0.5 if good is None else good
        image = f"ghcr.io/stefanprodan/podinfo:6.{self.version}.0"
        error_rate = 0.0 if good else BAD_ERROR_RATE
        self.ledger.count("good" if good else "bad")
        head_before = lane.remote.head()
        before = {str(e.metadata.name) for e in self.core.list_namespaced_event(lane.namespace).items}
        committed = time.monotonic()
        sha = push(lane, {lane.manifest: yaml.safe_dump(lane.deployment(image, error_rate), sort_keys=False)},
                   f"feat({APP}): {image}")
        return Release(lane, cycle, good, image, sha, head_before, before, committed)

    # -- the operator and Prometheus ------------------------------------------------------------

    def start_operator(self) -> None:
        self.operator.start()
        self.operator_since = time.monotonic()
        self.restart_at = None

    def keep_operator(self, cycle: int, now: float) -> None:
        """An operator that died without our SIGKILL is a finding; it is restarted so the campaign goes on."""
        if self.restart_at is None and not self.operator.alive():
            code = self.operator.process.returncode if self.operator.process else None
            tail = self.operator.output()[-1500:]
            self.ledger.violation("operator exits", cycle, "the operator", f"exited by itself (code {code}): {tail}")
            self.start_operator()

    def restore_prometheus(self) -> None:
        self.prometheus.thaw()
        if not self.prometheus.running():
            self.prometheus.start()

    # -- sampling -------------------------------------------------------------------------------

    def sample(self, r: Release, now: float, outage_ends: dict[str, float], faults: list[str], t0: float) -> None:
        if r.outcome:
            return
        ns = r.lane.namespace
        status = release_status(self.api, ns, APP)
        phase = status.get("phase")
        metrics = ",".join(f"{m.get('name')}={m.get('value')}/{m.get('primary')}:{m.get('verdict')}"
                           for m in (status.get("analysis") or {}).get("metrics") or [])
        r.note(now, f"{phase} w{status.get('canaryWeight')} fc{status.get('failedChecks')} [{metrics}]")
        if phase in ACTIVE:
            r.started = True
        if phase in ACTIVE and phase != "Reverting" and r.phases and r.phases[-1] in (*FAILED, "Succeeded"):
            r.runs += 1
        # phases of this run only: the previous release's terminal phase is not one of them
        if phase and r.started and (not r.phases or r.phases[-1] != phase):
            r.phases.append(phase)
        if phase in FAILED and r.started:  # before it starts, a Failed phase is the previous release's
            if r.failed_since is None:
                r.failed_since = now
            self.check_weight(r, status, now)
            if r.git_fault == "push":
                r.git_fault = None
                r.human_sha = push(r.lane, {f"notes/{r.sha[:10]}.md": f"note on {r.image}\n"},
                                   "docs: a note pushed by a person during the revert")
                self.ledger.count("human pushes")
                faults.append(f"human push to {ns} at {now - t0:.1f}s")
            elif r.git_fault == "outage":
                r.git_fault = None
                r.lane.go_away()
                outage_ends[ns] = now + r.outage_seconds
                self.ledger.count("git outages")
                faults.append(f"{ns} remote away {r.outage_seconds:.1f}s at {now - t0:.1f}s")
        revert = status.get("revert") or {}
        if phase == "Succeeded" and image_of(self.api, f"{APP}-primary", ns) == r.image:
            r.outcome = "Succeeded"
        elif phase == "Reverted" and r.sha in (revert.get("reverts") or []):
            r.outcome = "Reverted"
        elif phase == "Failed" and r.started and revert.get("state") == "Skipped":
            r.outcome = "Failed"
        if r.outcome:
            r.finished = now

    def check_weight(self, r: Release, status: dict[str, Any], now: float) -> None:
        if status.get("canaryWeight") not in (0, None):
            self.ledger.violation("weight on failed canary", r.cycle, r.where,
                                  f"status phase {status.get('phase')} with canaryWeight {status.get('canaryWeight')}")
            return
        assert r.failed_since is not None
        if now - r.failed_since < ROUTE_GRACE or now - self.operator_since < ROUTE_GRACE:
            return
        try:
            obj: Any = self.custom.get_namespaced_custom_object(GROUP, VERSION, r.lane.namespace, "canaries", APP)
            weights = self.router.verify_weight(parse_canary(obj))
        except Exception:  # the route is sampled best-effort; status is the authority checked above
            return
        if weights is not None and weights[1] != 0:
            self.ledger.violation("weight on failed canary", r.cycle, r.where,
                                  f"status phase {status.get('phase')} for {now - r.failed_since:.1f}s, "
                                  f"but the route sends {weights[1]}% to the canary")

    # -- mutated specs --------------------------------------------------------------------------

    def mutants(self, cycle: int, n: int) -> None:
        base = self.lanes[0].canary()
        base["metadata"]["namespace"] = self.mutant_namespace
        made = [mutants.mutate(base, self.rng, f"mutant-{cycle}-{i}") for i in range(n)]
        files = mutants.write(self.root / "mutants" / str(cycle), [obj for obj, _ in made])
        for problem in mutants.traceback_problems(files):
            changes = next((c for (obj, c) in made if problem.startswith(obj["metadata"]["name"])), [])
            self.ledger.violation("tracebacks", cycle, "rollout validate", f"{problem} (mutations: {changes})")
        mutants.delete_all(self.api, self.mutant_namespace)
        self.ledger.count("mutants", n)
        failures = self.dataplane_failures()
        accepted = [obj for obj, _ in made if mutants.apply(self.api, obj, raw=self.raw_mutants)]
        self.ledger.count("mutants accepted", len(accepted))
        time.sleep(1.5)  # the data plane ticks every few hundred milliseconds
        if accepted and self.dataplane_failures() > failures:
            # The sandbox, not the operator: its traffic would stop and every release starve of data.
            mutants.delete_all(self.api, self.mutant_namespace)
            self.ledger.count("sandbox data plane failures")
            self.ledger.say(f"NOTE cycle {cycle}, seed {self.ledger.seed}: the sandbox's data plane failed on a "
                            f"mutated Canary (see sandbox.log); deleted them. Mutations: {[c for _, c in made]}")

    def dataplane_failures(self) -> int:
        if self.sandbox_log is None:
            return 0
        return self.sandbox_log.read_text(errors="replace").count("data plane tick failed")

    # -- the checks after a cycle ---------------------------------------------------------------

    def check(self, r: Release) -> None:
        ledger, lane = self.ledger, r.lane
        if r.outcome is None:
            status = release_status(self.api, lane.namespace, APP)
            ledger.violation("stuck releases", r.cycle, r.where,
                             f"not terminal after {RELEASE_BOUND:.0f}s; seen {' | '.join(r.trace[-12:])}, last status "
                             f"phase {status.get('phase')} weight {status.get('canaryWeight')} revert "
                             f"{status.get('revert')} conditions {_conditions(status)}")
        elif r.good and r.outcome != "Succeeded" and not r.prometheus_fault:
            ledger.violation("wrong outcomes", r.cycle, r.where,
                             f"a healthy version ended {r.outcome}; seen: {' | '.join(r.trace)}")
        elif not r.good and r.outcome == "Succeeded":
            ledger.violation("wrong outcomes", r.cycle, r.where,
                             f"a failing version was promoted; seen: {' | '.join(r.trace)}")
        if r.runs > 1:
            ledger.violation("extra runs", r.cycle, r.where, f"{r.runs} runs for one commit (the Canary started "
                             f"again after it ended); seen: {' | '.join(r.trace[-16:])}")
        if r.outcome:
            self.check_agreement(r)
        self.check_git(r)
        self.check_events_and_hooks(r)
        if r.outcome == "Succeeded":
            lane.promoted_image = r.image

    def check_agreement(self, r: Release) -> None:
        problems: list[str] = []
        for _ in range(int(AGREE_BOUND / 0.5)):
            problems = self.disagreements(r)
            if not problems:
                return
            time.sleep(0.5)
        self.ledger.violation("disagreements", r.cycle, r.where, "; ".join(problems))

    def disagreements(self, r: Release) -> list[str]:
        lane, ns = r.lane, r.lane.namespace
        head = lane.remote.head()
        in_git = yaml.safe_load(lane.remote.show(head, lane.manifest))["spec"]["template"]["spec"]["containers"][0][
            "image"]
        target, primary = image_of(self.api, APP, ns), image_of(self.api, f"{APP}-primary", ns)
        status = release_status(self.api, ns, APP)
        problems = []
        expected = r.image if r.outcome == "Succeeded" else lane.promoted_image if r.outcome == "Reverted" else r.image
        if in_git != expected:
            problems.append(f"the remote's head {head[:10]} has {in_git}, expected {expected}")
        if target != in_git:
            problems.append(f"the target runs {target}, the remote's head has {in_git}")
        if r.outcome != "Failed" and primary != in_git:
            problems.append(f"the primary runs {primary}, the remote's head has {in_git}")
        if status.get("phase") != r.outcome:
            problems.append(f"status phase {status.get('phase')}, the release ended {r.outcome}")
        if status.get("canaryWeight") not in (0, None):
            problems.append(f"status canaryWeight {status.get('canaryWeight')}")
        if r.outcome == "Reverted":
            commit = (status.get("revert") or {}).get("commit")
            if not commit or not lane.remote.is_ancestor(commit, head):
                problems.append(f"status.revert.commit {commit} is not on the remote's branch (head {head[:10]})")
        if lane.mode == "gitsource" and r.outcome:
            # The release record (what `rollout dora` reads): one per run, whatever killed the operator.
            records = [h.get("outcome") for h in status.get("history") or [] if h.get("revision") == r.sha]
            if records != [r.outcome]:
                problems.append(f"status.history holds {records} for {r.sha[:10]}, expected [{r.outcome!r}]")
        if lane.mode == "gitsource":
            source: Any = self.custom.get_namespaced_custom_object(GROUP, VERSION, ns, "gitsources", "apps")
            applied = (source.get("status") or {}).get("lastAppliedRevision")
            if applied != head:
                problems.append(f"the GitSource applied {applied}, the remote's head is {head}")
        return problems

    def check_git(self, r: Release) -> None:
        ledger, remote = self.ledger, r.lane.remote
        head = remote.head()
        for old, what in ((r.head_before, "the head before the release"), (r.sha, "the release's commit"),
                          (r.human_sha, "the person's commit")):
            if old and not remote.is_ancestor(old, head):
                ledger.violation("history rewrites", r.cycle, r.where, f"{what} {old[:10]} is not an ancestor of "
                                 f"the remote's head {head[:10]}: {remote.log('-8')}")
        reverts: list[tuple[str, str]] = []
        for line in git(remote.bare, "log", "--format=%H%x1f%(trailers:key=Rollout-Reverts,valueonly,separator=%x2c)"
                        "%x1f%(trailers:key=Rollout-Canary,valueonly,separator=%x2c)", remote.branch).splitlines():
            sha, reverted, canary = [*line.split("\x1f"), "", ""][:3]
            if r.sha in reverted.split(","):
                reverts.append((sha, canary))
        wanted = 1 if r.outcome == "Reverted" or (r.outcome is None and not r.good) else 0
        shown = [f"{sha[:10]} {remote.log('-1', sha)[0]!r} Rollout-Canary: {canary}" for sha, canary in reverts]
        if len(reverts) < wanted:
            ledger.violation("lost reverts", r.cycle, r.where, f"no commit with Rollout-Reverts: {r.sha} on the "
                             f"remote; phases {r.phases}; last commits {remote.log('-5')}")
        elif len(reverts) > max(wanted, 1):
            ledger.violation("duplicate reverts", r.cycle, r.where, f"{len(reverts)} commits revert it: {shown}")
        elif len(reverts) > wanted:
            ledger.violation("wrong outcomes", r.cycle, r.where, f"ended {r.outcome} but a revert was pushed: {shown}")
        for sha, canary in reverts:
            if canary != f"{r.lane.namespace}/{APP}":
                ledger.violation("lost reverts", r.cycle, r.where, f"revert {sha[:10]} names Rollout-Canary: {canary}")

    def check_events_and_hooks(self, r: Release) -> None:
        ledger, ns = self.ledger, r.lane.namespace
        time.sleep(0.5)  # an Event or hook of the final tick may trail its status patch
        events = [e for e in self.core.list_namespaced_event(ns).items
                  if e.metadata.name not in r.events_before and e.involved_object.kind == "Canary"
                  and e.involved_object.name == APP]
        seen = Counter((e.reason, e.message) for e in events if e.reason in ONE_SHOT)
        for (reason, message), n in sorted(seen.items()):
            if n > r.runs:  # each extra run (reported above) legitimately emits its own
                ledger.violation("repeated events", r.cycle, r.where, f"Event {reason} {message!r} recorded {n} times")
        promotions = sum(n for (reason, _), n in seen.items() if reason == "Succeeded")
        entered = r.phases.count("Succeeded")
        if r.outcome == "Succeeded":
            if promotions > 1 or entered > 1:
                ledger.violation("double promotions", r.cycle, r.where,
                                 f"{promotions} Succeeded Events, phase entered Succeeded {entered} times: {r.phases}")
            elif promotions == 0:
                ledger.violation("lost promotions", r.cycle, r.where,
                                 f"promoted without a Succeeded Event; Events {sorted(seen)}")
        elif promotions and r.outcome:
            ledger.violation("double promotions", r.cycle, r.where, f"ended {r.outcome} with {promotions} Succeeded "
                             "Events")
        groups: dict[tuple[str, ...], list[str | None]] = defaultdict(list)
        for call in self.receiver.calls(ns, since=r.committed):
            if call.hook == "post-rollout":
                groups[("post-rollout", str(call.body.get("checksum")), str(call.body.get("phase")))].append(call.key)
            elif call.hook == "event":
                meta = call.body.get("metadata") or {}
                if meta.get("eventReason") in ONE_SHOT:
                    groups[("event", str(meta.get("eventReason")), str(meta.get("eventMessage")))].append(call.key)
        for logical, keys in sorted(groups.items()):
            distinct = len({k for k in keys if k}) + sum(1 for k in keys if not k)
            ledger.count("redelivered", len(keys) - distinct)
            if distinct > r.runs:
                ledger.violation("repeated side effects", r.cycle, r.where, f"{' '.join(logical)!r} delivered "
                                 f"{len(keys)} times with {distinct} different idempotency keys {keys}")
        r.lane.remote.log("-1")  # the remote is readable again before the next cycle


def push(lane: Lane, files: dict[str, str | None], message: str) -> str:
    """Commit and push as a person would: fetch and try again when the operator's revert got there first."""
    for attempt in range(5):
        try:
            return lane.remote.commit(files, message)
        except RuntimeError as e:
            if "rejected" not in str(e) or attempt == 4:
                raise
            time.sleep(0.5)
    raise AssertionError("unreachable")


def _conditions(status: dict[str, Any]) -> list[str]:
    return [f"{c.get('type')}={c.get('status')} {c.get('message', '')}"[:160] for c in status.get("conditions") or []]
