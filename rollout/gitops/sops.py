"""SOPS-encrypted manifests, decrypted in memory with age identities (Flux's `decryption`).

Teams keep Secrets in Git encrypted with SOPS; a GitSource with `spec.decryption` decrypts them
after rendering and before the dry run, so the plaintext exists only in this process's memory on
its way to the API server: it is never written to disk, and no log line, status field, condition or
Event carries a value (errors name the file and the field path, never what was in it).

This implements SOPS's file format for YAML (https://github.com/getsops/sops, README "Encrypting
using age" and "Message Authentication Code"; `sops.go`, `aes/cipher.go`, `stores/yaml`): the
file's 32-byte data key is age-encrypted to each recipient under `sops.age` (or the one key group
of `sops.key_groups`); each value is `ENC[AES256_GCM,data:,iv:,tag:,type:]`, AES-256-GCM with a
32-byte nonce and the value's key path joined by ":" (plus a trailing ":") as additional data;
which values are encrypted follows `unencrypted_suffix` (default `_unencrypted`),
`encrypted_suffix`, `encrypted_regex` or `unencrypted_regex`. The MAC is SHA-512 over every leaf
value in document order (only the encrypted ones under `mac_only_encrypted`, after a fixed
32-byte prefix), in upper-case hex, stored encrypted with `lastmodified` (RFC 3339) as additional
data; a file whose MAC does not match is refused, as `sops --decrypt` refuses it. The age part is
`pyrage` (the rage implementation). Shamir key groups, comment-based rules and KMS/PGP/Vault keys
are refused with a message saying so.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from typing import Any

import pyrage
import yaml
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from pyrage import x25519

METADATA_KEY = "sops"
DEFAULT_UNENCRYPTED_SUFFIX = "_unencrypted"
# Secret keys holding age identities, as Flux reads them.
AGE_KEY_SUFFIX = ".agekey"
# sops.go MACOnlyEncryptedInitialization: starts the hash when only encrypted values are covered.
MAC_ONLY_ENCRYPTED_PREFIX = bytes([
    0x8a, 0x3f, 0xd2, 0xad, 0x54, 0xce, 0x66, 0x52, 0x7b, 0x10, 0x34, 0xf3, 0xd1, 0x47, 0xbe, 0x0b,
    0x0b, 0x97, 0x5b, 0x3b, 0xf4, 0x4f, 0x72, 0xc6, 0xfd, 0xad, 0xec, 0x81, 0x76, 0xf2, 0x7d, 0x69,
])
_ENC = re.compile(r"^ENC\[AES256_GCM,data:(.+),iv:(.+),tag:(.+),type:(.+)\]")
_GO_TRUE = ("1", "t", "T", "TRUE", "true", "True")
_GO_FALSE = ("0", "f", "F", "FALSE", "false", "False")


class DecryptError(Exception):
    """A SOPS file that cannot be decrypted; the message names what, never a value."""


class _Loader(yaml.SafeLoader):
    """YAML as SOPS (Go's yaml.v3) reads it, where it matters for the MAC: only true/false are
    booleans (YAML 1.2, not 1.1's yes/no/on/off) and timestamps stay strings."""


_Loader.yaml_implicit_resolvers = {
    first: [(tag, regexp) for tag, regexp in resolvers
            if tag not in ("tag:yaml.org,2002:bool", "tag:yaml.org,2002:timestamp")]
    for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}
_Loader.add_implicit_resolver("tag:yaml.org,2002:bool", re.compile(r"^(?:true|True|TRUE|false|False|FALSE)$"),
                              list("tTfF"))


@dataclass(frozen=True)
class Keys:
    """The age identities a GitSource decrypts with (from its decryption Secret); kept in memory only."""

    identities: tuple[x25519.Identity, ...] = field(repr=False)  # never in a log line or traceback

    @classmethod
    def from_secret(cls, data: Mapping[str, str], secret: str) -> Keys:
        """The identities in the Secret's keys (as text) ending in `.agekey` (one or more
        `AGE-SECRET-KEY-1...` lines each; `#` lines are comments)."""
        found: list[x25519.Identity] = []
        for key in sorted(data):
            if not key.endswith(AGE_KEY_SUFFIX):
                continue
            text = data[key] or ""
            for number, line in enumerate(text.splitlines(), start=1):
                line = line.strip()
                if not line or line.startswith("#"):
                    continue
                try:
                    found.append(x25519.Identity.from_str(line))
                except pyrage.IdentityError:
                    raise DecryptError(f"line {number} of key {key!r} of Secret {secret!r} is not an age "
                                       "identity (AGE-SECRET-KEY-1...)") from None
        if not found:
            raise DecryptError(f"Secret {secret!r} has no age identity: put one under a key ending in "
                               f"{AGE_KEY_SUFFIX} (e.g. age{AGE_KEY_SUFFIX}), as Flux reads it")
        return cls(tuple(found))


def encrypted(doc: Any) -> bool:
    """Whether a parsed document carries SOPS metadata."""
    return isinstance(doc, Mapping) and isinstance(doc.get(METADATA_KEY), Mapping)


def decrypt_text(text: str, keys: Keys | None, *,
                 originals: Callable[[], Iterable[str]] | None = None) -> list[Any] | None:
    """The documents of a YAML file, decrypted, when its first document has SOPS metadata (the
    whole file is then one SOPS tree, as `sops --decrypt` reads it); None when it is not a SOPS file.

    With `originals` (the texts of the repository's SOPS files), `text` is `kubectl kustomize`
    output: its encrypted documents come out with their keys sorted, which breaks the MAC (it
    covers the order). Each must then be, as data, exactly an encrypted document of one of the
    originals, and is replaced by that document decrypted (its file's MAC checked in its own
    order); one that kustomize changed is refused. Other documents are returned as PyYAML reads them."""
    try:
        documents = list(yaml.load_all(text, Loader=_Loader))  # a SafeLoader subclass
    except yaml.YAMLError:
        return None  # not for us: the plain reader reports the YAML error
    if originals is None:
        return decrypt_documents(documents, keys) if documents and encrypted(documents[0]) else None
    if not any(encrypted(d) for d in documents):
        return None
    if keys is None:
        decrypt_documents([next(d for d in documents if encrypted(d))], keys)  # raises: no decryption set
    plain = list(yaml.safe_load_all(text))
    found = _Originals(originals, keys)
    return [found.decrypted(d) if encrypted(d) else p for d, p in zip(documents, plain, strict=True)]


class _Originals:
    """The repository's SOPS files, read and decrypted only as far as a document asks."""

    def __init__(self, texts: Callable[[], Iterable[str]], keys: Keys | None) -> None:
        self.texts = texts
        self.keys = keys
        self._files: list[list[Any]] | None = None
        self._opened: dict[int, list[Any]] = {}

    def decrypted(self, doc: Mapping[str, Any]) -> Any:
        if self._files is None:
            self._files = []
            for text in self.texts():
                try:
                    docs = [d for d in yaml.load_all(text, Loader=_Loader) if d is not None]
                except yaml.YAMLError:
                    continue
                if docs and encrypted(docs[0]):
                    self._files.append(docs)
        for number, docs in enumerate(self._files):
            for index, original in enumerate(docs):
                if original == doc:
                    if number not in self._opened:
                        self._opened[number] = decrypt_documents(docs, self.keys)
                    return self._opened[number][index]
        meta = doc.get("metadata")
        name = meta.get("name") if isinstance(meta, Mapping) else None
        raise DecryptError(f"the encrypted {doc.get('kind')} {name!r} that kustomize built is not "
                           "as in any SOPS file of the repository: a transformer (namespace, labels, name "
                           "prefix, patch) changed it, so its MAC cannot be checked; leave it untransformed")


def decrypt_documents(documents: list[Any], keys: Keys | None) -> list[Any]:
    """`documents` (one SOPS tree, metadata in the first) with every value decrypted and the
    metadata removed; DecryptError when no key opens it or its MAC does not match."""
    if keys is None:
        raise DecryptError(f"encrypted with SOPS: set spec.decryption (provider sops, and a "
                           f"secretRef to a Secret with an age identity under a key ending in {AGE_KEY_SUFFIX})")
    meta = documents[0][METADATA_KEY]
    rules = _Rules.of(meta)
    data_key = _data_key(meta, keys)
    branches = []
    for doc in documents:
        if doc is None:
            continue
        if not isinstance(doc, Mapping):
            raise DecryptError("a SOPS document must be a mapping")
        branches.append({k: v for k, v in doc.items() if k != METADATA_KEY})
    digest = hashlib.sha512()
    if rules.mac_only_encrypted:
        digest.update(MAC_ONLY_ENCRYPTED_PREFIX)
    out = [_walk(branch, [], rules, data_key, digest) for branch in branches]
    stored = meta.get("mac")
    if not isinstance(stored, str) or not stored:
        raise DecryptError("sops.mac is missing; the file cannot be checked")
    expected = _decrypt_value(stored, data_key, _go_rfc3339(meta.get("lastmodified")), "sops.mac")
    if not isinstance(expected, str) or not hmac.compare_digest(expected, digest.hexdigest().upper()):
        raise DecryptError("the SOPS MAC does not match the content (was the file changed after it "
                           "was encrypted?); not applied")
    return out


@dataclass(frozen=True)
class _Rules:
    unencrypted_suffix: str | None
    encrypted_suffix: str | None
    unencrypted_regex: re.Pattern[str] | None
    encrypted_regex: re.Pattern[str] | None
    mac_only_encrypted: bool

    @classmethod
    def of(cls, meta: Mapping[str, Any]) -> _Rules:
        for unsupported in ("unencrypted_comment_regex", "encrypted_comment_regex"):
            if meta.get(unsupported):
                raise DecryptError(f"sops.{unsupported} is not supported (comments are not read); "
                                   "use encrypted_regex or a suffix rule")
        given = [k for k in ("unencrypted_suffix", "encrypted_suffix", "unencrypted_regex", "encrypted_regex")
                 if meta.get(k)]
        if len(given) > 1:
            raise DecryptError(f"sops metadata sets {' and '.join(given)}; SOPS allows one")

        def pattern(key: str) -> re.Pattern[str] | None:
            value = meta.get(key)
            try:
                return re.compile(value) if value else None
            except re.error:
                raise DecryptError(f"sops.{key} is not a regular expression this operator reads") from None

        return cls(
            unencrypted_suffix=meta.get("unencrypted_suffix") or (None if given else DEFAULT_UNENCRYPTED_SUFFIX),
            encrypted_suffix=meta.get("encrypted_suffix") or None,
            unencrypted_regex=pattern("unencrypted_regex"),
            encrypted_regex=pattern("encrypted_regex"),
            mac_only_encrypted=meta.get("mac_only_encrypted") is True,
        )

    def encrypts(self, path: list[str]) -> bool:
        """sops.go shouldBeEncrypted, without the comment rules."""
        if self.unencrypted_suffix and any(p.endswith(self.unencrypted_suffix) for p in path):
            return False
        if self.encrypted_suffix:
            return any(p.endswith(self.encrypted_suffix) for p in path)
        if self.unencrypted_regex and any(self.unencrypted_regex.search(p) for p in path):
            return False
        if self.encrypted_regex:
            return any(self.encrypted_regex.search(p) for p in path)
        return True


def _data_key(meta: Mapping[str, Any], keys: Keys) -> bytes:
    groups = meta.get("key_groups")
    if groups:
        if not isinstance(groups, list) or len(groups) != 1:
            raise DecryptError("Shamir key groups (more than one in sops.key_groups) are not supported")
        entries = groups[0].get("age") if isinstance(groups[0], Mapping) else None
    else:
        entries = meta.get("age")
    recipients = [e for e in entries or [] if isinstance(e, Mapping) and isinstance(e.get("enc"), str)]
    if not recipients:
        raise DecryptError("encrypted for no age recipient (only age keys are supported here, not "
                           "PGP, KMS or Vault)")
    for entry in recipients:
        try:
            key = pyrage.decrypt(entry["enc"].encode(), list(keys.identities))
        except pyrage.DecryptError:
            continue
        if len(key) == 32:
            return bytes(key)
    named = ", ".join(str(e.get("recipient")) for e in recipients)
    raise DecryptError(f"none of the decryption Secret's age identities opens it (recipients: {named})")


def _walk(value: Any, path: list[str], rules: _Rules, key: bytes, digest: Any) -> Any:
    """sops.go walkBranch/walkSlice: decrypt the leaves and feed the MAC, in document order."""
    if isinstance(value, Mapping):
        out: dict[str, Any] = {}
        for k, v in value.items():
            if not isinstance(k, str):
                raise DecryptError(f"key {k!r} under {':'.join(path) or 'the top'} is not a string")
            out[k] = _walk(v, [*path, k], rules, key, digest)
        return out
    if isinstance(value, list):  # list items keep their parent's path, as in SOPS
        return [_walk(v, path, rules, key, digest) for v in value]
    if value is None:
        return None
    secret = rules.encrypts(path)
    if secret:
        if not isinstance(value, str):
            raise DecryptError(f"{'.'.join(path)} should be encrypted but is not")
        value = _decrypt_value(value, key, ":".join(path) + ":", ".".join(path))
    if secret or not rules.mac_only_encrypted:
        digest.update(_to_bytes(value))
    return value


def _decrypt_value(text: str, key: bytes, additional: str, where: str) -> Any:
    if text == "":
        return ""
    match = _ENC.match(text)
    if match is None:
        raise DecryptError(f"{where} is not a SOPS-encrypted value")
    try:
        data, iv, tag = (base64.b64decode(match.group(i), validate=True) for i in (1, 2, 3))
    except binascii.Error:
        raise DecryptError(f"{where} is not a SOPS-encrypted value (bad base64)") from None
    try:
        plain = AESGCM(key).decrypt(iv, data + tag, additional.encode())
    except (InvalidTag, ValueError):
        raise DecryptError(f"{where} does not decrypt with the file's data key (changed or moved?)") from None
    kind = match.group(4)
    try:
        text = plain.decode()
        if kind in ("str", "time", "comment"):
            return text
        if kind == "bytes":
            return text
        if kind == "int":
            return int(text)
        if kind == "float":
            return float(text)
        if kind == "bool" and (text in _GO_TRUE or text in _GO_FALSE):
            return text in _GO_TRUE
    except (UnicodeDecodeError, ValueError):
        pass
    raise DecryptError(f"{where} decrypts to something that is not a {kind}")


def _to_bytes(value: Any) -> bytes:
    """sops.go ToBytes: how a leaf enters the MAC."""
    if isinstance(value, bool):
        return b"True" if value else b"False"
    if isinstance(value, int):
        return str(value).encode()
    if isinstance(value, float):
        return _go_float(value).encode()
    if isinstance(value, bytes):
        return value
    return str(value).encode()


def _go_float(value: float) -> str:
    """Go's strconv.FormatFloat(v, 'f', -1, 64): the shortest digits that read back, never an exponent."""
    if value != value:
        return "NaN"
    if value in (float("inf"), float("-inf")):
        return "+Inf" if value > 0 else "-Inf"
    return format(Decimal(repr(value)).normalize(), "f")


def _go_rfc3339(value: Any) -> str:
    """`lastmodified` as Go's time.Format(time.RFC3339) writes it back: whole seconds, Z for UTC."""
    try:
        when = datetime.fromisoformat(str(value).replace("Z", "+00:00"))
    except ValueError:
        raise DecryptError(f"sops.lastmodified {value!r} is not an RFC 3339 time") from None
    offset = when.utcoffset()
    text = when.replace(microsecond=0, tzinfo=None).isoformat()
    if offset is None or offset.total_seconds() == 0:
        return text + "Z"
    minutes = int(offset.total_seconds() // 60)
    sign = "+" if minutes >= 0 else "-"
    return f"{text}{sign}{abs(minutes) // 60:02d}:{abs(minutes) % 60:02d}"
