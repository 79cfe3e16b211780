"""Git credentials against real servers: smart HTTP with Basic auth and OpenSSH.

A credential bug shows up either as a sync that cannot authenticate or as a secret written where
someone can read it, so each transport is checked both ways: the right secret fetches and pushes,
a wrong or missing one is refused with a clear GitError, and afterwards no message, config file,
remote URL or leftover file (in the clone, the temp dir or $HOME) holds the secret.
"""

from __future__ import annotations

import os
import secrets
import shlex
import stat
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from rollout.gitops.repo import Clone, Credentials, GitError, git_environment
from rollout.settings import Settings
from tests.gitserve import (
    HttpGitServer,
    SshGitServer,
    bare_repo,
    generate_key,
    git_http_backend,
    host_key_line,
    http_git_server,
    ssh_git_server,
    sshd_binary,
)
from tests.tools import missing_tool

USERNAME = "alice"
# Drawn per run, so no file can hold it by accident of an earlier run.
PASSWORD = f"pw-{secrets.token_urlsafe(18)}"
COMMITTER = ("-c", "user.name=rollout test", "-c", "user.email=rollout@example.invalid")

CONNECT = Settings().git_connect_timeout


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("remotes")


@pytest.fixture(scope="module")
def http_server(served: Path) -> Iterator[HttpGitServer]:
    if git_http_backend() is None:
        missing_tool("GIT-HTTP-BACKEND NOT FOUND - these tests need git's smart HTTP CGI (`git --exec-path`).")
    with http_git_server(served, USERNAME, PASSWORD) as server:
        yield server


@pytest.fixture(scope="module")
def ssh_server(served: Path) -> Iterator[SshGitServer]:
    if sshd_binary() is None:
        missing_tool(
            "SSHD NOT FOUND - these tests need a real OpenSSH server. Run tools/fetch-openssh.sh "
            "(or `make test`, which does) or set ROLLOUT_SSHD=/path/to/sshd."
        )
    with ssh_git_server(served) as server:
        yield server


