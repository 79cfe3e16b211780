"""A local webhook receiver the chaos Canaries notify (`post-rollout` and `event` hooks).

It records every call, so a cycle can tell a side effect the operator repeated (two calls with
different idempotency keys, or none, for one logical event) from a redelivery a receiver can drop
(the same `X-Rollout-Idempotency-Key` twice, which at-least-once delivery allows in a crash window).
"""

from __future__ import annotations

import http.server
import json
import threading
import time
from dataclasses import dataclass
from typing import Any

IDEMPOTENCY_HEADER = "X-Rollout-Idempotency-Key"


@dataclass(frozen=True)
class Call:
    at: float
    hook: str  # the path's first part: "post-rollout" or "event"
    namespace: str
    key: str | None
    body: dict[str, Any]


class Receiver:
    """ThreadingHTTPServer on 127.0.0.1, a free port; answers 200 to every POST."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._calls: list[Call] = []
        receiver = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                raw = self.rfile.read(length) if length else b""
                try:
                    body = json.loads(raw or b"{}")
                except ValueError:
                    body = {"unparsed": raw.decode(errors="replace")}
                parts = self.path.strip("/").split("/")
                call = Call(time.monotonic(), parts[0], parts[1] if len(parts) > 1 else "",
                            self.headers.get(IDEMPOTENCY_HEADER), body if isinstance(body, dict) else {})
                with receiver._lock:
                    receiver._calls.append(call)
                self.send_response(200)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, format: str, *args: object) -> None:
                pass

        self._server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    def start(self) -> Receiver:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()

    def calls(self, namespace: str, since: float) -> list[Call]:
        with self._lock:
            return [c for c in self._calls if c.namespace == namespace and c.at >= since]
