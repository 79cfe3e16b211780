"""The operator on the sandbox: real kopf runtime, real client, real Prometheus, real processes.

Each test gets its own namespace; the operator (`rollout run`) serves them all. Metrics come from
an exporter whose numbers each test sets, scraped every second by Prometheus.
"""

from __future__ import annotations

import http.server
import json
import os
import re
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from kubernetes import client

from rollout.api.parse import parse_canary
from rollout.routers import router_for
from rollout.settings import Settings
from sandbox.demo.app import gateway
from tests.e2e.conftest import (
    GROUP,
    VERSION,
    OperatorProcess,
    create_deployment,
    create_release,
    image_of,
    release_status,
    set_image,
    wait_for,
    wait_phase,
)
from tests.e2e.exporter import Exporter
from tests.prom import free_port

pytestmark = pytest.mark.e2e

OLD, NEW = "ghcr.io/stefanprodan/podinfo:6.0.0", "ghcr.io/stefanprodan/podinfo:6.0.1"


def canary(name: str, namespace: str, provider: str = "istio", **analysis: Any) -> dict[str, Any]:
    spec_analysis: dict[str, Any] = {"interval": "1s", "threshold": 2, "maxWeight": 50, "stepWeight": 10,
                                     "metrics": [{"name": "request-success-rate", "interval": "10s",
                                                  "thresholdRange": {"min": 99}}]}
    spec_analysis.update(analysis)
    return {
        "apiVersion": f"{GROUP}/{VERSION}", "kind": "Canary",
        "metadata": {"name": name, "namespace": namespace},
        "spec": {"provider": provider, "targetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": name},
                 "progressDeadlineSeconds": 60, "service": {"port": 9898}, "analysis": spec_analysis},
    }


def healthy(exporter: Exporter, namespace: str, name: str) -> None:
    exporter.set(namespace, name, rps=50, error_ratio=0.0)
    exporter.set(namespace, f"{name}-primary", rps=50, error_ratio=0.0)


def start(api: client.ApiClient, obj: dict[str, Any]) -> None:
    meta = obj["metadata"]
    create_deployment(api, meta["name"], meta["namespace"], image=OLD)
    create_release(api, obj)
    wait_phase(api, meta["namespace"], meta["name"], "Initialized", kind=obj["kind"])


class WeightLog:
    """Samples status weight and the live route's weights until stopped."""

    def __init__(self, api: client.ApiClient, obj: dict[str, Any]) -> None:
        self.api, self.obj = api, obj
        self.release = parse_canary(obj) if obj["kind"] == "Canary" else None
        self.status: list[int] = []
        self.routes: list[tuple[int, int] | None] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        meta = self.obj["metadata"]
        for _ in range(600):
            if self._stop.is_set():
                return
            weight = release_status(self.api, meta["namespace"], meta["name"], self.obj["kind"]).get("canaryWeight")
            if weight is not None and (not self.status or self.status[-1] != weight):
                self.status.append(weight)
            if self.release is not None:
                route = router_for(self.release.spec.provider, self.api, Settings()).verify_weight(self.release)
                if not self.routes or self.routes[-1] != route:
                    self.routes.append(route)
            time.sleep(0.5)

    def __enter__(self) -> WeightLog:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(timeout=5)


def test_canary_walks_every_step_and_promotes(api: client.ApiClient, operator: OperatorProcess,
                                              exporter: Exporter, namespace: str) -> None:
    obj = canary("podinfo", namespace, interval="2s")
    healthy(exporter, namespace, "podinfo")
    start(api, obj)
    began = time.monotonic()
    with WeightLog(api, obj) as log:
        set_image(api, "podinfo", namespace, NEW)
        status = wait_phase(api, namespace, "podinfo", "Succeeded", "Failed", timeout=120)
    took = time.monotonic() - began
    assert status["phase"] == "Succeeded", operator.output()
    assert log.status[:7] == [0, 10, 20, 30, 40, 50, 0]
    assert [r for r in log.routes if r] == [(100, 0), (90, 10), (80, 20), (70, 30), (60, 40), (50, 50), (100, 0)]
    assert image_of(api, "podinfo-primary", namespace) == NEW
    target = client.AppsV1Api(api).read_namespaced_deployment("podinfo", namespace)
    assert not target.spec.replicas
    assert status["lastPromotedSpec"] == status["lastAppliedSpec"]
    print(f"\n5-step canary with a 2s interval: {took:.1f}s from commit to Succeeded")


