"""Hotlist service configuration (env `PLATEWATCH_<FIELD>`)."""

from __future__ import annotations

from services.common.settings import CommonSettings


class HotlistSettings(CommonSettings):
    """Settings of the hotlist service."""

    # gRPC port of HotlistService and the standard grpc.health.v1 service; 0 picks a free port.
    hotlist_grpc_port: int = 50052
    hotlist_grpc_host: str = "[::]"
    # Consumer group of the matching loop on the reads topic.
    hotlist_consumer_group: str = "hotlist"
    # How long a gRPC write waits for its own change to come back through the change log.
    hotlist_write_timeout_s: float = 10.0
    # Most reads handled per matching batch (one commit per batch, after every alert is acknowledged).
    hotlist_max_batch: int = 500
