"""Real Git remotes for tests: git daemon, smart HTTP with Basic auth, and OpenSSH.

Credentials are only worth testing against servers that really check them, so every remote here
is the real program: `git daemon` for the anonymous git:// protocol, `git http-backend` (CGI)
behind a small Python HTTP server that demands Basic auth, and OpenSSH's `sshd` with a generated
host key and one authorized client key. All of them bind 127.0.0.1 on free ports, are started by
the test in a context manager, awaited with bounded loops and stopped by pid.

The HTTP server speaks plain http: TLS is not what these tests are about (git sends the same
Authorization header either way), and a certificate authority would only add noise.

`sshd` comes from `ROLLOUT_SSHD`, from `.cache/openssh/` (filled by `tools/fetch-openssh.sh`) or
from the machine. Run as root, sshd insists on its privilege separation user (`sshd`) and
directory (`/run/sshd`); when the machine has neither, the server starts in a private mount
namespace (`unshare --mount`) that sees a copy of /etc/passwd with that user and a fresh /run,
so nothing on the machine changes. Run as any other user, sshd needs neither.

Run as `python -m tests.gitserve http BASE_DIR` this module is the HTTP server itself (the
username and password come from the environment, so they never show in a process list).
"""

from __future__ import annotations

import base64
import contextlib
import hmac
import os
import pwd
import selectors
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.parse
from collections.abc import Iterator
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
CACHED_SSHD = REPO / ".cache" / "openssh" / "usr" / "sbin" / "sshd"
READY_TIMEOUT = 20.0
STOP_TIMEOUT = 5.0
CGI_TIMEOUT = 60.0
_USER_ENV = "GITSERVE_USERNAME"
_PASSWORD_ENV = "GITSERVE_PASSWORD"
_PRIVSEP_USER = "sshd"
_PRIVSEP_DIR = Path("/run/sshd")


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def bare_repo(path: Path, files: dict[str, str] | None = None, branch: str = "main") -> Path:
    """A bare repository at `path` whose `branch` holds one commit with `files` (if any)."""
    subprocess.run(["git", "init", "--quiet", "--bare", f"--initial-branch={branch}", str(path)], check=True)
    if files:
        with tempfile.TemporaryDirectory(prefix="gitserve-seed-") as work:
            _git(work, "init", "--quiet", f"--initial-branch={branch}")
            for name, text in files.items():
                target = Path(work) / name
                target.parent.mkdir(parents=True, exist_ok=True)
                target.write_text(text)
            _git(work, "add", "--all")
            _git(work, "-c", "user.name=seed", "-c", "user.email=seed@example.invalid",
                 "commit", "--quiet", "-m", "seed")
            _git(work, "push", "--quiet", str(path), f"HEAD:refs/heads/{branch}")
    return path


def _git(cwd: str, *args: str) -> None:
    subprocess.run(["git", *args], cwd=cwd, check=True, capture_output=True, timeout=CGI_TIMEOUT)


def _stop(proc: subprocess.Popen[bytes]) -> None:
    """Stop the server by its pid: SIGTERM, a bounded wait, then SIGKILL."""
    if proc.poll() is not None:
        return
    with contextlib.suppress(ProcessLookupError):
        os.kill(proc.pid, signal.SIGTERM)
    try:
        proc.wait(timeout=STOP_TIMEOUT)
    except subprocess.TimeoutExpired:
        with contextlib.suppress(ProcessLookupError):
            os.kill(proc.pid, signal.SIGKILL)
        proc.wait(timeout=STOP_TIMEOUT)


def _await_port(proc: subprocess.Popen[bytes], port: int, what: str, log: Path | None = None) -> None:
    """Return once `port` accepts connections; fail clearly if the server dies or takes too long."""
    deadline = time.monotonic() + READY_TIMEOUT
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            detail = log.read_text(errors="replace").strip() if log and log.exists() else ""
            raise RuntimeError(f"{what} exited with code {proc.returncode} before listening: {detail}")
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
            sock.settimeout(0.5)
            if sock.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.05)
    _stop(proc)
    raise RuntimeError(f"{what} did not listen on 127.0.0.1:{port} within {READY_TIMEOUT:.0f}s")


# --- git daemon ---------------------------------------------------------------------------------


