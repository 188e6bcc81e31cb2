"""What a replay may re-send: the replay policy, the per-message decision and the replay headers. Pure.

A dead letter (services.common.kafka.send_dead_letter) holds the original key and bytes with headers
reason, detail, source_topic, source_partition, source_offset, service, failed_at_ms. A replayed
message carries `replayed_from` = "<dlq topic>/<partition>/<offset>" and `replay_count`; a dead
letter whose `replay_count` has reached MAX_REPLAYS is refused, so a message that fails every time
cannot circle between a topic and its dead-letter topic for ever.

A service that dead-letters a replayed message does not necessarily copy its `replay_count` header
across, so the count is also inferred from the dead-letter topic itself: every earlier dead letter
with the same key and bytes is an earlier failure of the same message. The larger of the two counts.
"""

from __future__ import annotations

import bisect
import enum
import hashlib
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime

from services.common.kafka import REPLAY_COUNT_HEADER, REPLAYED_FROM_HEADER, DeadLetterError, decode
from services.common.topics import ALERTS, FRAMES, RAW_READS, READS, Topic

# Short names accepted by `platewatch dlq ... --topic`; the registry holds the real names.
SOURCE_TOPICS: dict[str, Topic] = {
    "reads": READS,
    "raw-reads": RAW_READS,
    "frames": FRAMES,
    "alerts": ALERTS,
}
MAX_REPLAYS = 3
REPLAYED_FROM = REPLAYED_FROM_HEADER
REPLAY_COUNT = REPLAY_COUNT_HEADER
# Why the message was dead-lettered the last time, kept on the replayed message for whoever sees it next.
DEAD_LETTER_REASON = "dead_letter_reason"


def source_topic(short_name: str) -> Topic:
    """The registry topic for a `--topic` short name; ValueError for anything else."""
    try:
        topic = SOURCE_TOPICS[short_name]
    except KeyError:
        raise ValueError(f"unknown topic {short_name!r}; choose from {sorted(SOURCE_TOPICS)}") from None
    assert topic.dead_letter is not None, f"{topic.logical} has no dead-letter topic"
    return topic


@dataclass(frozen=True)
class DeadLetter:
    """One message of a dead-letter topic."""

    dlq_topic: str
    partition: int
    offset: int
    key: bytes | None
    value: bytes | None
    headers: dict[str, bytes]
    # Broker timestamp of the dead letter; stands in when the failed_at_ms header is missing.
    timestamp_ms: int
    # Dead letters with the same key and bytes at lower offsets of the dead-letter topic.
    earlier_copies: int = 0

    @classmethod
    def from_record(
        cls,
        topic: str,
        partition: int,
        offset: int,
        key: bytes | None,
        value: bytes | None,
        headers: Iterable[tuple[str, bytes]] | None,
        timestamp_ms: int,
    ) -> DeadLetter:
        # A repeated header name keeps its last value, as Kafka clients conventionally read it.
        return cls(topic, partition, offset, key, value, dict(headers or ()), timestamp_ms)

    def header(self, name: str) -> str:
        return self.headers.get(name, b"").decode(errors="replace")

    @property
    def reason(self) -> str:
        return self.header("reason") or "unknown"

    @property
    def failed_at_ms(self) -> int:
        try:
            return int(self.header("failed_at_ms"))
        except ValueError:
            return self.timestamp_ms

    @property
    def fingerprint(self) -> bytes:
        """Identifies the original message: same key and same bytes."""
        digest = hashlib.blake2b(digest_size=16)
        digest.update(len(self.key or b"").to_bytes(8, "big"))
        digest.update(self.key or b"")
        digest.update(self.value or b"")
        return digest.digest()

    @property
    def replay_count(self) -> int:
        """Times this message was replayed before it was dead-lettered again (0 when never): the
        header, or the earlier copies on the dead-letter topic when they say more. An unreadable
        header counts as exhausted rather than as fresh."""
        raw = self.header(REPLAY_COUNT)
        try:
            from_header = max(0, int(raw)) if raw else 0
        except ValueError:
            from_header = MAX_REPLAYS
        return max(from_header, self.earlier_copies)

    @property
    def address(self) -> str:
        return f"{self.dlq_topic}/{self.partition}/{self.offset}"


