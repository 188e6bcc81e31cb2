"""Contract tests over the topic registry (services/common/topics.py): names, dead-letter topics,
broker-side configuration, and that a realistic message of every schema survives the wire."""

from __future__ import annotations

import re

import cv2
import numpy as np
import pytest
from google.protobuf.message import Message
from google.protobuf.timestamp_pb2 import Timestamp

from services.common.kafka import MAX_REQUEST_BYTES, DeadLetterError, decode
from services.common.pb.platewatch.v1 import (
    alerts_pb2,
    audit_pb2,
    common_pb2,
    frames_pb2,
    hotlist_pb2,
    reads_pb2,
)
from services.common.topics import (
    CAMERA_STATUS,
    PIPELINE_TOPICS,
    Topic,
    all_topics,
)
from services.deploy_tools.kafka_broker import BROKER_MAX_MESSAGE_BYTES

# Kafka's rule for topic names (kafka.common.internals.Topic): legal characters and length.
LEGAL_TOPIC_NAME = re.compile(r"^[a-zA-Z0-9._-]{1,249}$")
TEST_PREFIX = "t0a1b2c3d."

# Topics with a schema that deliberately have no dead-letter topic, and why. Compacted topics are
# state (a bad record is superseded by the next write of its key) and are exempt without listing.
NO_DEAD_LETTER = {
    # A heartbeat is replaced by the next one seconds later; an undecodable one is dropped.
    CAMERA_STATUS.logical: "superseded by the next heartbeat",
}


def _ts(seconds: int, nanos: int = 0) -> Timestamp:
    return Timestamp(seconds=seconds, nanos=nanos)


def _jpeg(width: int, height: int) -> bytes:
    """A real JPEG with enough detail to be frame-sized (gradient plus noise)."""
    rng = np.random.default_rng(7)
    gradient = np.linspace(0, 255, width, dtype=np.uint8)[None, :, None]
    image = np.broadcast_to(gradient, (height, width, 3)).copy()
    image += rng.integers(0, 40, size=image.shape, dtype=np.uint8)
    ok, encoded = cv2.imencode(".jpg", image, [cv2.IMWRITE_JPEG_QUALITY, 90])
    assert ok
    return encoded.tobytes()


FRAME_JPEG = _jpeg(1920, 1080)
CROP_JPEG = _jpeg(240, 80)
THUMB_JPEG = _jpeg(320, 180)
CAPTURED = _ts(1_767_225_600, 125_000_000)
CANDIDATES = [
    common_pb2.TextCandidate(
        text="AB12CDE", confidence=0.93, char_confidences=[0.99, 0.98, 0.9, 0.95, 0.97, 0.88, 0.96]
    ),
    common_pb2.TextCandidate(
        text="AB12C0E", confidence=0.05, char_confidences=[0.99, 0.98, 0.9, 0.95, 0.97, 0.1, 0.96]
    ),
]
VEHICLE = common_pb2.Vehicle(color="silver", color_confidence=0.81, make="unknown", type="car")
CAMERA = common_pb2.CameraInfo(
    camera_id="cam-north-01",
    agency_id="agency-a",
    name="North gate",
    site="depot",
    lat=52.2053,
    lon=0.1218,
    heading_deg=184.5,
)
HOTLIST_ENTRY = hotlist_pb2.HotlistEntry(
    entry_id="ent-0001",
    hotlist_id="hl-stolen",
    plate="AB12CDE",
    region="GB",
    reason=hotlist_pb2.REASON_CODE_STOLEN_VEHICLE,
    priority=1,
    source="ncic-export-2026-01-01",
    agency_id="agency-a",
    expires_at=_ts(1_769_904_000),
    notes="reported 2025-12-30",
    vehicle_description="silver hatchback",
)
READ = reads_pb2.Read(
    read_id="01JH2ZK6Y7Q4W3E5R6T7Y8U9I0",
    plate="AB12CDE",
    region="GB",
    format_known=True,
    confidence=0.93,
    candidates=CANDIDATES,
    camera=CAMERA,
    first_seen=CAPTURED,
    last_seen=_ts(1_767_225_601, 500_000_000),
    captured_at=CAPTURED,
    direction="approaching",
    box=common_pb2.Box(x=812, y=604, width=240, height=80),
    crop_jpeg=CROP_JPEG,
    frame_thumbnail_jpeg=THUMB_JPEG,
    vehicle=VEHICLE,
    frames=7,
    normalized_at=_ts(1_767_225_603),
)

