"""Hotlist service entry point: the gRPC management API plus the read-matching loop.

`serve` replays the hotlist change log, then (and only then) starts matching `READS` and
`READS_EARLY` against it and publishing `Alert`s to `ALERTS` (early alerting: see alerts.py). Read
offsets are committed only after every alert of the batch has been acknowledged by the broker; a replay
after a crash re-publishes alerts under the same ids.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable

import grpc
from aiokafka import AIOKafkaProducer, ConsumerRecord, TopicPartition
from aiokafka.structs import OffsetAndMetadata
from grpc_health.v1 import health, health_pb2, health_pb2_grpc

from services.common.health import HealthState
from services.common.kafka import DeadLetterError, decode, make_consumer, make_producer, send_dead_letter
from services.common.metrics import (
    HOTLIST_MAX_AGE,
    MESSAGES_CONSUMED,
    MESSAGES_PRODUCED,
    STAGE_LATENCY,
    observe_consumer_lag,
)
from services.common.pb.platewatch.v1 import alerts_pb2, hotlist_pb2, hotlist_pb2_grpc, reads_pb2
from services.common.topics import ALERTS, READS, READS_EARLY
from services.hotlist.alerts import PassAlerts
from services.hotlist.changelog import SERVICE, ChangeLog, now_timestamp
from services.hotlist.grpc_service import HotlistServicer
from services.hotlist.matcher import HotlistIndex, epoch_seconds, list_age_seconds
from services.hotlist.metrics import (
    ALERTS_PROVISIONAL,
    ALERTS_RAISED,
    ALERTS_SUPERSEDED,
    EARLY_READS_SKIPPED,
    HOTLIST_AGE,
    HOTLIST_ENTRIES,
    HOTLISTS,
    MATCH_LATENCY,
    READS_CHECKED,
    READS_MATCHED,
)
from services.hotlist.settings import HotlistSettings

log = logging.getLogger(__name__)

GRPC_SERVICE_NAME = hotlist_pb2.DESCRIPTOR.services_by_name["HotlistService"].full_name
GAUGE_INTERVAL_S = 5.0
GRPC_GRACE_S = 5.0
GRPC_REQUEST_MARGIN = 1024 * 1024


async def serve(
    stop: asyncio.Event, health_state: HealthState, settings: HotlistSettings | None = None
) -> None:
    """Run until `stop` is set, then stop taking calls, finish the current batch, commit and return."""
    settings = settings or HotlistSettings()
    health_state.set_ready(SERVICE, False)
    producer = make_producer(settings.kafka_bootstrap)
    await producer.start()
    # CSV imports go out as one transaction each; starting the producer fences an earlier
    # incarnation of this replica and aborts an import it left half-written.
    import_producer = make_producer(
        settings.kafka_bootstrap,
        transactional_id=f"{settings.topic_prefix}{SERVICE}-{settings.hotlist_instance_id}",
    )
    try:
        await import_producer.start()
    except BaseException:
        await producer.stop()
        raise
    changelog = ChangeLog(
        settings.kafka_bootstrap, settings.topic_prefix, producer, transactional_producer=import_producer
    )
    server: grpc.aio.Server | None = None
    # Set on `stop` or when one of our tasks fails; the other components of the process keep `stop`.
    draining = asyncio.Event()
    tasks: list[asyncio.Task[None]] = []
    results: list[object] = []
    try:
        await changelog.start()
        server, grpc_health = await _start_grpc(settings, changelog)
        tasks = [
            asyncio.create_task(changelog.follow(draining), name="hotlist-changelog"),
            asyncio.create_task(
                _match_reads(draining, settings, changelog, producer), name="hotlist-matching"
            ),
            asyncio.create_task(_update_gauges(draining, changelog.index), name="hotlist-gauges"),
            asyncio.create_task(_announce_ready(changelog, grpc_health, health_state), name="hotlist-ready"),
        ]
        await _until_stopped_or_failed(stop, tasks)
    finally:
        health_state.set_ready(SERVICE, False)
        if server is not None:
            await server.stop(GRPC_GRACE_S)
        draining.set()
        for task in tasks:
            if task.get_name() == "hotlist-ready":
                task.cancel()
        results = await asyncio.gather(*tasks, return_exceptions=True)
        await changelog.stop()
        await import_producer.stop()
        await producer.stop()
        log.info("hotlist service stopped")
    for result in results:
        if isinstance(result, BaseException) and not isinstance(result, asyncio.CancelledError):
            raise result


async def _start_grpc(
    settings: HotlistSettings, changelog: ChangeLog
) -> tuple[grpc.aio.Server, health.aio.HealthServicer]:
    # ImportCsv carries whole files: room for the largest accepted one plus the rest of the request.
    server = grpc.aio.server(
        options=[("grpc.max_receive_message_length", settings.hotlist_import_max_bytes + GRPC_REQUEST_MARGIN)]
    )
    servicer = HotlistServicer(
        changelog,
        settings.hotlist_write_timeout_s,
        import_max_bytes=settings.hotlist_import_max_bytes,
        import_max_rows=settings.hotlist_import_max_rows,
        import_timeout_s=settings.hotlist_import_timeout_s,
    )
    hotlist_pb2_grpc.add_HotlistServiceServicer_to_server(servicer, server)
    grpc_health = health.aio.HealthServicer()
    health_pb2_grpc.add_HealthServicer_to_server(grpc_health, server)
    for name in ("", GRPC_SERVICE_NAME):
        await grpc_health.set(name, health_pb2.HealthCheckResponse.NOT_SERVING)
    port = server.add_insecure_port(f"{settings.hotlist_grpc_host}:{settings.hotlist_grpc_port}")
    await server.start()
    log.info("hotlist gRPC listening", extra={"port": port})
    return server, grpc_health


async def _announce_ready(
    changelog: ChangeLog, grpc_health: health.aio.HealthServicer, health_state: HealthState
) -> None:
    await changelog.wait_ready()
    for name in ("", GRPC_SERVICE_NAME):
        await grpc_health.set(name, health_pb2.HealthCheckResponse.SERVING)
    health_state.set_ready(SERVICE, True)


async def _until_stopped_or_failed(stop: asyncio.Event, tasks: list[asyncio.Task[None]]) -> None:
    """Return when `stop` is set; raise at once if a task fails (so the process is not half-alive)."""
    stop_waiter = asyncio.create_task(stop.wait())
    try:
        while True:
            done, _ = await asyncio.wait([stop_waiter, *tasks], return_when=asyncio.FIRST_COMPLETED)
            for task in done:
                if task is not stop_waiter and task.exception() is not None:
                    raise task.exception()  # type: ignore[misc]
            if stop_waiter in done:
                return
            tasks = [task for task in tasks if task not in done]
    finally:
        stop_waiter.cancel()


async def _match_reads(
    stop: asyncio.Event, settings: HotlistSettings, changelog: ChangeLog, producer: AIOKafkaProducer
) -> None:
    """Consume READS (final reads) and READS_EARLY (early reads of open passes) and publish the alerts
    `PassAlerts` derives; commit each poll's offsets once all its alerts are durable."""
    # Matching against a half-replayed change log would silently miss alerts.
    ready = asyncio.create_task(changelog.wait_ready())
    stop_waiter = asyncio.create_task(stop.wait())
    await asyncio.wait([ready, stop_waiter], return_when=asyncio.FIRST_COMPLETED)
    stop_waiter.cancel()
    if not ready.done():
        ready.cancel()
        return
    # The topic prefix isolates whole stacks on one broker, consumer groups included.
    group = f"{settings.topic_prefix}{settings.hotlist_consumer_group}"
    topics = [READS.name(settings.topic_prefix)]
    if settings.hotlist_early_reads:
        topics.append(READS_EARLY.name(settings.topic_prefix))
    consumer = make_consumer(
        settings.kafka_bootstrap, group, *topics, fetch_max_wait_ms=settings.hotlist_fetch_max_wait_ms
    )
    await consumer.start()
    log.info("matching reads", extra={"topics": topics})
    pass_alerts = PassAlerts()
    # Offsets whose alerts are durable but not yet committed: committing after every poll would put a
    # broker round trip in front of the next (possibly urgent) read; a replay re-raises the same ids.
    done: dict[TopicPartition, OffsetAndMetadata] = {}
    last_commit = time.monotonic()
    try:
        while not stop.is_set():
            batches = await consumer.getmany(timeout_ms=500, max_records=settings.hotlist_max_batch)
            await observe_consumer_lag(consumer, SERVICE, settings.topic_prefix)
            if batches:
                await _match_batch(batches, settings, changelog.index, producer, pass_alerts)
                done.update(
                    {tp: OffsetAndMetadata(records[-1].offset + 1, "") for tp, records in batches.items()}
                )
            if done and time.monotonic() - last_commit >= settings.hotlist_commit_interval_ms / 1000:
                await consumer.commit(done)
                done, last_commit = {}, time.monotonic()
        if done:
            await consumer.commit(done)
    finally:
        await consumer.stop()