@dataclass(frozen=True)
class ReplayPolicy:
    """Which dead letters a replay re-sends. `reasons` None means every reason (chosen explicitly
    with --all-reasons); times are epoch milliseconds of failed_at_ms, `until_ms` exclusive."""

    reasons: frozenset[str] | None
    validate: bool
    since_ms: int | None = None
    until_ms: int | None = None
    max_messages: int | None = None
    dry_run: bool = False

    def __post_init__(self) -> None:
        if self.reasons is not None and not self.reasons:
            raise ValueError("name at least one reason, or choose every reason explicitly")
        if self.max_messages is not None and self.max_messages < 1:
            raise ValueError("max_messages must be at least 1")
        if self.since_ms is not None and self.until_ms is not None and self.since_ms >= self.until_ms:
            raise ValueError("since must be before until")


class Decision(enum.Enum):
    """What a replay does with one dead letter. Filtered ones stay pending for a later run with
    another policy; refused ones are settled: the replay group never offers them again."""

    REPLAY = "replay"
    FILTERED_REASON = "filtered_reason"
    FILTERED_TIME = "filtered_time"
    REFUSED_LOOP = "refused_loop"
    REFUSED_UNDECODABLE = "refused_undecodable"

    @property
    def settles(self) -> bool:
        """True when the message is done with as far as replay is concerned."""
        return self in (Decision.REPLAY, Decision.REFUSED_LOOP, Decision.REFUSED_UNDECODABLE)


@dataclass(frozen=True)
class Verdict:
    decision: Decision
    detail: str = ""


def decide(letter: DeadLetter, policy: ReplayPolicy, topic: Topic) -> Verdict:
    """Apply `policy` to one dead letter of `topic`'s dead-letter topic. Filters come first, so
    a message outside the policy is left alone rather than refused."""
    if policy.reasons is not None and letter.reason not in policy.reasons:
        return Verdict(Decision.FILTERED_REASON, letter.reason)
    failed_at = letter.failed_at_ms
    if policy.since_ms is not None and failed_at < policy.since_ms:
        return Verdict(Decision.FILTERED_TIME, str(failed_at))
    if policy.until_ms is not None and failed_at >= policy.until_ms:
        return Verdict(Decision.FILTERED_TIME, str(failed_at))
    if letter.replay_count >= MAX_REPLAYS:
        return Verdict(
            Decision.REFUSED_LOOP,
            f"replay_count header {letter.header(REPLAY_COUNT) or '-'}, "
            f"earlier copies {letter.earlier_copies}",
        )
    if policy.validate:
        try:
            decode(topic, letter.value)
        except DeadLetterError as error:
            return Verdict(Decision.REFUSED_UNDECODABLE, str(error))
    return Verdict(Decision.REPLAY)


def replay_headers(letter: DeadLetter) -> list[tuple[str, bytes]]:
    """Headers of the re-sent message: where it was replayed from and how often it has been."""
    return [
        (REPLAYED_FROM, letter.address.encode()),
        (REPLAY_COUNT, str(letter.replay_count + 1).encode()),
        (DEAD_LETTER_REASON, letter.reason.encode()),
    ]


def parse_time(text: str) -> int:
    """Epoch milliseconds from an ISO-8601 time (naive means UTC) or a plain integer of epoch ms."""
    stripped = text.strip()
    if stripped.isdigit():
        return int(stripped)
    moment = datetime.fromisoformat(stripped.replace("Z", "+00:00"))
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return int(moment.timestamp() * 1000)


# ---- progress --------------------------------------------------------------------------------------
#
# The replay group's committed offset is the first dead letter not yet settled; dead letters after
# it that are settled (replayed or refused) are listed in the commit's metadata as offset ranges,
# so a message filtered out by one run's policy stays available to the next run while nothing
# already re-sent is sent again.