@contextlib.contextmanager
def git_daemon(base_dir: Path) -> Iterator[str]:
    """Serve every repository under `base_dir` over git:// (fetch and push); yields the base URL."""
    port = free_port()
    log = Path(tempfile.mkstemp(prefix="git-daemon-", suffix=".log")[1])
    try:
        with log.open("wb") as out:
            proc = subprocess.Popen(
                ["git", "daemon", "--reuseaddr", "--export-all", "--enable=receive-pack",
                 f"--base-path={base_dir}", "--listen=127.0.0.1", f"--port={port}", str(base_dir)],
                stdin=subprocess.DEVNULL, stdout=out, stderr=out,
            )
        try:
            _await_port(proc, port, "git daemon", log)
            yield f"git://127.0.0.1:{port}/"
        finally:
            _stop(proc)
    finally:
        log.unlink(missing_ok=True)


# --- smart HTTP with Basic auth -----------------------------------------------------------------


@dataclass(frozen=True)
class HttpGitServer:
    base_url: str  # "http://127.0.0.1:PORT/"
    pid: int

    def url(self, repo: str) -> str:
        return self.base_url + repo


@contextlib.contextmanager
def http_git_server(base_dir: Path, username: str, password: str) -> Iterator[HttpGitServer]:
    """Serve every repository under `base_dir` over smart HTTP, fetch and push, behind Basic auth."""
    backend = git_http_backend()
    if backend is None:
        raise FileNotFoundError("git-http-backend not found (git --exec-path has none)")
    env = {**os.environ, _USER_ENV: username, _PASSWORD_ENV: password,
           "PYTHONPATH": os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")]).rstrip(os.pathsep)}
    proc = subprocess.Popen(
        [sys.executable, "-m", "tests.gitserve", "http", str(base_dir)],
        stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=None, env=env, cwd=REPO,
    )
    try:
        port = _read_port(proc)
        _await_port(proc, port, "git HTTP server")
        yield HttpGitServer(base_url=f"http://127.0.0.1:{port}/", pid=proc.pid)
    finally:
        _stop(proc)
        if proc.stdout is not None:
            proc.stdout.close()


def git_http_backend() -> Path | None:
    try:
        exec_path = subprocess.run(["git", "--exec-path"], check=True, capture_output=True, text=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return None
    backend = Path(exec_path) / "git-http-backend"
    return backend if backend.is_file() and os.access(backend, os.X_OK) else None


def _read_port(proc: subprocess.Popen[bytes]) -> int:
    """The server prints the port it bound as its first line; wait for it, bounded."""
    assert proc.stdout is not None
    with selectors.DefaultSelector() as sel:
        sel.register(proc.stdout, selectors.EVENT_READ)
        if not sel.select(timeout=READY_TIMEOUT):
            _stop(proc)
            raise RuntimeError(f"git HTTP server printed no port within {READY_TIMEOUT:.0f}s")
    line = proc.stdout.readline().decode().strip()
    if not line.isdigit():
        _stop(proc)
        raise RuntimeError(f"git HTTP server failed to start (exit code {proc.poll()}): {line!r}")
    return int(line)


class _GitHttpHandler(BaseHTTPRequestHandler):
    """Basic auth in front of `git http-backend`, with chunked request bodies decoded."""

    protocol_version = "HTTP/1.1"
    server: _GitHttpServer

    def do_GET(self) -> None:
        self._serve()

    def do_POST(self) -> None:
        self._serve()

    def log_message(self, format: str, *args: object) -> None:
        pass

    def _authorized(self) -> bool:
        header = self.headers.get("Authorization", "")
        scheme, _, encoded = header.partition(" ")
        if scheme.lower() != "basic":
            return False
        try:
            user, _, password = base64.b64decode(encoded, validate=True).decode().partition(":")
        except (ValueError, UnicodeDecodeError):
            return False
        return hmac.compare_digest(user.encode(), self.server.username.encode()) and hmac.compare_digest(
            password.encode(), self.server.password.encode())

    def _body(self) -> bytes:
        if "chunked" in self.headers.get("Transfer-Encoding", "").lower():
            chunks: list[bytes] = []
            while True:
                size = int(self.rfile.readline().split(b";", 1)[0].strip() or b"0", 16)
                if size == 0:
                    while self.rfile.readline().strip():  # trailers, up to the blank line
                        pass
                    return b"".join(chunks)
                chunks.append(self.rfile.read(size))
                self.rfile.readline()  # the CRLF after each chunk
        length = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(length) if length else b""

    def _serve(self) -> None:
        if not self._authorized():
            self.close_connection = True  # the unread body (if any) must not be parsed as a request
            self.send_response(401)
            self.send_header("WWW-Authenticate", 'Basic realm="git"')
            self.send_header("Content-Length", "0")
            self.send_header("Connection", "close")
            self.end_headers()
            return
        body = self._body()
        path, _, query = self.path.partition("?")
        env = {
            "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
            "GIT_PROJECT_ROOT": str(self.server.base_dir),
            "GIT_HTTP_EXPORT_ALL": "1",
            "GIT_CONFIG_NOSYSTEM": "1",
            "GIT_CONFIG_COUNT": "1",
            "GIT_CONFIG_KEY_0": "http.receivepack",
            "GIT_CONFIG_VALUE_0": "true",
            "GATEWAY_INTERFACE": "CGI/1.1",
            "REQUEST_METHOD": self.command,
            "PATH_INFO": urllib.parse.unquote(path),
            "QUERY_STRING": query,
            "REMOTE_USER": self.server.username,
            "REMOTE_ADDR": self.client_address[0],
            "CONTENT_TYPE": self.headers.get("Content-Type", ""),
            "CONTENT_LENGTH": str(len(body)),
        }
        for header, var in (("Content-Encoding", "HTTP_CONTENT_ENCODING"), ("Git-Protocol", "GIT_PROTOCOL")):
            if self.headers.get(header):
                env[var] = self.headers[header]
        result = subprocess.run([str(self.server.backend)], input=body, env=env, capture_output=True,
                                timeout=CGI_TIMEOUT, check=False)
        separator = b"\r\n\r\n" if b"\r\n\r\n" in result.stdout else b"\n\n"
        head, _, payload = result.stdout.partition(separator)
        status, headers = 200, []
        for line in head.decode("latin-1").splitlines():
            name, _, value = line.partition(":")
            if name.lower() == "status":
                status = int(value.strip().split()[0])
            elif name:
                headers.append((name, value.strip()))
        if result.returncode != 0 and not head:
            status, payload = 500, result.stderr
        self.send_response(status)
        for name, value in headers:
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)


class _GitHttpServer(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, base_dir: Path, username: str, password: str, backend: Path) -> None:
        super().__init__(("127.0.0.1", 0), _GitHttpHandler)
        self.base_dir = base_dir
        self.username = username
        self.password = password
        self.backend = backend


def _run_http_server(base_dir: Path) -> None:
    backend = git_http_backend()
    if backend is None:
        print("git-http-backend not found", flush=True)
        sys.exit(1)
    server = _GitHttpServer(base_dir, os.environ[_USER_ENV], os.environ.get(_PASSWORD_ENV, ""), backend)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    print(server.server_address[1], flush=True)
    server.serve_forever(poll_interval=0.1)


# --- OpenSSH ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class SshGitServer:
    port: int
    user: str
    pid: int
    identity: str  # the authorized client's private key (OpenSSH format)
    known_hosts: str  # one line: "[127.0.0.1]:PORT <host key type> <host key>"

    def url(self, repo: Path) -> str:
        """The ssh:// URL of the repository at absolute path `repo`."""
        return f"ssh://{self.user}@127.0.0.1:{self.port}{repo.resolve()}"


def sshd_binary() -> Path | None:
    """The sshd executable to use, or None when there is none."""
    env = os.environ.get("ROLLOUT_SSHD")
    if env:
        path = Path(env)
        return path if path.is_file() and os.access(path, os.X_OK) else None
    for candidate in (CACHED_SSHD, Path(shutil.which("sshd") or "/usr/sbin/sshd")):
        if candidate.is_file() and os.access(candidate, os.X_OK):
            return candidate.resolve()
    return None


def _unpacked_libraries(sshd: Path) -> str:
    """The library folders of an sshd unpacked from a package (tools/fetch-openssh.sh), for ld.so."""
    root = sshd.resolve().parent.parent.parent  # <root>/usr/sbin/sshd
    if root == Path("/") or not root.is_dir():
        return ""
    folders = sorted({str(lib.parent) for pattern in ("*.so", "*.so.*") for lib in root.glob(f"**/lib/**/{pattern}")})
    return os.pathsep.join(folders)


def host_key_line(port: int, public_key: str) -> str:
    """The known_hosts line for a host key served on 127.0.0.1:`port`."""
    key_type, key = public_key.split()[:2]
    return f"[127.0.0.1]:{port} {key_type} {key}\n"


def generate_key(path: Path) -> tuple[str, str]:
    """A new ed25519 key pair at `path` (no passphrase); returns (private, public) text."""
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", "gitserve", "-f", str(path)],
                   check=True, stdin=subprocess.DEVNULL, capture_output=True, timeout=30)
    return path.read_text(), path.with_suffix(".pub").read_text()


