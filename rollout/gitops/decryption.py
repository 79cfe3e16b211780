"""A GitSource's `spec.decryption`: its age identities, read from the Secret for each sync and kept
in memory only, turned into the `decrypt` step of rendering (`rollout.gitops.sops` does the work)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

from kubernetes import client

from rollout.api.spec import Decryption

from .credentials import SecretError, secret_data
from .render import SUFFIXES, Decrypt, RenderError
from .sops import DecryptError, Keys, decrypt_text

REASON = "DecryptionFailed"


def decryptor(api: client.ApiClient, namespace: str, decryption: Decryption | None, *, timeout: float) -> Decrypt:
    """The `decrypt` step for a GitSource: with no `decryption`, any SOPS file stalls the revision
    (ciphertext is never applied as if it were the value). SecretError when the Secret is unusable."""
    keys = None
    if decryption is not None:
        data = secret_data(api, namespace, decryption.secret_ref, timeout=timeout)
        try:
            keys = Keys.from_secret(data, f"{namespace}/{decryption.secret_ref}")
        except DecryptError as e:
            raise SecretError(f"spec.decryption: {e}") from None

    def decrypt(text: str, root: Path | None) -> list[Any] | None:
        try:
            return decrypt_text(text, keys, originals=None if root is None else lambda: _sops_files(root))
        except DecryptError as e:
            raise RenderError("", str(e), reason=REASON) from None

    return decrypt


def _sops_files(root: Path) -> Iterator[str]:
    """The text of every file of the checkout that holds SOPS-encrypted values (kustomize's sources)."""
    for path in sorted(root.rglob("*")):
        if ".git" in path.relative_to(root).parts or path.suffix not in SUFFIXES or not path.is_file():
            continue
        text = path.read_text(errors="replace")
        if "ENC[AES256_GCM," in text:
            yield text
