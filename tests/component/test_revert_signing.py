"""Signed revert commits: the Git secret's `signingKey`, an SSH key or an OpenPGP key made here by
the real `ssh-keygen` and `gpg`, signs the revert, and `git verify-commit` accepts it.

The keys are real and throwaway; the verification is git's own (an allowed-signers file for SSH,
a keyring holding the public key for OpenPGP). The key never outlives the write: its temporary
folder is gone afterwards, and a key git could only use with a passphrase fails the write clearly.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from rollout.api.spec import PushMode
from rollout.api.status import RevertState
from tests.component.test_revert import AUTHOR, Remote, bad_release, failed_release
from tests.tools import missing_tool

pytestmark = pytest.mark.component


@pytest.fixture
def remote(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Remote]:
    for tool in ("git", "ssh-keygen", "gpg"):
        if shutil.which(tool) is None:
            missing_tool(f"{tool.upper()} NOT FOUND - signed revert commits are tested with the real {tool}")
    # Where the key may live while a write runs; short, as gpg-agent's socket path must be.
    private_tmp = Path(tempfile.mkdtemp(prefix="rs-"))
    (tmp_path / "tmp").symlink_to(private_tmp)
    monkeypatch.setattr(tempfile, "tempdir", str(private_tmp))
    try:
        yield Remote(tmp_path / "repo", "file")
    finally:
        shutil.rmtree(private_tmp, ignore_errors=True)


def run(*args: str, env: dict[str, str] | None = None, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(args, capture_output=True, text=True, check=False, timeout=60, cwd=cwd,
                          env={**os.environ, **(env or {})})


def ssh_key(folder: Path, passphrase: str = "") -> tuple[str, str]:
    """(private key text, public key line) of a new ed25519 key."""
    path = folder / "id_ed25519"
    assert run("ssh-keygen", "-q", "-t", "ed25519", "-N", passphrase, "-C", "rollout", "-f", str(path)).returncode == 0
    return path.read_text(), (folder / "id_ed25519.pub").read_text().strip()


def test_an_ssh_signed_revert_verifies(remote: Remote, tmp_path: Path) -> None:
    private, public = ssh_key(tmp_path)
    promoted, candidate = bad_release(remote)
    outcome = remote.revert(failed_release(candidate_revision=candidate, promoted_revision=promoted,
                                           signing_key=private))
    assert outcome.state is RevertState.PUSHED and outcome.commit, outcome.message

    signers = tmp_path / "allowed_signers"
    signers.write_text(f"{AUTHOR.email} {public}\n")
    verified = run("git", "-c", f"gpg.ssh.allowedSignersFile={signers}", "verify-commit", outcome.commit,
                   cwd=remote.bare)
    assert verified.returncode == 0, verified.stderr
    assert f'Good "git" signature for {AUTHOR.email}' in verified.stderr
    assert not any((tmp_path / "tmp").iterdir()), "the signing key outlived the write"

    (tmp_path / "other").mkdir()
    _, other_public = ssh_key(tmp_path / "other")
    signers.write_text(f"{AUTHOR.email} {other_public}\n")  # a different key: git must refuse it
    refused = run("git", "-c", f"gpg.ssh.allowedSignersFile={signers}", "verify-commit", outcome.commit,
                  cwd=remote.bare)
    assert refused.returncode != 0


def test_a_gpg_signed_revert_branch_verifies(remote: Remote, tmp_path: Path) -> None:
    home = tmp_path / "gnupg"
    home.mkdir(mode=0o700)
    env = {"GNUPGHOME": str(home)}
    try:
        made = run("gpg", "--batch", "--passphrase", "", "--quick-gen-key", f"{AUTHOR.name} <{AUTHOR.email}>",
                   "ed25519", "sign", "never", env=env)
        assert made.returncode == 0, made.stderr
        private = run("gpg", "--batch", "--armor", "--export-secret-keys", env=env).stdout
        assert private.startswith("-----BEGIN PGP PRIVATE KEY BLOCK-----")
        promoted, candidate = bad_release(remote)
        outcome = remote.revert(failed_release(candidate_revision=candidate, promoted_revision=promoted,
                                               push=PushMode.BRANCH, signing_key=private))
        assert outcome.state is RevertState.PUSHED and outcome.commit and outcome.branch, outcome.message

        verified = run("git", "verify-commit", "--raw", outcome.commit, env=env, cwd=remote.bare)
        assert verified.returncode == 0, verified.stderr
        assert "GOODSIG" in verified.stderr and "VALIDSIG" in verified.stderr
        assert run("git", "log", "-1", "--format=%G?", outcome.commit, env=env, cwd=remote.bare).stdout.strip() == "G"
        assert not any((tmp_path / "tmp").iterdir()), "the signing keyring outlived the write"
    finally:
        run("gpgconf", "--homedir", str(home), "--kill", "all")


def test_a_key_with_a_passphrase_fails_the_write_clearly(remote: Remote, tmp_path: Path) -> None:
    private, _ = ssh_key(tmp_path, passphrase="correct horse")
    promoted, candidate = bad_release(remote)
    head = remote.head()
    outcome = remote.revert(failed_release(candidate_revision=candidate, promoted_revision=promoted,
                                           signing_key=private))
    assert outcome.state is RevertState.FAILED
    assert "without a passphrase" in outcome.message and "PRIVATE KEY" not in outcome.message
    assert remote.head() == head  # nothing unsigned was pushed in its place


def test_an_unsigned_revert_stays_unsigned_whatever_the_global_config(remote: Remote, tmp_path: Path,
                                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    config = tmp_path / "gitconfig"
    config.write_text("[commit]\n\tgpgSign = true\n[user]\n\tsigningKey = nothing-here\n")
    promoted, candidate = bad_release(remote)
    monkeypatch.setenv("GIT_CONFIG_GLOBAL", str(config))  # the operator's machine asks every commit to be signed
    outcome = remote.revert(failed_release(candidate_revision=candidate, promoted_revision=promoted))
    assert outcome.state is RevertState.PUSHED and outcome.commit, outcome.message
    assert run("git", "log", "-1", "--format=%G?", outcome.commit, cwd=remote.bare).stdout.strip() == "N"