def test_failing_metric_rolls_back_at_the_threshold(api: client.ApiClient, operator: OperatorProcess,
                                                    exporter: Exporter, namespace: str) -> None:
    obj = canary("web", namespace)
    healthy(exporter, namespace, "web")
    start(api, obj)
    set_image(api, "web", namespace, NEW)
    wait_for("first step", lambda: release_status(api, namespace, "web").get("canaryWeight", 0) >= 10)
    exporter.set(namespace, "web", rps=50, error_ratio=0.3)
    status = wait_phase(api, namespace, "web", "Failed", "Succeeded", timeout=90)
    assert status["phase"] == "Failed"
    assert status["failedChecks"] == 2 and status["canaryWeight"] == 0
    release = parse_canary(obj)
    assert router_for(release.spec.provider, api, Settings()).verify_weight(release) == (100, 0)
    assert image_of(api, "web-primary", namespace) == OLD
    # Traffic goes back before Failed is recorded; the scale-down follows the record.
    wait_for("the target scaled to zero",
             lambda: not client.AppsV1Api(api).read_namespaced_deployment("web", namespace).spec.replicas, timeout=30)
    events = client.CoreV1Api(api).list_namespaced_event(namespace).items
    assert any(e.reason == "Failed" and "request-success-rate" in e.message for e in events)


class Hook:
    """A local webhook that answers `code` (tests flip it) and records what it was sent."""

    def __init__(self) -> None:
        self.code = 403
        self.calls: list[str] = []
        hook = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                self.rfile.read(int(self.headers.get("Content-Length") or 0))
                hook.calls.append(self.path)
                self.send_response(hook.code)
                self.end_headers()

            def log_message(self, format: str, *args: object) -> None:
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}/gate"


@pytest.fixture
def hook() -> Iterator[Hook]:
    h = Hook()
    yield h
    h.server.shutdown()
    h.server.server_close()


def test_confirm_promotion_gate_holds_then_releases(api: client.ApiClient, operator: OperatorProcess,
                                                    exporter: Exporter, namespace: str, hook: Hook) -> None:
    obj = canary("gated", namespace, stepWeight=25,
                 webhooks=[{"name": "approve", "type": "confirm-promotion", "url": hook.url, "timeout": "2s"}])
    healthy(exporter, namespace, "gated")
    start(api, obj)
    set_image(api, "gated", namespace, NEW)
    wait_phase(api, namespace, "gated", "WaitingPromotion", timeout=60)
    time.sleep(3)
    assert release_status(api, namespace, "gated")["phase"] == "WaitingPromotion"
    assert image_of(api, "gated-primary", namespace) == OLD
    hook.code = 200
    wait_phase(api, namespace, "gated", "Succeeded", timeout=60)
    assert image_of(api, "gated-primary", namespace) == NEW and hook.calls


def test_ab_testing_routes_the_header_to_the_canary(api: client.ApiClient, operator: OperatorProcess,
                                                   exporter: Exporter, namespace: str) -> None:
    match = [{"headers": {"x-canary": {"exact": "insider"}}}]
    obj = canary("shop", namespace, stepWeight=None, maxWeight=None, iterations=4, match=match)
    del obj["spec"]["analysis"]["stepWeight"], obj["spec"]["analysis"]["maxWeight"]
    healthy(exporter, namespace, "shop")
    start(api, obj)
    set_image(api, "shop", namespace, NEW)

    def routed() -> dict[str, Any] | None:
        vs = client.CustomObjectsApi(api).get_namespaced_custom_object(
            "networking.istio.io", "v1beta1", namespace, "virtualservices", "shop")
        first = vs["spec"]["http"][0]
        return vs if first.get("match") else None

    vs = wait_for("the A/B route", routed, timeout=30)
    first = vs["spec"]["http"][0]
    assert first["match"][0]["headers"] == {"x-canary": {"exact": "insider"}}
    assert [d["destination"]["host"] for d in first["route"]] == ["shop-canary"]
    status = wait_phase(api, namespace, "shop", "Succeeded", "Failed", timeout=60)
    assert status["phase"] == "Succeeded" and status["iterations"] >= 4
    assert image_of(api, "shop-primary", namespace) == NEW


