"""A Git remote seen through a local clone, with credentials that never leak.

Both the GitSource sync and the revert writer need the same things from Git: clone once into a
cache folder, fetch often, run git with the user's credentials. Credentials reach git only
through its environment (an askpass script reading environment variables for HTTPS, a key file
and a known_hosts file with strict host key checking for SSH), never through a URL, an argument
or a config file, and every error message is scrubbed of them before anyone sees it.
"""

from __future__ import annotations

import hashlib
import io
import math
import os
import shlex
import shutil
import stat
import tempfile
import threading
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

from git import GitCommandError, Repo, Tree

# Git must never wait for a person, nor for a network that does not answer.
_BASE_ENV = {
    "GIT_TERMINAL_PROMPT": "0",
    "GIT_CONFIG_NOSYSTEM": "1",
    "GIT_HTTP_LOW_SPEED_LIMIT": "1",
    "GIT_HTTP_LOW_SPEED_TIME": "30",
    "LC_ALL": "C",
    # A credential helper from the user's global config (`store`, `cache`) would keep the password
    # git got from the askpass script; an empty value empties the helper list.
    "GIT_CONFIG_COUNT": "1",
    "GIT_CONFIG_KEY_0": "credential.helper",
    "GIT_CONFIG_VALUE_0": "",
}
_ASKPASS = """#!/bin/sh
case "$1" in
  Username*) printf '%s\\n' "$ROLLOUT_GIT_USERNAME" ;;
  *) printf '%s\\n' "$ROLLOUT_GIT_PASSWORD" ;;
esac
"""
# One lock per clone folder: two releases reverting through the same remote take turns.
_LOCKS: dict[Path, threading.Lock] = {}
_LOCKS_GUARD = threading.Lock()


class GitError(Exception):
    """A git operation failed; the message names what and why, with every secret removed."""


@dataclass(frozen=True)
class Credentials:
    """What a GitSource's or a Canary's `secretRef` holds (Flux's keys)."""

    username: str | None = None
    password: str | None = field(default=None, repr=False)
    identity: str | None = field(default=None, repr=False)
    known_hosts: str | None = field(default=None, repr=False)

    @classmethod
    def from_secret(cls, data: Mapping[str, str]) -> Credentials:
        """From a Secret's decoded `data`: `username`/`password`, or `identity` + `known_hosts`."""
        return cls(
            username=data.get("username") or None,
            password=data.get("password") or None,
            identity=data.get("identity") or None,
            known_hosts=data.get("known_hosts") or None,
        )

    @property
    def secrets(self) -> tuple[str, ...]:
        return tuple(s for s in (self.password, self.identity) if s)


def redact(text: str, secrets: tuple[str, ...]) -> str:
    for secret in secrets:
        for line in secret.splitlines() or [secret]:
            if len(line.strip()) >= 4:
                text = text.replace(line.strip(), "***")
    return text


def is_ssh(url: str) -> bool:
    """ssh:// URLs and git's scp-like syntax (`[user@]host:path`, a colon before any slash)."""
    if "://" in url:
        return url.split("://", 1)[0] in ("ssh", "git+ssh", "ssh+git")
    return ":" in url.split("/", 1)[0]


@contextmanager
def git_environment(url: str, credentials: Credentials | None, *, connect_timeout: float) -> Iterator[dict[str, str]]:
    """The environment that lets git authenticate to `url` (an SSH connection may take `connect_timeout`
    seconds to open); its files are removed afterwards."""
    env = dict(_BASE_ENV)
    scratch = Path(tempfile.mkdtemp(prefix="rollout-git-"))
    try:
        creds = credentials or Credentials()
        if is_ssh(url):
            ssh = ["ssh", "-o", "BatchMode=yes", "-o", "StrictHostKeyChecking=yes",
                   "-o", f"ConnectTimeout={math.ceil(connect_timeout)}", "-o", "GlobalKnownHostsFile=/dev/null"]
            # Only the secret's known_hosts is trusted: without one, every host key is refused.
            hosts = os.devnull
            if creds.known_hosts:
                hosts = str(scratch / "known_hosts")
                Path(hosts).write_text(creds.known_hosts.rstrip("\n") + "\n")
            ssh += ["-o", f"UserKnownHostsFile={hosts}"]
            if creds.identity:
                key = scratch / "identity"
                key.write_text(creds.identity.rstrip("\n") + "\n")
                key.chmod(stat.S_IRUSR | stat.S_IWUSR)
                ssh += ["-i", str(key), "-o", "IdentitiesOnly=yes"]
            # git hands GIT_SSH_COMMAND to a shell: quote the paths (TMPDIR may hold spaces).
            env["GIT_SSH_COMMAND"] = shlex.join(ssh)
        elif creds.password or creds.username:
            askpass = scratch / "askpass"
            askpass.write_text(_ASKPASS)
            askpass.chmod(stat.S_IRWXU)
            env["GIT_ASKPASS"] = str(askpass)
            env["ROLLOUT_GIT_USERNAME"] = creds.username or "git"
            env["ROLLOUT_GIT_PASSWORD"] = creds.password or ""
        else:
            # Empty, not unset: no askpass program inherited from our own environment is asked.
            env["GIT_ASKPASS"] = ""
        yield env
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


