"""The Prometheus provider and the built-in queries against a real Prometheus.

One Prometheus per module is filled from OpenMetrics text generated here: for every provider,
canary and primary series with known request mixes and latency distributions, plus decoy series
the queries must not read. Expected numbers are computed from the generator's parameters, not
from Prometheus. Auth, retries and TLS are checked against a tiny local HTTP server that records
what it receives.
"""

from __future__ import annotations

import base64
import http.server
import json
import math
import shutil
import ssl
import subprocess
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from analysis.providers.base import (
    AmbiguousResultError,
    AuthError,
    BadQueryError,
    NaNError,
    NoDataError,
    UnreachableError,
)
from analysis.providers.prometheus import Auth, PrometheusProvider
from analysis.templates import builtin_counts_queries, builtin_query, render_template, template_variables
from tests.prom import RunningPrometheus, free_port, running_prometheus
from tests.tools import missing_tool

pytestmark = pytest.mark.component

NS = "test"
TARGET = "podinfo"
STEP = 15  # seconds between samples
STEPS = 41  # ten minutes of samples
INTERVAL = "1m"
# Latest sample time: a whole minute, well inside the default 15-day retention.
END = (int(time.time()) // 60) * 60 - 600


@dataclass(frozen=True)
class Traffic:
    """Per-sample-step increments: responses by status code and latencies by bucket (ms, not cumulative)."""

    codes: dict[str, int]
    latency_ms: dict[float, int] = field(default_factory=dict)

    @property
    def success_rate(self) -> float:
        total = sum(self.codes.values())
        return 100.0 * sum(n for c, n in self.codes.items() if not c.startswith("5")) / total

    @property
    def errors_per_minute(self) -> float:
        return sum(n for c, n in self.codes.items() if c.startswith("5")) * 60 / STEP

    @property
    def requests_per_minute(self) -> float:
        return sum(self.codes.values()) * 60 / STEP

    def p99_ms(self) -> float:
        """P99 the way histogram_quantile estimates it: linear within the bucket holding the rank."""
        bounds = sorted(self.latency_ms)
        total = sum(self.latency_ms.values())
        rank = 0.99 * total
        below, lower = 0, 0.0
        for upper in bounds:
            count = self.latency_ms[upper]
            if below + count >= rank:
                return lower + (upper - lower) * (rank - below) / count
            below += count
            lower = upper
        raise AssertionError("rank beyond the last bucket")


CANARY = Traffic({"200": 180, "404": 10, "503": 10}, {10: 50, 25: 80, 50: 40, 100: 20, 250: 6, 500: 4})
PRIMARY = Traffic({"200": 398, "500": 2}, {10: 200, 25: 150, 50: 40, 100: 8, 250: 2})
DECOY = Traffic({"200": 5, "500": 95}, {500: 50, 1000: 50})
IDLE = Traffic({"200": 0}, {10: 0})


def _labels(labels: dict[str, str]) -> str:
    return ",".join(f'{k}="{v}"' for k, v in labels.items())


def _counter(name: str, labels: dict[str, str], per_step: int) -> list[str]:
    first = END - (STEPS - 1) * STEP
    return [f"{name}{{{_labels(labels)}}} {k * per_step} {first + k * STEP}" for k in range(STEPS)]


def _series(
    requests: str,
    buckets: str,
    base: dict[str, str],
    traffic: Traffic,
    code_label: str,
    extra: Callable[[str], dict[str, str]] = lambda code: {},
    bucket_scale: float = 1.0,
) -> tuple[list[str], list[str]]:
    req: list[str] = []
    for code, n in traffic.codes.items():
        req += _counter(requests, {**base, **extra(code), code_label: code}, n)
    hist: list[str] = []
    cumulative = 0
    for upper in sorted(traffic.latency_ms):
        cumulative += traffic.latency_ms[upper]
        hist += _counter(buckets, {**base, "le": f"{upper * bucket_scale:g}"}, cumulative)
    hist += _counter(buckets, {**base, "le": "+Inf"}, cumulative)
    return req, hist


def openmetrics() -> str:
    """Every provider's metrics for canary, primary, an idle workload and decoys, as OpenMetrics."""
    families: dict[str, list[str]] = {}

    def add(name: str, lines: list[str]) -> None:
        families.setdefault(name, []).extend(lines)

    def emit(requests: str, buckets: str, base: dict[str, str], traffic: Traffic, code_label: str,
             extra: Callable[[str], dict[str, str]] = lambda code: {}, bucket_scale: float = 1.0) -> None:
        req, hist = _series(requests, buckets, base, traffic, code_label, extra, bucket_scale)
        add(requests, req)
        add(buckets, hist)

    # Istio: destination reporter; the source reporter and other namespaces are decoys.
    ist = ("istio_requests_total", "istio_request_duration_milliseconds_bucket")
    for workload, ns, reporter, traffic in [
        (TARGET, NS, "destination", CANARY),
        (f"{TARGET}-primary", NS, "destination", PRIMARY),
        (TARGET, NS, "source", DECOY),
        (TARGET, "other", "destination", DECOY),
        ("idle", NS, "destination", IDLE),
    ]:
        base = {"reporter": reporter, "destination_workload_namespace": ns, "destination_workload": workload}
        emit(*ist, base, traffic, "response_code")
    # Linkerd: inbound responses classified success/failure; outbound is a decoy.
    lnk = ("response_total", "response_latency_ms_bucket")
    for workload, direction, traffic in [
        (TARGET, "inbound", CANARY), (f"{TARGET}-primary", "inbound", PRIMARY), (TARGET, "outbound", DECOY),
    ]:
        base = {"namespace": NS, "deployment": workload, "direction": direction}

        def classify(code: str) -> dict[str, str]:
            return {"classification": "failure" if code.startswith("5") else "success"}

        emit(*lnk, base, traffic, "status_code", classify)
    # ingress-nginx: one ingress; canary-served requests carry canary=<upstream>. Buckets in seconds.
    ngx = ("nginx_ingress_controller_requests", "nginx_ingress_controller_request_duration_seconds_bucket")
    for ingress, canary, traffic in [
        (TARGET, f"{NS}-{TARGET}-canary-80", CANARY), (TARGET, "", PRIMARY), ("another", "", DECOY),
    ]:
        base = {"namespace": NS, "ingress": ingress, "canary": canary}
        emit(*ngx, base, traffic, "status", bucket_scale=0.001)
    # Envoy (Gateway API): cluster <ns>_<service>_<port>.
    env = ("envoy_cluster_upstream_rq", "envoy_cluster_upstream_rq_time_bucket")
    for cluster, traffic in [
        (f"{NS}_{TARGET}-canary_9898", CANARY), (f"{NS}_{TARGET}-primary_9898", PRIMARY),
        (f"other_{TARGET}-canary_9898", DECOY), (f"{NS}_{TARGET}x-canary_9898", DECOY),
    ]:
        emit(*env, {"envoy_cluster_name": cluster}, traffic, "envoy_response_code")
    _edge_proxies(add)
    lines = [line for family in families.values() for line in family]
    return "\n".join([*lines, "# EOF"]) + "\n"


def _by_code(traffic: Traffic) -> dict[str, dict[float, int]]:
    """The latencies shared out among the status codes (the fastest to the first code), so that one
    histogram per code (Traefik's and Skipper's, labelled with the code) sums to `traffic.latency_ms`."""
    left = dict(sorted(traffic.latency_ms.items()))
    out: dict[str, dict[float, int]] = {}
    for code, n in traffic.codes.items():
        mine: dict[float, int] = {}
        for upper in left:
            take = min(n, left[upper])
            if take:
                mine[upper], left[upper], n = take, left[upper] - take, n - take
        out[code] = mine
    return out


def _coded_histogram(name: str, base: dict[str, str], traffic: Traffic, scale: float) -> list[str]:
    lines: list[str] = []
    bounds = sorted(traffic.latency_ms)
    for code, latencies in _by_code(traffic).items():
        cumulative = 0
        for upper in bounds:
            cumulative += latencies.get(upper, 0)
            lines += _counter(name, {**base, "code": code, "le": f"{upper * scale:g}"}, cumulative)
        lines += _counter(name, {**base, "code": code, "le": "+Inf"}, cumulative)
    return lines


def _mean_ms(traffic: Traffic) -> float:
    """The mean the `_sum` / `_count` of `_edge_proxies` give: each latency at its bucket's bound."""
    return sum(upper * n for upper, n in traffic.latency_ms.items()) / sum(traffic.latency_ms.values())


EDGE_ROUTE = "web"  # the ApisixRoute (routeRef) and the Ingress (ingressRef) of the edge providers


def _edge_proxies(add: Callable[[str, list[str]], None]) -> None:
    """Traefik, APISIX and Skipper, labelled as each proxy labels what it serves."""
    # Traefik: one histogram (seconds) per code and service `<ns>-<service>-<port>@kubernetescrd`.
    for service, traffic in [
        (f"{NS}-{TARGET}-canary-9898@kubernetescrd", CANARY), (f"{NS}-{TARGET}-primary-9898@kubernetescrd", PRIMARY),
        (f"other-{TARGET}-canary-9898@kubernetescrd", DECOY), (f"{NS}-{TARGET}-canary-9898@file", DECOY),
    ]:
        add("traefik_service_request_duration_seconds_bucket",
            _coded_histogram("traefik_service_request_duration_seconds_bucket", {"service": service}, traffic, 0.001))
    # APISIX: statuses by route `<ns>_<ApisixRoute>_<rule>`, latency in ms by type.
    for route, kind, traffic in [
        (f"{NS}_{EDGE_ROUTE}-{TARGET}-canary_main", "request", CANARY),
        (f"{NS}_{EDGE_ROUTE}-{TARGET}-canary_main", "upstream", DECOY),
        (f"{NS}_{EDGE_ROUTE}_main", "request", DECOY),  # the user's route
        (f"other_{EDGE_ROUTE}-{TARGET}-canary_main", "request", DECOY),
    ]:
        req, _ = _series("apisix_http_status", "apisix_http_latency_bucket", {"route": route}, traffic, "code")
        _, hist = _series("apisix_http_status", "apisix_http_latency_bucket", {"type": kind, "route": route},
                          traffic, "code")
        add("apisix_http_status", req if kind == "request" else [])
        add("apisix_http_latency_bucket", hist)
    # Skipper: route ids `kube_<ns>__<ingress>__<host>__<path>__<service>`; seconds.
    host_path = "app_example_com___"
    for route, traffic in [
        (f"kube_{NS}__{EDGE_ROUTE}_canary__{host_path}__{TARGET}_canary", CANARY),
        (f"kube_{NS}__{EDGE_ROUTE}_canary__{host_path}__{TARGET}_primary", PRIMARY),
        (f"kube_{NS}__{EDGE_ROUTE}__{host_path}__{TARGET}", DECOY),  # the user's Ingress
        (f"kube_other__{EDGE_ROUTE}_canary__{host_path}__{TARGET}_canary", DECOY),
    ]:
        add("skipper_response_duration_seconds_bucket",
            _coded_histogram("skipper_response_duration_seconds_bucket", {"route": route}, traffic, 0.001))
        seconds = sum(upper * n for upper, n in traffic.latency_ms.items()) / 1000
        first = END - (STEPS - 1) * STEP
        add("skipper_serve_route_duration_seconds_sum",
            [f'skipper_serve_route_duration_seconds_sum{{route="{route}"}} {k * seconds!r} {first + k * STEP}'
             for k in range(STEPS)])
        add("skipper_serve_route_duration_seconds_count",
            _counter("skipper_serve_route_duration_seconds_count", {"route": route}, sum(traffic.latency_ms.values())))


@pytest.fixture(scope="module")
def prom() -> Iterator[RunningPrometheus]:
    with running_prometheus(openmetrics()) as server:
        yield server


@pytest.fixture()
def provider(prom: RunningPrometheus) -> Iterator[PrometheusProvider]:
    with PrometheusProvider(prom.url, timeout=5) as client:
        yield client


PROVIDERS = ["istio", "linkerd", "nginx", "gatewayapi"]
ARMS = [("canary", CANARY), ("primary", PRIMARY)]


@pytest.mark.parametrize("mesh", PROVIDERS)
@pytest.mark.parametrize(("arm", "traffic"), ARMS)
def test_success_rate_is_percent_of_non_5xx(
    provider: PrometheusProvider, mesh: str, arm: str, traffic: Traffic
) -> None:
    query = builtin_query("request-success-rate", mesh, NS, TARGET, INTERVAL, arm)  # type: ignore[arg-type]
    assert provider.query_value(query, at=END) == pytest.approx(traffic.success_rate, rel=1e-9)


@pytest.mark.parametrize("mesh", PROVIDERS)
@pytest.mark.parametrize(("arm", "traffic"), ARMS)
def test_duration_is_p99_in_milliseconds(
    provider: PrometheusProvider, mesh: str, arm: str, traffic: Traffic
) -> None:
    query = builtin_query("request-duration", mesh, NS, TARGET, INTERVAL, arm)  # type: ignore[arg-type]
    assert provider.query_value(query, at=END) == pytest.approx(traffic.p99_ms(), rel=1e-9)


@pytest.mark.parametrize("mesh", PROVIDERS)
@pytest.mark.parametrize(("arm", "traffic"), ARMS)
def test_counts_queries(provider: PrometheusProvider, mesh: str, arm: str, traffic: Traffic) -> None:
    queries = builtin_counts_queries(mesh, NS, TARGET, INTERVAL, arm)  # type: ignore[arg-type]
    assert provider.query_value(queries.errors, at=END) == pytest.approx(traffic.errors_per_minute)
    assert provider.query_value(queries.requests, at=END) == pytest.approx(traffic.requests_per_minute)
    buckets = provider.query(queries.latency_buckets, at=END)
    got = {float(s.labels["le"]) * queries.bucket_to_ms: float(s.values[0]) for s in buckets}
    expected: dict[float, float] = {}
    cumulative = 0
    for upper in sorted(traffic.latency_ms):
        cumulative += traffic.latency_ms[upper]
        expected[float(upper)] = cumulative * 60 / STEP
    expected[math.inf] = cumulative * 60 / STEP
    assert got.keys() == expected.keys()
    for upper, count in expected.items():
        assert got[upper] == pytest.approx(count), upper


EDGE_ARMS = [("traefik", "canary", CANARY), ("traefik", "primary", PRIMARY), ("apisix", "canary", CANARY),
             ("skipper", "canary", CANARY), ("skipper", "primary", PRIMARY)]


def edge_query(metric: str, mesh: str, arm: str) -> str:
    return builtin_query(metric, mesh, NS, TARGET, INTERVAL, arm, ingress=EDGE_ROUTE,  # type: ignore[arg-type]
                         route=EDGE_ROUTE)


@pytest.mark.parametrize(("mesh", "arm", "traffic"), EDGE_ARMS)
def test_edge_proxies_success_rate_and_duration(provider: PrometheusProvider, mesh: str, arm: str,
                                                traffic: Traffic) -> None:
    """Flagger's traefik, apisix and skipper observers' queries read their arm only; Skipper's duration
    is the mean time to serve the route, the others' the P99."""
    rate = provider.query_value(edge_query("request-success-rate", mesh, arm), at=END)
    assert rate == pytest.approx(traffic.success_rate, rel=1e-9)
    duration = provider.query_value(edge_query("request-duration", mesh, arm), at=END)
    assert duration == pytest.approx(_mean_ms(traffic) if mesh == "skipper" else traffic.p99_ms(), rel=1e-9)


@pytest.mark.parametrize(("mesh", "arm", "traffic"), EDGE_ARMS)
def test_edge_proxies_counts_queries(provider: PrometheusProvider, mesh: str, arm: str, traffic: Traffic) -> None:
    queries = builtin_counts_queries(mesh, NS, TARGET, INTERVAL, arm, ingress=EDGE_ROUTE,  # type: ignore[arg-type]
                                     route=EDGE_ROUTE)
    assert provider.query_value(queries.errors, at=END) == pytest.approx(traffic.errors_per_minute)
    assert provider.query_value(queries.requests, at=END) == pytest.approx(traffic.requests_per_minute)


def test_range_query_returns_aligned_numpy_arrays(provider: PrometheusProvider) -> None:
    query = builtin_query("request-success-rate", "istio", NS, TARGET, INTERVAL, "canary")
    series = provider.query_range_series(query, END - 300, END, 30)
    assert series.timestamps.dtype.kind == "f" and series.values.dtype.kind == "f"
    assert list(series.timestamps) == [float(t) for t in range(END - 300, END + 1, 30)]
    assert series.values == pytest.approx([CANARY.success_rate] * 11)


def test_template_rendered_query_runs(provider: PrometheusProvider) -> None:
    template = """
        sum(rate(istio_requests_total{
          destination_workload_namespace="{{ namespace }}",
          destination_workload="{{target}}", reporter="{{ variables.reporter }}"
        }[{{ interval }}]))"""
    values = template_variables("podinfo", NS, TARGET, INTERVAL, {"reporter": "destination"})
    assert provider.query_value(render_template(template, values), at=END) == pytest.approx(
        sum(CANARY.codes.values()) / STEP
    )
    # An injection attempt in a value stays inside its string and so selects nothing.
    values = template_variables("podinfo", NS, TARGET + '"} or vector(1) or up{a="', INTERVAL,
                                {"reporter": "destination"})
    with pytest.raises(NoDataError):
        provider.query_value(render_template(template, values), at=END)


@pytest.mark.parametrize("mesh", PROVIDERS)
def test_hostile_names_parse_and_select_nothing(provider: PrometheusProvider, mesh: str) -> None:
    hostile = 'podinfo"} or vector(1) or up{a="\\'
    for metric in ("request-success-rate", "request-duration"):
        query = builtin_query(metric, mesh, hostile, hostile, INTERVAL, ingress=hostile)
        with pytest.raises(NoDataError):
            provider.query_value(query, at=END)


def test_no_data(provider: PrometheusProvider) -> None:
    query = builtin_query("request-success-rate", "istio", "nowhere", TARGET, INTERVAL)
    with pytest.raises(NoDataError, match="no data") as caught:
        provider.query_value(query, at=END)
    assert caught.value.query == query and not caught.value.temporary
    with pytest.raises(NoDataError):
        provider.query_range_series(query, END - 120, END, 60)


def test_nan_when_there_is_no_traffic(provider: PrometheusProvider) -> None:
    query = builtin_query("request-success-rate", "istio", NS, "idle", INTERVAL)
    with pytest.raises(NaNError, match="NaN"):
        provider.query_value(query, at=END)
    with pytest.raises(NaNError):
        provider.query_range_series(query, END - 120, END, 60)


def test_bad_query_carries_prometheus_error_text(provider: PrometheusProvider) -> None:
    with pytest.raises(BadQueryError) as caught:
        provider.query_value("sum(rate(istio_requests_total[1m])", at=END)
    error = caught.value
    assert error.status == 400 and error.error_type == "bad_data"
    assert "parse error" in error.detail and error.detail in str(error)
    assert not error.temporary


def test_several_series_are_ambiguous(provider: PrometheusProvider) -> None:
    with pytest.raises(AmbiguousResultError, match="sum"):
        provider.query_value("sum by (destination_workload) (rate(istio_requests_total[1m]))", at=END)


def test_unreachable_is_retried_with_backoff_then_reported() -> None:
    sleeps: list[float] = []
    port = free_port()  # nothing listens here
    client = PrometheusProvider(f"http://127.0.0.1:{port}", retries=3, backoff=0.25, max_backoff=0.6,
                                sleep=sleeps.append, timeout=2)
    with pytest.raises(UnreachableError, match="unreachable") as caught:
        client.query_value("up")
    assert caught.value.temporary
    assert sleeps == [0.25, 0.5, 0.6]
    assert "4 attempts" in str(caught.value)


# ------------------------------------------------------------------------------ recording server


@dataclass
class Recorder:
    """What the tiny server received, and what it should answer next."""

    headers: list[dict[str, str]] = field(default_factory=list)
    paths: list[str] = field(default_factory=list)
    statuses: list[int] = field(default_factory=list)  # answered in order; 200 once exhausted
    delay: float = 0.0


VECTOR = json.dumps({"status": "success", "data": {"resultType": "vector", "result": [
    {"metric": {}, "value": [1700000000.0, "42.5"]}]}}).encode()


def _handler(recorder: Recorder) -> type[http.server.BaseHTTPRequestHandler]:
    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            recorder.headers.append({k.lower(): v for k, v in self.headers.items()})
            recorder.paths.append(self.path)
            if recorder.delay:
                time.sleep(recorder.delay)
            status = recorder.statuses.pop(0) if recorder.statuses else 200
            body = VECTOR if status == 200 else json.dumps(
                {"status": "error", "errorType": "internal", "error": f"answer {status}"}).encode()
            try:
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)
            except (BrokenPipeError, ConnectionResetError):
                pass  # the client gave up first (the timeout test)

        def log_message(self, format: str, *args: object) -> None:
            pass

    return Handler


