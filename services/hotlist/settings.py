"""Hotlist service configuration (env `PLATEWATCH_<FIELD>`)."""

from __future__ import annotations

import socket

from pydantic import Field

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
    # Most reads handled per matching batch (its alerts are acknowledged before its offsets commit).
    hotlist_max_batch: int = 500
    # Also match the normalizer's early reads of open passes (READS_EARLY), so a hit is raised before
    # the pass closes; see services/hotlist/alerts.py.
    hotlist_early_reads: bool = True
    # Longest the broker holds a fetch waiting for data: bounds the alert latency added here.
    hotlist_fetch_max_wait_ms: int = 100
    # Read offsets are committed at most this often (always after their alerts are acknowledged).
    hotlist_commit_interval_ms: int = 500
    # CSV imports (ImportCsv): the largest file in bytes and the most data rows accepted.
    hotlist_import_max_bytes: int = 20 * 1024 * 1024
    hotlist_import_max_rows: int = 100_000
    # How long an import waits for its changes to come back through the change log (100 000 rows take
    # several seconds); clients give ImportCsv 120 s.
    hotlist_import_timeout_s: float = 90.0
    # Stable per replica: imports are published in Kafka transactions under the transactional id
    # "<prefix>hotlist-<instance_id>", so a restarted replica fences (aborts) its predecessor's
    # unfinished import. Replicas sharing a host and a topic prefix need distinct ids.
    hotlist_instance_id: str = Field(default_factory=socket.gethostname)
