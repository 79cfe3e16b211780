"""Every `rollout` command that talks to a cluster, in each way the cluster can be unusable, says in
one line what is wrong and what to do, exits non-zero, and never shows a traceback; and
`rollout status -w` redraws in place on a terminal and prints lines when piped.

One sandbox serves the whole module. It starts without rollout's CRDs (the "missing CRD" case);
they are then created through the API, as `kubectl apply -f crds/` would, for the "unknown
release" case and the watch. "No permission" is a local server that answers every request 403 with
the `Status` object a real API server sends when RBAC denies it
(https://kubernetes.io/docs/reference/kubernetes-api/common-definitions/status/ and, for the
message, https://kubernetes.io/docs/reference/access-authn-authz/rbac/): the sandbox does not
enforce RBAC. The commands run as processes, as a user runs them, all at once (`tests.forks`).
"""

from __future__ import annotations

import fcntl
import json
import os
import pty
import re
import select
import socket
import struct
import subprocess
import sys
import termios
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from kubernetes import client

from rollout.api.kinds import GROUP, PLURALS, RELEASE_KINDS, VERSION
from rollout.cli import build_parser
from rollout.engine.kube import api_client
from sandbox import Sandbox, default_crd_files
from sandbox.resources import load_crd_documents
from tests.forks import run_all
from tests.tools import wait_for

pytestmark = pytest.mark.e2e

ROLLOUT = str(Path(sys.executable).parent / "rollout")
NAMESPACE = "cli"

# Each command that reads or writes the cluster, as a user would type it (the cluster is added).
COMMANDS: dict[str, list[str]] = {
    "status": ["status"],
    "status NAME": ["status", "podinfo", "-n", NAMESPACE],
    "status -w": ["status", "-w", "--interval", "0.2"],
    "promote": ["promote", "podinfo", "-n", NAMESPACE],
    "abort": ["abort", "podinfo", "-n", NAMESPACE],
    "retry": ["retry", "podinfo", "-n", NAMESPACE],
    "dora": ["dora", "-n", NAMESPACE],
    "run": ["run", "--metrics-addr", "0"],
    "dashboard": ["dashboard", "--addr", "127.0.0.1:9", "-n", NAMESPACE],  # fails before it binds
}
# Commands that take a --kubeconfig but make it rather than read it.
NOT_CLUSTER_COMMANDS = {"sandbox"}
# With the CRDs installed and no release, these have nothing to show, which is an error only when a
# release was named (or, for dora, when there are no release records to compute figures from).
UNKNOWN_RELEASE = ("status NAME", "promote", "abort", "retry", "dora")


class Forbidden(BaseHTTPRequestHandler):
    """An API server whose RBAC allows this user nothing: 403 and the Status a real one sends."""

    def _deny(self) -> None:
        path = self.path.split("?")[0].strip("/").split("/")
        # /apis/GROUP/VERSION[/namespaces/NS]/PLURAL[/NAME[/status]]
        group, rest = (path[1], path[3:]) if path[0] == "apis" and len(path) > 3 else ("", path[2:])
        namespace = rest[1] if rest[:1] == ["namespaces"] and len(rest) > 2 else None
        plural = rest[2] if namespace else (rest[0] if rest else "")
        verb = {"GET": "list", "PATCH": "patch", "POST": "create", "PUT": "update", "DELETE": "delete"}[self.command]
        scope = f'in the namespace "{namespace}"' if namespace else "at the cluster scope"
        body = json.dumps({
            "kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
            "message": f'{plural}.{group} is forbidden: User "jane" cannot {verb} resource "{plural}" in API group '
                       f'"{group}" {scope}',
            "reason": "Forbidden", "details": {"group": group, "kind": plural}, "code": 403,
        }).encode()
        length = int(self.headers.get("Content-Length") or 0)
        self.rfile.read(length)
        self.send_response(403)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    do_GET = do_PATCH = do_POST = do_PUT = do_DELETE = _deny

    def log_message(self, format: str, *args: object) -> None:
        pass


def kubeconfig(path: Path, server: str) -> Path:
    path.write_text(
        "apiVersion: v1\nkind: Config\ncurrent-context: c\n"
        f"clusters: [{{name: c, cluster: {{server: '{server}'}}}}]\n"
        "contexts: [{name: c, context: {cluster: c, user: jane, namespace: default}}]\n"
        "users: [{name: jane, user: {token: not-allowed}}]\n")
    return path


def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
    return port  # nothing listens there now: connections are refused


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Sandbox, Path]]:
    root = tmp_path_factory.mktemp("cli")
    with Sandbox(crd_files=[], deployment_ready_delay=0.1) as sandbox:
        yield sandbox, sandbox.write_kubeconfig(root / "kubeconfig")


@pytest.fixture(scope="module")
def forbidden() -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), Forbidden)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


