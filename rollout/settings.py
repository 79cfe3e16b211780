"""The operator's settings: every timeout, backoff, retry delay and pool size in one frozen object.

`rollout run` builds one `Settings` from its flags and `ROLLOUT_*` environment variables (a flag
wins over the variable, the variable over the default) and passes it down to every part that
talks to the API, Prometheus or Git, as kopf passes its `OperatorSettings`. No part reads a
module constant for these. The module sits below every layer and imports nothing of rollout, so
the routers, workloads and GitOps parts can take the same object as the engine.
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field, fields, replace
from typing import Any


def _default_workers() -> int:
    # The size Python gives its default thread pool, which ran the ticks before this setting existed.
    return min(32, (os.cpu_count() or 1) + 4)


def _setting(default: Any, env: str, help: str, *, default_factory: Any = None) -> Any:
    metadata = {"env": env, "help": help}
    if default_factory is not None:
        return field(default_factory=default_factory, metadata=metadata)
    return field(default=default, metadata=metadata)


# Durations that must be more than zero (the others may be 0: no wait, no retry).
_POSITIVE = ("lease_duration", "renew_deadline", "retry_period")


def _problem(name: str, value: Any) -> str | None:
    if name == "prometheus" and not str(value).startswith(("http://", "https://")):
        return f"must start with http:// or https://, got {value!r}"
    if name in ("metrics_addr", "dashboard_addr", "webhook_addr"):
        try:
            listen_address(value)
        except ValueError as e:
            return str(e)
        return None
    if name in ("workers", "release_workers") and value < 1:
        return f"must be at least 1, got {value}"
    if isinstance(value, int | float) and not isinstance(value, bool) and value < 0:
        return f"must not be negative, got {value}"
    if (name.endswith("timeout") or name in _POSITIVE) and value == 0:
        return "must be more than 0 seconds"
    return None


@dataclass(frozen=True)
class Settings:
    prometheus: str = _setting(
        "http://prometheus.monitoring:9090", "ROLLOUT_PROMETHEUS_URL",
        "Prometheus that the metric checks query")
    prometheus_timeout: float = _setting(10.0, "ROLLOUT_PROMETHEUS_TIMEOUT", "seconds one Prometheus query may take")
    prometheus_retries: int = _setting(
        2, "ROLLOUT_PROMETHEUS_RETRIES", "extra attempts of a Prometheus query that failed for a temporary reason")
    mesh_provider: str = _setting(
        "istio", "ROLLOUT_MESH_PROVIDER",
        "traffic provider of a Canary without spec.provider, as Flagger's -mesh-provider: gatewayapi, istio, "
        "linkerd, nginx, smi, kuma, appmesh, contour, gloo, traefik, apisix, skipper, kubernetes or knative")
    api_timeout: float = _setting(10.0, "ROLLOUT_API_TIMEOUT", "seconds one Kubernetes API request may take")
    watch_timeout: float = _setting(
        120.0, "ROLLOUT_WATCH_TIMEOUT", "seconds the API server keeps a watch stream open before it is reopened")
    watch_request_timeout: float = _setting(
        30.0, "ROLLOUT_WATCH_REQUEST_TIMEOUT", "seconds the operator's runtime (kopf) waits on one API request or "
                                              "watch read before it retries")
    apply_timeout: float = _setting(
        15.0, "ROLLOUT_APPLY_TIMEOUT", "seconds one server-side apply (or prune) of a GitSource's object may take")
    conflict_retries: int = _setting(
        3, "ROLLOUT_CONFLICT_RETRIES", "times a workload write re-reads and tries again after a 409 Conflict")
    watch_cache: bool = _setting(
        True, "ROLLOUT_WATCH_CACHE", "answer the operator's reads of releases, workloads, Services, routes, "
                                     "autoscalers, ConfigMaps and Secrets from memory fed by one list+watch stream "
                                     "per kind (informers), instead of a GET per read; a change wakes the releases "
                                     "that read it")
    workers: int = _setting(
        None, "ROLLOUT_WORKERS", "threads that tick idle releases (and run kopf's own handlers), and threads that "
                                 "sync GitSources: two pools of this size (default: CPUs + 4, at most 32)",
        default_factory=_default_workers)
    release_workers: int = _setting(
        16, "ROLLOUT_RELEASE_WORKERS", "threads that tick releases under way, which wait on the API server, "
                                       "Prometheus, webhooks and Git more than they compute (Argo Rollouts' "
                                       "--rollout-threads); more threads only contend for the interpreter")
    max_concurrent_releases: int = _setting(
        0, "ROLLOUT_MAX_CONCURRENT_RELEASES", "Canaries and BlueGreens that may run at once, from a new revision to "
                                              "its end; more wait in phase Waiting, oldest first (default 0: no cap)")
    error_backoff: float = _setting(
        5.0, "ROLLOUT_ERROR_BACKOFF", "seconds before a release whose tick failed (API, network) is looked at again")
    invalid_recheck: float = _setting(
        30.0, "ROLLOUT_INVALID_RECHECK", "seconds between looks at a release whose spec is invalid or whose "
                                          "router or workload refused it")
    git_retry: float = _setting(
        10.0, "ROLLOUT_GIT_RETRY", "seconds before a GitSource whose fetch or apply failed tries again")
    git_connect_timeout: float = _setting(
        15.0, "ROLLOUT_GIT_CONNECT_TIMEOUT", "seconds an SSH connection to a Git remote may take to open")
    kustomize_timeout: float = _setting(
        60.0, "ROLLOUT_KUSTOMIZE_TIMEOUT", "seconds `kubectl kustomize` may take to render a folder")
    push_backoff: float = _setting(
        0.2, "ROLLOUT_PUSH_BACKOFF", "seconds before a revert push rejected by a concurrent commit is tried again "
                                     "(doubling each time, with jitter)")
    push_backoff_max: float = _setting(
        2.0, "ROLLOUT_PUSH_BACKOFF_MAX", "the longest wait between two tries of a revert push, in seconds")
    git_api_timeout: float = _setting(
        10.0, "ROLLOUT_GIT_API_TIMEOUT", "seconds one call to a Git host's API (a revert pull request) may take")
    report_url: str = _setting(
        "", "ROLLOUT_REPORT_URL", "base URL where the --reports folder is served: a revert pull request links "
                                  "the run's HTML report there")
    enable_config_tracking: bool = _setting(
        True, "ROLLOUT_ENABLE_CONFIG_TRACKING", "copy the ConfigMaps and Secrets a target's pods use to `-primary` "
                                                 "copies and start a release when one changes, as Flagger does")
    alert_timeout: float = _setting(
        5.0, "ROLLOUT_ALERT_TIMEOUT", "seconds one post to an AlertProvider may take (Flagger's 5s)")
    alert_retries: int = _setting(
        2, "ROLLOUT_ALERT_RETRIES", "extra attempts of an alert after no answer, a 429 or a 5xx (waiting 1s, 2s, ...)")
    cluster_name: str = _setting(
        "", "ROLLOUT_CLUSTER_NAME", "name of this cluster, shown as the Cluster field of every alert, as "
                                    "Flagger's -cluster-name (default none)")
    metrics_addr: str = _setting(
        ":8080", "ROLLOUT_METRICS_ADDR", "HOST:PORT serving /metrics, /healthz and /readyz (`:8080`: every IPv4 "
                                         "interface, `[::]:8080` IPv6 too; `0` or empty: no server) (default :8080)")
    dashboard_addr: str = _setting(
        "", "ROLLOUT_DASHBOARD_ADDR", "HOST:PORT serving the web dashboard (as `rollout dashboard` does) beside "
                                      "the operator (default none)")
    read_only: bool = _setting(
        False, "ROLLOUT_READ_ONLY", "the dashboard shows the releases but offers no promote, abort or retry, and "
                                    "refuses them")
    webhook_addr: str = _setting(
        "", "ROLLOUT_WEBHOOK_ADDR", "HOST:PORT serving the GitSources' push webhooks, POST /hook/NAMESPACE/NAME "
                                    "(GitHub, GitLab, Gitea and generic, each verified by its signature or "
                                    "token; `0` or empty: none) (default none)")
    leader_elect: bool = _setting(
        False, "ROLLOUT_LEADER_ELECT", "campaign for the Lease `rollout-leader` and act only while holding it, so "
                                       "that 2 or more replicas can run: one acts, the others stand by")
    leader_election_namespace: str = _setting(
        "", "ROLLOUT_LEADER_ELECTION_NAMESPACE", "namespace of the leader election Lease (default $POD_NAMESPACE, "
                                                 "else default)")
    lease_duration: float = _setting(
        15.0, "ROLLOUT_LEASE_DURATION", "seconds a standby waits, after it last saw the Lease renewed, before it "
                                        "takes the lead")
    renew_deadline: float = _setting(
        10.0, "ROLLOUT_RENEW_DEADLINE", "seconds the leader keeps trying to renew the Lease before it stops acting "
                                        "and exits (less than --lease-duration)")
    retry_period: float = _setting(
        2.0, "ROLLOUT_RETRY_PERIOD", "seconds between two tries to take or renew the Lease")

    def __post_init__(self) -> None:
        for f in fields(self):
            if problem := _problem(f.name, getattr(self, f.name)):
                raise ValueError(f"{option(f.name)} {problem}")
        # client-go's rules: the leader gives up before a standby may take over, and retries in between.
        if self.renew_deadline >= self.lease_duration:
            raise ValueError(f"--renew-deadline ({self.renew_deadline:g}) must be less than --lease-duration "
                             f"({self.lease_duration:g})")
        if self.retry_period >= self.renew_deadline:
            raise ValueError(f"--retry-period ({self.retry_period:g}) must be less than --renew-deadline "
                             f"({self.renew_deadline:g})")

    @classmethod
    def build(cls, environ: Mapping[str, str] = os.environ, **given: Any) -> Settings:
        """The settings from `environ`'s ROLLOUT_* variables, then `given` (flags; None means not set)."""
        values: dict[str, Any] = {}
        for f in fields(cls):
            raw = environ.get(f.metadata["env"])
            if raw is not None and raw != "":
                values[f.name] = value = _convert(f.name, raw, f.metadata["env"])
                if problem := _problem(f.name, value):
                    raise ValueError(f"{f.metadata['env']} {problem}")
        values.update({k: v for k, v in given.items() if v is not None})
        return replace(cls(), **values)