# One realistic message per schema, as the producing service would write it.
EXAMPLES: dict[type[Message], Message] = {
    frames_pb2.Frame: frames_pb2.Frame(
        camera_id="cam-north-01",
        agency_id="agency-a",
        sequence=184_467,
        captured_at=CAPTURED,
        jpeg=FRAME_JPEG,
        width=1920,
        height=1080,
        source="rtsp://10.0.0.21/stream1",
    ),
    frames_pb2.CameraHeartbeat: frames_pb2.CameraHeartbeat(
        camera_id="cam-north-01",
        agency_id="agency-a",
        at=_ts(1_767_225_610),
        connected=True,
        frames_captured=9_000,
        frames_published=1_800,
        frames_dropped=3,
        last_error="",
    ),
    reads_pb2.RawRead: reads_pb2.RawRead(
        camera_id="cam-north-01",
        agency_id="agency-a",
        frame_sequence=184_467,
        captured_at=CAPTURED,
        plate_index=0,
        box=common_pb2.Box(x=812, y=604, width=240, height=80),
        frame_width=1920,
        frame_height=1080,
        candidates=CANDIDATES,
        detection_confidence=0.97,
        crop_jpeg=CROP_JPEG,
        frame_thumbnail_jpeg=THUMB_JPEG,
        vehicle=VEHICLE,
        model_version="yolo-plate-v1+rapidocr-1.4.4",
        inferred_at=_ts(1_767_225_600, 310_000_000),
    ),
    reads_pb2.Read: READ,
    alerts_pb2.Alert: alerts_pb2.Alert(
        alert_id="alr-01JH2ZK7",
        read=READ,
        entry=HOTLIST_ENTRY,
        hotlist_name="Stolen vehicles",
        match_kind=alerts_pb2.MATCH_KIND_EXACT,
        region_mismatch=False,
        stale=False,
        list_age_seconds=3_600,
        status=alerts_pb2.ALERT_STATUS_UNCONFIRMED,
        raised_at=_ts(1_767_225_604),
    ),
    hotlist_pb2.HotlistChange: hotlist_pb2.HotlistChange(
        entry=HOTLIST_ENTRY, deleted=False, at=_ts(1_767_225_000)
    ),
    audit_pb2.AuditEvent: audit_pb2.AuditEvent(
        event_id="5f0c2a9e8b7d4c31a6e2f0b9d8c7a615",
        kind="search",
        actor="officer-17",
        agency_id="demo-pd",
        action="GET /api/v1/reads",
        outcome="allowed",
        purpose_code="stolen-vehicle",
        case_number="CASE-2026-0042",
        result_count=3,
        details_json='{"agency_ids":["demo-pd"],"plate":"ABC123"}',
        occurred_at=_ts(1_767_225_604),
        source="api",
    ),
}

SCHEMA_TOPICS = [t for t in PIPELINE_TOPICS if t.schema is not None]


def test_logical_names_are_unique_and_legal() -> None:
    names = [t.logical for t in all_topics()]
    assert len(names) == len(set(names))
    for name in names:
        assert LEGAL_TOPIC_NAME.match(name), name
    # Kafka treats '.' and '_' as colliding in metric names; the registry uses '.' and '-' only.
    assert not any("_" in name for name in names)


