"""The topic registry: the only place topic names are written down.

Every producer and consumer refers to a `Topic` from here. `Topic.name(prefix)` gives the physical
name, so tests and parallel stacks can isolate themselves with `PLATEWATCH_TOPIC_PREFIX`.
"""

from __future__ import annotations

from dataclasses import dataclass

from google.protobuf.message import Message

from services.common.pb.platewatch.v1 import alerts_pb2, audit_pb2, frames_pb2, hotlist_pb2, reads_pb2

DAY_MS = 24 * 3600 * 1000


@dataclass(frozen=True)
class Topic:
    """A Kafka topic and its contract."""

    logical: str
    # What the message key holds (documentation and contract tests).
    key: str
    # Protobuf class of the value; None for dead-letter topics (they hold the original bytes).
    schema: type[Message] | None
    partitions: int
    retention_ms: int
    compacted: bool = False
    dead_letter: Topic | None = None
    # Frames carry JPEGs: raise the per-message ceiling above Kafka's 1 MB default.
    max_message_bytes: int = 1_048_576
    description: str = ""

    def name(self, prefix: str = "") -> str:
        return f"{prefix}{self.logical}"

    def config(self) -> dict[str, str]:
        """Broker-side topic configuration."""
        cfg = {
            "retention.ms": str(self.retention_ms),
            "max.message.bytes": str(self.max_message_bytes),
        }
        if self.compacted:
            cfg["cleanup.policy"] = "compact"
            # Compaction never touches the active segment: roll segments hourly and clean eagerly so
            # a replica replaying the whole topic at start reads little more than the live keys.
            cfg["segment.ms"] = str(3600 * 1000)
            cfg["min.cleanable.dirty.ratio"] = "0.1"
        return cfg


def _dlq(logical: str) -> Topic:
    return Topic(
        logical=f"{logical}.dlq",
        key="original key",
        schema=None,
        partitions=1,
        retention_ms=30 * DAY_MS,
        max_message_bytes=16_777_216,
        description=f"Messages from {logical} that could not be processed; header 'reason' says why.",
    )


FRAMES = Topic(
    logical="platewatch.frames.v1",
    key="camera_id",
    schema=frames_pb2.Frame,
    partitions=4,
    # Frames are transient working data, not evidence: keep only a short buffer.
    retention_ms=3600 * 1000,
    max_message_bytes=16_777_216,
    dead_letter=_dlq("platewatch.frames.v1"),
    description="Sampled JPEG frames from capture to inference.",
)
CAMERA_STATUS = Topic(
    logical="platewatch.camera-status.v1",
    key="camera_id",
    schema=frames_pb2.CameraHeartbeat,
    partitions=1,
    retention_ms=7 * DAY_MS,
    description="Camera heartbeats from capture.",
)
RAW_READS = Topic(
    logical="platewatch.reads.raw.v1",
    key="camera_id",
    schema=reads_pb2.RawRead,
    partitions=4,
    retention_ms=DAY_MS,
    max_message_bytes=4_194_304,
    dead_letter=_dlq("platewatch.reads.raw.v1"),
    description="Per-frame plate detections from inference to the normalizer.",
)
READS = Topic(
    logical="platewatch.reads.v1",
    key="read_id",
    schema=reads_pb2.Read,
    partitions=4,
    retention_ms=7 * DAY_MS,
    max_message_bytes=4_194_304,
    dead_letter=_dlq("platewatch.reads.v1"),
    description="One normalized read per vehicle pass; consumed by hotlist and writer.",
)
READS_EARLY = Topic(
    logical="platewatch.reads.early.v1",
    key="read_id",
    schema=reads_pb2.Read,
    partitions=4,
    # Only the hotlist reads it, at once; the final read of every pass is on READS.
    retention_ms=DAY_MS,
    max_message_bytes=4_194_304,
    dead_letter=_dlq("platewatch.reads.early.v1"),
    description="Early (provisional) reads of still-open passes, normalizer to hotlist only; never stored.",
)
ALERTS = Topic(
    logical="platewatch.alerts.v1",
    key="alert_id",
    schema=alerts_pb2.Alert,
    partitions=1,
    retention_ms=30 * DAY_MS,
    max_message_bytes=4_194_304,
    dead_letter=_dlq("platewatch.alerts.v1"),
    description="Hotlist hits, consumed by the API live stream and the writer.",
)
HOTLIST_CHANGES = Topic(
    logical="platewatch.hotlist-changes.v1",
    key="list/<hotlist_id> or entry/<entry_id>",
    schema=hotlist_pb2.HotlistChange,
    partitions=1,
    retention_ms=-1,
    compacted=True,
    description="Compacted change log of hotlists; every hotlist replica rebuilds its state from it.",
)
NORMALIZER_STATE = Topic(
    logical="platewatch.normalizer-state.v1",
    key="source partition number",
    schema=None,
    partitions=1,
    retention_ms=-1,
    compacted=True,
    max_message_bytes=16_777_216,
    description="Normalizer's open vehicle-pass tracks per source partition, written transactionally.",
)
AUDIT = Topic(
    logical="platewatch.audit.v1",
    key="agency_id",
    schema=audit_pb2.AuditEvent,
    # One partition: the audit component chains events in the one order Kafka gives them.
    partitions=1,
    # A buffer only: the chained log lives in ClickHouse (kept >= 1 year).
    retention_ms=30 * DAY_MS,
    dead_letter=_dlq("platewatch.audit.v1"),
    description="Audit events from the API, hotlist and retention job to the audit component (chain).",
)

GOVERNANCE_STATE = Topic(
    logical="platewatch.governance-state.v1",
    key="approval/<approval_id>, login/<sha256 of username> or session/<sha256 of token id>",
    schema=None,
    partitions=1,
    retention_ms=-1,
    compacted=True,
    description="Approvals, failed-login lockouts and idle sessions (JSON) shared by every API replica.",
)

PIPELINE_TOPICS: tuple[Topic, ...] = (
    FRAMES,
    CAMERA_STATUS,
    RAW_READS,
    READS,
    READS_EARLY,
    ALERTS,
    HOTLIST_CHANGES,
    NORMALIZER_STATE,
    AUDIT,
    GOVERNANCE_STATE,
)


def all_topics() -> list[Topic]:
    """Every topic the platform needs, dead-letter topics included."""
    topics: list[Topic] = []
    for topic in PIPELINE_TOPICS:
        topics.append(topic)
        if topic.dead_letter is not None:
            topics.append(topic.dead_letter)
    return topics