def listen_address(addr: str) -> tuple[str, int] | None:
    """(host, port) of a `HOST:PORT` address (`:8080` is every interface, `[::1]:8080` IPv6), or
    None for `0` or empty (no server); ValueError when it is neither."""
    text = addr.strip()
    if text in ("", "0"):
        return None
    host, sep, port = text.rpartition(":")
    if not sep or not port.isdigit() or not 0 < int(port) < 65536:
        raise ValueError(f"must be HOST:PORT with a port from 1 to 65535 (`:8080`), or 0 for none, got {addr!r}")
    return host.removeprefix("[").removesuffix("]"), int(port)


def option(name: str) -> str:
    """The `rollout run` flag of a setting."""
    return "--" + name.replace("_", "-")


def described() -> Iterator[tuple[str, str, str, Any]]:
    """(name, flag, environment variable, help) of every setting, for `rollout run --help` and the README."""
    defaults = Settings()
    for f in fields(Settings):
        text = f.metadata["help"]
        if "(default" not in text:
            value = getattr(defaults, f.name)
            text += f" (default {str(value).lower() if isinstance(value, bool) else value})"
        yield f.name, option(f.name), f.metadata["env"], text


_TYPES: dict[str, type] = {f.name: type(getattr(Settings(), f.name)) for f in fields(Settings)}


def type_of(name: str) -> type:
    return _TYPES[name]


_TRUE, _FALSE = ("true", "1", "yes", "on"), ("false", "0", "no", "off")


def boolean(raw: str) -> bool:
    """A yes/no setting as a flag or a variable writes it (`true`/`false`, `1`/`0`, `yes`/`no`, `on`/`off`)."""
    text = raw.strip().lower()
    if text in _TRUE:
        return True
    if text in _FALSE:
        return False
    raise ValueError(raw)


def _convert(name: str, raw: str, source: str) -> Any:
    kind = _TYPES[name]
    if kind is bool:
        try:
            return boolean(raw)
        except ValueError:
            raise ValueError(f"{source} must be true or false, got {raw!r}") from None
    try:
        return kind(raw)
    except ValueError:
        noun = {int: "a whole number", float: "a number"}.get(kind, "a value")
        raise ValueError(f"{source} must be {noun}, got {raw!r}") from None