def test_prefix_applies_to_every_topic() -> None:
    for topic in all_topics():
        assert topic.name() == topic.logical
        assert topic.name(TEST_PREFIX) == TEST_PREFIX + topic.logical
        assert LEGAL_TOPIC_NAME.match(topic.name(TEST_PREFIX))
    prefixed = {t.name(TEST_PREFIX) for t in all_topics()}
    assert len(prefixed) == len(all_topics())
    assert prefixed.isdisjoint(t.name() for t in all_topics())


def test_all_topics_lists_every_pipeline_topic_and_dead_letter_once() -> None:
    expected = list(PIPELINE_TOPICS) + [t.dead_letter for t in PIPELINE_TOPICS if t.dead_letter is not None]
    assert sorted(t.logical for t in all_topics()) == sorted(t.logical for t in expected)


@pytest.mark.parametrize("topic", SCHEMA_TOPICS, ids=lambda t: t.logical)
def test_schema_topics_have_a_dead_letter_topic_unless_state(topic: Topic) -> None:
    if topic.compacted or topic.logical in NO_DEAD_LETTER:
        return
    dead_letter = topic.dead_letter
    assert dead_letter is not None, f"{topic.logical} has a schema but no dead-letter topic"
    assert dead_letter.logical == f"{topic.logical}.dlq"
    assert dead_letter.schema is None, "dead-letter topics hold the original bytes, not a schema"
    assert dead_letter.dead_letter is None
    assert not dead_letter.compacted
    # It must be able to hold whatever the source topic accepted.
    assert dead_letter.max_message_bytes >= topic.max_message_bytes
    assert dead_letter.retention_ms == -1 or dead_letter.retention_ms >= topic.retention_ms


def test_exemptions_are_still_real() -> None:
    """An exemption for a topic that gained a dead-letter topic (or vanished) must be removed."""
    by_name = {t.logical: t for t in PIPELINE_TOPICS}
    for logical in NO_DEAD_LETTER:
        assert logical in by_name
        assert by_name[logical].dead_letter is None


@pytest.mark.parametrize("topic", all_topics(), ids=lambda t: t.logical)
def test_topic_config_is_valid_for_the_broker(topic: Topic) -> None:
    config = topic.config()
    assert config["retention.ms"] == str(topic.retention_ms)
    assert topic.retention_ms == -1 or topic.retention_ms > 0
    assert config["max.message.bytes"] == str(topic.max_message_bytes)
    assert 0 < topic.max_message_bytes <= BROKER_MAX_MESSAGE_BYTES
    assert topic.max_message_bytes <= MAX_REQUEST_BYTES, "producers could not send the largest message"
    assert config.get("cleanup.policy", "delete") == ("compact" if topic.compacted else "delete")
    assert topic.partitions >= 1
    assert topic.key and topic.description


def test_every_schema_has_an_example() -> None:
    schemas = {t.schema for t in SCHEMA_TOPICS}
    assert schemas == set(EXAMPLES)


@pytest.mark.parametrize("topic", SCHEMA_TOPICS, ids=lambda t: t.logical)
def test_example_round_trips_and_fits_the_topic(topic: Topic) -> None:
    assert topic.schema is not None
    example = EXAMPLES[topic.schema]
    payload = example.SerializeToString()
    assert len(payload) <= topic.max_message_bytes
    decoded = decode(topic, payload)
    assert type(decoded) is topic.schema
    assert decoded == example
    assert decoded.SerializeToString(deterministic=True) == example.SerializeToString(deterministic=True)


@pytest.mark.parametrize("topic", SCHEMA_TOPICS, ids=lambda t: t.logical)
def test_undecodable_payload_is_a_dead_letter(topic: Topic) -> None:
    with pytest.raises(DeadLetterError) as caught:
        decode(topic, b"\xff\xff\xff\xff")
    assert caught.value.reason == "undecodable"
    with pytest.raises(DeadLetterError):
        decode(topic, None)
