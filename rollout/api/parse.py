"""Turn custom resource dicts into the typed specs of `rollout.api.spec`, or say everything wrong.

The CRD schema checks shapes and types; this module checks the rules a schema cannot express
(stepWeight <= maxWeight, A/B matching needs a header-routing provider, ...) and applies Flagger's
defaults, so that a Flagger Canary with only its apiVersion changed means the same thing here.
Every problem is collected, never just the first, and each names its field path and what to do.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Mapping
from typing import Any, TypeVar
from urllib.parse import urlsplit

from rollout.api.durations import parse_duration
from rollout.api.errors import FieldError, ValidationError
from rollout.api.kinds import API_VERSION, FLAGGER_API_VERSION
from rollout.api.spec import (
    BUILTIN_METRICS,
    HEADER_ROUTING_PROVIDERS,
    PROVIDER_ALIASES,
    Analysis,
    BlueGreen,
    BlueGreenSpec,
    Canary,
    CanarySpec,
    Compare,
    Direction,
    GitAuthor,
    GitSource,
    GitSourceSpec,
    GitSpec,
    Judge,
    Metadata,
    Metric,
    MetricTemplate,
    MetricTemplateSpec,
    ObjectRef,
    PreviewService,
    Provider,
    ProviderRef,
    PushMode,
    Resource,
    RevertMode,
    ServiceSpec,
    ThresholdRange,
    Webhook,
    WebhookType,
)

# Flagger's defaults (pkg/apis/flagger/v1beta1 and pkg/controller/webhook.go).
DEFAULT_INTERVAL = 60.0
DEFAULT_METRIC_INTERVAL = 60.0
DEFAULT_WEBHOOK_TIMEOUT = 10.0
DEFAULT_PROGRESS_DEADLINE = 600

_BUILTIN_LIST = ", ".join(sorted(BUILTIN_METRICS, reverse=True))  # request-success-rate, request-duration
_DURATION_HINT = "must be a duration like 30s, 1m30s or 2h"
_SCP_LIKE = re.compile(r"^[A-Za-z0-9._-]+@[A-Za-z0-9._-]+:(?!//)\S+$")
# Service fields the ServiceSpec names; everything else goes to `extra` for the routers.
_SERVICE_FIELDS = frozenset({"name", "port", "targetPort", "portName", "hosts", "gateways", "gatewayRefs"})

Json = Mapping[str, Any]
E = TypeVar("E")


class _Errors:
    """Collects problems while parsing goes on with stand-in values, so every problem is found."""

    def __init__(self) -> None:
        self.items: list[FieldError] = []

    def add(self, path: str, message: str) -> None:
        self.items.append(FieldError(path, message))

    def raise_if_any(self) -> None:
        if self.items:
            raise ValidationError(self.items)


def _join(path: str, key: str) -> str:
    return f"{path}.{key}" if path else key


def _show(value: Any) -> str:
    """A value as a message quotes it: 50 not 50.0, strings quoted."""
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    if isinstance(value, str):
        return repr(value)
    return str(value)


def _type_name(value: Any) -> str:
    if isinstance(value, Mapping):
        return "an object"
    if isinstance(value, list):
        return "a list"
    return _show(value)


# --- typed getters: each reports a wrong type or range and returns None (or the default) -------------


def _map(errs: _Errors, d: Json, key: str, path: str, *, required: bool = False) -> Json | None:
    p = _join(path, key)
    value = d.get(key)
    if value is None:
        if required:
            errs.add(p, "is required")
        return None
    if not isinstance(value, Mapping):
        errs.add(p, f"must be an object (a mapping of fields), got {_type_name(value)}")
        return None
    return value


def _list(errs: _Errors, d: Json, key: str, path: str) -> list[Any]:
    value = d.get(key)
    if value is None:
        return []
    if not isinstance(value, list):
        errs.add(_join(path, key), f"must be a list, got {_type_name(value)}")
        return []
    return value


def _str(errs: _Errors, d: Json, key: str, path: str, *, required: bool = False) -> str | None:
    p = _join(path, key)
    value = d.get(key)
    if value is None or value == "":
        if required:
            errs.add(p, "is required")
        return None
    if not isinstance(value, str):
        errs.add(p, f"must be a string, got {_type_name(value)}")
        return None
    return value


def _int(errs: _Errors, d: Json, key: str, path: str, *, lo: int | None = None, hi: int | None = None) -> int | None:
    p = _join(path, key)
    value = d.get(key)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int):
        errs.add(p, f"must be an integer, got {_type_name(value)}")
        return None
    if lo is not None and hi is not None and not lo <= value <= hi:
        errs.add(p, f"must be between {lo} and {hi}, got {value}")
        return None
    if lo is not None and value < lo:
        errs.add(p, f"must be at least {lo}, got {value}")
        return None
    return value


def _number(errs: _Errors, d: Json, key: str, path: str) -> float | None:
    value = d.get(key)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        errs.add(_join(path, key), f"must be a number, got {_type_name(value)}")
        return None
    return float(value)


def _bool(errs: _Errors, d: Json, key: str, path: str, default: bool) -> bool:
    value = d.get(key)
    if value is None:
        return default
    if not isinstance(value, bool):
        errs.add(_join(path, key), f"must be true or false, got {_type_name(value)}")
        return default
    return value


def _duration(errs: _Errors, d: Json, key: str, path: str, default: float) -> float:
    value = d.get(key)
    if value is None or value == "":
        return default
    if not isinstance(value, str):
        errs.add(_join(path, key), f"{_DURATION_HINT}, got {_type_name(value)}")
        return default
    try:
        return parse_duration(value)
    except ValueError:
        errs.add(_join(path, key), f"{_DURATION_HINT}, got {value!r}")
        return default


def _enum(
    errs: _Errors, d: Json, key: str, path: str, enum: Callable[[str], E], known: list[str], what: str, default: E
) -> E:
    value = d.get(key)
    if value is None or value == "":
        return default
    if isinstance(value, str) and value in known:
        return enum(value)
    errs.add(_join(path, key), f"unknown {what} {_show(value)}; known: {', '.join(known)}")
    return default


def _string_map(errs: _Errors, d: Json, key: str, path: str) -> tuple[tuple[str, str], ...]:
    """A map of strings as sorted pairs; numbers and booleans are written as YAML would quote them."""
    m = _map(errs, d, key, path)
    if m is None:
        return ()
    out: list[tuple[str, str]] = []
    for k, v in m.items():
        if isinstance(v, str):
            out.append((str(k), v))
        elif isinstance(v, bool):
            out.append((str(k), "true" if v else "false"))
        elif isinstance(v, int | float):
            out.append((str(k), _show(v)))
        else:
            errs.add(_join(_join(path, key), str(k)), f"must be a string, got {_type_name(v)}")
    return tuple(sorted(out))


def _secret_name(errs: _Errors, d: Json, path: str) -> str | None:
    ref = _map(errs, d, "secretRef", path)
    return None if ref is None else _str(errs, ref, "name", _join(path, "secretRef"), required=True)


def _http_url_problem(url: str) -> str | None:
    parts = urlsplit(url)
    if parts.scheme in ("http", "https") and parts.netloc:
        return None
    return f"must be an http:// or https:// URL, got {url!r}"


def _git_url_problem(url: str) -> str | None:
    parts = urlsplit(url)
    if parts.scheme in ("https", "ssh") and parts.netloc:
        return None
    if parts.scheme == "file" and parts.path:
        return None
    if "://" not in url and _SCP_LIKE.match(url):
        return None
    return f"must be an https://, ssh:// or file:// URL, or scp-like user@host:path, got {url!r}"


# What `git check-ref-format --branch` refuses, in short: blanks and control characters, ~^:?*[\,
# "..", "@{", a leading "-" or "/", a trailing "/", "." or ".lock", and empty path components.
_BAD_BRANCH = re.compile(r"[\x00-\x20\x7f~^:?*\[\\]|\.\.|@\{|^[-/]|/$|\.$|\.lock$|//|^@$|(^|/)\.")


def _branch(errs: _Errors, d: Json, path: str) -> str:
    branch = _str(errs, d, "branch", path) or "main"
    if _BAD_BRANCH.search(branch):
        errs.add(_join(path, "branch"), f"must be a Git branch name like main or release/1.x, got {branch!r}")
    return branch


def _repo_path(errs: _Errors, d: Json, path: str) -> str:
    folder = _str(errs, d, "path", path) or "./"
    parts = folder.replace("\\", "/").split("/")
    if folder.startswith("/") or ".." in parts:
        errs.add(_join(path, "path"),
                 f"must be a folder inside the repository, relative to its root like ./apps/web, got {folder!r}")
    return folder


def _names(enum: Any) -> list[str]:
    return [str(member.value) for member in enum]


# --- shared pieces ----------------------------------------------------------------------------------


def _metadata(errs: _Errors, obj: Json) -> Metadata:
    meta = _map(errs, obj, "metadata", "", required=True) or {}
    name = _str(errs, meta, "name", "metadata", required=True) or ""
    namespace = _str(errs, meta, "namespace", "metadata") or "default"
    generation = _int(errs, meta, "generation", "metadata", lo=0) or 0
    uid = _str(errs, meta, "uid", "metadata") or ""
    annotations = _string_map(errs, meta, "annotations", "metadata")
    return Metadata(name=name, namespace=namespace, generation=generation, uid=uid, annotations=annotations)


def _provider(errs: _Errors, spec: Json, path: str) -> Provider:
    value = spec.get("provider")
    if value is None or value == "":
        return Provider.KUBERNETES
    if isinstance(value, str):
        if value in PROVIDER_ALIASES:
            return PROVIDER_ALIASES[value]
        if value in _names(Provider):
            return Provider(value)
    known = ", ".join(sorted(_names(Provider)))
    errs.add(_join(path, "provider"), f"unknown provider {_show(value)}; known: {known}")
    return Provider.KUBERNETES


def _object_ref(errs: _Errors, ref: Json, path: str, *, api_version: str = "", kind: str = "") -> ObjectRef:
    return ObjectRef(
        api_version=_str(errs, ref, "apiVersion", path) or api_version,
        kind=_str(errs, ref, "kind", path) or kind,
        name=_str(errs, ref, "name", path, required=True) or "",
        namespace=_str(errs, ref, "namespace", path),
    )


def _target_ref(errs: _Errors, spec: Json, path: str) -> ObjectRef:
    p = _join(path, "targetRef")
    ref = _map(errs, spec, "targetRef", path, required=True)
    if ref is None:
        return ObjectRef(api_version="apps/v1", kind="Deployment", name="")
    target = _object_ref(errs, ref, p, api_version="apps/v1", kind="Deployment")
    if target.kind != "Deployment":
        errs.add(_join(p, "kind"), f"must be Deployment (the only workload kind supported), got {target.kind!r}")
    return target


def _service(errs: _Errors, spec: Json, path: str) -> ServiceSpec:
    p = _join(path, "service")
    svc = _map(errs, spec, "service", path, required=True)
    if svc is None:
        return ServiceSpec(port=0)
    port = _int(errs, svc, "port", p, lo=1, hi=65535)
    if "port" not in svc:
        errs.add(_join(p, "port"), "is required: the port the generated Services expose")
    target_port: int | str | None = None
    raw_target = svc.get("targetPort")
    if isinstance(raw_target, str) and raw_target:
        target_port = raw_target
    elif raw_target is not None:
        target_port = _int(errs, svc, "targetPort", p, lo=1, hi=65535)
    gateway_refs = []
    for i, ref in enumerate(_list(errs, svc, "gatewayRefs", p)):
        if isinstance(ref, Mapping) and isinstance(ref.get("name"), str) and ref["name"]:
            gateway_refs.append(dict(ref))
        else:
            errs.add(f"{p}.gatewayRefs[{i}]", "must be an object with a name (and optional namespace)")
    return ServiceSpec(
        port=port or 0,
        name=_str(errs, svc, "name", p),
        target_port=target_port,
        port_name=_str(errs, svc, "portName", p) or "http",
        hosts=tuple(_strings(errs, svc, "hosts", p)),
        gateways=tuple(_strings(errs, svc, "gateways", p)),
        gateway_refs=tuple(gateway_refs),
        extra={k: v for k, v in svc.items() if k not in _SERVICE_FIELDS},
    )


def _strings(errs: _Errors, d: Json, key: str, path: str) -> list[str]:
    out = []
    for i, item in enumerate(_list(errs, d, key, path)):
        if isinstance(item, str) and item:
            out.append(item)
        else:
            errs.add(f"{_join(path, key)}[{i}]", f"must be a non-empty string, got {_type_name(item)}")
    return out


# --- analysis ---------------------------------------------------------------------------------------


def _threshold_range(errs: _Errors, m: Json, path: str) -> ThresholdRange | None:
    p = _join(path, "thresholdRange")
    tr = _map(errs, m, "thresholdRange", path)
    if tr is None:
        return None
    lo, hi = _number(errs, tr, "min", p), _number(errs, tr, "max", p)
    if "min" not in tr and "max" not in tr:
        errs.add(p, "set min, max or both")
    if lo is not None and hi is not None and lo > hi:
        errs.add(p, f"min ({_show(lo)}) must not exceed max ({_show(hi)})")
    return ThresholdRange(min=lo, max=hi)


def _compare(errs: _Errors, m: Json, path: str) -> Compare | None:
    p = _join(path, "compare")
    c = _map(errs, m, "compare", path)
    if c is None:
        return None
    direction = _enum(errs, c, "direction", p, Direction, _names(Direction), "direction", Direction.INCREASE)
    tolerance = _number(errs, c, "tolerance", p)
    if tolerance is not None and tolerance < 0:
        errs.add(_join(p, "tolerance"), f"must be zero or more, got {_show(tolerance)}")
        tolerance = None
    return Compare(direction=direction, tolerance=tolerance or 0.0)


def _metric(errs: _Errors, m: Any, path: str, judge: Judge) -> Metric | None:
    if not isinstance(m, Mapping):
        errs.add(path, f"must be an object with a name, got {_type_name(m)}")
        return None
    name = _str(errs, m, "name", path, required=True) or ""
    interval = _duration(errs, m, "interval", path, DEFAULT_METRIC_INTERVAL)
    threshold_range = _threshold_range(errs, m, path)
    threshold = _number(errs, m, "threshold", path)
    query = _str(errs, m, "query", path)
    template_ref = None
    ref = _map(errs, m, "templateRef", path)
    if ref is not None:
        template_ref = _object_ref(errs, ref, _join(path, "templateRef"), kind="MetricTemplate")
    if query is not None and template_ref is not None:
        errs.add(path, "use either query or templateRef, not both")
    builtin = query is None and template_ref is None
    if builtin and name and name not in BUILTIN_METRICS:
        errs.add(path, f"{name!r} is not a built-in metric ({_BUILTIN_LIST}); add a query or a templateRef")
    if threshold_range is None and threshold is not None:
        # Flagger's deprecated form: a floor for the success rate, a ceiling for everything else.
        if builtin and name == "request-success-rate":
            threshold_range = ThresholdRange(min=threshold)
        else:
            threshold_range = ThresholdRange(max=threshold)
    compare = _compare(errs, m, path)
    if threshold_range is None and compare is None and judge == Judge.THRESHOLD:
        errs.add(
            path,
            "add a thresholdRange (min and/or max), or a compare block to judge the canary against the "
            "primary (or set analysis.judge to compare or sequential)",
        )
    return Metric(
        name=name,
        interval=interval,
        threshold_range=threshold_range,
        query=query,
        template_ref=template_ref,
        template_variables=_string_map(errs, m, "templateVariables", path),
        compare=compare,
    )


def _webhook(errs: _Errors, w: Any, path: str) -> Webhook | None:
    if not isinstance(w, Mapping):
        errs.add(path, f"must be an object with a name and a url, got {_type_name(w)}")
        return None
    url = _str(errs, w, "url", path, required=True) or ""
    if url and (problem := _http_url_problem(url)):
        errs.add(_join(path, "url"), problem)
    return Webhook(
        name=_str(errs, w, "name", path, required=True) or "",
        url=url,
        # Flagger runs a webhook without a type during the analysis, as a rollout hook.
        type=_enum(errs, w, "type", path, WebhookType, _names(WebhookType), "webhook type", WebhookType.ROLLOUT),
        timeout=_duration(errs, w, "timeout", path, DEFAULT_WEBHOOK_TIMEOUT),
        mute_alert=_bool(errs, w, "muteAlert", path, False),
        metadata=_string_map(errs, w, "metadata", path),
    )


def _step_weights(errs: _Errors, a: Json, path: str) -> tuple[int, ...]:
    p = _join(path, "stepWeights")
    out: list[int] = []
    for i, w in enumerate(_list(errs, a, "stepWeights", path)):
        ip = f"{p}[{i}]"
        if isinstance(w, bool) or not isinstance(w, int):
            errs.add(ip, f"must be an integer, got {_type_name(w)}")
        elif not 1 <= w <= 100:
            errs.add(ip, f"must be between 1 and 100, got {w}")
        elif out and w <= out[-1]:
            errs.add(ip, f"must be greater than the previous step ({out[-1]}), got {w}")
        else:
            out.append(w)
    return tuple(out)


def _analysis(errs: _Errors, a: Json, path: str, provider: Provider, *, blue_green: bool) -> Analysis:
    judge = _enum(errs, a, "judge", path, Judge, _names(Judge), "judge", Judge.THRESHOLD)
    max_weight = _int(errs, a, "maxWeight", path, lo=1, hi=100)
    step_weight = _int(errs, a, "stepWeight", path, lo=1, hi=100)
    step_weights = _step_weights(errs, a, path)
    iterations = _int(errs, a, "iterations", path, lo=1)
    alpha = _number(errs, a, "alpha", path)
    if alpha is not None and not 0 < alpha < 1:
        errs.add(_join(path, "alpha"), f"must be between 0 and 1 (exclusive), got {_show(alpha)}")
        alpha = None
    match = []
    for i, cond in enumerate(_list(errs, a, "match", path)):
        if isinstance(cond, Mapping):
            match.append(dict(cond))
        else:
            errs.add(f"{_join(path, 'match')}[{i}]", f"must be an object (headers, cookies), got {_type_name(cond)}")

    has_steps = "stepWeight" in a or "stepWeights" in a
    if blue_green:
        for key in ("stepWeight", "stepWeights", "stepWeightPromotion"):
            if key in a:
                errs.add(
                    _join(path, key),
                    f"blue/green switches all traffic at once after the iterations pass; remove {key}",
                )
        if "match" in a:
            errs.add(
                _join(path, "match"),
                "blue/green switches all traffic at once; for A/B testing use a Canary with iterations and match",
            )
        if "iterations" not in a:
            errs.add(
                _join(path, "iterations"),
                "is required: the number of checks the new version must pass before all traffic switches to it",
            )
    else:
        if "stepWeight" in a and "stepWeights" in a:
            errs.add(_join(path, "stepWeights"), "use either stepWeight (with maxWeight) or stepWeights, not both")
        if has_steps and "iterations" in a:
            errs.add(
                _join(path, "iterations"),
                "iterations cannot be combined with stepWeight or stepWeights: use step weights to shift "
                "traffic progressively, or iterations for A/B testing and blue/green",
            )
        elif not has_steps and "iterations" not in a:
            errs.add(
                path,
                "set stepWeight (with maxWeight) or stepWeights to shift traffic progressively, or iterations "
                "for A/B testing and blue/green",
            )
        if step_weight is not None and max_weight is not None and step_weight > max_weight:
            errs.add(_join(path, "stepWeight"), f"must not exceed maxWeight ({max_weight}), got {step_weight}")
        if "match" in a:
            if provider not in HEADER_ROUTING_PROVIDERS:
                known = ", ".join(sorted(str(p) for p in HEADER_ROUTING_PROVIDERS))
                errs.add(
                    _join(path, "match"),
                    f"A/B matching needs a provider that routes on headers ({known}); provider '{provider}' cannot",
                )
            if "iterations" not in a:
                errs.add(
                    _join(path, "match"),
                    "A/B matching needs iterations (how many checks to run on the matched traffic) "
                    "instead of step weights",
                )

    metrics: list[Metric] = []
    seen: set[str] = set()
    for i, raw in enumerate(_list(errs, a, "metrics", path)):
        mp = f"{_join(path, 'metrics')}[{i}]"
        metric = _metric(errs, raw, mp, judge)
        if metric is None:
            continue
        if metric.name and metric.name in seen:
            errs.add(_join(mp, "name"), f"duplicate metric name {metric.name!r}; metric names must be unique")
        seen.add(metric.name)
        metrics.append(metric)
    webhooks = [
        hook
        for i, raw in enumerate(_list(errs, a, "webhooks", path))
        if (hook := _webhook(errs, raw, f"{_join(path, 'webhooks')}[{i}]")) is not None
    ]
    return Analysis(
        interval=_duration(errs, a, "interval", path, DEFAULT_INTERVAL),
        threshold=_int(errs, a, "threshold", path, lo=1) or 1,
        max_weight=max_weight or 100,
        step_weight=step_weight,
        step_weights=step_weights,
        step_weight_promotion=_int(errs, a, "stepWeightPromotion", path, lo=1, hi=100),
        iterations=iterations,
        match=tuple(match),
        metrics=tuple(metrics),
        webhooks=tuple(webhooks),
        judge=judge,
        alpha=0.05 if alpha is None else alpha,
    )


def _analysis_of(errs: _Errors, spec: Json, path: str, provider: Provider, *, blue_green: bool) -> Analysis:
    # Flagger still reads the deprecated spec.canaryAnalysis when spec.analysis is absent.
    key = "analysis" if "analysis" in spec or "canaryAnalysis" not in spec or blue_green else "canaryAnalysis"
    a = _map(errs, spec, key, path, required=True)
    if a is None:
        return Analysis()
    return _analysis(errs, a, _join(path, key), provider, blue_green=blue_green)


# --- git --------------------------------------------------------------------------------------------


def _git(errs: _Errors, spec: Json, path: str) -> GitSpec | None:
    p = _join(path, "git")
    g = _map(errs, spec, "git", path)
    if g is None:
        return None
    source = _str(errs, g, "source", p)
    url = _str(errs, g, "url", p)
    if source and url:
        errs.add(
            p,
            "set either source (a GitSource this operator syncs) or url (a repository Flux or Argo CD syncs), not both",
        )
    elif not source and not url:
        errs.add(
            p,
            "set source to the name of a GitSource, or url (with branch and path) when Flux or Argo CD "
            "syncs the manifests",
        )
    if url and (problem := _git_url_problem(url)):
        errs.add(_join(p, "url"), problem)
    if source and not url:
        for key in ("branch", "path", "secretRef"):
            if key in g:
                errs.add(
                    _join(p, key),
                    f"{key} comes from the GitSource {source!r}; remove it here, or use url instead of source",
                )
    author = GitAuthor()
    a = _map(errs, g, "author", p)
    if a is not None:
        author = GitAuthor(
            name=_str(errs, a, "name", _join(p, "author")) or author.name,
            email=_str(errs, a, "email", _join(p, "author")) or author.email,
        )
    return GitSpec(
        source=source,
        url=url,
        branch=_branch(errs, g, p),
        path=_repo_path(errs, g, p),
        secret_ref=_secret_name(errs, g, p),
        revert=_enum(errs, g, "revert", p, RevertMode, _names(RevertMode), "revert mode", RevertMode.AUTO),
        push=_enum(errs, g, "push", p, PushMode, _names(PushMode), "push mode", PushMode.DIRECT),
        author=author,
    )


# --- kinds ------------------------------------------------------------------------------------------


def _root(obj: Any) -> Json:
    if not isinstance(obj, Mapping):
        raise ValidationError(
            [FieldError("", f"must be an object with apiVersion, kind, metadata and spec, got {_type_name(obj)}")]
        )
    return obj


def parse_canary(obj: Json) -> Canary:
    """A Canary (or a Flagger Canary) as typed spec; raises ValidationError listing every problem."""
    obj, errs = _root(obj), _Errors()
    metadata = _metadata(errs, obj)
    spec = _map(errs, obj, "spec", "", required=True) or {}
    provider = _provider(errs, spec, "spec")
    ingress_ref = None
    ref = _map(errs, spec, "ingressRef", "spec")
    if ref is not None:
        ingress_ref = _object_ref(errs, ref, "spec.ingressRef", api_version="networking.k8s.io/v1", kind="Ingress")
    elif provider == Provider.NGINX and spec:
        errs.add("spec.ingressRef", "is required with provider nginx: name the Ingress whose traffic is split")
    service = _service(errs, spec, "spec")
    if provider == Provider.GATEWAYAPI and isinstance(spec.get("service"), Mapping) and not service.gateway_refs:
        errs.add("spec.service.gatewayRefs", "is required with provider gatewayapi: name the Gateways to attach to")
    canary_spec = CanarySpec(
        target_ref=_target_ref(errs, spec, "spec"),
        service=service,
        analysis=_analysis_of(errs, spec, "spec", provider, blue_green=False),
        provider=provider,
        ingress_ref=ingress_ref,
        progress_deadline_seconds=_int(errs, spec, "progressDeadlineSeconds", "spec", lo=1)
        or DEFAULT_PROGRESS_DEADLINE,
        skip_analysis=_bool(errs, spec, "skipAnalysis", "spec", False),
        suspend=_bool(errs, spec, "suspend", "spec", False),
        git=_git(errs, spec, "spec"),
    )
    errs.raise_if_any()
    return Canary(metadata=metadata, spec=canary_spec)


def parse_bluegreen(obj: Json) -> BlueGreen:
    """A BlueGreen as typed spec; raises ValidationError listing every problem."""
    obj, errs = _root(obj), _Errors()
    metadata = _metadata(errs, obj)
    spec = _map(errs, obj, "spec", "", required=True) or {}
    provider = _provider(errs, spec, "spec")
    preview = None
    pv = _map(errs, spec, "previewService", "spec")
    if pv is not None:
        preview = PreviewService(
            name=_str(errs, pv, "name", "spec.previewService", required=True) or "",
            port=_int(errs, pv, "port", "spec.previewService", lo=1, hi=65535),
        )
    delay = _int(errs, spec, "scaleDownDelaySeconds", "spec", lo=0)
    bg_spec = BlueGreenSpec(
        target_ref=_target_ref(errs, spec, "spec"),
        service=_service(errs, spec, "spec"),
        analysis=_analysis_of(errs, spec, "spec", provider, blue_green=True),
        provider=provider,
        progress_deadline_seconds=_int(errs, spec, "progressDeadlineSeconds", "spec", lo=1)
        or DEFAULT_PROGRESS_DEADLINE,
        skip_analysis=_bool(errs, spec, "skipAnalysis", "spec", False),
        suspend=_bool(errs, spec, "suspend", "spec", False),
        auto_promotion=_bool(errs, spec, "autoPromotion", "spec", True),
        scale_down_delay_seconds=30 if delay is None else delay,
        preview_service=preview,
        git=_git(errs, spec, "spec"),
    )
    errs.raise_if_any()
    return BlueGreen(metadata=metadata, spec=bg_spec)


def parse_metric_template(obj: Json) -> MetricTemplate:
    """A MetricTemplate as typed spec; raises ValidationError listing every problem."""
    obj, errs = _root(obj), _Errors()
    metadata = _metadata(errs, obj)
    spec = _map(errs, obj, "spec", "", required=True) or {}
    provider = ProviderRef()
    pr = _map(errs, spec, "provider", "spec")
    if pr is not None:
        ptype = _str(errs, pr, "type", "spec.provider") or "prometheus"
        if ptype != "prometheus":
            errs.add("spec.provider.type", f"unsupported metric provider {ptype!r}; only prometheus is supported")
        address = _str(errs, pr, "address", "spec.provider") or provider.address
        if problem := _http_url_problem(address):
            errs.add("spec.provider.address", problem)
        provider = ProviderRef(
            type=ptype,
            address=address,
            secret_ref=_secret_name(errs, pr, "spec.provider"),
            insecure_skip_verify=_bool(errs, pr, "insecureSkipVerify", "spec.provider", False),
        )
    query = _str(errs, spec, "query", "spec")
    if query is not None and not query.strip():
        query = None
    if query is None and "spec" in obj:
        errs.add("spec.query", "is required: a PromQL query that returns one number")
    errs.raise_if_any()
    return MetricTemplate(metadata=metadata, spec=MetricTemplateSpec(query=query or "", provider=provider))


def parse_gitsource(obj: Json) -> GitSource:
    """A GitSource as typed spec; raises ValidationError listing every problem."""
    obj, errs = _root(obj), _Errors()
    metadata = _metadata(errs, obj)
    spec = _map(errs, obj, "spec", "", required=True) or {}
    url = _str(errs, spec, "url", "spec", required="spec" in obj) or ""
    if url and (problem := _git_url_problem(url)):
        errs.add("spec.url", problem)
    source_spec = GitSourceSpec(
        url=url,
        branch=_branch(errs, spec, "spec"),
        path=_repo_path(errs, spec, "spec"),
        interval=_duration(errs, spec, "interval", "spec", 60.0),
        secret_ref=_secret_name(errs, spec, "spec"),
        prune=_bool(errs, spec, "prune", "spec", True),
        self_heal=_bool(errs, spec, "selfHeal", "spec", True),
        suspend=_bool(errs, spec, "suspend", "spec", False),
    )
    errs.raise_if_any()
    return GitSource(metadata=metadata, spec=source_spec)


PARSERS: dict[str, Callable[[Json], Resource]] = {
    "Canary": parse_canary,
    "BlueGreen": parse_bluegreen,
    "MetricTemplate": parse_metric_template,
    "GitSource": parse_gitsource,
}


def flagger_hint(kind: str) -> str:
    return (
        f"this is a Flagger {kind}: change apiVersion from {FLAGGER_API_VERSION} to {API_VERSION} "
        "(the spec keeps its meaning)"
    )


def parse_resource(obj: Json) -> Resource:
    """Any of our kinds, dispatched on kind for apiVersion rollout.gitops.dev/v1alpha1."""
    obj = _root(obj)
    api_version, kind = obj.get("apiVersion"), obj.get("kind")
    errors: list[FieldError] = []
    if api_version == FLAGGER_API_VERSION and kind in PARSERS:
        errors.append(FieldError("apiVersion", flagger_hint(str(kind))))
    elif api_version != API_VERSION:
        errors.append(FieldError("apiVersion", f"must be {API_VERSION}, got {_show(api_version)}"))
    parser = PARSERS.get(kind) if isinstance(kind, str) else None
    if parser is None:
        errors.append(FieldError("kind", f"unknown kind {_show(kind)}; known: {', '.join(sorted(PARSERS))}"))
        raise ValidationError(errors)
    try:
        resource = parser(obj)
    except ValidationError as e:
        raise ValidationError(errors + e.errors) from None
    if errors:
        raise ValidationError(errors)
    return resource
