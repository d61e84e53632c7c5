"""The cost of tracing: the same lookups through the gateway with tracing off and on.

On, the gateway sends its spans over OTLP/HTTP to a sink in this process that only
counts what it receives (a collector's own cost is not the gateway's).
"""

from __future__ import annotations

import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, ClassVar

__all__ = ["Sink"]


class _Counting(BaseHTTPRequestHandler):
    received: ClassVar[list[int]] = []

    def do_POST(self) -> None:
        size = int(self.headers.get("content-length") or 0)
        self.received.append(len(self.rfile.read(size)))
        self.send_response(200)
        self.send_header("content-type", "application/x-protobuf")
        self.send_header("content-length", "0")
        self.end_headers()

    def log_message(self, format: str, *args: Any) -> None:
        return None


class Sink:
    """An OTLP/HTTP endpoint on loopback that counts the exports it receives."""

    def __init__(self) -> None:
        handler: type[_Counting] = type("Handler", (_Counting,), {"received": []})
        self._handler = handler
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}"
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    def __enter__(self) -> Sink:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.shutdown()
        self._server.server_close()

    @property
    def exports(self) -> tuple[int, int]:
        """Exports received and their bytes."""
        received: list[int] = self._handler.received
        return len(received), sum(received)
