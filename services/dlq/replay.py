"""Reading dead-letter topics from Kafka: the summary behind `dlq list` and the replay behind
`dlq replay`.

Replay reads the dead-letter topic from the replay group's progress up to the end it had when the
run started (dead letters arriving meanwhile, re-failed replays included, wait for the next run),
re-sends what the policy allows to the source topic, and commits progress only after the broker has
acknowledged the re-sends. A crash between acknowledgement and commit re-sends that chunk once more
on the next run: replay is at-least-once, and the consumers downstream are idempotent (the writer
deduplicates read ids, alert ids are stable).

Concurrent replays of one topic are not coordinated; run one at a time.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
import time
from collections import Counter
from collections.abc import AsyncGenerator
from dataclasses import dataclass, field
from typing import Any

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.errors import KafkaError

from services.common.kafka import make_consumer, make_producer
from services.common.metrics import MESSAGES_PRODUCED
from services.common.topics import Topic
from services.dlq.policy import DeadLetter, Decision, Progress, ReplayPolicy, decide, replay_headers

log = logging.getLogger(__name__)

SERVICE = "dlq-replay"
# Re-sends in flight before their acknowledgements are awaited and progress is committed.
COMMIT_EVERY = 200
_FETCH_TIMEOUT_MS = 1000
_COORDINATOR_WAIT_S = 30.0
_MAX_IDLE_FETCHES = 5


def replay_group(topic: Topic, prefix: str) -> str:
    """Consumer group holding replay progress for `topic`'s dead-letter topic."""
    return f"{prefix}dlq-replay-{topic.logical}"


def _dlq(topic: Topic) -> Topic:
    if topic.dead_letter is None:
        raise ValueError(f"topic {topic.logical} has no dead-letter topic")
    return topic.dead_letter


@dataclass
class DlqSummary:
    """What a dead-letter topic holds."""

    topic: str
    total: int = 0
    by_reason: Counter[str] = field(default_factory=Counter)
    oldest_failed_at_ms: int | None = None
    newest_failed_at_ms: int | None = None
    # Dead letters a replay of this topic has not settled yet.
    pending_replay: int = 0
    # The first `limit` dead letters, oldest first.
    sample: list[DeadLetter] = field(default_factory=list)


@dataclass
class ReplayReport:
    topic: str
    dry_run: bool
    # Replayed (or, with dry_run, that would be), as dead-letter addresses topic/partition/offset.
    replayed: list[str] = field(default_factory=list)
    # Refused for good, address -> why (loop guard, still undecodable).
    refused: dict[str, str] = field(default_factory=dict)
    # Left for another run because the policy filtered them out, by decision.
    filtered: Counter[str] = field(default_factory=Counter)
    # Why the run ended before the end of the topic, if it did (--max reached, progress record full).
    stopped_early: str = ""

    def as_dict(self) -> dict[str, Any]:
        return {
            "topic": self.topic,
            "dry_run": self.dry_run,
            "replayed": len(self.replayed),
            "replayed_from": self.replayed,
            "refused": self.refused,
            "filtered": dict(self.filtered),
            "stopped_early": self.stopped_early,
        }


async def read_progress(
    bootstrap: str, group: str, partitions: list[TopicPartition]
) -> dict[TopicPartition, Progress]:
    """The replay group's progress per dead-letter partition (committed offset plus metadata)."""
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        delay = 0.2
        deadline = time.monotonic() + _COORDINATOR_WAIT_S
        while True:
            try:
                committed = await admin.list_consumer_group_offsets(group, partitions=partitions)
                break
            except KafkaError as exc:
                # A young broker creates its offsets topic on first use; the coordinator follows.
                if not exc.retriable or time.monotonic() > deadline:
                    raise
                await asyncio.sleep(delay)
                delay = min(delay * 2, 2.0)
    finally:
        await admin.close()
    progress = {}
    for tp in partitions:
        entry = committed.get(tp)
        if entry is None or entry.offset < 0:
            progress[tp] = Progress()
        else:
            progress[tp] = Progress.from_commit(entry.offset, entry.metadata)
    return progress


async def _dead_letters(
    consumer: AIOKafkaConsumer, start: dict[TopicPartition, int], end: dict[TopicPartition, int]
) -> AsyncGenerator[DeadLetter, None]:
    """Every dead letter from `start` (inclusive) to `end` (exclusive), partition by partition."""
    consumer.assign(list(start))
    for tp, first in start.items():
        if first >= end[tp]:
            continue
        consumer.seek(tp, first)
        idle_fetches = 0
        while (position := await consumer.position(tp)) < end[tp]:
            batches = await consumer.getmany(tp, timeout_ms=_FETCH_TIMEOUT_MS)
            if not batches.get(tp) and await consumer.position(tp) == position:
                # Nothing readable below `end` (say, only transaction markers left): done, not stuck.
                idle_fetches += 1
                if idle_fetches >= _MAX_IDLE_FETCHES:
                    log.warning(
                        "stopped reading short of the end", extra={"partition": str(tp), "at": position}
                    )
                    break
                continue
            idle_fetches = 0
            for record in batches.get(tp, []):
                if record.offset >= end[tp]:
                    break
                yield DeadLetter.from_record(
                    record.topic,
                    record.partition,
                    record.offset,
                    record.key,
                    record.value,
                    record.headers,
                    record.timestamp,
                )


async def _ends(consumer: AIOKafkaConsumer, dlq: Topic, prefix: str) -> dict[TopicPartition, int]:
    """End offset of every partition of the dead-letter topic (the registry says how many)."""
    name = dlq.name(prefix)
    ends: dict[TopicPartition, int] = await consumer.end_offsets(
        [TopicPartition(name, p) for p in range(dlq.partitions)]
    )
    return ends


