"""Configuration of the API process (environment variables `PLATEWATCH_<FIELD>`)."""

from __future__ import annotations

from services.common.settings import CommonSettings


class ApiSettings(CommonSettings):
    """Where the API listens, which gRPC services it fronts and how much alert history it keeps."""

    api_host: str = "0.0.0.0"
    api_port: int = 8080
    search_grpc_target: str = "localhost:50051"
    hotlist_grpc_target: str = "localhost:50052"
    # Alerts kept in memory for GET /alerts and preloaded from Kafka at start.
    alert_buffer_size: int = 500
    # Events one SSE subscriber may have queued before its oldest are dropped.
    sse_queue_size: int = 100
    # Seconds between SSE heartbeat comments (keeps proxies from closing idle streams).
    sse_heartbeat_seconds: float = 15.0
    # Deadline for each gRPC call the API makes.
    grpc_timeout_seconds: float = 10.0
    # Seconds an alert workflow step may take to be acknowledged by Kafka before the API answers 503.
    publish_timeout_seconds: float = 10.0
    # Seconds uvicorn waits for open requests (SSE streams end at once) when stopping.
    api_shutdown_grace_seconds: float = 5.0