def test_bluegreen_switches_the_service_selector(api: client.ApiClient, operator: OperatorProcess,
                                                 exporter: Exporter, namespace: str) -> None:
    obj = {
        "apiVersion": f"{GROUP}/{VERSION}", "kind": "BlueGreen",
        "metadata": {"name": "billing", "namespace": namespace},
        "spec": {"provider": "kubernetes", "targetRef": {"apiVersion": "apps/v1", "kind": "Deployment",
                                                         "name": "billing"},
                 "service": {"port": 9898}, "scaleDownDelaySeconds": 2,
                 "analysis": {"interval": "1s", "threshold": 2, "iterations": 2,
                              "metrics": [{"name": "request-success-rate", "interval": "10s",
                                           "thresholdRange": {"min": 99}},
                                          {"name": "request-duration", "interval": "10s",
                                           "thresholdRange": {"max": 500}}]}},
    }
    healthy(exporter, namespace, "billing")
    start(api, obj)
    core = client.CoreV1Api(api)
    assert core.read_namespaced_service("billing", namespace).spec.selector == {"app": "billing-primary"}
    set_image(api, "billing", namespace, NEW)
    wait_phase(api, namespace, "billing", "Promoting", "Finalising", "Succeeded", kind="BlueGreen", timeout=60)
    wait_phase(api, namespace, "billing", "Succeeded", kind="BlueGreen", timeout=60)
    assert image_of(api, "billing-primary", namespace) == NEW
    assert core.read_namespaced_service("billing", namespace).spec.selector == {"app": "billing-primary"}
    assert not client.AppsV1Api(api).read_namespaced_deployment("billing", namespace).spec.replicas


def test_invalid_canary_gets_a_condition_and_an_event_while_others_progress(
    api: client.ApiClient, operator: OperatorProcess, exporter: Exporter, namespace: str
) -> None:
    bad = canary("broken", namespace)
    bad["spec"]["analysis"]["interval"] = "2 seconds"  # the schema allows any string; the operator does not
    create_deployment(api, "broken", namespace)
    create_release(api, bad)
    good = canary("fine", namespace, stepWeight=25)
    healthy(exporter, namespace, "fine")
    start(api, good)

    def invalid() -> dict[str, Any] | None:
        conditions = release_status(api, namespace, "broken").get("conditions") or []
        return next((c for c in conditions if c["type"] == "Ready" and c["reason"] == "InvalidSpec"), None)

    condition = wait_for("the InvalidSpec condition", invalid, timeout=30)
    assert "spec.analysis.interval: must be a duration like 30s, 1m30s or 2h, got '2 seconds'" in condition["message"]
    events = client.CoreV1Api(api).list_namespaced_event(namespace).items
    assert any(e.reason == "InvalidSpec" and e.involved_object.name == "broken" for e in events)
    set_image(api, "fine", namespace, NEW)
    assert wait_phase(api, namespace, "fine", "Succeeded", "Failed", timeout=60)["phase"] == "Succeeded"
    # Fixing the spec is picked up without restarting anything.
    client.CustomObjectsApi(api).patch_namespaced_custom_object(
        GROUP, VERSION, namespace, "canaries", "broken", {"spec": {"analysis": {"interval": "2s"}}},
        _content_type="application/merge-patch+json")
    wait_phase(api, namespace, "broken", "Initialized", timeout=60)


def test_deleting_a_canary_restores_traffic_to_the_primary(api: client.ApiClient, operator: OperatorProcess,
                                                          exporter: Exporter, namespace: str) -> None:
    obj = canary("gone", namespace)
    healthy(exporter, namespace, "gone")
    start(api, obj)
    set_image(api, "gone", namespace, NEW)
    wait_for("weight 20", lambda: release_status(api, namespace, "gone").get("canaryWeight", 0) >= 20)
    objects = client.CustomObjectsApi(api)
    objects.delete_namespaced_custom_object(GROUP, VERSION, namespace, "canaries", "gone")

    def vanished() -> bool:
        try:
            objects.get_namespaced_custom_object(GROUP, VERSION, namespace, "canaries", "gone")
        except client.exceptions.ApiException as e:
            return e.status == 404
        return False

    wait_for("the Canary to be gone", vanished, timeout=30)
    release = parse_canary(obj)
    assert router_for(release.spec.provider, api, Settings()).verify_weight(release) in ((100, 0), None)
    assert client.CoreV1Api(api).read_namespaced_service("gone", namespace).spec.selector == {"app": "gone-primary"}


