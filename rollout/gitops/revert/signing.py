"""Signed revert commits: the Git secret's `signingKey` (an OpenSSH private key, or an armored
OpenPGP secret key) signs every commit the writer makes, so hosts that require signed commits
accept the revert and `git verify-commit` vouches for it.

The key lives only for one write: in a private temporary folder (an SSH key file, or a throwaway
GNUPGHOME for the OpenPGP key) removed when the write ends. Git is pointed at it through
`GIT_CONFIG_*` entries in the commit's environment, so no config file is changed. A key with a
passphrase cannot be used (nothing could type it): the write fails and says so.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager

SSH_KEY = "-----BEGIN OPENSSH PRIVATE KEY-----"
GPG_KEY = "-----BEGIN PGP PRIVATE KEY BLOCK-----"
_TIMEOUT = 30


class SigningError(Exception):
    """The signing key cannot be used (its message names why, never the key)."""


def config_env(entries: dict[str, str], extra: dict[str, str] | None = None) -> dict[str, str]:
    """`GIT_CONFIG_COUNT`/`KEY_n`/`VALUE_n` for `entries` (git >= 2.31), plus `extra` variables."""
    env = {"GIT_CONFIG_COUNT": str(len(entries))}
    for i, (key, value) in enumerate(entries.items()):
        env[f"GIT_CONFIG_KEY_{i}"] = key
        env[f"GIT_CONFIG_VALUE_{i}"] = value
    return {**env, **(extra or {})}


@contextmanager
def signing_environment(key: str | None) -> Iterator[dict[str, str]]:
    """The environment git signs commits with while the block runs; unsigned (`commit.gpgSign`
    false, whatever a global config says) without a key."""
    if not key:
        yield config_env({"commit.gpgSign": "false"})
        return
    folder = tempfile.mkdtemp(prefix="rollout-sign-")
    os.chmod(folder, 0o700)
    try:
        text = key.strip() + "\n"
        if text.startswith(SSH_KEY):
            yield _ssh(folder, text)
        elif text.startswith(GPG_KEY):
            yield _gpg(folder, text)
        else:
            raise SigningError("signingKey is neither an OpenSSH private key nor an armored OpenPGP secret key")
    finally:
        if key.strip().startswith(GPG_KEY):  # its agent, started by the import, ends with the folder
            subprocess.run(["gpgconf", "--homedir", os.path.join(folder, "gnupg"), "--kill", "all"],
                           capture_output=True, check=False, timeout=_TIMEOUT)
        shutil.rmtree(folder, ignore_errors=True)


def _ssh(folder: str, text: str) -> dict[str, str]:
    path = os.path.join(folder, "signing_key")
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write(text)
    # A passphrase would be asked for on a terminal there is none of: check first, without one.
    done = subprocess.run(["ssh-keygen", "-y", "-P", "", "-f", path], capture_output=True, text=True,
                          check=False, timeout=_TIMEOUT)
    if done.returncode != 0:
        raise SigningError("signingKey (SSH) cannot be read without a passphrase; use a key without one")
    return config_env({"commit.gpgSign": "true", "gpg.format": "ssh", "user.signingKey": path})


def _gpg(folder: str, text: str) -> dict[str, str]:
    home = os.path.join(folder, "gnupg")
    os.mkdir(home, 0o700)
    env = {**os.environ, "GNUPGHOME": home}
    done = subprocess.run(["gpg", "--batch", "--pinentry-mode", "loopback", "--passphrase", "", "--import"],
                          input=text, capture_output=True, text=True, env=env, check=False, timeout=_TIMEOUT)
    listed = subprocess.run(["gpg", "--batch", "--with-colons", "--list-secret-keys"], capture_output=True,
                            text=True, env=env, check=False, timeout=_TIMEOUT)
    fingerprints = re.findall(r"^fpr:+([0-9A-F]{40,64}):", listed.stdout, re.M)
    if done.returncode != 0 or not fingerprints:
        raise SigningError("signingKey (OpenPGP) could not be imported")
    # `--pinentry-mode loopback` with an empty passphrase: a protected key fails instead of waiting.
    program = os.path.join(folder, "gpg-batch")
    with open(program, "w") as f:
        f.write('#!/bin/sh\nexec gpg --batch --pinentry-mode loopback --passphrase "" "$@"\n')
    os.chmod(program, 0o700)
    return config_env({"commit.gpgSign": "true", "gpg.format": "openpgp", "gpg.program": program,
                       "user.signingKey": fingerprints[0]}, {"GNUPGHOME": home})
