"""Topic administration: create the registry's topics on a broker (deploy tooling and tests)."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterable

from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.errors import for_code

from services.common.topics import Topic, all_topics

log = logging.getLogger(__name__)

_TOPIC_ALREADY_EXISTS = 36


async def ensure_topics(
    bootstrap: str,
    prefix: str = "",
    topics: Iterable[Topic] | None = None,
    *,
    replication_factor: int = 1,
    timeout_s: float = 30.0,
) -> list[str]:
    """Create every topic (default: `all_topics()`) named with `prefix`, with the registry's
    partition count and `Topic.config()`, and wait until each partition has a leader.

    Idempotent: topics that already exist are left as they are, whatever their settings (a topic's
    partition count is never changed behind its consumers' back). Returns the names it created.
    """
    wanted = {topic.name(prefix): topic for topic in (all_topics() if topics is None else topics)}
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap, request_timeout_ms=int(timeout_s * 1000))
    await admin.start()
    try:
        existing = set(await admin.list_topics())
        missing = [
            NewTopic(
                name=name,
                num_partitions=topic.partitions,
                replication_factor=replication_factor,
                topic_configs=topic.config(),
            )
            for name, topic in wanted.items()
            if name not in existing
        ]
        if missing:
            response = await admin.create_topics(missing, timeout_ms=int(timeout_s * 1000))
            for entry in response.to_object()["topic_errors"]:
                code = entry["error_code"]
                # Already-exists is a race with another creator, which is fine.
                if code not in (0, _TOPIC_ALREADY_EXISTS):
                    error = for_code(code)
                    raise error(
                        f"creating topic {entry['topic']}: {entry.get('error_message') or error.__name__}"
                    )
        await _wait_for_leaders(admin, list(wanted), timeout_s)
    finally:
        await admin.close()
    created = [new.name for new in missing]
    if created:
        log.info("kafka topics created", extra={"topics": created, "bootstrap": bootstrap})
    return created


async def _wait_for_leaders(admin: AIOKafkaAdminClient, names: list[str], timeout_s: float) -> None:
    """Topic creation is acknowledged before every broker's metadata has caught up; wait so that
    the caller's first produce or subscribe does not race it."""
    pending: list[str] = names
    async with asyncio.timeout(timeout_s):
        while True:
            described = await admin.describe_topics(pending)
            pending = [
                t["topic"]
                for t in described
                if t["error_code"] != 0
                or not t["partitions"]
                or any(p["leader"] < 0 for p in t["partitions"])
            ]
            if not pending:
                return
            await asyncio.sleep(0.1)
