"""Tracked configs: the ConfigMaps and Secrets a target's pods use, copied for the primary.

Flagger's default (its `ConfigTracker`): a change to a ConfigMap or Secret the target's pod
template references is a new version as much as a new image. So the primary never shares them
with the canary: each tracked object `<n>` gets a copy `<n>-primary`, owned by the release, and
the primary's pod template is rewritten to use the copies. Their content is part of the release's
spec hash, so a ConfigMap changed alone starts, analyses and promotes a release, and promotion
copies it again. What is left out, as in Flagger:

- an object annotated `flagger.app/config-tracking: disabled` (any value starting `disable`);
- Secrets of a type other than Opaque, basic-auth, ssh-auth and tls (registry and service-account
  tokens belong to the service account, not the version);
- an optional reference (`optional: true`) whose object is missing; a missing mandatory one is an
  error naming it.

Everything here is pure (plain JSON dicts, camelCase); `deployments.Workloads` reads and writes.
A Secret's content only ever enters a hash, never a message.
"""

from __future__ import annotations

import copy
import hashlib
import json
from collections.abc import Callable, Collection, Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from .hashing import PRIMARY_SUFFIX

Json = dict[str, Any]

CONFIGMAP, SECRET = "configmap", "secret"
# Flagger's opt-out annotation, honoured on the ConfigMap or Secret itself.
TRACKING_ANNOTATION = "flagger.app/config-tracking"
# The Secret types Flagger tracks (an absent type is Opaque).
TRACKED_SECRET_TYPES = frozenset({
    "Opaque", "kubernetes.io/basic-auth", "kubernetes.io/ssh-auth", "kubernetes.io/tls",
})

# (kind, name): kind is CONFIGMAP or SECRET, name the object's name in the release's namespace.
Key = tuple[str, str]


@dataclass(frozen=True)
class Reference:
    """One place in a pod template that names a ConfigMap or Secret."""

    kind: str
    name: str
    optional: bool
    where: str  # the field path, for messages

    @property
    def key(self) -> Key:
        return (self.kind, self.name)


def label(key: Key) -> str:
    """`configmap/<name>` or `secret/<name>`, as Flagger names a tracked config."""
    return f"{key[0]}/{key[1]}"


def _spec(template: Mapping[str, Any]) -> Mapping[str, Any]:
    return template.get("spec") or {}


# -- every place a pod template names a ConfigMap or Secret -----------------------------------
#
# One walk serves both reading the references and renaming them: `_slots` yields, for each place,
# the mapping that holds the name, the field the name is in, the kind, and the path.

_Slot = tuple[dict[str, Any], str, str, str]  # (holder, name field, kind, path)


def _slots(template: Mapping[str, Any]) -> Iterator[_Slot]:
    spec = _spec(template)
    for i, volume in enumerate(spec.get("volumes") or []):
        at = f"spec.volumes[{i}]"
        if isinstance(volume.get("configMap"), dict):
            yield volume["configMap"], "name", CONFIGMAP, f"{at}.configMap"
        if isinstance(volume.get("secret"), dict):
            yield volume["secret"], "secretName", SECRET, f"{at}.secret"
        projected = volume.get("projected")
        if isinstance(projected, dict):
            for j, source in enumerate(projected.get("sources") or []):
                if isinstance(source.get("configMap"), dict):
                    yield source["configMap"], "name", CONFIGMAP, f"{at}.projected.sources[{j}].configMap"
                if isinstance(source.get("secret"), dict):
                    yield source["secret"], "name", SECRET, f"{at}.projected.sources[{j}].secret"
    for group in ("containers", "initContainers"):
        for i, container in enumerate(spec.get(group) or []):
            at = f"spec.{group}[{i}]"
            for j, env in enumerate(container.get("env") or []):
                source = env.get("valueFrom")
                if not isinstance(source, dict):
                    continue
                if isinstance(source.get("configMapKeyRef"), dict):
                    yield source["configMapKeyRef"], "name", CONFIGMAP, f"{at}.env[{j}].valueFrom.configMapKeyRef"
                elif isinstance(source.get("secretKeyRef"), dict):
                    yield source["secretKeyRef"], "name", SECRET, f"{at}.env[{j}].valueFrom.secretKeyRef"
            for j, env_from in enumerate(container.get("envFrom") or []):
                if isinstance(env_from.get("configMapRef"), dict):
                    yield env_from["configMapRef"], "name", CONFIGMAP, f"{at}.envFrom[{j}].configMapRef"
                elif isinstance(env_from.get("secretRef"), dict):
                    yield env_from["secretRef"], "name", SECRET, f"{at}.envFrom[{j}].secretRef"


def references(template: Mapping[str, Any]) -> list[Reference]:
    """Every ConfigMap and Secret reference of a pod template, in the template's order."""
    found = []
    for holder, field, kind, where in _slots(template):
        name = holder.get(field)
        if isinstance(name, str) and name:
            found.append(Reference(kind, name, bool(holder.get("optional")), f"spec.template.{where}"))
    return found


