"""The normalizer service: raw reads (one per plate per frame) in, one `Read` per vehicle pass out,
exactly once.

Why raw aiokafka and not faust: faust's per-event overhead is too high for the raw-read rate we
expect, and its table changelogs are not written in the same Kafka transaction as the output and
the consumed offsets, so a crash could emit a pass twice or lose its open tracks. Here every batch
is one Kafka transaction (consume-transform-produce):

1. `getmany` a batch from RAW_READS (group "normalizer", read_committed, no auto-commit): what arrives
   within `normalizer_batch_linger_ms` of its first record, at most `normalizer_max_batch` records;
2. feed it to the per-partition `PassTracker`s (tracking.py) and close passes whose event-time gap
   elapsed, or (in the same loop, at least every 200 ms) whose partition had no input for
   `idle_close_s` of wall clock while the consumer is caught up on it; a pass's text goes through the
   plate grammar with its camera's registry `region` as the hint (none: the text is not rewritten);
2b. early reads: every open pass of the batch that now has a confident, grammar-valid text and had no
   early read gets one (`Read` with `provisional` true, the read_id of its final read) on READS_EARLY,
   sent at once, outside the transaction, for the hotlist only (at least once: a failed transaction
   re-sends them under the same read_ids). The final read of such a pass carries the early plate
   (`provisional_plate`/`provisional_region`) and is emitted even below `min_frames`/`min_confidence`,
   as the evidence behind a possible alert. Only final reads (READS) are stored: one per pass.
3. in ONE transaction: produce the closed passes' `Read`s to READS (key read_id), dead letters
   (`unknown_camera`, `undecodable`) to RAW_READS' dead-letter topic, the state changes of every
   partition touched to the compacted NORMALIZER_STATE topic, and the consumed offsets
   (`send_offsets_to_transaction`); commit.

State is incremental, so a transaction costs what its batch changed, not what is open: per open track
one record, key "<raw topic>:<partition>:<read_id>" (read_id is fixed when the track starts), value the
track's JSON (`tracking.track_state`), written in each transaction that created or changed the track,
and a tombstone (null value) in the transaction that closed it; per partition one record, key
"<raw topic>:<partition>", value `PassTracker.partition_state` (camera watermarks), written in each
transaction that touched the partition. Compatibility: a version-1 value under the partition key (the
former whole-partition snapshot) is still read, and its tracks are rewritten as per-track records in the
next transaction; nothing older is supported.

On partition assignment NORMALIZER_STATE is read (read_committed) to its end, the last value per key
kept, tombstoned keys dropped, and the records grouped by partition; each partition's tracker is rebuilt
from them (and the best frame's images re-fetched from RAW_READS by offset, so state records stay small);
the consumer resumes from the offsets committed in the same transactions, so state and position always
agree. If a transaction fails, it is aborted, the in-memory state of every assigned partition is
restored from NORMALIZER_STATE and the consumer rewinds to the committed offsets.

The consumer group is "<topic prefix>normalizer" and the transactional id
"<topic prefix>normalizer-<instance_id>": a restarted instance fences its previous
incarnation and aborts its unfinished transaction before consuming. Limitation: aiokafka sends
offsets with the group id only (no group generation), so a *zombie* of a different instance that lost
its partitions in a rebalance is not fenced by the broker; keep instance ids stable (StatefulSet-style).

SIGTERM: the current batch's transaction is committed (open tracks stay in the state, nothing is
closed early) and the service returns. Readiness: partitions assigned and their state restored.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from dataclasses import dataclass, field
from typing import Any

from aiokafka import AIOKafkaConsumer, ConsumerRebalanceListener, ConsumerRecord, TopicPartition
from aiokafka.errors import KafkaError, ProducerFenced

from services.common.health import HealthState
from services.common.kafka import DeadLetterError, decode, make_consumer, make_producer, send_dead_letter
from services.common.metrics import (
    MESSAGES_CONSUMED,
    MESSAGES_PRODUCED,
    READS_BY_CAMERA,
    STAGE_LATENCY,
    observe_consumer_lag,
)
from services.common.pb.platewatch.v1 import common_pb2, reads_pb2
from services.common.service import collect_garbage_less_often
from services.common.topics import NORMALIZER_STATE, RAW_READS, READS, READS_EARLY
from services.normalizer import metrics
from services.normalizer.cameras import CameraDirectory
from services.normalizer.grammar import default_grammar
from services.normalizer.settings import NormalizerSettings
from services.normalizer.tracking import PassTracker, Track, build_read, track_state_json

log = logging.getLogger(__name__)

SERVICE = "normalizer"
POLL_MS = 200
RESTORE_TIMEOUT_S = 120.0


def state_key(tp: TopicPartition) -> str:
    """Key of a partition's own state record; its tracks' keys add ":<read_id>"."""
    return f"{tp.topic}:{tp.partition}"


def track_key(tp: TopicPartition, read_id: str) -> str:
    return f"{state_key(tp)}:{read_id}"


@dataclass
class _PartitionState:
    partition: dict[str, Any] | None = None
    tracks: dict[str, bytes] = field(default_factory=dict)  # read_id -> track JSON


@dataclass
class _DeadLetter:
    record: ConsumerRecord
    error: DeadLetterError


@dataclass
class _Batch:
    """What one transaction will commit."""

    closed: list[Track] = field(default_factory=list)
    dead: list[_DeadLetter] = field(default_factory=list)
    offsets: dict[TopicPartition, int] = field(default_factory=dict)  # next offset per partition
    touched: set[TopicPartition] = field(default_factory=set)
    records: int = 0


class _Rebalance(ConsumerRebalanceListener):
    def __init__(self, normalizer: Normalizer) -> None:
        self.normalizer = normalizer

    async def on_partitions_revoked(self, revoked: list[TopicPartition]) -> None:
        await self.normalizer.on_revoked(list(revoked))

    async def on_partitions_assigned(self, assigned: list[TopicPartition]) -> None:
        await self.normalizer.on_assigned(list(assigned))


class Normalizer:
    def __init__(self, settings: NormalizerSettings, health: HealthState) -> None:
        self.settings = settings
        self.health = health
        prefix = settings.topic_prefix
        self.raw_topic = RAW_READS.name(prefix)
        self.reads_topic = READS.name(prefix)
        self.early_topic = READS_EARLY.name(prefix)
        self.state_tp = TopicPartition(NORMALIZER_STATE.name(prefix), 0)
        self.grammar = default_grammar()
        self.cameras = CameraDirectory(settings.cameras_file)
        self.trackers: dict[TopicPartition, PassTracker] = {}
        self.last_input: dict[TopicPartition, float] = {}
        # Held while a batch is processed and committed, and while partitions change hands.
        self.lock = asyncio.Lock()
        # Next offset to process per partition (the committed offset after a restore): a batch fetched
        # for an assignment that a rebalance replaced can repeat records, which are skipped.
        self.next_offset: dict[TopicPartition, int] = {}
        # A failure inside a rebalance callback (aiokafka only logs those); the main loop re-raises it.
        self.fatal: BaseException | None = None
        # Bumped by every rebalance callback: a batch fed across one is dropped (see `_batch`).
        self.generation = 0
        # Both carry the topic prefix so stacks sharing a broker neither rebalance nor fence each other.
        self.group_id = f"{prefix}{settings.normalizer_consumer_group}"
        self.transactional_id = f"{prefix}{SERVICE}-{settings.instance_id}"
        self.producer = make_producer(settings.kafka_bootstrap, transactional_id=self.transactional_id)
        # Early reads are not part of the transaction (see `_send_early`): no linger, they are urgent.
        self.early_producer = make_producer(settings.kafka_bootstrap, linger_ms=0)
        self.consumer = make_consumer(settings.kafka_bootstrap, self.group_id)
        # Group-less reader for restoring state and re-fetching best frames.
        self.reader = AIOKafkaConsumer(
            bootstrap_servers=settings.kafka_bootstrap,
            group_id=None,
            enable_auto_commit=False,
            isolation_level="read_committed",
            max_partition_fetch_bytes=16_777_216,
        )

    # -- lifecycle --

    async def run(self, stop: asyncio.Event) -> None:
        self.health.set_ready(SERVICE, False)
        # Starting the transactional producer fences an older incarnation with the same id and aborts
        # its open transaction, so the state and offsets read below are final.
        await self.producer.start()
        try:
            await self.early_producer.start()
            await self.reader.start()
            await self.consumer.start()
            self.consumer.subscribe([self.raw_topic], listener=_Rebalance(self))
            log.info(
                "normalizer started",
                extra={"transactional_id": self.transactional_id, "cameras": len(self.cameras)},
            )
            while not stop.is_set():
                await self._batch()
        finally:
            self.health.set_ready(SERVICE, False)
            await self.consumer.stop()
            await self.reader.stop()
            await self.early_producer.stop()
            await self.producer.stop()
            log.info("normalizer stopped", extra={"open_tracks": self._open_tracks()})

    async def _batch(self) -> None:
        """One batch, one transaction: what arrives within `normalizer_batch_linger_ms` of its first
        record (at most `normalizer_max_batch` records; each transaction has a fixed cost in broker
        round trips and state records that would dominate if every few records paid it). Records are
        tracked as they arrive and early reads leave at once; closed passes, state and offsets are
        committed at the end. If partitions change hands meanwhile, the batch is dropped: the
        rebalance restored every assigned partition from the committed state, and the consumer
        re-fetches from the committed offsets."""
        limit = self.settings.normalizer_max_batch
        chunk = await self.consumer.getmany(timeout_ms=POLL_MS, max_records=limit)
        await observe_consumer_lag(self.consumer, SERVICE, self.settings.topic_prefix)
        batch = _Batch()
        async with self.lock:
            if self.fatal is not None:
                raise self.fatal
            generation = self.generation
            await self._feed(chunk, batch)
        deadline = time.monotonic() + self.settings.normalizer_batch_linger_ms / 1000
        while batch.records and batch.records < limit and (remaining := deadline - time.monotonic()) > 0:
            chunk = await self.consumer.getmany(
                timeout_ms=max(1, int(remaining * 1000)), max_records=limit - batch.records
            )
            async with self.lock:
                if self.generation != generation:
                    break
                await self._feed(chunk, batch)
        async with self.lock:
            if self.fatal is not None:
                raise self.fatal
            if self.generation != generation:
                log.info("partitions changed hands during a batch; it is dropped and re-read")
                return
            await self._finish(batch)

    async def on_revoked(self, revoked: list[TopicPartition]) -> None:
        async with self.lock:  # waits for the in-flight transaction to commit
            self.generation += 1
            self.health.set_ready(SERVICE, False)
            for tp in revoked:
                self.trackers.pop(tp, None)
                self.last_input.pop(tp, None)
                self.next_offset.pop(tp, None)
            metrics.OPEN_TRACKS.set(self._open_tracks())

    async def on_assigned(self, assigned: list[TopicPartition]) -> None:
        async with self.lock:
            self.generation += 1
            try:
                await self._restore(assigned)
            except Exception as exc:
                log.exception("restoring normalizer state failed")
                self.fatal = exc
                return
            self.health.set_ready(SERVICE, True)
            log.info(
                "partitions assigned and restored",
                extra={
                    "partitions": sorted(tp.partition for tp in assigned),
                    "open_tracks": self._open_tracks(),
                },
            )

    # -- restore --

    async def _restore(self, partitions: list[TopicPartition]) -> None:
        states = await self._read_state({state_key(tp) for tp in partitions}) if partitions else {}
        now = time.monotonic()
        for tp in partitions:
            state = states.get(state_key(tp), _PartitionState())
            tracker = PassTracker.restore(
                self.settings.pass_gap_s,
                state.partition,
                [json.loads(value) for value in state.tracks.values()],
            )
            await self._refetch_best_frames(tp, tracker)
            self.trackers[tp] = tracker
            self.last_input[tp] = now
            self.next_offset[tp] = await self.consumer.committed(tp) or 0
        metrics.OPEN_TRACKS.set(self._open_tracks())

    async def _read_state(self, partition_keys: set[str]) -> dict[str, _PartitionState]:
        """Last committed value per key of NORMALIZER_STATE for the wanted partitions (tombstones remove
        a key), grouped by partition key."""
        self.reader.assign([self.state_tp])
        await self.reader.seek_to_beginning(self.state_tp)
        end = (await self.reader.end_offsets([self.state_tp]))[self.state_tp]
        latest: dict[str, bytes | None] = {}
        deadline = time.monotonic() + RESTORE_TIMEOUT_S
        while await self.reader.position(self.state_tp) < end:
            if time.monotonic() > deadline:
                raise TimeoutError("restoring normalizer state took too long")
            batch = await self.reader.getmany(self.state_tp, timeout_ms=1000)
            for record in batch.get(self.state_tp, []):
                if record.key:
                    latest[record.key.decode()] = record.value
        states = {key: _PartitionState() for key in partition_keys}
        for key, value in latest.items():
            if value is None:
                continue
            if key in states:
                states[key].partition = json.loads(value)
                continue
            prefix, _, read_id = key.rpartition(":")
            if prefix in states:
                states[prefix].tracks[read_id] = value
        return states

    async def _refetch_best_frames(self, tp: TopicPartition, tracker: PassTracker) -> None:
        """Snapshots keep only the best frame's offset; read its images back from the raw topic."""
        missing = sorted(tracker.missing_best_frames(), key=lambda t: t.best.offset)
        if not missing:
            return
        self.reader.assign([tp])
        for track in missing:
            self.reader.seek(tp, track.best.offset)
            deadline = time.monotonic() + 10.0
            while track.best_raw is None and time.monotonic() < deadline:
                batch = await self.reader.getmany(tp, timeout_ms=1000, max_records=1)
                for record in batch.get(tp, []):
                    if record.offset == track.best.offset:
                        track.best_raw = reads_pb2.RawRead.FromString(record.value or b"")
                    deadline = 0.0  # past the wanted offset: it was deleted by retention
            if track.best_raw is None:
                log.warning(
                    "best frame of an open track is gone; its read will have no images",
                    extra={"partition": tp.partition, "offset": track.best.offset},
                )

    # -- the batch --

    async def _feed(self, chunk: dict[TopicPartition, list[ConsumerRecord]], batch: _Batch) -> None:
        """Track one fetch's records into `batch`, then send the early reads they made due."""
        now = time.monotonic()
        fed: set[TopicPartition] = set()
        for tp, records in chunk.items():
            tracker = self.trackers.get(tp)
            if tracker is None:
                continue  # revoked meanwhile: not committed here, the new owner reprocesses it
            # Offsets only increase: a rebalance can deliver records again.
            start = max(self.next_offset[tp], batch.offsets.get(tp, 0))
            records = [r for r in records if r.offset >= start]
            if not records:
                continue
            self.last_input[tp] = now
            fed.add(tp)
            batch.offsets[tp] = records[-1].offset + 1
            batch.records += len(records)
            metrics.RAW_READS_IN.inc(len(records))
            MESSAGES_CONSUMED.labels(SERVICE, RAW_READS.logical).inc(len(records))
            for record in records:
                try:
                    raw = decode(RAW_READS, record.value)
                    assert isinstance(raw, reads_pb2.RawRead)
                    if self.cameras.get(raw.camera_id, now) is None:
                        raise DeadLetterError("unknown_camera", raw.camera_id)
                except DeadLetterError as exc:
                    batch.dead.append(_DeadLetter(record, exc))
                    continue
                batch.closed.extend(tracker.add(raw, record.offset))
        batch.touched |= fed
        if self.settings.early_reads and fed:
            early = [
                self._to_early_read(track)
                for tp in fed
                for track, _ in self.trackers[tp].take_early(
                    self.grammar,
                    self.settings.early_read_confidence,
                    self.settings.min_frames,
                    self._region_hint,
                )
            ]
            await self._send_early(early)
            metrics.EARLY_READS_OUT.inc(len(early))
            MESSAGES_PRODUCED.labels(SERVICE, READS_EARLY.logical).inc(len(early))

    async def _finish(self, batch: _Batch) -> None:
        """Idle-close, then commit the batch's closed passes, dead letters, state and offsets."""
        now = time.monotonic()
        closed, dead, offsets, touched = batch.closed, batch.dead, batch.offsets, batch.touched
        for tp, tracker in self.trackers.items():
            if (
                now - self.last_input.get(tp, now) >= self.settings.idle_close_s
                and tracker.open_count()
                and await self._caught_up(tp)
            ):
                closed.extend(tracker.close_all())
                touched.add(tp)
        if not touched and not dead:
            return
        reads = [read for read in (self._to_read(track) for track in closed) if read is not None]
        try:
            await self._commit(reads, dead, touched, offsets)
        except ProducerFenced:
            log.error("fenced by a newer normalizer with the same instance id; exiting")
            raise
        except KafkaError as exc:
            metrics.TRANSACTION_ABORTS.inc()
            log.warning("transaction failed; rolling back to the committed state", extra={"error": repr(exc)})
            await self._rollback()
            return
        self.next_offset.update(offsets)
        metrics.TRANSACTIONS.inc()
        metrics.READS_OUT.inc(len(reads))
        MESSAGES_PRODUCED.labels(SERVICE, READS.logical).inc(len(reads))
        committed_at = time.time()
        normalized = STAGE_LATENCY.labels("normalized")
        for read in reads:
            metrics.FRAMES_PER_READ.observe(read.frames)
            READS_BY_CAMERA.labels(read.camera.camera_id, read.camera.agency_id).inc()
            # Capture (the pass's last frame) -> the read committed, for the pipeline dashboard.
            normalized.observe(max(0.0, committed_at - read.last_seen.ToNanoseconds() / 1e9))
        metrics.OPEN_TRACKS.set(self._open_tracks())

    async def _commit(
        self,
        reads: list[reads_pb2.Read],
        dead: list[_DeadLetter],
        touched: set[TopicPartition],
        offsets: dict[TopicPartition, int],
    ) -> None:
        async with self.producer.transaction():
            for read in reads:
                await self.producer.send(
                    self.reads_topic, key=read.read_id.encode(), value=read.SerializeToString()
                )
            for letter in dead:
                await send_dead_letter(
                    self.producer,
                    RAW_READS,
                    letter.record,
                    letter.error,
                    service=SERVICE,
                    prefix=self.settings.topic_prefix,
                )
            state_topic, state_partition = self.state_tp.topic, self.state_tp.partition
            for tp in touched:
                tracker = self.trackers[tp]
                changed, closed_ids = tracker.take_changes()
                # NORMALIZER_STATE has one partition: naming it spares hashing every key.
                for track in changed:
                    key = track_key(tp, track.read_id).encode()
                    await self.producer.send(
                        state_topic, key=key, value=track_state_json(track), partition=state_partition
                    )
                for read_id in closed_ids:
                    key = track_key(tp, read_id).encode()
                    await self.producer.send(state_topic, key=key, value=None, partition=state_partition)
                await self.producer.send(
                    state_topic,
                    key=state_key(tp).encode(),
                    value=_json(tracker.partition_state()),
                    partition=state_partition,
                )
            if offsets:
                await self.producer.send_offsets_to_transaction(offsets, self.group_id)

    async def _rollback(self) -> None:
        partitions = list(self.trackers)
        self.trackers.clear()
        await self._restore(partitions)
        for tp in partitions:
            committed = await self.consumer.committed(tp)
            if committed is None:
                await self.consumer.seek_to_beginning(tp)
            else:
                self.consumer.seek(tp, committed)

    async def _caught_up(self, tp: TopicPartition) -> bool:
        """Idle-close only when nothing committed is left unread on the partition."""
        end = self.consumer.last_stable_offset(tp)
        if end is None:
            end = self.consumer.highwater(tp)
        if end is None:
            return False
        return await self.consumer.position(tp) >= end

    def _build(self, track: Track) -> reads_pb2.Read:
        meta = self.cameras.get(track.camera_id, time.monotonic())
        camera = common_pb2.CameraInfo(camera_id=track.camera_id)
        if meta is not None:
            camera.CopyFrom(meta.info)
        if not camera.agency_id:
            camera.agency_id = track.agency_id
        return build_read(
            track,
            camera,
            self.grammar,
            time.time_ns(),
            meta.heading_deg if meta else None,
            meta.region if meta else None,
        )

    def _region_hint(self, camera_id: str) -> str | None:
        """The camera's region from the registry, for the plate grammar; None when unknown."""
        meta = self.cameras.get(camera_id, time.monotonic())
        return meta.region if meta else None

    async def _send_early(self, early: list[reads_pb2.Read]) -> None:
        """Early reads go out at once, outside the transaction, so an alert does not wait for the
        commit. They are hints, delivered at least once: if the transaction then fails, the tracks are
        restored without their early mark and the same early reads (same read_ids, hence the same alert
        ids in the hotlist) are sent again. A failed send is logged and counted, never retried: the
        final read still reaches the hotlist."""
        for read in early:
            delivery = await self.early_producer.send(
                self.early_topic, key=read.read_id.encode(), value=read.SerializeToString()
            )
            delivery.add_done_callback(_early_delivered)

    def _to_early_read(self, track: Track) -> reads_pb2.Read:
        read = self._build(track)
        read.provisional = True
        return read

    def _to_read(self, track: Track) -> reads_pb2.Read | None:
        read = self._build(track)
        reason = ""
        if track.early_plate is not None:
            # The hotlist may have alerted on the early read: the final read is always emitted (and
            # stored), as the evidence behind that alert and so the hotlist can settle it.
            read.provisional_plate = track.early_plate
            read.provisional_region = track.early_region
            if not read.plate:
                reason = "no_text"
        elif not read.plate:
            reason = "no_text"
        elif read.frames < self.settings.min_frames:
            reason = "min_frames"
        elif read.confidence < self.settings.min_confidence:
            reason = "min_confidence"
        if reason:
            metrics.READS_DROPPED.labels(reason).inc()
            return None
        return read

    def _open_tracks(self) -> int:
        return sum(tracker.open_count() for tracker in self.trackers.values())


def _early_delivered(delivery: asyncio.Future[Any]) -> None:
    if delivery.cancelled() or delivery.exception() is not None:
        metrics.EARLY_READS_FAILED.inc()
        log.warning(
            "early read not delivered; its final read still follows",
            extra={"error": repr(None if delivery.cancelled() else delivery.exception())},
        )


def _json(value: Any) -> bytes:
    return json.dumps(value, separators=(",", ":")).encode()


async def serve(stop: asyncio.Event, health: HealthState) -> None:
    """Run the normalizer until `stop` is set; see the module docstring for the guarantees."""
    settings = NormalizerSettings()
    # Every raw read allocates a few dozen objects and the open tracks keep tens of thousands alive:
    # with the default threshold (700) the cyclic collector took ~30 % of the CPU
    # (loadtest.normalizer_cpu).
    collect_garbage_less_often(settings.normalizer_gc_gen0_threshold)
    await Normalizer(settings, health).run(stop)
