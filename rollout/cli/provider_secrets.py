"""Credentials of MetricTemplate providers for `rollout analyze`, which has no cluster to read Secrets from.

A template's `provider.secretRef` names a Secret; here its keys come from a file given with
`--provider-secret NAME=FILE` (a Secret manifest in YAML or JSON, its `data` base64 as in the
cluster or its `stringData` plain, or lines of KEY=VALUE), or from environment variables
`ROLLOUT_SECRET_<NAME>_<KEY>` (NAME and KEY upper-cased, every other character than a letter or
digit an underscore: `prom-auth`'s `password` is `ROLLOUT_SECRET_PROM_AUTH_PASSWORD`). NAME may be
`namespace/name` to tell two Secrets of the same name apart. Values are never printed: messages
name the Secret, the file and the keys only.
"""

from __future__ import annotations

import base64
import binascii
import json
import re
from collections.abc import Mapping
from pathlib import Path

import yaml

from analysis.providers.rules import RULES
from rollout.engine.sources import SourceError

ENV_PREFIX = "ROLLOUT_SECRET_"


class SecretFileError(ValueError):
    """A --provider-secret argument or file that cannot be read (the message holds no value)."""


def env_name(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9]", "_", text).upper()


def parse_argument(argument: str) -> tuple[str, Path]:
    """`NAME=FILE` or `NAMESPACE/NAME=FILE`."""
    name, sep, file = argument.partition("=")
    if not sep or not name or not file:
        raise SecretFileError(f"--provider-secret takes NAME=FILE (the secretRef's name and a Secret manifest "
                              f"or KEY=VALUE file), got {argument.split('=')[0]!r}...")
    return name, Path(file)


def read_secret_file(path: Path) -> dict[str, str]:
    """A Secret's keys from a manifest (YAML or JSON; `data` decoded, `stringData` as is) or KEY=VALUE lines."""
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as e:
        reason = e.strerror if isinstance(e, OSError) and e.strerror else "not UTF-8 text"
        raise SecretFileError(f"{path}: cannot read: {reason}") from None
    try:
        doc = json.loads(text) if text.lstrip().startswith("{") else yaml.safe_load(text)
    except (ValueError, yaml.YAMLError):
        doc = None
    if isinstance(doc, Mapping) and doc.get("kind") == "Secret":
        return _manifest_keys(path, doc)
    return _pairs(path, text)


def _manifest_keys(path: Path, doc: Mapping[str, object]) -> dict[str, str]:
    keys: dict[str, str] = {}
    data = doc.get("data") or {}
    if not isinstance(data, Mapping):
        raise SecretFileError(f"{path}: the Secret's data must be a mapping of keys to base64 values")
    for key, value in data.items():
        try:
            keys[str(key)] = base64.b64decode(str(value), validate=True).decode()
        except (binascii.Error, ValueError, UnicodeDecodeError):
            raise SecretFileError(f"{path}: key {key} of the Secret's data is not base64 UTF-8 text "
                                  "(put plain values under stringData)") from None
    string_data = doc.get("stringData") or {}
    if not isinstance(string_data, Mapping):
        raise SecretFileError(f"{path}: the Secret's stringData must be a mapping of keys to values")
    keys.update({str(k): str(v) for k, v in string_data.items()})
    return keys


def _pairs(path: Path, text: str) -> dict[str, str]:
    keys: dict[str, str] = {}
    for number, line in enumerate(text.splitlines(), start=1):
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        key, sep, value = line.partition("=")
        if not sep or not key.strip():
            raise SecretFileError(f"{path}: line {number} is not KEY=VALUE, and the file is not a Secret manifest")
        keys[key.strip()] = value.strip()
    return keys


class ProvidedSecrets:
    """Reads a template's Secret from the files and environment `rollout analyze` was given."""

    def __init__(self, files: Mapping[str, Path], environ: Mapping[str, str]) -> None:
        self.files = dict(files)
        self.environ = environ
        # Environment variables name keys upper-cased: the documented keys give them back their case.
        self.documented = {env_name(k): k for r in RULES.values() for k in (*r.secret_keys, *r.optional_secret_keys)}

    def __call__(self, namespace: str, name: str) -> Mapping[str, str]:
        path = self.files.get(f"{namespace}/{name}") or self.files.get(name)
        if path is not None:
            try:
                return read_secret_file(path)
            except SecretFileError as e:
                raise SourceError(f"Secret {namespace}/{name} (provider.secretRef): {e}") from None
        found: dict[str, str] = {}
        for prefix in (f"{ENV_PREFIX}{env_name(namespace)}_{env_name(name)}_", f"{ENV_PREFIX}{env_name(name)}_"):
            for var, value in self.environ.items():
                if var.startswith(prefix) and var[len(prefix):]:
                    rest = var[len(prefix):]
                    found.setdefault(self.documented.get(rest, rest.lower()), value)
        if not found:
            raise SourceError(
                f"no credentials for Secret {namespace}/{name} (provider.secretRef): pass --provider-secret "
                f"{name}=FILE (a Secret manifest or KEY=VALUE lines) or set {ENV_PREFIX}{env_name(name)}_<KEY>")
        return found