def clone_folder(cache: Path, purpose: str, url: str, branch: str) -> Path:
    digest = hashlib.sha256(f"{url}\n{branch}".encode()).hexdigest()[:16]
    return cache / purpose / digest


def _lock(folder: Path) -> threading.Lock:
    with _LOCKS_GUARD:
        return _LOCKS.setdefault(folder.resolve(), threading.Lock())


class Clone:
    """A local clone of one branch of a remote, kept in `folder` between uses.

    `shallow` clones fetch only the branch head (enough to sync); revert clones keep history.
    Use as a context manager: it holds the folder's lock and the credentials' environment.
    """

    def __init__(self, url: str, branch: str, folder: Path, credentials: Credentials | None = None,
                 *, connect_timeout: float, shallow: bool = False) -> None:
        self.url = url
        self.connect_timeout = connect_timeout
        self.branch = branch
        self.folder = folder
        self.credentials = credentials
        self.shallow = shallow
        self._env: dict[str, str] | None = None
        self._repo: Repo | None = None

    @contextmanager
    def opened(self) -> Iterator[Clone]:
        environment = git_environment(self.url, self.credentials, connect_timeout=self.connect_timeout)
        with _lock(self.folder), environment as env:
            self._env = env
            try:
                self._repo = self._open()
                yield self
            finally:
                self._env = None
                self._repo = None

    @property
    def repo(self) -> Repo:
        assert self._repo is not None, "use `with clone.opened():`"
        return self._repo

    @property
    def remote_ref(self) -> str:
        return f"refs/remotes/origin/{self.branch}"

    def git(self, *args: str, check: bool = True, env: Mapping[str, str] | None = None) -> str:
        """Run git in the clone with the credentials' environment (plus `env`, e.g. a commit's author);
        GitError (scrubbed) on failure."""
        assert self._env is not None
        try:
            full_env = {**os.environ, **self._env, **(env or {})}
            out: str = self.repo.git.execute(["git", *args], env=full_env, with_extended_output=False)
            return out
        except GitCommandError as e:
            if not check:
                return ""
            detail = (e.stderr or e.stdout or str(e)).strip().removeprefix("stderr: ").removeprefix("stdout: ")
            detail = detail.strip("'\n ")
            if "Host key verification failed" in detail:
                known = self.credentials is not None and self.credentials.known_hosts
                reason = ("the server's host key is not in the secret's known_hosts" if known
                          else "the secret has no known_hosts, and SSH remotes need one")
                detail = f"host key verification failed: {reason}. {detail}"
            raise GitError(self._scrub(f"git {args[0]}: {detail}")) from None

    def _scrub(self, text: str) -> str:
        return redact(text, self.credentials.secrets if self.credentials else ())

    def _open(self) -> Repo:
        if (self.folder / ".git").is_dir():
            repo = Repo(self.folder)
            if repo.remotes and repo.remotes.origin.url == self.url:
                return repo
            shutil.rmtree(self.folder)
        self.folder.mkdir(parents=True, exist_ok=True)
        repo = Repo.init(self.folder)
        repo.git.remote("add", "origin", self.url)
        with repo.config_writer() as config:
            config.set_value("advice", "detachedHead", "false")
            config.set_value("gc", "auto", "0")
        return repo

    def fetch(self) -> str:
        """Fetch the branch; returns the remote head's commit sha."""
        args = ["fetch", "--no-tags", "--prune", "origin", f"+refs/heads/{self.branch}:{self.remote_ref}"]
        if self.shallow:
            args.insert(1, "--depth=1")
        try:
            self.git(*args)
        except GitError as e:
            if "couldn't find remote ref" in str(e) or "could not find remote ref" in str(e):
                raise GitError(f"branch {self.branch!r} does not exist on {self.url}") from None
            raise
        return self.head()

    def head(self) -> str:
        return self.git("rev-parse", self.remote_ref).strip()

    def checkout(self, revision: str) -> Path:
        """The working tree at `revision`, exactly (no leftovers from an earlier checkout)."""
        self.git("checkout", "--force", "--detach", revision)
        self.git("clean", "-ffdxq")
        return self.folder

    # -- reading history (full clones) ------------------------------------------------------------

    def succeeds(self, *args: str) -> bool:
        """Whether git exits 0; for commands whose answer is their exit status."""
        try:
            self.git(*args)
            return True
        except GitError:
            return False

    def is_ancestor(self, commit: str, of: str) -> bool:
        return self.succeeds("merge-base", "--is-ancestor", commit, of)

    def verify(self, revision: str) -> str | None:
        """The sha `revision` names, or None when it names nothing here."""
        try:
            return self.git("rev-parse", "--verify", "--quiet", revision).strip() or None
        except GitError:
            return None

    def commit_time(self, revision: str) -> datetime:
        """When `revision` was committed (its committer date; a shallow clone holds it too)."""
        return datetime.fromisoformat(self.git("show", "-s", "--format=%cI", revision).strip())

    def rev_parse(self, revision: str) -> str:
        return self.git("rev-parse", revision).strip()

    def parent(self, commit: str) -> str | None:
        """The first parent; None for a root commit."""
        return self.verify(f"{commit}^1")

    def parents(self, commit: str) -> list[str]:
        return self.git("rev-list", "--parents", "-n", "1", commit).split()[1:]

    def rev_list(self, revisions: str, paths: tuple[str, ...] = ()) -> list[str]:
        """Commits in `revisions` (newest first) that touch `paths` (all, when empty)."""
        return self.git("rev-list", revisions, "--", *paths).split()

    def changed_paths(self, commit: str) -> list[str]:
        """The files `commit` changed against its parent; a rename counts as a delete and an add."""
        return self.git("diff-tree", "--no-commit-id", "--name-only", "-r", "--no-renames", commit).splitlines()

    def blob(self, revision: str, path: str) -> str | None:
        """The file's exact content at `revision`, or None when absent (or not text)."""
        try:
            data = (self.repo.commit(revision).tree / path).data_stream.read()
            text: str = data.decode("utf-8")
            return text
        except (KeyError, UnicodeDecodeError):
            return None

    def folder_names(self, revision: str, folder: str) -> list[str] | None:
        """The names in `folder` at `revision` (`.` is the root); None when it is not a folder there."""
        try:
            root = self.repo.commit(revision).tree
            tree = root if folder == "." else root / folder
        except KeyError:
            return None
        if not isinstance(tree, Tree):
            return None
        return [entry.name for entry in tree]

    def archive(self, revision: str) -> bytes:
        """The tree at `revision` as a tar archive."""
        out = io.BytesIO()
        self.repo.archive(out, revision, format="tar")
        return out.getvalue()

    # -- other branches, the index, crash leftovers ----------------------------------------------

    def fetch_branch(self, name: str) -> str | None:
        """Fetch another branch of the remote into its remote-tracking ref and return that ref;
        None when the remote has no such branch."""
        if not self.git("ls-remote", "--heads", "origin", f"refs/heads/{name}").strip():
            return None
        local = f"refs/remotes/origin/{name}"
        self.git("fetch", "--no-tags", "origin", f"+refs/heads/{name}:{local}")
        return local

    def abandon_operations(self) -> None:
        """Drop what a revert, rebase, cherry-pick or merge left half done (a process killed mid-way)."""
        dot_git = self.folder / ".git"
        for leftover in ("rebase-merge", "rebase-apply", "sequencer"):
            shutil.rmtree(dot_git / leftover, ignore_errors=True)
        for leftover in ("index.lock", "REVERT_HEAD", "CHERRY_PICK_HEAD", "MERGE_HEAD"):
            (dot_git / leftover).unlink(missing_ok=True)

    def has_staged_changes(self) -> bool:
        return bool(self.git("diff", "--cached", "--name-only").strip())