def _needs_namespace() -> bool:
    """Root's sshd needs its privilege separation user and folder; does this machine lack them?"""
    if os.geteuid() != 0:
        return False
    try:
        pwd.getpwnam(_PRIVSEP_USER)
    except KeyError:
        return True
    return not _PRIVSEP_DIR.is_dir()


def _namespaced(command: list[str], work: Path) -> list[str]:
    """`command` in a private mount namespace with a privilege separation user and folder."""
    unshare = shutil.which("unshare")
    if unshare is None:
        raise FileNotFoundError("sshd needs the 'sshd' user or `unshare` (util-linux); found neither")
    passwd = work / "passwd"
    entry = f"{_PRIVSEP_USER}:x:65534:65534:sshd privsep:{_PRIVSEP_DIR}:/usr/sbin/nologin"
    passwd.write_text(Path("/etc/passwd").read_text().rstrip("\n") + f"\n{entry}\n")
    script = (f'mount --bind "$1" /etc/passwd && mount -t tmpfs -o mode=755 tmpfs /run '
              f'&& mkdir -m 755 {_PRIVSEP_DIR} && shift && exec "$@"')
    return [unshare, "--mount", "--propagation", "private", "sh", "-c", script, "sh", str(passwd), *command]


@contextlib.contextmanager
def ssh_git_server(base_dir: Path) -> Iterator[SshGitServer]:
    """A real sshd on 127.0.0.1 letting one generated client key run git as the current user.

    Repositories are addressed by absolute path (`server.url(base_dir / "repo.git")`).
    """
    sshd = sshd_binary()
    if sshd is None:
        raise FileNotFoundError("sshd not found (run tools/fetch-openssh.sh or set ROLLOUT_SSHD)")
    user = pwd.getpwuid(os.geteuid()).pw_name
    with tempfile.TemporaryDirectory(prefix="gitserve-ssh-") as tmp:
        work = Path(tmp)
        _, host_public = generate_key(work / "host_key")
        client_private, client_public = generate_key(work / "client_key")
        (work / "authorized_keys").write_text(client_public)
        port = free_port()
        config = work / "sshd_config"
        config.write_text("\n".join([
            f"ListenAddress 127.0.0.1:{port}",
            f"HostKey {work / 'host_key'}",
            f"PidFile {work / 'sshd.pid'}",
            f"AuthorizedKeysFile {work / 'authorized_keys'}",
            "AuthenticationMethods publickey",
            "PubkeyAuthentication yes",
            "PasswordAuthentication no",
            "KbdInteractiveAuthentication no",
            "PermitRootLogin prohibit-password",
            "StrictModes no",
            "UsePAM no",
            "UseDNS no",
            "PrintMotd no",
            "LogLevel VERBOSE",
            "",
        ]))
        command = [str(sshd), "-D", "-e", "-f", str(config)]
        if _needs_namespace():
            command = _namespaced(command, work)
        env = dict(os.environ)
        libraries = _unpacked_libraries(sshd)
        if libraries:
            env["LD_LIBRARY_PATH"] = os.pathsep.join(filter(None, [libraries, env.get("LD_LIBRARY_PATH")]))
        log = work / "sshd.log"
        with log.open("wb") as out:
            proc = subprocess.Popen(command, stdin=subprocess.DEVNULL, stdout=out, stderr=out, env=env)
        try:
            _await_port(proc, port, "sshd", log)
            yield SshGitServer(port=port, user=user, pid=proc.pid, identity=client_private,
                               known_hosts=host_key_line(port, host_public))
        finally:
            _stop(proc)


if __name__ == "__main__":
    if len(sys.argv) != 3 or sys.argv[1] != "http":
        sys.exit("usage: python -m tests.gitserve http BASE_DIR")
    _run_http_server(Path(sys.argv[2]))