async def _match_batch(
    batches: dict[TopicPartition, list[ConsumerRecord]],
    settings: HotlistSettings,
    index: HotlistIndex,
    producer: AIOKafkaProducer,
    pass_alerts: PassAlerts,
) -> None:
    alerts_topic = ALERTS.name(settings.topic_prefix)
    early_topic = READS_EARLY.name(settings.topic_prefix)
    # Final reads first: an early read fetched together with its pass's final read is then ignored.
    ordered = sorted(batches.items(), key=lambda item: item[0].topic == early_topic)
    pending: list[Awaitable[object]] = []
    alerted_reads: list[reads_pb2.Read] = []
    raised_alerts: list[alerts_pb2.Alert] = []
    for tp, records in ordered:
        topic = READS_EARLY if tp.topic == early_topic else READS
        for record in records:
            MESSAGES_CONSUMED.labels(SERVICE, topic.logical).inc()
            try:
                read = decode(topic, record.value)
            except DeadLetterError as error:
                await send_dead_letter(
                    producer, topic, record, error, service=SERVICE, prefix=settings.topic_prefix
                )
                continue
            assert isinstance(read, reads_pb2.Read)
            started = time.perf_counter()
            skipped_before = pass_alerts.early_skipped
            alerts = pass_alerts.alerts(read, index, time.time(), now_timestamp())
            MATCH_LATENCY.observe(time.perf_counter() - started)
            READS_CHECKED.inc()
            if pass_alerts.early_skipped != skipped_before:
                EARLY_READS_SKIPPED.inc()
            if not alerts:
                continue
            READS_MATCHED.inc()
            for alert in alerts:
                pending.append(
                    await producer.send(
                        alerts_topic, key=alert.alert_id.encode(), value=alert.SerializeToString()
                    )
                )
                raised_alerts.append(alert)
            alerted_reads.append(read)
    # The batch counts as done only once the broker holds every alert.
    await asyncio.gather(*pending)
    now = time.time()
    for alert in raised_alerts:
        MESSAGES_PRODUCED.labels(SERVICE, ALERTS.logical).inc()
        ALERTS_RAISED.labels(
            reason=hotlist_pb2.ReasonCode.Name(alert.entry.reason),
            match_kind=_match_kind_name(alert.match_kind),
            stale=str(alert.stale).lower(),
            region_mismatch=str(alert.region_mismatch).lower(),
        ).inc()
        if alert.provisional:
            ALERTS_PROVISIONAL.inc()
        if alert.superseded:
            ALERTS_SUPERSEDED.inc()
        log.info(
            "alert raised",
            extra={
                "alert_id": alert.alert_id,
                "read_id": alert.read.read_id,
                "hotlist_id": alert.entry.hotlist_id,
                "entry_id": alert.entry.entry_id,
                "match_kind": _match_kind_name(alert.match_kind),
                "provisional": alert.provisional,
                "superseded": alert.superseded,
            },
        )
    for read in alerted_reads:
        if read.HasField("captured_at"):
            STAGE_LATENCY.labels("alert").observe(max(0.0, now - epoch_seconds(read.captured_at)))


def _match_kind_name(kind: int) -> str:
    return alerts_pb2.MatchKind.Name(kind)


async def _update_gauges(stop: asyncio.Event, index: HotlistIndex) -> None:
    while not stop.is_set():
        now = time.time()
        HOTLISTS.set(len(index.lists))
        HOTLIST_ENTRIES.clear()
        HOTLIST_AGE.clear()
        HOTLIST_MAX_AGE.clear()
        for hotlist_id, hotlist in index.lists.items():
            HOTLIST_ENTRIES.labels(hotlist_id).set(index.entry_count(hotlist_id))
            HOTLIST_AGE.labels(hotlist_id).set(list_age_seconds(hotlist, now))
            HOTLIST_MAX_AGE.labels(hotlist_id).set(hotlist.max_age_seconds)
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), GAUGE_INTERVAL_S)