def test_restarted_mid_release_continues_from_status(api: client.ApiClient, operator: OperatorProcess,
                                                     exporter: Exporter, namespace: str) -> None:
    obj = canary("steady", namespace)
    healthy(exporter, namespace, "steady")
    start(api, obj)
    with WeightLog(api, obj) as log:
        set_image(api, "steady", namespace, NEW)
        wait_for("weight 20", lambda: release_status(api, namespace, "steady").get("canaryWeight", 0) >= 20)
        operator.kill()
        time.sleep(2)
        operator.start()
        status = wait_phase(api, namespace, "steady", "Succeeded", "Failed", timeout=120)
    assert status["phase"] == "Succeeded", operator.output()
    assert log.status[:7] == [0, 10, 20, 30, 40, 50, 0]
    events = client.CoreV1Api(api).list_namespaced_event(namespace).items
    promotions = [e for e in events if e.reason == "Promoting" and e.involved_object.name == "steady"]
    assert len(promotions) == 1


def test_every_mesh_router_progresses(api: client.ApiClient, operator: OperatorProcess, namespace: str) -> None:
    """One release per remaining provider, all at once: each route must carry each step."""
    releases = []
    for provider in ("gatewayapi", "smi", "linkerd", "nginx", "kuma", "appmesh"):
        name = f"app-{provider}"
        obj = canary(name, namespace, provider, stepWeight=25, maxWeight=50, metrics=[])
        if provider == "gatewayapi":
            obj["spec"]["service"]["gatewayRefs"] = [{"name": "public", "namespace": namespace}]
            client.CustomObjectsApi(api).create_namespaced_custom_object(
                "gateway.networking.k8s.io", "v1", namespace, "gateways", gateway(namespace))
        if provider == "nginx":
            obj["spec"]["ingressRef"] = {"apiVersion": "networking.k8s.io/v1", "kind": "Ingress", "name": name}
            client.NetworkingV1Api(api).create_namespaced_ingress(namespace, {
                "apiVersion": "networking.k8s.io/v1", "kind": "Ingress", "metadata": {"name": name},
                "spec": {"rules": [{"host": f"{name}.example.com", "http": {"paths": [{
                    "path": "/", "pathType": "Prefix",
                    "backend": {"service": {"name": name, "port": {"number": 9898}}}}]}}]},
            })
        create_deployment(api, name, namespace, image=OLD)
        create_release(api, obj)
        releases.append(obj)
    for obj in releases:
        wait_phase(api, namespace, obj["metadata"]["name"], "Initialized")
    logs = [WeightLog(api, obj).__enter__() for obj in releases]
    try:
        for obj in releases:
            set_image(api, obj["metadata"]["name"], namespace, NEW)
        for obj in releases:
            name = obj["metadata"]["name"]
            status = wait_phase(api, namespace, name, "Succeeded", "Failed", timeout=90)
            assert status["phase"] == "Succeeded", (name, operator.output())
    finally:
        for log in logs:
            log.__exit__()
    for obj, log in zip(releases, logs, strict=True):
        assert (75, 25) in log.routes and (50, 50) in log.routes, (obj["spec"]["provider"], log.routes)
        assert image_of(api, f"{obj['metadata']['name']}-primary", namespace) == NEW


def test_cli_status_promote_and_abort(api: client.ApiClient, operator: OperatorProcess, sandbox: Any,
                                      exporter: Exporter, namespace: str, hook: Hook,
                                      capsys: pytest.CaptureFixture[str]) -> None:
    from rollout.cli import main

    kube = ["--kubeconfig", str(sandbox)]
    held = canary("held", namespace, stepWeight=25,
                  webhooks=[{"name": "approve", "type": "confirm-promotion", "url": hook.url, "timeout": "2s"}])
    doomed = canary("doomed", namespace)
    for obj in (held, doomed):
        healthy(exporter, namespace, obj["metadata"]["name"])
        start(api, obj)
        set_image(api, obj["metadata"]["name"], namespace, NEW)
    wait_phase(api, namespace, "held", "WaitingPromotion", timeout=60)
    wait_for("doomed at weight 10", lambda: release_status(api, namespace, "doomed").get("canaryWeight", 0) >= 10)
    assert main(["status", "-n", namespace, *kube]) == 0
    table = capsys.readouterr().out
    assert "held" in table and "WaitingPromotion" in table and "request-success-rate" in table
    assert "PROVIDER" in table and "  istio  " in table  # the provider in effect
    assert main(["status", "held", "-n", namespace, *kube]) == 0
    shown = capsys.readouterr().out
    assert shown.startswith(f"Canary {namespace}/held (provider istio, "), shown
    assert "  phase       WaitingPromotion" in shown, shown
    assert main(["status", "nobody", "-n", namespace, *kube]) == 1
    assert "no Canary or BlueGreen named nobody" in capsys.readouterr().err
    assert main(["promote", "held", "-n", namespace, *kube]) == 0
    assert main(["abort", "doomed", "-n", namespace, *kube]) == 0
    assert "Canary" in capsys.readouterr().out
    assert wait_phase(api, namespace, "held", "Succeeded", timeout=60)["phase"] == "Succeeded"
    doomed_status = wait_phase(api, namespace, "doomed", "Failed", timeout=60)
    assert "aborted on request" in next(c["message"] for c in doomed_status["conditions"] if c["type"] == "Promoted")
    assert image_of(api, "held-primary", namespace) == NEW and image_of(api, "doomed-primary", namespace) == OLD
    assert main(["promote", "nobody", "-n", namespace, *kube]) == 1