class RecordingServer:
    """A tiny HTTP(S) server on 127.0.0.1 answering like Prometheus; starts when its url is read."""

    def __init__(self) -> None:
        self.recorder = Recorder()
        self._server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _handler(self.recorder))
        self._server.daemon_threads = True
        self._scheme = "http"
        self._thread: threading.Thread | None = None

    def use_tls(self, context: ssl.SSLContext) -> None:
        self._server.socket = context.wrap_socket(self._server.socket, server_side=True)
        self._scheme = "https"

    @property
    def url(self) -> str:
        if self._thread is None:
            self._thread = threading.Thread(
                target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
            )
            self._thread.start()
        return f"{self._scheme}://127.0.0.1:{self._server.server_address[1]}"

    def close(self) -> None:
        if self._thread is not None:
            self._server.shutdown()
            self._thread.join(timeout=5)
        self._server.server_close()


@pytest.fixture()
def server() -> Iterator[RecordingServer]:
    recording = RecordingServer()
    try:
        yield recording
    finally:
        recording.close()


def test_bearer_token_is_sent(server: RecordingServer) -> None:
    recorder = server.recorder
    with PrometheusProvider(server.url, auth=Auth(bearer_token="s3cr3t-token")) as client:
        assert client.query_value("up", at=1700000000) == 42.5
    assert recorder.headers[0]["authorization"] == "Bearer s3cr3t-token"
    assert recorder.paths[0].startswith("/api/v1/query?") and "time=1700000000" in recorder.paths[0]


