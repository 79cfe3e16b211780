"""Find one workload's YAML document inside manifest files, without a cluster.

The revert writer must change one workload and nothing else, also in files that hold many
documents. These pure helpers split a file into its documents keeping each one's exact text (so
what is not ours is written back byte for byte), find the workload's document by kind, name and
namespace, read its container images, and put a document back in place of another.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

import yaml

# A line that starts a new YAML document: `---` alone or followed by blanks (and maybe a tag).
_SEPARATOR = re.compile(r"^---(?:[ \t].*)?\r?\n?$")
MANIFEST_SUFFIXES = (".yaml", ".yml", ".json")


@dataclass(frozen=True)
class Document:
    """One document of a file: its separator line ("" for a first document without one), its
    exact text after that line, and what it parses to (None when empty or not valid YAML)."""

    separator: str
    content: str
    body: Any
    valid: bool = True

    @property
    def text(self) -> str:
        return self.separator + self.content


@dataclass(frozen=True)
class WorkloadId:
    """The workload a revert is about; a document without a namespace matches any namespace."""

    kind: str
    name: str
    namespace: str

    def matches(self, body: Any) -> bool:
        if not isinstance(body, dict) or body.get("kind") != self.kind:
            return False
        metadata = body.get("metadata")
        if not isinstance(metadata, dict) or metadata.get("name") != self.name:
            return False
        return metadata.get("namespace") in (None, "", self.namespace)

    def __str__(self) -> str:
        return f"{self.kind}/{self.name}"


def split_documents(text: str) -> list[Document]:
    """The documents of a YAML stream; joining their `text` gives back `text` exactly."""
    parts: list[tuple[str, list[str]]] = [("", [])]
    for line in text.splitlines(keepends=True):
        if _SEPARATOR.match(line):
            parts.append((line, []))
        else:
            parts[-1][1].append(line)
    if parts[0] == ("", []) and len(parts) > 1:
        parts.pop(0)
    documents = []
    for separator, lines in parts:
        content = "".join(lines)
        try:
            body, valid = yaml.safe_load(separator + content), True
        except yaml.YAMLError:
            body, valid = None, False
        documents.append(Document(separator, content, body, valid))
    return documents


def find_document(text: str, workload: WorkloadId) -> int | None:
    """The index of the workload's document in `text`, or None."""
    for index, document in enumerate(split_documents(text)):
        if workload.matches(document.body):
            return index
    return None


def workload_document(text: str | None, workload: WorkloadId) -> Document | None:
    if text is None:
        return None
    index = find_document(text, workload)
    return None if index is None else split_documents(text)[index]


def other_documents(text: str | None, workload: WorkloadId, *more: WorkloadId) -> tuple[str, ...] | None:
    """The content of every document that is not the workload's (nor one of `more`), in order;
    None when some document cannot be parsed (then nobody can tell what a change touched)."""
    if text is None:
        return ()
    documents = split_documents(text)
    if not all(d.valid for d in documents):
        return None
    ours = (workload, *more)
    return tuple(d.content for d in documents if not any(w.matches(d.body) for w in ours))


def container_images(body: Any) -> tuple[str, ...]:
    """The images of a pod template's containers (Deployment, DaemonSet, StatefulSet...), in order."""
    try:
        containers = body["spec"]["template"]["spec"]["containers"]
    except (KeyError, TypeError):
        return ()
    if not isinstance(containers, list):
        return ()
    return tuple(str(c.get("image", "")) for c in containers if isinstance(c, dict))


def replace_document(text: str | None, workload: WorkloadId, replacement: Document | None) -> str | None:
    """`text` with the workload's document replaced by `replacement` (removed when None, appended
    when `text` has none); every other document is kept exactly. None means "no file"."""
    documents = split_documents(text) if text is not None else []
    index = next((i for i, d in enumerate(documents) if workload.matches(d.body)), None)
    if index is None:
        if replacement is None:
            return text
        base = text or ""
        if base.strip():
            base = base if base.endswith("\n") else base + "\n"
            return base + "---\n" + _terminated(replacement.content)
        return replacement.text
    if replacement is None:
        kept = documents[:index] + documents[index + 1 :]
        if not any(d.body is not None for d in kept):
            return None
        return "".join(d.text for d in kept)
    content = replacement.content
    if index < len(documents) - 1:
        content = _terminated(content)
    documents[index] = Document(documents[index].separator, content, replacement.body, replacement.valid)
    return "".join(d.text for d in documents)


def _terminated(content: str) -> str:
    return content if content.endswith("\n") or not content else content + "\n"