def environment(home: Path) -> dict[str, str]:
    """A user's without ~/.kube/config or KUBECONFIG."""
    return {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": str(home),
            **{k: v for k, v in os.environ.items() if k in ("PYTHONPATH", "LANG", "TMPDIR")}}


Case = tuple[str, list[str], Path | None, str]  # what, the command's arguments, its kubeconfig, the line's words


def each_says(cases: list[Case], home: Path) -> None:
    """Run every case, all at once; each must exit non-zero with exactly one line on stderr that names
    its command and contains the words expected, and print nothing on stdout."""
    done = run_all([[*args, *(["--kubeconfig", str(path)] if path is not None else [])] for _, args, path, _ in cases],
                   environment(home))
    wrong = []
    for (what, args, _, expected), result in zip(cases, done, strict=True):
        lines = result.stderr.splitlines()
        if ("Traceback" in result.stderr or result.returncode == 0 or result.stdout or len(lines) != 1
                or not lines[0].startswith(f"rollout {args[0]}: ") or expected not in lines[0]):
            wrong.append(f"{what}: exit {result.returncode}, stdout {result.stdout!r}, stderr {result.stderr!r}")
    assert not wrong, "\n".join(wrong)


def test_every_cluster_command_is_covered() -> None:
    """A new subcommand with --kubeconfig (the dashboard, say) must be added to COMMANDS."""
    subcommands = next(a for a in build_parser()._actions if a.dest == "command").choices
    assert isinstance(subcommands, dict)
    with_kubeconfig = {name for name, parser in subcommands.items()
                       if any("--kubeconfig" in a.option_strings for a in parser._actions)}
    assert with_kubeconfig - NOT_CLUSTER_COMMANDS == {args[0] for args in COMMANDS.values()}


def test_no_kubeconfig_an_unreachable_server_and_no_permission(tmp_path: Path, forbidden: str) -> None:
    port = closed_port()
    conditions = [
        (None, "no usable kubeconfig (no --kubeconfig, KUBECONFIG unset, no ~/.kube/config"),
        (kubeconfig(tmp_path / "unreachable", f"http://127.0.0.1:{port}"),
         f"cannot reach the Kubernetes API at http://127.0.0.1:{port} (Connection refused)"),
        (kubeconfig(tmp_path / "forbidden", forbidden), '(403 Forbidden: canaries.rollout.gitops.dev is forbidden: '
                                                        'User "jane" cannot'),
    ]
    missing = tmp_path / "missing"  # the same check for every command (`common.api`): one is enough
    each_says([(f"{case} ({path})", args, path, expected)
               for path, expected in conditions for case, args in COMMANDS.items()]
              + [("status (missing)", ["status"], missing,
                  f"no usable kubeconfig (--kubeconfig {missing}: no such file)")],
              tmp_path)


def test_missing_crds_then_an_unknown_release(tmp_path: Path, cluster: tuple[Sandbox, Path]) -> None:
    _, path = cluster
    each_says([(case, args, path, "are rollout's CRDs installed? install them (kubectl apply -f crds/")
               for case, args in COMMANDS.items()], tmp_path)

    install_crds(path)
    each_says([(case, COMMANDS[case], path, f"no Canary or BlueGreen named podinfo in namespace {NAMESPACE}; "
                                            f"`rollout status -n {NAMESPACE}` lists")
               for case in UNKNOWN_RELEASE if case != "dora"]
              + [("dora", COMMANDS["dora"], path, f"no Canary or BlueGreen in namespace {NAMESPACE}")], tmp_path)


def install_crds(path: Path) -> None:
    """The Canary and BlueGreen CRDs (all these commands read), created through the API as
    `kubectl apply -f crds/` creates them."""
    api = api_client(path)
    extensions = client.ApiextensionsV1Api(api)
    releases = {PLURALS[kind] for kind in RELEASE_KINDS}
    for crd in load_crd_documents(default_crd_files()):
        if crd["spec"]["names"]["plural"] not in releases:
            continue
        try:
            extensions.create_custom_resource_definition(crd)
        except client.ApiException as e:
            if e.status != 409:  # already created by an earlier test of this module
                raise
    core = client.CoreV1Api(api)
    if not any(n.metadata.name == NAMESPACE for n in core.list_namespace().items):
        core.create_namespace({"metadata": {"name": NAMESPACE}})


