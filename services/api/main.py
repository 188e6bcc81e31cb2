"""`platewatch serve api`: the HTTP API (uvicorn, in the CLI's event loop) plus its alert consumer."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import socket
from collections.abc import Iterator

import uvicorn

from services.api.app import create_app
from services.api.backends import Backends
from services.api.broker import AlertBroker
from services.api.consumer import AlertConsumer
from services.api.publisher import AlertPublisher
from services.api.settings import ApiSettings
from services.common.health import HealthState

log = logging.getLogger(__name__)


class EmbeddedServer(uvicorn.Server):
    """uvicorn without its signal handlers (the CLI owns SIGTERM/SIGINT and sets `should_exit`)."""

    bound_port: int | None = None

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield

    async def startup(self, sockets: list[socket.socket] | None = None) -> None:
        await super().startup(sockets)
        if self.started and self.servers and self.servers[0].sockets:
            self.bound_port = int(self.servers[0].sockets[0].getsockname()[1])
            host = self.config.host
            shown = "localhost" if host in ("0.0.0.0", "::", "") else host
            url = f"http://{shown}:{self.bound_port}/"
            log.info(f"platewatch API listening on {url}", extra={"url": url, "docs": f"{url}docs"})


async def _run_server(server: EmbeddedServer) -> None:
    try:
        await server.serve()
    except SystemExit as exc:
        # uvicorn exits the process when it cannot bind or start; here that is one failed component.
        raise RuntimeError(f"API server could not start (uvicorn exit code {exc.code})") from None


async def serve(stop: asyncio.Event, health: HealthState) -> None:
    """Serve HTTP on PLATEWATCH_API_HOST:PLATEWATCH_API_PORT and consume alerts until `stop` is
    set; then end the live streams, let open requests finish, stop the consumer and close channels.
    Raises if the HTTP server cannot start."""
    settings = ApiSettings()
    broker = AlertBroker(settings.alert_buffer_size, settings.sse_queue_size)
    consumer = AlertConsumer(
        broker, settings.kafka_bootstrap, settings.topic_prefix, preload=settings.alert_buffer_size
    )
    backends = Backends.connect(settings)
    publisher = AlertPublisher(
        settings.kafka_bootstrap, settings.topic_prefix, settings.publish_timeout_seconds
    )
    app = create_app(
        settings,
        backends=backends,
        broker=broker,
        alert_consumer_ready=consumer.assigned,
        publisher=publisher,
    )
    server = EmbeddedServer(
        uvicorn.Config(
            app,
            host=settings.api_host,
            port=settings.api_port,
            log_config=None,
            access_log=False,
            lifespan="on",
            timeout_graceful_shutdown=math.ceil(settings.api_shutdown_grace_seconds),
        )
    )
    health.add_check("api_http", lambda: server.started)
    health.add_check("api_alert_consumer", consumer.assigned)
    # Approvals and lockouts shared by the replicas: not ready until replayed (and while lost).
    health.add_check("api_governance_state", app.state.governance.state_ready)

    local_stop = asyncio.Event()
    consumer_task = asyncio.create_task(consumer.run(local_stop), name="api-alert-consumer")
    server_task = asyncio.create_task(_run_server(server), name="api-http")
    stop_task = asyncio.create_task(stop.wait())
    try:
        await asyncio.wait({server_task, stop_task}, return_when=asyncio.FIRST_COMPLETED)
    finally:
        log.info("API stopping")
        stop_task.cancel()
        local_stop.set()
        # Live streams never end by themselves: close them so uvicorn's drain finishes.
        broker.close()
        server.should_exit = True
        try:
            await server_task
        finally:
            await consumer_task
            await publisher.close()
            await backends.close()
            log.info("API stopped")