def test_dry_run_metric_that_fails_every_check_never_stops_the_release(
        api: client.ApiClient, operator: OperatorProcess, exporter: Exporter, namespace: str) -> None:
    # request-duration is 20 ms on both arms: its dry-run limit of 10 ms fails every check.
    obj = canary("shadow", namespace, metrics=[
        {"name": "request-success-rate", "interval": "10s", "thresholdRange": {"min": 99}},
        {"name": "request-duration", "interval": "10s", "thresholdRange": {"max": 10}, "dryRun": True},
    ])
    healthy(exporter, namespace, "shadow")
    start(api, obj)
    set_image(api, "shadow", namespace, NEW)
    marked: list[dict[str, Any]] = []

    def shadow_failed() -> bool:
        metrics = (release_status(api, namespace, "shadow").get("analysis") or {}).get("metrics") or []
        marked[:] = [m for m in metrics if m.get("dryRun")]
        return bool(marked) and marked[0]["verdict"] == "fail"

    wait_for("the dry-run metric's failure in status", shadow_failed, timeout=60)
    assert marked[0]["name"] == "request-duration" and "> max 10" in marked[0]["reason"]
    status = wait_phase(api, namespace, "shadow", "Succeeded", "Failed", timeout=120)
    assert status["phase"] == "Succeeded", operator.output()
    assert status["failedChecks"] == 0
    assert image_of(api, "shadow-primary", namespace) == NEW
    events = client.CoreV1Api(api).list_namespaced_event(namespace).items
    assert any(e.reason == "DryRun" and "dry run: would have failed: request-duration" in e.message for e in events)
    reports = Path(operator.args[operator.args.index("--reports") + 1])
    found = wait_for("the run's report", lambda: sorted(reports.glob(f"{namespace}-shadow-*.json")), timeout=30)
    report = json.loads(found[-1].read_text())
    assert report["outcome"] == "succeeded"
    duration = next(m for m in report["metrics"] if m["name"] == "request-duration")
    assert duration["dryRun"] and duration["verdict"] == "fail"
    assert duration["detail"].startswith("dry run: would have failed")
    markdown = found[-1].with_suffix(".md").read_text()
    assert "request-duration (dry run)" in markdown and "would have failed" in markdown