async def summarize(bootstrap: str, prefix: str, topic: Topic, limit: int = 20) -> DlqSummary:
    """Counts by reason, oldest and newest failure time, what replay has left, and the first
    `limit` dead letters of `topic`'s dead-letter topic."""
    name = _dlq(topic).name(prefix)
    consumer = make_consumer(bootstrap, None)
    await consumer.start()
    try:
        ends = await _ends(consumer, _dlq(topic), prefix)
        starts = await consumer.beginning_offsets(list(ends))
        progress = await read_progress(bootstrap, replay_group(topic, prefix), list(ends))
        summary = DlqSummary(topic=name)
        copies: Counter[bytes] = Counter()
        async for uncounted in _dead_letters(consumer, starts, ends):
            letter = dataclasses.replace(uncounted, earlier_copies=copies[uncounted.fingerprint])
            copies[letter.fingerprint] += 1
            summary.total += 1
            summary.by_reason[letter.reason] += 1
            failed_at = letter.failed_at_ms
            if summary.oldest_failed_at_ms is None or failed_at < summary.oldest_failed_at_ms:
                summary.oldest_failed_at_ms = failed_at
            if summary.newest_failed_at_ms is None or failed_at > summary.newest_failed_at_ms:
                summary.newest_failed_at_ms = failed_at
            if not progress[TopicPartition(name, letter.partition)].is_settled(letter.offset):
                summary.pending_replay += 1
            if len(summary.sample) < limit:
                summary.sample.append(letter)
        return summary
    finally:
        await consumer.stop()


async def replay(bootstrap: str, prefix: str, topic: Topic, policy: ReplayPolicy) -> ReplayReport:
    """Re-send `topic`'s dead letters that `policy` allows to `topic`, once each across runs."""
    consumer = make_consumer(bootstrap, replay_group(topic, prefix))
    producer: AIOKafkaProducer | None = None if policy.dry_run else make_producer(bootstrap)
    await consumer.start()
    if producer is not None:
        await producer.start()
    try:
        ends = await _ends(consumer, _dlq(topic), prefix)
        run = _ReplayRun(
            consumer,
            producer,
            topic,
            prefix,
            policy,
            await read_progress(bootstrap, replay_group(topic, prefix), list(ends)),
        )
        starts = await consumer.beginning_offsets(list(ends))
        for tp in ends:
            # Retention may have removed offsets below the recorded progress.
            run.progress[tp].raise_watermark(starts[tp])
        # From the beginning, settled ones included: earlier copies of a message count its failures.
        copies: Counter[bytes] = Counter()
        async with contextlib.aclosing(_dead_letters(consumer, starts, ends)) as letters:
            async for letter in letters:
                fingerprint = letter.fingerprint
                counted = dataclasses.replace(letter, earlier_copies=copies[fingerprint])
                copies[fingerprint] += 1
                if not await run.handle(counted):
                    break
        await run.commit()
        log.info("replay finished", extra=run.report.as_dict() | {"replayed_from": len(run.report.replayed)})
        return run.report
    finally:
        if producer is not None:
            await producer.stop()
        await consumer.stop()


class _ReplayRun:
    """State of one replay: progress per dead-letter partition, re-sends awaiting acknowledgement."""

    def __init__(
        self,
        consumer: AIOKafkaConsumer,
        producer: AIOKafkaProducer | None,
        topic: Topic,
        prefix: str,
        policy: ReplayPolicy,
        progress: dict[TopicPartition, Progress],
    ) -> None:
        self.consumer = consumer
        self.producer = producer
        self.topic = topic
        self.target = topic.name(prefix)
        self.policy = policy
        self.progress = progress
        self.report = ReplayReport(topic=_dlq(topic).name(prefix), dry_run=policy.dry_run)
        self.in_flight: list[asyncio.Future[Any]] = []

    async def handle(self, letter: DeadLetter) -> bool:
        """Decide on and act on one dead letter; False when the run must stop here."""
        progress = self.progress[TopicPartition(letter.dlq_topic, letter.partition)]
        if progress.is_settled(letter.offset):
            return True
        verdict = decide(letter, self.policy, self.topic)
        if not verdict.decision.settles:
            self.report.filtered[verdict.decision.value] += 1
            return True
        limit = self.policy.max_messages
        if verdict.decision is Decision.REPLAY and limit is not None and len(self.report.replayed) >= limit:
            self.report.stopped_early = f"replayed the maximum of {limit}"
            return False
        if not progress.fits_with(letter.offset):
            self.report.stopped_early = "progress record full: settle the older dead letters first"
            return False
        if verdict.decision is Decision.REPLAY:
            self.report.replayed.append(letter.address)
            if self.producer is not None:
                future = await self.producer.send(
                    self.target, value=letter.value, key=letter.key, headers=replay_headers(letter)
                )
                self.in_flight.append(future)
        else:
            self.report.refused[letter.address] = f"{verdict.decision.value}: {verdict.detail}"
            log.warning("dead letter refused", extra={"dead_letter": letter.address, "why": verdict.detail})
        progress.settle(letter.offset)
        if len(self.in_flight) >= COMMIT_EVERY:
            await self.commit()
        return True

    async def commit(self) -> None:
        """Wait until the broker has every re-send, then record the progress they represent.
        A dry run records nothing."""
        if self.producer is None:
            return
        if self.in_flight:
            await asyncio.gather(*self.in_flight)
            MESSAGES_PRODUCED.labels(SERVICE, self.topic.logical).inc(len(self.in_flight))
            self.in_flight = []
        await self.consumer.commit({tp: (p.watermark, p.metadata()) for tp, p in self.progress.items()})