PROGRESS_FORMAT = "v1:"
# Kafka's default offset.metadata.max.bytes is 4096; stay well inside it.
MAX_PROGRESS_METADATA = 3500


@dataclass
class Progress:
    """Settled offsets of one dead-letter partition: everything below `watermark`, plus the
    inclusive offset `ranges` above it (sorted, disjoint, never touching). Ranges, not single offsets,
    so the bookkeeping stays as small as the metadata it is stored in."""

    watermark: int = 0
    ranges: list[tuple[int, int]] = field(default_factory=list)

    @property
    def settled(self) -> set[int]:
        """Settled offsets at or above the watermark (for inspection and tests)."""
        return {offset for first, last in self.ranges for offset in range(first, last + 1)}

    def is_settled(self, offset: int) -> bool:
        if offset < self.watermark:
            return True
        index = bisect.bisect_right(self.ranges, (offset, _MAX_OFFSET)) - 1
        return index >= 0 and self.ranges[index][0] <= offset <= self.ranges[index][1]

    def settle(self, offset: int) -> None:
        if self.is_settled(offset):
            return
        self.ranges = _with_offset(self.ranges, offset)
        if self.ranges and self.ranges[0][0] <= self.watermark:
            self.watermark = self.ranges.pop(0)[1] + 1

    def raise_watermark(self, offset: int) -> None:
        """Treat everything below `offset` as settled (retention removed it, say)."""
        self.watermark = max(self.watermark, offset)
        self.ranges = [
            (max(first, self.watermark), last) for first, last in self.ranges if last >= self.watermark
        ]
        if self.ranges and self.ranges[0][0] <= self.watermark:
            self.watermark = self.ranges.pop(0)[1] + 1

    def fits_with(self, offset: int) -> bool:
        """Whether settling `offset` still leaves metadata Kafka accepts."""
        if self.is_settled(offset):
            return True
        trial = Progress(self.watermark, _with_offset(self.ranges, offset))
        return len(trial.metadata()) <= MAX_PROGRESS_METADATA

    def metadata(self) -> str:
        return PROGRESS_FORMAT + ",".join(
            f"{first}" if first == last else f"{first}-{last}" for first, last in self.ranges
        )

    @classmethod
    def from_commit(cls, offset: int | None, metadata: str | None) -> Progress:
        """Progress from a committed offset and its metadata; None offset means nothing done yet."""
        parsed: list[tuple[int, int]] = []
        if metadata and metadata.startswith(PROGRESS_FORMAT):
            for part in metadata[len(PROGRESS_FORMAT) :].split(","):
                if part:
                    first, _, last = part.partition("-")
                    parsed.append((int(first), int(last or first)))
        progress = cls(ranges=_normalized(parsed))
        progress.raise_watermark(max(0, offset or 0))
        return progress


_MAX_OFFSET = 2**63


def _normalized(ranges: list[tuple[int, int]]) -> list[tuple[int, int]]:
    """Sorted, disjoint, non-touching ranges covering the same offsets."""
    merged: list[tuple[int, int]] = []
    for first, last in sorted(ranges):
        if merged and first <= merged[-1][1] + 1:
            merged[-1] = (merged[-1][0], max(last, merged[-1][1]))
        else:
            merged.append((first, last))
    return merged


def _with_offset(ranges: list[tuple[int, int]], offset: int) -> list[tuple[int, int]]:
    """`ranges` with `offset` (not already in them) added, merging with neighbours it touches."""
    index = bisect.bisect_left(ranges, (offset, offset))
    before = ranges[index - 1] if index > 0 else None
    after = ranges[index] if index < len(ranges) else None
    first, last = offset, offset
    start, stop = index, index
    if before is not None and before[1] == offset - 1:
        first, start = before[0], index - 1
    if after is not None and after[0] == offset + 1:
        last, stop = after[1], index + 1
    return [*ranges[:start], (first, last), *ranges[stop:]]