def test_dashboard_shows_the_release_live_and_its_abort_button_rolls_it_back(
        api: client.ApiClient, operator: OperatorProcess, exporter: Exporter, namespace: str, sandbox: Path) -> None:
    """Playwright drives Debian's Chromium through the shared operator's dashboard (`--dashboard-addr`)
    during a real release: the list shows it, its weight moves, Abort (confirmed) rolls it back and its
    report is linked. `rollout dashboard --read-only` beside it shows the release without buttons and
    refuses commands. With ROLLOUT_SCREENSHOTS=DIR the README's screenshots are written there."""
    from playwright import sync_api  # a test dependency: pyproject's test extras

    from tests.browser import PRIMARY_RGB, WEIGHT_RGB, chromium_binary, colour_pixels

    shots = Path(os.environ.get("ROLLOUT_SCREENSHOTS") or operator.reports.parent / "screenshots")
    shots.mkdir(parents=True, exist_ok=True)
    port = free_port()
    viewer = subprocess.Popen([str(Path(sys.executable).parent / "rollout"), "dashboard", "--read-only",
                               "--addr", f"127.0.0.1:{port}", "--kubeconfig", str(sandbox), "-n", namespace],
                              stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    obj = canary("board", namespace, interval="2s", stepWeight=10, maxWeight=90, threshold=5)
    healthy(exporter, namespace, "board")
    try:
        start(api, obj)
        _drive_dashboard(sync_api, chromium_binary(), operator, f"http://127.0.0.1:{port}", namespace, shots, api)
    finally:
        viewer.terminate()
        viewer.wait(timeout=10)
    status = release_status(api, namespace, "board")
    assert status["phase"] == "Failed" and status["canaryWeight"] == 0
    assert "aborted on request" in next(c["message"] for c in status["conditions"] if c["type"] == "Promoted")
    release = parse_canary(obj)
    assert router_for(release.spec.provider, api, Settings()).verify_weight(release) == (100, 0)
    assert image_of(api, "board-primary", namespace) == OLD
    # The run's report: the metric at the source's resolution (1s here) over the whole run, not only at
    # its checks, and the weight's steps.
    report = json.loads(next(operator.reports.glob(f"{namespace}-board-*.json")).read_text())
    canary_series = report["metrics"][0]["series"]["canary"]["timestamps"]
    assert len(canary_series) > 2 * len(report["ticks"]) and min(np.diff(canary_series)) <= 1.0
    assert {10, 20, 30} <= set(report["weights"]["values"])
    assert (operator.reports / "index.html").read_text().count(f"{namespace}/board") == 1
    # Chromium drew the report's plot: the primary's line (the canary's lies on it) and the weight's steps.
    assert colour_pixels(shots / "report.png", PRIMARY_RGB) > 300
    assert colour_pixels(shots / "report.png", WEIGHT_RGB) > 100


def _drive_dashboard(sync_api: Any, chromium: str, operator: OperatorProcess, viewer: str, namespace: str,
                     shots: Path, api: client.ApiClient) -> None:
    expect = sync_api.expect
    with sync_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=chromium, args=["--no-sandbox", "--disable-gpu"])
        try:
            page = browser.new_page(viewport={"width": 1280, "height": 860})
            page.goto(f"{operator.dashboard_url}/")
            row = page.locator(f'tr[data-release="{namespace}/board"]')
            expect(row).to_contain_text("Initialized", timeout=15_000)
            set_image(api, "board", namespace, NEW)
            weight = row.locator("td.weight")
            expect(weight).to_have_text(re.compile(r"^[1-9]0%$"), timeout=20_000)
            first = weight.inner_text()
            expect(weight).not_to_have_text(first, timeout=10_000)  # the list follows the steps
            expect(row).to_contain_text("Progressing")
            page.screenshot(path=str(shots / "dashboard-list.png"))

            # The read-only dashboard lists the same release, offers no button and refuses a command.
            other = browser.new_page(viewport={"width": 1280, "height": 860})
            other.goto(f"{viewer}/#/release/Canary/{namespace}/board")
            expect(other.locator("h1")).to_have_text(f"Canary {namespace}/board", timeout=15_000)
            expect(other.locator("#mode")).to_have_text("read-only")
            assert other.locator("button").count() == 0
            refused = other.request.post(f"{viewer}/api/releases/Canary/{namespace}/board/abort",
                                         headers={"X-Rollout-Dashboard": "1"})
            assert refused.status == 403 and "read-only" in refused.json()["error"]
            # A command without the dashboard's header (a cross-site form) is refused by the writable one.
            forged = other.request.post(f"{operator.dashboard_url}/api/releases/Canary/{namespace}/board/abort")
            assert forged.status == 403
            other.close()

            row.locator("a").click()
            expect(page.locator("h1")).to_have_text(f"Canary {namespace}/board")
            expect(page.locator("#weight")).to_have_text(re.compile(r"^[3-9]0%$"), timeout=20_000)
            expect(page.locator("svg.metric-chart circle").nth(1)).to_be_attached()
            assert release_status(api, namespace, "board")["phase"] == "Progressing"  # nothing aborted it yet
            asked: list[str] = []

            def confirm(dialog: Any) -> None:
                asked.append(dialog.message)
                dialog.accept()

            page.once("dialog", confirm)
            page.locator("button.abort").click()
            expect(page.locator("#phase")).to_have_text("Failed", timeout=20_000)
            expect(page.locator("#weight")).to_have_text("0%")
            assert asked == [f"abort Canary {namespace}/board?"]
            report = page.locator("#reports a", has_text="HTML")
            expect(report).to_be_visible(timeout=20_000)
            page.screenshot(path=str(shots / "dashboard-release.png"), full_page=True)
            report.click()
            expect(page.locator("h1")).to_have_text(f"Analysis of {namespace}/board")
            expect(page.locator("figure img").first).to_be_visible()
            assert page.locator("figure img").first.evaluate("i => i.naturalWidth") > 0
            page.screenshot(path=str(shots / "report.png"), full_page=True)
        finally:
            browser.close()