def referenced(template: Mapping[str, Any]) -> dict[Key, Reference]:
    """One entry per object the template names; mandatory when any reference to it is."""
    out: dict[Key, Reference] = {}
    for ref in references(template):
        known = out.get(ref.key)
        if known is None or (known.optional and not ref.optional):
            out[ref.key] = ref
    return out


def _renamed(template: Mapping[str, Any], rename: Callable[[str, str], str | None]) -> Json:
    new: Json = copy.deepcopy(dict(template))
    for holder, field, kind, _ in _slots(new):
        name = holder.get(field)
        if isinstance(name, str):
            changed = rename(kind, name)
            if changed is not None:
                holder[field] = changed
    return new


def to_copies(template: Mapping[str, Any], tracked: Collection[Key]) -> Json:
    """The template as the primary runs it: each tracked object's name with `-primary` appended."""
    return _renamed(template, lambda kind, name: name + PRIMARY_SUFFIX if (kind, name) in tracked else None)


def from_copies(template: Mapping[str, Any], copies: Collection[Key]) -> Json:
    """The inverse of `to_copies` for hashing the primary: `copies` are the copies' own names."""
    return _renamed(template, lambda kind, name: name[: -len(PRIMARY_SUFFIX)] if (kind, name) in copies else None)


# -- the objects ------------------------------------------------------------------------------


def tracking_disabled(obj: Mapping[str, Any]) -> bool:
    annotations = (obj.get("metadata") or {}).get("annotations") or {}
    value = annotations.get(TRACKING_ANNOTATION)
    return isinstance(value, str) and value.startswith("disable")


def is_tracked(kind: str, obj: Mapping[str, Any]) -> bool:
    """Whether a ConfigMap or Secret takes part in releases (see the module docstring)."""
    if tracking_disabled(obj):
        return False
    return kind != SECRET or (obj.get("type") or "Opaque") in TRACKED_SECRET_TYPES


def content(kind: str, obj: Mapping[str, Any]) -> Json:
    """What reaches the pods: `data` and `binaryData` of a ConfigMap, `data` (and the type) of a Secret.
    A Secret's `stringData` is write-only: the API server folds it into `data`."""
    if kind == SECRET:
        return {"type": obj.get("type") or "Opaque", "data": dict(obj.get("data") or {})}
    return {"data": dict(obj.get("data") or {}), "binaryData": dict(obj.get("binaryData") or {})}


def checksum(kind: str, obj: Mapping[str, Any]) -> str:
    text = json.dumps(content(kind, obj), sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def copy_name(name: str) -> str:
    return f"{name}{PRIMARY_SUFFIX}"


def build_copy(kind: str, obj: Mapping[str, Any], owner: Json | None) -> Json:
    """`<n>-primary`: the object's content, owned by the release. Neither labels nor annotations
    are copied (Flagger's default, `-include-label-prefix` empty): a GitOps tool's tracking label or
    a GitSource's annotations on a copy that is not in Git would have it pruned."""
    meta = obj.get("metadata") or {}
    new_meta: Json = {"name": copy_name(str(meta.get("name"))), "namespace": meta.get("namespace")}
    if owner is not None:
        new_meta["ownerReferences"] = [owner]
    body: Json = {"apiVersion": "v1", "kind": "Secret" if kind == SECRET else "ConfigMap", "metadata": new_meta}
    body.update(copy.deepcopy({k: v for k, v in content(kind, obj).items() if v}))
    if kind == SECRET:
        body["type"] = obj.get("type") or "Opaque"
    return body


def updated_copy(existing: Mapping[str, Any], desired: Mapping[str, Any]) -> Json | None:
    """The existing copy with the desired content and owner (others' owner references kept,
    as Flagger keeps them, no longer as controller); None when it has them already. A Secret whose
    type changed cannot be updated (`needs_recreate`)."""
    new: Json = copy.deepcopy(dict(existing))
    for field in ("data", "binaryData"):
        if desired.get(field):
            new[field] = copy.deepcopy(desired[field])
        else:
            new.pop(field, None)
    meta = new.setdefault("metadata", {})
    dmeta = desired.get("metadata") or {}
    wanted = dmeta.get("ownerReferences") or []
    if wanted:
        ours = {(r.get("kind"), r.get("name")) for r in wanted}
        others = [dict(r, controller=False) for r in meta.get("ownerReferences") or []
                  if (r.get("kind"), r.get("name")) not in ours]
        meta["ownerReferences"] = [*wanted, *others]
    return None if new == dict(existing) else new


def needs_recreate(existing: Mapping[str, Any], desired: Mapping[str, Any]) -> bool:
    return "type" in desired and existing.get("type") != desired["type"]