@pytest.fixture
def isolated(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A private temp dir and $HOME whose git config would store any password it is handed."""
    home = tmp_path / "home"
    home.mkdir()
    (home / ".gitconfig").write_text("[credential]\n\thelper = store\n")
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.delenv("XDG_CONFIG_HOME", raising=False)
    scratch = tmp_path / "tmp"
    scratch.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(scratch))
    return tmp_path


@pytest.fixture
def remote(served: Path, request: pytest.FixtureRequest) -> Path:
    """A fresh bare repository (one per test, the servers are shared) with one commit on main."""
    name = f"{request.node.name.replace('[', '-').strip(']')}-{secrets.token_hex(4)}.git"
    return bare_repo(served / name, {"app/deploy.yaml": "replicas: 2\n"})


def rev(bare: Path, ref: str = "refs/heads/main") -> str:
    return subprocess.run(["git", "--git-dir", str(bare), "rev-parse", ref], check=True,
                          capture_output=True, text=True).stdout.strip()


def secret_pieces(secret: str) -> list[str]:
    """What must never be found: the secret, and each line of it (a key is many lines)."""
    return [secret, *(line.strip() for line in secret.splitlines() if len(line.strip()) >= 8)]


def files_holding(secret: str, *roots: Path) -> list[Path]:
    pieces = [piece.encode() for piece in secret_pieces(secret)]
    found = []
    for root in roots:
        for path in [root] if root.is_file() else root.rglob("*"):
            if path.is_file() and not path.is_symlink() and any(p in path.read_bytes() for p in pieces):
                found.append(path)
    return found


def assert_not_in(secret: str, text: str) -> None:
    for piece in secret_pieces(secret):
        assert piece not in text, "a secret leaked into the text"


def fetch_and_push(clone: Clone, remote: Path) -> None:
    """Fetch main, commit a change on top, push it, and check the remote has it."""
    with clone.opened():
        head = clone.fetch()
        assert head == rev(remote)
        folder = clone.checkout(head)
        (folder / "app" / "deploy.yaml").write_text("replicas: 3\n")
        clone.git("add", "--all")
        clone.git(*COMMITTER, "commit", "--quiet", "-m", "scale up")
        pushed = clone.git("rev-parse", "HEAD").strip()
        clone.git("push", "--quiet", "origin", "HEAD:refs/heads/main")
    assert pushed != head
    assert rev(remote) == pushed
    assert subprocess.run(["git", "--git-dir", str(remote), "show", "main:app/deploy.yaml"], check=True,
                          capture_output=True, text=True).stdout == "replicas: 3\n"


def refused(clone: Clone) -> str:
    with pytest.raises(GitError) as caught, clone.opened():
        clone.fetch()
    return str(caught.value)


# --- HTTP(S) with Basic auth --------------------------------------------------------------------


def test_http_right_password_fetches_and_pushes_and_leaves_it_nowhere(
        http_server: HttpGitServer, remote: Path, isolated: Path) -> None:
    url = http_server.url(remote.name)
    folder = isolated / "clone"
    creds = Credentials(username=USERNAME, password=PASSWORD)
    fetch_and_push(Clone(url, "main", folder, creds, connect_timeout=CONNECT), remote)

    assert (folder / ".git" / "config").is_file()
    assert_not_in(PASSWORD, (folder / ".git" / "config").read_text())
    remote_url = subprocess.run(["git", "-C", str(folder), "remote", "get-url", "origin"], check=True,
                                capture_output=True, text=True).stdout.strip()
    assert remote_url == url
    # The clone, the temp dir (askpass script) and $HOME (a credential helper's store) hold nothing.
    assert files_holding(PASSWORD, folder, isolated / "tmp", isolated / "home") == []
    assert list((isolated / "tmp").iterdir()) == [], "git_environment left its scratch files behind"
    assert not (isolated / "home" / ".git-credentials").exists()


def test_http_large_push_streams_a_chunked_body(http_server: HttpGitServer, remote: Path, isolated: Path) -> None:
    # A pack bigger than http.postBuffer goes out with Transfer-Encoding: chunked, after authenticating.
    clone = Clone(http_server.url(remote.name), "main", isolated / "clone",
                  Credentials(username=USERNAME, password=PASSWORD), connect_timeout=CONNECT)
    blob = secrets.token_bytes(200_000)
    with clone.opened():
        folder = clone.checkout(clone.fetch())
        (folder / "blob.bin").write_bytes(blob)
        clone.git("add", "--all")
        clone.git(*COMMITTER, "commit", "--quiet", "-m", "large")
        clone.git("-c", "http.postBuffer=65536", "push", "--quiet", "origin", "HEAD:refs/heads/main")
        pushed = clone.git("rev-parse", "HEAD").strip()
    assert rev(remote) == pushed
    assert subprocess.run(["git", "--git-dir", str(remote), "cat-file", "blob", "main:blob.bin"], check=True,
                          capture_output=True).stdout == blob


def test_http_without_credentials_is_refused(http_server: HttpGitServer, remote: Path, isolated: Path) -> None:
    message = refused(Clone(http_server.url(remote.name), "main", isolated / "clone", connect_timeout=CONNECT))
    assert message.startswith("git fetch:")
    assert "could not read Username" in message, message
    assert list((isolated / "tmp").iterdir()) == []


def test_http_wrong_password_is_refused_without_showing_either_password(
        http_server: HttpGitServer, remote: Path, isolated: Path) -> None:
    wrong = f"wrong-{secrets.token_urlsafe(12)}"
    folder = isolated / "clone"
    message = refused(Clone(http_server.url(remote.name), "main", folder,
                            Credentials(username=USERNAME, password=wrong), connect_timeout=CONNECT))
    assert message.startswith("git fetch:")
    assert "Authentication failed" in message, message
    assert_not_in(wrong, message)
    assert_not_in(PASSWORD, message)
    assert files_holding(wrong, folder, isolated / "tmp", isolated / "home") == []


def test_http_right_password_wrong_user_is_refused(http_server: HttpGitServer, remote: Path, isolated: Path) -> None:
    message = refused(Clone(http_server.url(remote.name), "main", isolated / "clone",
                            Credentials(username="mallory", password=PASSWORD), connect_timeout=CONNECT))
    assert "Authentication failed" in message, message
    assert_not_in(PASSWORD, message)


# --- SSH ----------------------------------------------------------------------------------------


def test_ssh_identity_and_known_hosts_fetch_and_push(ssh_server: SshGitServer, remote: Path, isolated: Path) -> None:
    creds = Credentials(identity=ssh_server.identity, known_hosts=ssh_server.known_hosts)
    folder = isolated / "clone"
    fetch_and_push(Clone(ssh_server.url(remote), "main", folder, creds, connect_timeout=CONNECT), remote)

    assert files_holding(ssh_server.identity, folder, isolated / "tmp", isolated / "home") == []
    assert list((isolated / "tmp").iterdir()) == [], "the key file outlived the operation"


def test_ssh_key_file_is_private_while_used_and_removed_after(ssh_server: SshGitServer, remote: Path) -> None:
    creds = Credentials(identity=ssh_server.identity, known_hosts=ssh_server.known_hosts)
    with git_environment(ssh_server.url(remote), creds, connect_timeout=CONNECT) as env:
        command = shlex.split(env["GIT_SSH_COMMAND"])
        key = Path(command[command.index("-i") + 1])
        assert key.read_text().strip() == ssh_server.identity.strip()
        assert stat.S_IMODE(key.stat().st_mode) == 0o600
        assert "StrictHostKeyChecking=yes" in command and "BatchMode=yes" in command
        assert ssh_server.identity.strip() not in env["GIT_SSH_COMMAND"]
    assert not key.exists()
    assert not key.parent.exists()


def test_ssh_other_host_key_is_refused(ssh_server: SshGitServer, remote: Path, isolated: Path) -> None:
    _, impostor = generate_key(isolated / "impostor")
    creds = Credentials(identity=ssh_server.identity, known_hosts=host_key_line(ssh_server.port, impostor))
    message = refused(Clone(ssh_server.url(remote), "main", isolated / "clone", creds, connect_timeout=CONNECT))
    assert message.startswith("git fetch: host key verification failed")
    assert "not in the secret's known_hosts" in message, message
    assert_not_in(ssh_server.identity, message)
    assert list((isolated / "tmp").iterdir()) == []


def test_ssh_without_known_hosts_is_refused(ssh_server: SshGitServer, remote: Path, isolated: Path) -> None:
    # Only the secret is trusted, never the machine's own ~/.ssh/known_hosts or /etc/ssh/ssh_known_hosts.
    with git_environment(ssh_server.url(remote), Credentials(identity=ssh_server.identity),
                         connect_timeout=CONNECT) as env:
        command = shlex.split(env["GIT_SSH_COMMAND"])
    assert f"UserKnownHostsFile={os.devnull}" in command and "GlobalKnownHostsFile=/dev/null" in command
    message = refused(Clone(ssh_server.url(remote), "main", isolated / "clone",
                            Credentials(identity=ssh_server.identity), connect_timeout=CONNECT))
    assert message.startswith("git fetch: host key verification failed")
    assert "no known_hosts" in message, message
    assert_not_in(ssh_server.identity, message)


def test_ssh_unknown_identity_is_refused(ssh_server: SshGitServer, remote: Path, isolated: Path) -> None:
    stranger, _ = generate_key(isolated / "stranger")
    creds = Credentials(identity=stranger, known_hosts=ssh_server.known_hosts)
    message = refused(Clone(ssh_server.url(remote), "main", isolated / "clone", creds, connect_timeout=CONNECT))
    assert "Permission denied (publickey)" in message, message
    assert_not_in(stranger, message)
    assert_not_in(ssh_server.identity, message)

