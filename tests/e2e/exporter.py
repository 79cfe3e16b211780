"""A metrics exporter whose numbers each test controls, for Prometheus to scrape.

It serves request counters and latency histograms per workload, twice: as Istio's proxies label
them and as an application's own `http_request_duration_seconds` (what the `kubernetes` provider
reads, one pod per workload). Counters grow with wall time at the rate and error ratio the test
sets, so Prometheus' `rate()` sees exactly them.
"""

from __future__ import annotations

import http.server
import threading
import time
from dataclasses import dataclass, field

BUCKETS_MS = (5, 10, 25, 50, 100, 250, 500, 1000, 2500)


@dataclass
class _Workload:
    rps: float
    error_ratio: float
    latency_ms: float
    since: float = field(default_factory=time.monotonic)
    ok: float = 0.0
    errors: float = 0.0

    def advance(self, now: float) -> None:
        elapsed = now - self.since
        self.since = now
        self.ok += elapsed * self.rps * (1 - self.error_ratio)
        self.errors += elapsed * self.rps * self.error_ratio


class Exporter:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._workloads: dict[tuple[str, str], _Workload] = {}
        exporter = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                body = exporter.render().encode()
                self.send_response(200)
                self.send_header("Content-Type", "text/plain; version=0.0.4")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, format: str, *args: object) -> None:
                pass

        self._server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._server.server_address[1]}/metrics"

    def start(self) -> Exporter:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()

    def set(self, namespace: str, workload: str, *, rps: float = 50.0, error_ratio: float = 0.0,
            latency_ms: float = 20.0) -> None:
        with self._lock:
            now = time.monotonic()
            current = self._workloads.get((namespace, workload))
            if current is None:
                self._workloads[(namespace, workload)] = _Workload(rps, error_ratio, latency_ms, now)
                return
            current.advance(now)
            current.rps, current.error_ratio, current.latency_ms = rps, error_ratio, latency_ms

    def render(self) -> str:
        lines = ["# TYPE istio_requests_total counter", "# TYPE istio_request_duration_milliseconds histogram"]
        app: list[str] = ["# TYPE http_request_duration_seconds histogram"]
        with self._lock:
            now = time.monotonic()
            for (namespace, workload), w in sorted(self._workloads.items()):
                w.advance(now)
                labels = (f'reporter="destination",destination_workload_namespace="{namespace}",'
                          f'destination_workload="{workload}"')
                lines.append(f'istio_requests_total{{{labels},response_code="200"}} {w.ok:.3f}')
                lines.append(f'istio_requests_total{{{labels},response_code="500"}} {w.errors:.3f}')
                total = w.ok + w.errors
                for le in BUCKETS_MS:
                    count = total if le >= w.latency_ms else 0.0
                    lines.append(f'istio_request_duration_milliseconds_bucket{{{labels},le="{le}"}} {count:.3f}')
                lines.append(f'istio_request_duration_milliseconds_bucket{{{labels},le="+Inf"}} {total:.3f}')
                lines.append(f"istio_request_duration_milliseconds_sum{{{labels}}} {total * w.latency_ms:.3f}")
                lines.append(f"istio_request_duration_milliseconds_count{{{labels}}} {total:.3f}")
                pod = f'kubernetes_namespace="{namespace}",kubernetes_pod_name="{workload}-5d8c7b9f4-x2x7q"'
                for status, count in (("200", w.ok), ("500", w.errors)):
                    for le in BUCKETS_MS:
                        value = count if le >= w.latency_ms else 0.0
                        bucket = f'{pod},status="{status}",le="{le / 1000:g}"'
                        app.append(f"http_request_duration_seconds_bucket{{{bucket}}} {value:.3f}")
                    app.append(f'http_request_duration_seconds_bucket{{{pod},status="{status}",le="+Inf"}} {count:.3f}')
                    app.append(f'http_request_duration_seconds_count{{{pod},status="{status}"}} {count:.3f}')
        return "\n".join(lines + app) + "\n"