def test_basic_auth_is_sent(server: RecordingServer) -> None:
    recorder = server.recorder
    auth = Auth.from_secret({"username": "flagger", "password": "p:ss"})
    with PrometheusProvider(server.url, auth=auth) as client:
        client.query_value("up")
    assert recorder.headers[0]["authorization"] == "Basic " + base64.b64encode(b"flagger:p:ss").decode()
    assert "p:ss" not in repr(auth)


def test_no_auth_sends_no_authorization(server: RecordingServer) -> None:
    recorder = server.recorder
    with PrometheusProvider(server.url) as client:
        client.query_value("up")
    assert "authorization" not in recorder.headers[0]


def test_5xx_is_retried_until_success(server: RecordingServer) -> None:
    recorder = server.recorder
    recorder.statuses = [503, 502]
    sleeps: list[float] = []
    with PrometheusProvider(server.url, retries=2, backoff=0.1, sleep=sleeps.append) as client:
        assert client.query_value("up") == 42.5
    assert len(recorder.paths) == 3 and sleeps == [0.1, 0.2]


def test_5xx_that_persists_is_unreachable(server: RecordingServer) -> None:
    recorder = server.recorder
    recorder.statuses = [500] * 5
    with PrometheusProvider(server.url, retries=1, sleep=lambda s: None) as client, \
            pytest.raises(UnreachableError, match="answered 500: answer 500"):
        client.query_value("up")
    assert len(recorder.paths) == 2


