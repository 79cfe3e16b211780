"""Turn a folder of a Git checkout into the Kubernetes objects it declares, each with its file.

Plain multi-document YAML (and JSON) files are read recursively in a stable order; a folder with
a kustomization.yaml is built with `kubectl kustomize`. Any problem is a `RenderError` naming
the file and what is wrong, so the GitSource can stall that revision with a message a person
can act on, instead of applying half of it.
"""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any

import yaml

KUSTOMIZATIONS = ("kustomization.yaml", "kustomization.yml", "Kustomization")
SUFFIXES = (".yaml", ".yml", ".json")
# (text, root) -> the documents decrypted, or None when nothing in `text` is encrypted; raises
# RenderError (reason DecryptionFailed). `root` is given for `kubectl kustomize` output, whose encrypted
# documents are checked against the SOPS files of the checkout at `root` (kustomize reorders keys).
Decrypt = Callable[[str, Path | None], list[Any] | None]


class RenderError(Exception):
    """A revision that cannot be rendered: `file` (relative to the repository) and why."""

    def __init__(self, file: str, message: str, *, reason: str = "RenderFailed") -> None:
        super().__init__(f"{file}: {message}" if file else message)
        self.file = file
        self.message = message
        self.reason = reason


@dataclass(frozen=True)
class Manifest:
    """One object from Git and the file (relative to the repository root) that declared it."""

    path: str
    obj: dict[str, Any]

    @property
    def api_version(self) -> str:
        return str(self.obj["apiVersion"])

    @property
    def kind(self) -> str:
        return str(self.obj["kind"])

    @property
    def name(self) -> str:
        return str(self.obj["metadata"]["name"])

    @property
    def namespace(self) -> str | None:
        ns = self.obj["metadata"].get("namespace")
        return str(ns) if ns else None


def source_folder(root: Path, path: str) -> tuple[Path, str]:
    """The folder `path` names inside the checkout, and its repository-relative form; never outside."""
    relative = PurePosixPath(path.strip() or ".")
    if relative.is_absolute() or ".." in relative.parts:
        raise RenderError("", f"path {path!r} must be relative to the repository root and stay inside it",
                          reason="InvalidPath")
    folder = (root / relative).resolve()
    if not folder.is_dir():
        raise RenderError("", f"path {path!r} is not a folder at this revision", reason="InvalidPath")
    rel = folder.relative_to(root.resolve()).as_posix()
    return folder, "" if rel == "." else rel


def render(root: Path, path: str, *, timeout: float, kubectl: str | None = None,
           decrypt: Decrypt | None = None) -> list[Manifest]:
    """Every object under `path` of the checkout at `root`, in file order; RenderError when any is bad.

    `timeout` bounds `kubectl kustomize`, in seconds; `decrypt` opens SOPS-encrypted documents in memory."""
    folder, rel = source_folder(root, path)
    kustomization = next((folder / k for k in KUSTOMIZATIONS if (folder / k).is_file()), None)
    if kustomization is not None:
        file = f"{rel}/{kustomization.name}" if rel else kustomization.name
        manifests = _kustomize(folder, file, rel or ".", kubectl, timeout, decrypt, root)
    else:
        manifests = [m for file in _yaml_files(folder) for m in _read(root, file, decrypt)]
    _check_unique(manifests)
    return manifests


def _yaml_files(folder: Path) -> Iterator[Path]:
    for entry in sorted(folder.iterdir()):
        if entry.name.startswith("."):
            continue
        if entry.is_dir():
            yield from _yaml_files(entry)
        elif entry.suffix in SUFFIXES:
            yield entry


def _read(root: Path, file: Path, decrypt: Decrypt | None = None) -> list[Manifest]:
    rel = file.relative_to(root.resolve()).as_posix()
    try:
        text = file.read_text()
        if decrypt is not None and (opened := _decrypted(rel, text, decrypt, None)) is not None:
            return _objects(rel, opened)
        documents = list(yaml.safe_load_all(text))
    except yaml.MarkedYAMLError as e:
        mark = e.problem_mark
        where = f"line {mark.line + 1}, column {mark.column + 1}: " if mark else ""
        raise RenderError(rel, f"{where}{e.problem or e}") from None
    except (yaml.YAMLError, UnicodeDecodeError) as e:
        raise RenderError(rel, f"not valid YAML: {e}") from None
    return _objects(rel, documents)


def _objects(file: str, documents: list[Any]) -> list[Manifest]:
    out: list[Manifest] = []
    for number, doc in enumerate(documents, start=1):
        if doc is None:
            continue
        items = doc.get("items") if isinstance(doc, dict) and str(doc.get("kind", "")).endswith("List") else [doc]
        for obj in items or []:
            _check_object(file, number, obj)
            out.append(Manifest(file, obj))
    return out


def _check_object(file: str, number: int, obj: Any) -> None:
    where = f"document {number}"
    if not isinstance(obj, dict):
        raise RenderError(file, f"{where} is not a Kubernetes object (a mapping with apiVersion and kind)")
    for key in ("apiVersion", "kind"):
        if not isinstance(obj.get(key), str) or not obj[key]:
            raise RenderError(file, f"{where}: {key} is missing")
    meta = obj.get("metadata")
    if not isinstance(meta, dict) or not isinstance(meta.get("name"), str) or not meta["name"]:
        raise RenderError(file, f"{where} ({obj['kind']}): metadata.name is missing")


def _check_unique(manifests: list[Manifest]) -> None:
    seen: dict[tuple[str, str, str | None, str], str] = {}
    for m in manifests:
        key = (m.api_version.split("/")[0] if "/" in m.api_version else "", m.kind, m.namespace, m.name)
        if key in seen:
            raise RenderError(m.path, f"{m.kind} {m.name!r} is also declared in {seen[key]}")
        seen[key] = m.path


def _decrypted(file: str, text: str, decrypt: Decrypt, root: Path | None) -> list[Any] | None:
    try:
        return decrypt(text, root)
    except RenderError as e:
        raise RenderError(file, e.message, reason=e.reason) from None


def _kustomize(folder: Path, file: str, rel: str, kubectl: str | None, timeout: float,
               decrypt: Decrypt | None = None, root: Path | None = None) -> list[Manifest]:
    program = kubectl or shutil.which("kubectl")
    if program is None:
        raise RenderError(file, "a kustomization needs `kubectl` (for `kubectl kustomize`), which is not "
                                "installed where the operator runs", reason="KubectlMissing")
    try:
        done = subprocess.run([program, "kustomize", str(folder)], capture_output=True, text=True,
                              timeout=timeout, check=False)
    except (OSError, subprocess.TimeoutExpired) as e:
        raise RenderError(file, f"kubectl kustomize failed: {e}") from None
    if done.returncode != 0:
        detail = done.stderr.strip().replace(str(folder), ".") or f"exit code {done.returncode}"
        raise RenderError(file, f"kubectl kustomize failed: {detail}")
    try:
        opened = _decrypted(file, done.stdout, decrypt, root or folder) if decrypt is not None else None
        documents = opened if opened is not None else list(yaml.safe_load_all(done.stdout))
    except yaml.YAMLError as e:
        raise RenderError(file, f"kubectl kustomize printed invalid YAML: {e}") from None
    # Kustomize does not say which file an object came from: its folder stands for all of them.
    return _objects(rel, documents)
