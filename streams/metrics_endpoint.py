"""The HTTP endpoint of a worker's metrics: ``/metrics`` of one registry (and ``/livez``,
``/readyz`` from a :class:`streams.health.Health`) served by a WSGI server in a daemon thread.
:meth:`streams.metrics.Metrics.serve` starts it."""

from __future__ import annotations

import threading
from typing import Any

from prometheus_client import CollectorRegistry, make_wsgi_app


class MetricsEndpoint:
    """At most one server at a time for ``registry``; ``stop()`` makes room for another."""

    def __init__(self, registry: CollectorRegistry) -> None:
        self._registry = registry
        self._server: Any = None
        self._thread: threading.Thread | None = None

    def start(self, port: int, addr: str, health: Any = None) -> Any:
        """Bind ``addr:port`` and serve in a daemon thread; other paths are 404.

        Returns the WSGI server (``server.server_port`` is the bound port)."""
        from streams.health import make_server, routes

        if self._server is not None:
            raise RuntimeError(f"metrics endpoint already served on port {self._server.server_port}")
        self._server = make_server(addr, port, routes(make_wsgi_app(self._registry), health))
        self._thread = threading.Thread(
            target=self._server.serve_forever,
            name="metrics-http",
            daemon=True,
        )
        self._thread.start()
        return self._server

    def stop(self) -> None:
        """Stop the server started by ``start`` (no-op if none)."""
        server, self._server = self._server, None
        if server is not None:
            server.shutdown()
            server.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None