def test_status_watch_redraws_in_place_on_a_terminal_and_prints_lines_when_piped(
        tmp_path: Path, cluster: tuple[Sandbox, Path]) -> None:
    _, path = cluster
    install_crds(path)
    api = api_client(path)
    args = [ROLLOUT, "status", "-w", "--interval", "0.2", "-n", NAMESPACE, "--kubeconfig", str(path)]
    piped = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.PIPE, stdin=subprocess.DEVNULL)
    lines: list[bytes] = []
    reader = threading.Thread(target=lambda: lines.extend(iter(piped.stdout.readline, b"")), daemon=True)  # type: ignore[union-attr]
    reader.start()
    leader, follower = pty.openpty()
    fcntl.ioctl(follower, termios.TIOCSWINSZ, struct.pack("HHHH", 50, 200, 0, 0))  # rows, columns: no wrapping
    terminal = subprocess.Popen(args, stdout=follower, stderr=follower, stdin=subprocess.DEVNULL)
    os.close(follower)
    screen = bytearray()

    def read_terminal(until: bytes) -> bool:
        while select.select([leader], [], [], 0.1)[0]:
            try:
                screen.extend(os.read(leader, 65536))
            except OSError:  # the process has gone
                break
        return until in screen
    try:
        wait_for("both to show the table", lambda: read_terminal(b"NAMESPACE") and lines, timeout=20, every=0.05)
        objects = client.CustomObjectsApi(api)
        objects.create_namespaced_custom_object(GROUP, VERSION, NAMESPACE, "canaries", {
            "apiVersion": f"{GROUP}/{VERSION}", "kind": "Canary",
            "metadata": {"name": "podinfo", "namespace": NAMESPACE},
            "spec": {"provider": "kubernetes", "service": {"port": 9898},
                     "targetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": "podinfo"},
                     "analysis": {"interval": "10s", "threshold": 2, "maxWeight": 50, "stepWeight": 10}}})
        wait_for("both to show the release", lambda: read_terminal(b"podinfo") and b"podinfo" in b"".join(lines),
                 timeout=20, every=0.05)
        objects.patch_namespaced_custom_object_status(GROUP, VERSION, NAMESPACE, "canaries", "podinfo",
                                                      {"status": {"phase": "Progressing", "canaryWeight": 20}},
                                                      _content_type="application/merge-patch+json")
        wait_for("both to show the new phase",
                 lambda: read_terminal(b"Progressing") and b"Progressing" in b"".join(lines), timeout=20, every=0.05)
        time.sleep(0.5)  # two more reads, to see that the piped output does not repeat what did not change
    finally:
        for process in (piped, terminal):
            process.terminate()
            process.wait(timeout=15)
        read_terminal(b"")
        os.close(leader)
    reader.join(timeout=15)
    err = piped.stderr.read()  # type: ignore[union-attr]
    text = b"".join(lines).decode()
    assert "\x1b" not in text and err == b""
    # Each changed version once, in order: the table without the release, with it, and with its new phase.
    tables = text.split("\n\n")
    assert len(tables) == 3, text
    assert "podinfo" not in tables[0] and "podinfo" in tables[1] and "Progressing" in tables[2]
    assert re.search(r"podinfo\s+Canary\s+kubernetes\s+Progressing\s+20\b", tables[2]), text

    drawn = screen.decode()
    # Each redraw goes back up over the last drawing and erases it; a footer says when it was read.
    redraws = re.findall(r"\x1b\[(\d+)A\r\x1b\[J", drawn)
    assert len(redraws) >= 3, drawn
    assert re.search(r"read \d\d:\d\d:\d\d, every 0.2s; Ctrl-C stops", drawn)
    last = drawn.rsplit("\x1b[J", 1)[-1]
    assert "Progressing" in last and last.count("NAMESPACE") == 1


def test_the_same_commands_work_on_releases_that_exist(tmp_path: Path, cluster: tuple[Sandbox, Path]) -> None:
    """The other side of "unknown release": a BlueGreen is found after the Canary kind answered 404
    for that name, and the command is recorded in its status."""
    _, path = cluster
    install_crds(path)
    objects = client.CustomObjectsApi(api_client(path))
    objects.create_namespaced_custom_object(GROUP, VERSION, NAMESPACE, "bluegreens", {
        "apiVersion": f"{GROUP}/{VERSION}", "kind": "BlueGreen",
        "metadata": {"name": "billing", "namespace": NAMESPACE},
        "spec": {"targetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": "billing"},
                 "service": {"port": 8080}, "analysis": {"interval": "10s", "iterations": 2}}})
    [promoted, shown] = run_all([["promote", "billing", "-n", NAMESPACE, "--kubeconfig", str(path)],
                                 ["status", "billing", "-n", NAMESPACE, "--kubeconfig", str(path)]],
                                environment(tmp_path))
    assert (promoted.returncode, promoted.stdout, promoted.stderr) == (
        0, f"BlueGreen {NAMESPACE}/billing: promote requested\n", "")
    assert shown.returncode == 0 and shown.stdout.startswith(f"BlueGreen {NAMESPACE}/billing (provider kubernetes")
    got = objects.get_namespaced_custom_object(GROUP, VERSION, NAMESPACE, "bluegreens", "billing")
    assert got["status"]["command"] == "promote"
