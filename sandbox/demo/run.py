"""`rollout demo`: the whole loop on a laptop, with nothing but this package, git and Prometheus.

It starts the sandbox (API, simulated controllers, data plane, a real Prometheus), makes a local
Git remote holding the example app, a GitSource syncing it and the operator as its own process
(as it runs in a cluster), then commits a healthy v2 (promoted step by step) and a v3 that fails
10% of requests (rolled back, reverted in Git, the revert applied: Reverted), and prints what
happened as it happens and a summary at the end.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TextIO

from kubernetes import client

from rollout.api.kinds import CANARY, GIT_SOURCE, GROUP, PLURALS, VERSION
from rollout.cli.dora import render, summarize, to_json
from rollout.cli.releases import releases as list_releases
from rollout.engine.kube import api_client
from sandbox import DataPlaneConfig, Sandbox
from sandbox.prometheus import free_port

from . import app
from .view import summary, tick_key, tick_line

AUTHOR = {"GIT_AUTHOR_NAME": "Demo Developer", "GIT_AUTHOR_EMAIL": "dev@demo.local",
          "GIT_COMMITTER_NAME": "Demo Developer", "GIT_COMMITTER_EMAIL": "dev@demo.local"}
POLL = 0.25


class DemoError(Exception):
    """The demo could not go on; the message says what was expected and where the logs are."""


@dataclass(frozen=True)
class Options:
    provider: str = "gatewayapi"
    judge: str = "threshold"
    interval: float = 5.0
    rps: float = 50.0
    keep: bool = False
    json: bool = False
    workdir: Path | None = None
    timeout: float = 240.0
    mirror: bool = False  # istio and gatewayapi: analyse on mirrored traffic (blue/green with mirroring)


class Repo:
    """The local Git remote the GitSource syncs, and the working copy the demo commits from."""

    def __init__(self, root: Path) -> None:
        self.bare, self.work = root / "remote.git", root / "work"
        root.mkdir(parents=True, exist_ok=True)
        self._git(root, "init", "-q", "--bare", "-b", "main", str(self.bare))
        self._git(root, "clone", "-q", str(self.bare), str(self.work))

    @property
    def url(self) -> str:
        return f"file://{self.bare}"

    @staticmethod
    def _git(cwd: Path, *args: str) -> str:
        done = subprocess.run(["git", *args], cwd=cwd, capture_output=True, text=True, timeout=30, check=False,
                              env={**os.environ, **AUTHOR})
        if done.returncode != 0:
            raise DemoError(f"git {' '.join(args)}: {done.stderr.strip()}")
        return done.stdout

    def commit(self, files: Mapping[str, str], message: str) -> str:
        self._git(self.work, "pull", "-q", "--ff-only", "origin", "main") if self.head() else None
        for name, text in files.items():
            path = self.work / name
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(text)
            self._git(self.work, "add", name)
        self._git(self.work, "commit", "-q", "-m", message)
        self._git(self.work, "push", "-q", "origin", "HEAD:main")
        return self.head()

    def head(self) -> str:
        done = subprocess.run(["git", "rev-parse", "-q", "--verify", "refs/heads/main"], cwd=self.bare,
                              capture_output=True, text=True, check=False)
        return done.stdout.strip()

    def subject(self, revision: str = "main") -> str:
        return self._git(self.bare, "log", "-1", "--format=%s", revision).strip()

    def show_stat(self, revision: str) -> str:
        return self._git(self.bare, "show", "--stat", revision)

    def count(self, grep: str) -> int:
        return len(self._git(self.bare, "log", "--format=%H", f"--grep={grep}", "main").split())


@contextmanager
def operator_process(kubeconfig: Path, prometheus: str, reports: Path, cache: Path, log: Path,
                     metrics_addr: str = "0") -> Iterator[subprocess.Popen[bytes]]:
    args = [sys.executable, "-m", "rollout", "run", "--kubeconfig", str(kubeconfig), "--prometheus", prometheus,
            "--reports", str(reports), "--git-cache", str(cache), "--metrics-addr", metrics_addr]
    with log.open("ab") as out:
        process = subprocess.Popen(args, stdout=out, stderr=subprocess.STDOUT,
                                   env={**os.environ, "PYTHONUNBUFFERED": "1"})
    try:
        yield process
    finally:
        if process.poll() is None:
            process.terminate()
            try:
                process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(timeout=5)


class Demo:
    def __init__(self, options: Options, out: TextIO) -> None:
        self.options = options
        self.out = out
        self.started = time.monotonic()
        self.began = datetime.now(UTC)
        self.custom: Any = None
        self.apps: Any = None
        self.metrics_url = ""

    def say(self, text: str) -> None:
        if not self.options.json:
            print(text, file=self.out, flush=True)

    def run(self) -> dict[str, Any]:
        opts = self.options
        root = opts.workdir or Path(tempfile.mkdtemp(prefix="rollout-demo-"))
        root.mkdir(parents=True, exist_ok=True)
        mirrored = ", traffic mirrored to the canary" if opts.mirror else ""
        self.say(f"rollout demo: provider {opts.provider}, judge {opts.judge}, interval {opts.interval:g}s"
                 f"{mirrored} (files in {root})")
        with Sandbox(dataplane=DataPlaneConfig(rps=opts.rps), prometheus=True) as sandbox:
            kubeconfig = sandbox.write_kubeconfig(root / "kubeconfig")
            api = api_client(kubeconfig)
            self.custom, self.apps = client.CustomObjectsApi(api), client.AppsV1Api(api)
            self.say(f"sandbox API {sandbox.url}, data plane {sandbox.metrics_url}, "
                     f"Prometheus {sandbox.prometheus_url}")
            repo = Repo(root / "git")
            v1 = repo.commit(self.files(1), "feat(podinfo): 6.0.0")
            client.CoreV1Api(api).create_namespace(client.V1Namespace(metadata=client.V1ObjectMeta(name=app.NAMESPACE)))
            self.custom.create_namespaced_custom_object(GROUP, VERSION, app.NAMESPACE, PLURALS[GIT_SOURCE],
                                                        app.gitsource(repo.url))
            self.say(f"Git remote {repo.bare} at {v1[:12]}; GitSource {app.NAMESPACE}/{app.APP} syncs ./{app.FOLDER}")
            reports = root / "reports"
            # On loopback and a free port: the demo must not take (or fail on) a port the machine uses.
            self.metrics_url = f"http://127.0.0.1:{free_port()}"
            self.say(f"operator metrics {self.metrics_url}/metrics, probes /healthz and /readyz")
            with operator_process(kubeconfig, sandbox.prometheus_url, reports, root / "git-cache",
                                  root / "operator.log", self.metrics_url.removeprefix("http://")) as operator:
                self.operator = operator
                try:
                    self.wait("the Canary to initialize", lambda s: s.get("phase") == "Initialized", 1)
                    result = self.releases(repo, sandbox)
                except DemoError as e:
                    if not opts.keep:
                        raise
                    # Kept up on failure too: that is when a person most wants to look around.
                    print(f"rollout demo: {e}", file=sys.stderr)
                    self.keep(kubeconfig, sandbox.prometheus_url, repo)
                    raise
                result.update(self.agreement(repo), provider=opts.provider, judge=opts.judge,
                              interval=opts.interval, mirror=opts.mirror, workdir=str(root),
                              reports=sorted(str(p) for p in reports.glob("*.html") if p.name != "index.html"),
                              reports_index=str(reports / "index.html"))
                # The DORA figures of the demo's own runs, computed as `rollout dora` computes them.
                dora = summarize(list_releases(api, app.NAMESPACE), self.began, datetime.now(UTC))
                result.update(dora=to_json(dora), namespace=app.NAMESPACE)
                if opts.json:
                    print(json.dumps(result, indent=2), file=self.out)
                else:
                    self.say(summary(result, dora=render(dora)))
                if opts.keep:
                    self.keep(kubeconfig, sandbox.prometheus_url, repo)
        return result

    def releases(self, repo: Repo, sandbox: Sandbox) -> dict[str, Any]:
        how = "be judged on mirrored traffic" if self.options.mirror else "progress step by step"
        self.say(f"\ncommit v2 (healthy): the canary should {how} and be promoted")
        committed = time.monotonic()
        repo.commit(self.files(2), "feat(podinfo): 6.0.1")
        status = self.wait("v2 to finish", self.finished(("Succeeded", "Failed", "Reverted")), 2)
        v2 = {"phase": status.get("phase"), "to_promote": round(time.monotonic() - committed, 1)}
        if status.get("phase") != "Succeeded":
            raise DemoError(f"v2 should have been promoted but ended {status.get('phase')}: "
                            f"{self._promoted_message(status)}")

        self.say(f"\ncommit v3 (fails {app.VERSIONS[3].error_rate:.0%} of requests): the canary should be rolled back "
                 "and reverted in Git")
        bad = repo.commit(self.files(3), "feat(podinfo): 6.0.2")
        marks: dict[str, float] = {}
        finished = self.finished(("Reverted", "Succeeded"))

        def watch(s: Mapping[str, Any]) -> bool:
            now = time.monotonic()
            if "rollback" not in marks and s.get("phase") in ("Failed", "Reverting", "Reverted"):
                marks["rollback"] = now
            if "revert" not in marks and repo.subject().startswith("revert("):
                marks["revert"] = now
            return finished(s)

        status = self.wait("v3 to be reverted", watch, 3)
        served = sandbox.dataplane.first_served if sandbox.dataplane else {}
        first = served.get((app.NAMESPACE, app.VERSIONS[3].image))
        v3 = {
            "phase": status.get("phase"),
            "reason": self._promoted_message(status),
            "bad_revision": bad,
            "bad_to_rollback": _between(first, marks.get("rollback")),
            "bad_to_revert": _between(first, marks.get("revert")),
            "rollback_to_revert": _between(marks.get("rollback"), marks.get("revert")),
            "revert": status.get("revert"),
        }
        if status.get("phase") != "Reverted":
            raise DemoError(f"v3 should have been reverted but ended {status.get('phase')}")
        head = repo.head()
        return {"v2": v2, "v3": v3, "revert_commit": head, "revert_subject": repo.subject(head),
                "revert_show": repo.show_stat(head), "revert_commits": repo.count("Rollout-Reverts: ")}

    def files(self, version: int) -> dict[str, str]:
        opts = self.options
        return app.files(version, opts.provider, opts.judge, opts.interval, mirror=opts.mirror)

    @staticmethod
    def finished(phases: tuple[str, ...]) -> Callable[[Mapping[str, Any]], bool]:
        """Whether a release that started after the commit has ended in one of `phases`."""
        started = {"yes": False}

        def check(status: Mapping[str, Any]) -> bool:
            if status.get("phase") not in ("Initialized", "Succeeded", "Reverted"):
                started["yes"] = True
            return started["yes"] and status.get("phase") in phases

        return check

    def agreement(self, repo: Repo) -> dict[str, Any]:
        """Git, the cluster and the Canary's status, side by side."""
        source = self.custom.get_namespaced_custom_object(GROUP, VERSION, app.NAMESPACE, PLURALS[GIT_SOURCE], app.APP)
        status = self._status()
        head = repo.head()
        images = self._images()
        agree = (source.get("status", {}).get("lastAppliedRevision") == head
                 and images["target"] == images["primary"] == app.VERSIONS[2].image
                 and (status.get("revert") or {}).get("commit") == head and status.get("canaryWeight") == 0)
        return {"remote_head": head, "applied_revision": source.get("status", {}).get("lastAppliedRevision"),
                "target_image": images["target"], "primary_image": images["primary"], "agree": agree,
                "phase": status.get("phase")}

    def _images(self) -> dict[str, str]:
        """The image the target asks for and the one the primary runs: of `<app>` and `<app>-primary`,
        or for knative of the Knative Service's template and of the Revision it names as primary."""
        if self.options.provider != "knative":
            target = self.apps.read_namespaced_deployment(app.APP, app.NAMESPACE)
            primary = self.apps.read_namespaced_deployment(f"{app.APP}-primary", app.NAMESPACE)
            return {"target": target.spec.template.spec.containers[0].image,
                    "primary": primary.spec.template.spec.containers[0].image}
        service = self.custom.get_namespaced_custom_object("serving.knative.dev", "v1", app.NAMESPACE, "services",
                                                           app.APP)
        revision = service["metadata"].get("annotations", {}).get("flagger.app/primary-revision", "")
        primary = self.custom.get_namespaced_custom_object("serving.knative.dev", "v1", app.NAMESPACE, "revisions",
                                                           revision) if revision else {}
        return {"target": service["spec"]["template"]["spec"]["containers"][0]["image"],
                "primary": ((primary.get("spec") or {}).get("containers") or [{}])[0].get("image", "")}

    def wait(self, what: str, done: Callable[[Mapping[str, Any]], bool], version: int) -> Mapping[str, Any]:
        deadline = time.monotonic() + self.options.timeout
        last: tuple[Any, ...] | None = None
        status: Mapping[str, Any] = {}
        while time.monotonic() < deadline:
            if self.operator.poll() is not None:
                raise DemoError(f"the operator exited ({self.operator.returncode}); see operator.log")
            status = self._status()
            key = tick_key(status)
            if key != last and status:
                last = key
                self.say(tick_line(time.monotonic() - self.started, version, status))
            if done(status):
                return status
            time.sleep(POLL)
        raise DemoError(f"timed out after {self.options.timeout:g}s waiting for {what} "
                        f"(last phase {status.get('phase')}); see operator.log")

    def keep(self, kubeconfig: Path, prometheus: str, repo: Repo) -> None:
        self.say("\nStill running, for exploring (Ctrl-C stops everything):")
        self.say(f"  export KUBECONFIG={kubeconfig}")
        self.say(f"  Prometheus: {prometheus}")
        self.say(f"  the operator's metrics: {self.metrics_url}/metrics (and /healthz, /readyz)")
        self.say(f"  Git remote: {repo.bare} (working copy {repo.work})")
        self.say("  try: rollout status; kubectl get canaries,gitsources -A; git -C "
                 f"{repo.work} log --oneline origin/main")
        stop = {"now": False}
        signal.signal(signal.SIGTERM, lambda *_: stop.update(now=True))
        try:
            while not stop["now"] and self.operator.poll() is None:
                time.sleep(0.5)
        except KeyboardInterrupt:
            pass

    def _status(self) -> Mapping[str, Any]:
        try:
            obj = self.custom.get_namespaced_custom_object(GROUP, VERSION, app.NAMESPACE, PLURALS[CANARY], app.APP)
        except client.exceptions.ApiException:
            return {}
        return dict(obj.get("status") or {})

    @staticmethod
    def _promoted_message(status: Mapping[str, Any]) -> str:
        return next((c.get("message", "") for c in status.get("conditions") or [] if c.get("type") == "Promoted"), "")


def _between(start: float | None, end: float | None) -> float | None:
    return None if start is None or end is None else round(end - start, 1)


def run_demo(options: Options, out: TextIO = sys.stdout) -> int:
    """Run the demo; 0 when v2 was promoted, v3 reverted and Git and the cluster agree."""
    if shutil.which("git") is None:
        print("rollout demo needs git on PATH", file=sys.stderr)
        return 2
    try:
        result = Demo(options, out).run()
    except DemoError as e:
        print(f"rollout demo: {e}", file=sys.stderr)
        return 1
    return 0 if result.get("agree") and result.get("revert_commits") == 1 else 1
