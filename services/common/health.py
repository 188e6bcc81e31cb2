"""Per-service HTTP endpoint for Prometheus `/metrics`, liveness `/healthz` and readiness `/readyz`."""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from prometheus_client import CONTENT_TYPE_LATEST, REGISTRY, generate_latest

log = logging.getLogger(__name__)

ReadinessCheck = Callable[[], bool]


class HealthState:
    """Readiness is the AND of named checks; liveness fails once the service declares itself broken."""

    def __init__(self) -> None:
        self._checks: dict[str, ReadinessCheck] = {}
        self._flags: dict[str, bool] = {}
        self.alive = True
        self._lock = threading.Lock()

    def add_check(self, name: str, check: ReadinessCheck) -> None:
        self._checks[name] = check

    def set_ready(self, name: str, ready: bool) -> None:
        with self._lock:
            self._flags[name] = ready

    def readiness(self) -> dict[str, bool]:
        with self._lock:
            status = dict(self._flags)
        for name, check in self._checks.items():
            try:
                status[name] = bool(check())
            except Exception:
                status[name] = False
        return status


class _Handler(BaseHTTPRequestHandler):
    state: HealthState

    def do_GET(self) -> None:
        path = self.path.split("?", 1)[0]
        if path == "/metrics":
            self._reply(200, generate_latest(REGISTRY), CONTENT_TYPE_LATEST)
        elif path == "/healthz":
            ok = self.state.alive
            self._reply(200 if ok else 503, json.dumps({"alive": ok}).encode(), "application/json")
        elif path == "/readyz":
            checks = self.state.readiness()
            ok = bool(checks) and all(checks.values())
            body = json.dumps({"ready": ok, "checks": checks}).encode()
            self._reply(200 if ok else 503, body, "application/json")
        else:
            self._reply(404, b"not found", "text/plain")

    def _reply(self, code: int, body: bytes, content_type: str) -> None:
        self.send_response(code)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: object) -> None:  # scrapes are not news
        return


class HealthServer:
    """Runs the endpoint on a daemon thread. Port 0 picks a free port, readable from `.port`."""

    def __init__(self, state: HealthState, port: int, host: str = "0.0.0.0") -> None:
        handler = type("Handler", (_Handler,), {"state": state})
        self._server = ThreadingHTTPServer((host, port), handler)
        self._server.daemon_threads = True
        self.port = self._server.server_address[1]
        self._thread = threading.Thread(target=self._server.serve_forever, name="health-http", daemon=True)

    def start(self) -> HealthServer:
        self._thread.start()
        log.info("metrics and health endpoint listening", extra={"port": self.port})
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()