def test_refused_credentials_are_not_retried(server: RecordingServer) -> None:
    recorder = server.recorder
    recorder.statuses = [401]
    with PrometheusProvider(server.url, retries=3, sleep=lambda s: None) as client, \
            pytest.raises(AuthError) as caught:
        client.query_value("up")
    assert caught.value.status == 401 and len(recorder.paths) == 1


def test_every_call_has_a_timeout(server: RecordingServer) -> None:
    recorder = server.recorder
    recorder.delay = 1.0
    started = time.monotonic()
    with PrometheusProvider(server.url, timeout=0.2, retries=0) as client, \
            pytest.raises(UnreachableError, match="timed out"):
        client.query_value("up")
    assert time.monotonic() - started < 0.9


@pytest.fixture(scope="module")
def certificate(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    openssl = shutil.which("openssl")
    if openssl is None:
        missing_tool("OPENSSL NOT FOUND - needed to make a certificate for the TLS tests")
    folder = tmp_path_factory.mktemp("tls")
    cert, key = folder / "cert.pem", folder / "key.pem"
    subprocess.run(
        [openssl, "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1", "-subj", "/CN=127.0.0.1",
         "-addext", "subjectAltName=IP:127.0.0.1", "-keyout", str(key), "-out", str(cert)],
        check=True, capture_output=True, timeout=60,
    )
    return cert, key


@pytest.mark.filterwarnings("ignore::urllib3.exceptions.InsecureRequestWarning")
def test_tls_options(
    server: RecordingServer, certificate: tuple[Path, Path]
) -> None:
    cert, key = certificate
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert, key)
    server.use_tls(context)
    address = server.url
    assert address.startswith("https://")
    with PrometheusProvider(address, retries=2, sleep=lambda s: None) as client, \
            pytest.raises(UnreachableError, match="TLS"):
        client.query_value("up")  # self-signed: refused by default, and not retried
    with PrometheusProvider(address, ca_file=str(cert)) as client:
        assert client.query_value("up") == 42.5
    with PrometheusProvider(address, insecure_skip_verify=True) as client:
        assert client.query_value("up") == 42.5


def test_helper_scrapes_a_target() -> None:
    """tests.prom can also run a Prometheus that scrapes a live target (as the sandbox does)."""
    exposition = b'# TYPE demo_requests_total counter\ndemo_requests_total{code="200"} 7\n'

    class Metrics(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            self.send_response(200 if self.path == "/metrics" else 404)
            self.send_header("Content-Type", "text/plain; version=0.0.4")
            self.send_header("Content-Length", str(len(exposition)))
            self.end_headers()
            self.wfile.write(exposition)

        def log_message(self, format: str, *args: object) -> None:
            pass

    target = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Metrics)
    thread = threading.Thread(target=target.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    try:
        url = f"http://127.0.0.1:{target.server_address[1]}/metrics"
        with running_prometheus(scrape_target=url, scrape_interval="1s") as prom, \
                PrometheusProvider(prom.url, timeout=5) as client:
            value = None
            deadline = time.monotonic() + 20
            while value is None and time.monotonic() < deadline:
                try:
                    value = client.query_value('sum(demo_requests_total{code="200"})')
                except NoDataError:
                    time.sleep(0.2)
            assert value == 7
    finally:
        target.shutdown()
        target.server_close()
