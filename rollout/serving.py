"""A small HTTP server in a thread, for the operator's own endpoints: /metrics and the probes
(`rollout.engine.health`) and the GitSources' push webhooks (`rollout.gitops.receiver`). One home for
binding a `HOST:PORT` setting (IPv4 or IPv6, `0` for none), quiet request logs, and a clean stop.
"""

from __future__ import annotations

import logging
import socket
import threading
from dataclasses import dataclass
from socketserver import ThreadingMixIn
from typing import Any
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server
from wsgiref.types import WSGIApplication

from rollout.settings import listen_address

log = logging.getLogger(__name__)


class _Quiet(WSGIRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:
        pass  # a probe every few seconds would fill the log; each app logs what it decided


class _Server(ThreadingMixIn, WSGIServer):
    daemon_threads = True


class _Server6(_Server):
    address_family = socket.AF_INET6


@dataclass
class Served:
    """A running server: `url` to reach it, `stop()` to close it."""

    server: WSGIServer
    thread: threading.Thread

    @property
    def port(self) -> int:
        return int(self.server.server_address[1])

    @property
    def url(self) -> str:
        host = str(self.server.server_address[0])
        host = "127.0.0.1" if host in ("0.0.0.0", "") else (f"[{host}]" if ":" in host else host)
        return f"http://{host}:{self.port}"

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(timeout=5)


def serve_wsgi(addr: str, app: WSGIApplication, name: str, what: str, flag: str | None = None) -> Served | None:
    """Serve `app` on `addr` (`HOST:PORT`, `:PORT` for every interface) in the thread `name`; None when
    `addr` is `0` or empty. OSError when the port cannot be bound, its filename `flag` when given (so
    the caller's message names the setting)."""
    where = listen_address(addr)
    if where is None:
        return None
    host, port = where
    try:
        server = make_server(host or "0.0.0.0", port, app, server_class=_Server6 if ":" in host else _Server,
                             handler_class=_Quiet)
    except OSError as e:
        if flag is None:
            raise
        raise OSError(e.errno, e.strerror, flag) from None
    thread = threading.Thread(target=server.serve_forever, name=name, daemon=True)
    thread.start()
    log.info("serving %s on %s", what, addr)
    return Served(server, thread)
