"""Early reads of open passes (pure tracking logic): when a pass deserves one, only one, and the mark
survives a restore."""

from __future__ import annotations

import json

from services.common.pb.platewatch.v1 import common_pb2, reads_pb2
from services.normalizer.grammar import default_grammar
from services.normalizer.tracking import PassTracker, ns_timestamp, track_state

T0_NS = 1_700_000_000 * 1_000_000_000
FRAME_NS = 200_000_000
GRAMMAR = default_grammar()
CONFIDENT = 0.9


def raw(text: str, frame: int, confidence: float, *, camera: str = "cam-1") -> reads_pb2.RawRead:
    read = reads_pb2.RawRead(
        camera_id=camera,
        agency_id="agency",
        frame_sequence=frame,
        captured_at=ns_timestamp(T0_NS + frame * FRAME_NS),
        box=common_pb2.Box(x=600, y=600 - 20 * frame, width=120, height=40),
        frame_width=1280,
        frame_height=720,
    )
    read.candidates.add(text=text, confidence=confidence, char_confidences=[confidence] * len(text))
    return read


def early_plates(tracker: PassTracker) -> list[str]:
    ready = tracker.take_early(GRAMMAR, CONFIDENT, min_frames=1)
    tracker.take_changes()
    return [plate.text for _, plate in ready]


def test_one_confident_grammar_valid_frame_is_enough() -> None:
    tracker = PassTracker(pass_gap_s=2.0)
    tracker.add(raw("AB12CDE", 1, 0.95), 0)
    assert early_plates(tracker) == ["AB12CDE"]


def test_a_less_confident_frame_waits_for_a_second_agreeing_one() -> None:
    tracker = PassTracker(pass_gap_s=2.0)
    tracker.add(raw("AB12CDE", 1, 0.85), 0)
    assert early_plates(tracker) == []
    tracker.add(raw("AB12CDE", 2, 0.86), 1)
    assert early_plates(tracker) == ["AB12CDE"]


def test_text_of_no_known_format_never_gets_an_early_read() -> None:
    tracker = PassTracker(pass_gap_s=2.0)
    for frame in range(1, 4):
        tracker.add(raw("QQQQQQQQQQQQ", frame, 0.99), frame)
    assert early_plates(tracker) == []


def test_only_one_early_read_per_pass_and_min_frames_holds() -> None:
    tracker = PassTracker(pass_gap_s=2.0)
    tracker.add(raw("AB12CDE", 1, 0.95), 0)
    assert tracker.take_early(GRAMMAR, CONFIDENT, min_frames=2) == []
    tracker.add(raw("AB12CDE", 2, 0.95), 1)
    assert [p.text for _, p in tracker.take_early(GRAMMAR, CONFIDENT, min_frames=2)] == ["AB12CDE"]
    tracker.take_changes()
    tracker.add(raw("AB12CDE", 3, 0.95), 2)
    assert early_plates(tracker) == []


def test_a_pass_that_closes_before_the_batch_ends_gets_no_early_read() -> None:
    """Its final read goes out in the same transaction; an early one would only be noise."""
    tracker = PassTracker(pass_gap_s=2.0)
    tracker.add(raw("AB12CDE", 1, 0.95), 0)
    closed = tracker.add(raw("XY34ZZZ", 30, 0.95), 1)  # 5.8 s later: the first pass closes
    assert [t.early_plate for t in closed] == [None]
    assert early_plates(tracker) == ["XY34ZZZ"]


def test_the_early_mark_survives_a_restore() -> None:
    tracker = PassTracker(pass_gap_s=2.0)
    tracker.add(raw("AB12CDE", 1, 0.95), 0)
    assert early_plates(tracker) == ["AB12CDE"]
    track = tracker.tracks["cam-1"][0]
    state = json.loads(json.dumps(track_state(track)))
    restored = PassTracker.restore(2.0, tracker.partition_state(), [state])
    again = restored.tracks["cam-1"][0]
    assert (again.early_plate, again.early_region) == ("AB12CDE", "UK")
    again_track_added = restored.add(raw("AB12CDE", 2, 0.95), 1)
    assert again_track_added == []
    assert early_plates(restored) == []


def test_early_read_uses_the_cameras_region_hint() -> None:
    # B0A123 fits no format as read; a German camera's reads are fixed into BOA123, others are not.
    regions = {"cam-de": "de", "cam-us": "us"}
    tracker = PassTracker(pass_gap_s=2.0)
    for offset, camera in enumerate(["cam-de", "cam-us", "cam-x"]):
        tracker.add(raw("B0A123", 1, 0.95, camera=camera), offset)
    ready = tracker.take_early(GRAMMAR, CONFIDENT, min_frames=1, region_of=regions.get)
    assert [(track.camera_id, plate.text, plate.region) for track, plate in ready] == [
        ("cam-de", "BOA123", "DE")
    ]
    assert [t.early_region for t in tracker.tracks["cam-de"]] == ["DE"]


def test_the_early_region_is_the_printed_one_as_the_early_read_carries() -> None:
    tracker = PassTracker(pass_gap_s=2.0)
    read = raw("ABC1234", 1, 0.95)
    read.printed_region = "US-TX"
    tracker.add(read, 0)
    ((track, plate),) = tracker.take_early(GRAMMAR, CONFIDENT, min_frames=1)
    # The grammar alone names no region for ABC1234 (US and Brazil share the format); under the
    # printed Texas it fits a US format, and the early region is the printed one.
    assert GRAMMAR.clean("ABC1234").region == "" and plate.format_known and track.early_region == "US-TX"
