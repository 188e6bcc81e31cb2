"""The retention component: runs a retention pass every `retention_interval_seconds`.

Runs in the storage process (it shares the ClickHouse client with writer, search and audit).
Deletions are recorded on the audit topic before they run (services/retention/job.py).

At start, and at each pass until it succeeded once, it marks the rows under legal hold and then
sets the ClickHouse TTL backstop of the policy it loaded wherever the TTL in place differs
(services/retention/ttl.py; audited as a "policy_change"). Marks first: a TTL must never find a
held row unmarked.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

from services.audit.client import AuditRecorder
from services.common.health import HealthState
from services.retention.holds import sync_hold_marks
from services.retention.job import run_retention
from services.retention.policy_source import configured_key_store, load_configured_policy
from services.retention.settings import RetentionSettings
from services.retention.ttl import apply_backstop
from services.storage.client import open_storage

log = logging.getLogger(__name__)

SERVICE = "retention"


async def run_periodically(
    settings: RetentionSettings,
    stop: asyncio.Event,
    health: HealthState,
    clock: Callable[[], datetime] = lambda: datetime.now(UTC),
) -> None:
    # Loaded (and validated) at start, like the API: a bad policy stops the component.
    policy = load_configured_policy(settings)
    # The pseudonym keys this process's writer makes; expired periods are shredded every pass.
    keys = configured_key_store(settings, policy)
    client = await open_storage(settings, stop, SERVICE)
    if client is None:
        return
    recorder = AuditRecorder(settings.kafka_bootstrap, settings.topic_prefix, source=SERVICE)
    await recorder.start()
    health.set_ready(SERVICE, True)
    backstop_set = False
    try:
        while not stop.is_set():
            if not backstop_set:
                try:
                    await asyncio.to_thread(sync_hold_marks, client, False)
                    await apply_backstop(
                        client,
                        policy,
                        timedelta(seconds=settings.retention_ttl_grace_seconds),
                        recorder,
                        settings.clickhouse_cluster,
                    )
                    backstop_set = True
                except Exception:
                    log.exception("setting the retention TTL backstop failed; retried at the next pass")
            try:
                summary = await run_retention(client, policy, clock(), recorder, keys)
                log.info(
                    "retention pass done",
                    extra={
                        "deleted": summary["deleted"],
                        "keys_destroyed": summary["keys"]["destroyed"],
                        "audit": summary["audit"],
                    },
                )
            except Exception:
                # A failed pass (ClickHouse or Kafka down) is retried at the next interval; nothing
                # is deleted without its audit record, so a partial pass is safe.
                log.exception("retention pass failed")
            try:
                await asyncio.wait_for(stop.wait(), timeout=settings.retention_interval_seconds)
            except TimeoutError:
                pass
    finally:
        health.set_ready(SERVICE, False)
        await recorder.stop()


async def serve(stop: asyncio.Event, health: HealthState) -> None:
    """Enforce retention until `stop`."""
    health.set_ready(SERVICE, False)
    await run_periodically(RetentionSettings(), stop, health)
