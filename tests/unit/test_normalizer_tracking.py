"""Pass tracking, consensus, read ids and direction: pure logic, no Kafka."""

from __future__ import annotations

import json

from services.common.pb.platewatch.v1 import common_pb2, reads_pb2
from services.normalizer.grammar import default_grammar
from services.normalizer.tracking import (
    PassTracker,
    Track,
    build_read,
    consensus,
    direction_of_travel,
    make_read_id,
    ns_timestamp,
    track_state,
    track_state_json,
)

T0_NS = 1_700_000_000 * 1_000_000_000
FRAME_NS = 100_000_000  # 10 fps
CAMERA = common_pb2.CameraInfo(camera_id="cam-1", agency_id="agency", heading_deg=0.0)


def raw(
    text: str,
    frame: int,
    *,
    camera: str = "cam-1",
    t_ns: int | None = None,
    box: tuple[int, int, int, int] = (600, 600, 120, 40),
    confidence: float = 0.9,
    plate_index: int = 0,
) -> reads_pb2.RawRead:
    read = reads_pb2.RawRead(
        camera_id=camera,
        agency_id="agency",
        frame_sequence=frame,
        plate_index=plate_index,
        captured_at=ns_timestamp(T0_NS + frame * FRAME_NS if t_ns is None else t_ns),
        box=common_pb2.Box(x=box[0], y=box[1], width=box[2], height=box[3]),
        frame_width=1280,
        frame_height=720,
        crop_jpeg=f"crop-{frame}".encode(),
    )
    read.candidates.add(text=text, confidence=confidence, char_confidences=[confidence] * len(text))
    return read


def feed(tracker: PassTracker, reads: list[reads_pb2.RawRead]) -> list[Track]:
    closed: list[Track] = []
    for offset, read in enumerate(reads):
        closed.extend(tracker.add(read, offset))
    return closed


def test_groups_frames_of_one_pass() -> None:
    tracker = PassTracker(pass_gap_s=2.0)
    closed = feed(tracker, [raw("7ABC123", f, box=(600, 600 - 10 * f, 120, 40)) for f in range(8)])
    assert closed == []
    tracks = tracker.close_all()
    assert len(tracks) == 1
    assert tracks[0].frames == 8


def test_same_plate_twice_separated_by_more_than_gap_is_two_passes() -> None:
    tracker = PassTracker(pass_gap_s=2.0)
    first = [raw("7ABC123", f) for f in range(5)]
    # Same plate again 3 s (event time) after the first pass's last frame.
    second = [
        raw("7ABC123", 100 + f, t_ns=T0_NS + 4 * FRAME_NS + 3_000_000_000 + f * FRAME_NS) for f in range(5)
    ]
    closed = feed(tracker, first + second)
    assert len(closed) == 1 and closed[0].frames == 5
    remaining = tracker.close_all()
    assert len(remaining) == 1 and remaining[0].frames == 5
    assert closed[0].read_id != remaining[0].read_id


def test_same_plate_within_gap_stays_one_pass() -> None:
    tracker = PassTracker(pass_gap_s=2.0)
    reads = [raw("7ABC123", 0), raw("7ABC123", 1), raw("7ABC123", 2, t_ns=T0_NS + 1_900_000_000)]
    assert feed(tracker, reads) == []
    assert [t.frames for t in tracker.close_all()] == [3]


def test_two_vehicles_at_once() -> None:
    tracker = PassTracker(pass_gap_s=2.0)
    reads: list[reads_pb2.RawRead] = []
    for f in range(6):
        reads.append(raw("7ABC123", f, box=(200, 600 - 10 * f, 120, 40), plate_index=0))
        reads.append(raw("8XYZ987", f, box=(900, 600 - 10 * f, 120, 40), plate_index=1))
    assert feed(tracker, reads) == []
    tracks = tracker.close_all()
    assert sorted(t.frames for t in tracks) == [6, 6]
    plates = sorted(build_read(t, CAMERA, default_grammar(), T0_NS, 0.0).plate for t in tracks)
    assert plates == ["7ABC123", "8XYZ987"]


def test_other_camera_does_not_close_or_join() -> None:
    tracker = PassTracker(pass_gap_s=2.0)
    feed(tracker, [raw("7ABC123", 0), raw("7ABC123", 1, camera="cam-2", t_ns=T0_NS + 10_000_000_000)])
    assert sorted(t.camera_id for t in tracker.close_all()) == ["cam-1", "cam-2"]


def test_consensus_fixes_one_frame_misread() -> None:
    tracker = PassTracker(pass_gap_s=2.0)
    texts = ["7ABC123", "7ABC123", "7A8C123", "7ABC123", "7ABC123"]
    feed(tracker, [raw(text, f, confidence=0.8) for f, text in enumerate(texts)])
    (track,) = tracker.close_all()
    read = build_read(track, CAMERA, default_grammar(), T0_NS, 0.0)
    assert read.plate == "7ABC123"
    assert read.region == "US-CA"
    assert read.format_known
    assert read.frames == 5
    assert 0.7 < read.confidence <= 0.8
    assert read.candidates[0].text == "7ABC123"
    assert "7A8C123" in [c.text for c in read.candidates]


def test_best_frame_supplies_crop_and_box() -> None:
    tracker = PassTracker(pass_gap_s=2.0)
    reads = [
        raw("7ABC123", f, confidence=c, box=(600, 600 - 10 * f, 120, 40))
        for f, c in enumerate([0.5, 0.95, 0.6])
    ]
    feed(tracker, reads)
    (track,) = tracker.close_all()
    read = build_read(track, CAMERA, default_grammar(), T0_NS, 0.0)
    assert read.crop_jpeg == b"crop-1"
    assert read.box.y == 590
    assert read.captured_at == ns_timestamp(T0_NS + FRAME_NS)
    assert read.first_seen == ns_timestamp(T0_NS)
    assert read.last_seen == ns_timestamp(T0_NS + 2 * FRAME_NS)


def test_read_id_stable_and_time_ordered() -> None:
    def ids() -> list[str]:
        tracker = PassTracker(pass_gap_s=2.0)
        reads = [raw("7ABC123", f) for f in range(3)]
        reads += [raw("8XYZ987", 100 + f, t_ns=T0_NS + 5_000_000_000 + f * FRAME_NS) for f in range(3)]
        closed = feed(tracker, reads) + tracker.close_all()
        return [t.read_id for t in closed]

    first, again = ids(), ids()
    assert first == again
    assert len(first) == 2 and first[0] < first[1]
    assert all(len(i) == 24 and int(i, 16) >= 0 for i in first)
    assert first[0][:12] == f"{T0_NS // 1_000_000:012x}"
    assert make_read_id("cam-1", 0, 0, T0_NS) != make_read_id("cam-1", 0, 1, T0_NS)


def restore_from(tracker: PassTracker, changed: list[Track]) -> PassTracker:
    """What the service does: state records through JSON, then `PassTracker.restore`."""
    records = [json.loads(json.dumps(track_state(t))) for t in changed]
    return PassTracker.restore(2.0, json.loads(json.dumps(tracker.partition_state())), records)


def test_state_round_trip_continues_track() -> None:
    tracker = PassTracker(pass_gap_s=2.0)
    feed(tracker, [raw("7ABC123", f) for f in range(3)])
    changed, closed_ids = tracker.take_changes()
    assert closed_ids == []
    restored = restore_from(tracker, changed)
    assert restored.open_count() == 1
    assert restored.watermarks == tracker.watermarks
    assert [t.best.offset for t in restored.missing_best_frames()] == [0]
    restored.add(raw("7ABC123", 3), 3)
    (track,) = restored.close_all()
    (original,) = tracker.close_all()
    assert track.frames == 4
    assert track.read_id == original.read_id
    # The restored track was persisted, so closing it needs a tombstone.
    assert restored.take_changes() == ([], [track.read_id])


def test_take_changes_reports_only_this_batch() -> None:
    tracker = PassTracker(pass_gap_s=2.0)
    feed(tracker, [raw("7ABC123", 0, camera="cam-1"), raw("8XYZ987", 0, camera="cam-2")])
    first, _ = tracker.take_changes()
    assert len(first) == 2 and tracker.open_count() == 2
    # Next batch: only cam-2's track changes; a third track starts and closes within the batch.
    tracker.add(raw("8XYZ987", 1, camera="cam-2"), 2)
    tracker.add(raw("5QQQ555", 2, camera="cam-3"), 3)
    (passing,) = tracker.add(raw("5QQQ555", 100, camera="cam-3", t_ns=T0_NS + 10_000_000_000), 4)
    changed, closed_ids = tracker.take_changes()
    cam2 = next(t for t in first if t.camera_id == "cam-2")
    assert {t.read_id for t in changed} == {cam2.read_id, tracker.tracks["cam-3"][0].read_id}
    assert closed_ids == []  # the closed cam-3 track was never persisted: no tombstone needed
    assert passing.frames == 1
    # Idle close of everything: tombstones for the persisted tracks, nothing changed.
    closed = tracker.close_all()
    changed, closed_ids = tracker.take_changes()
    assert changed == [] and sorted(closed_ids) == sorted(t.read_id for t in closed)
    assert tracker.open_count() == 0
    assert tracker.take_changes() == ([], [])


def test_restore_reads_version_1_snapshot_and_rewrites_its_tracks() -> None:
    tracker = PassTracker(pass_gap_s=2.0)
    feed(tracker, [raw("7ABC123", f) for f in range(3)])
    (track,) = tracker.tracks["cam-1"]
    version_1 = {"v": 1, "watermarks": tracker.watermarks, "tracks": [track_state(track)]}
    restored = PassTracker.restore(2.0, json.loads(json.dumps(version_1)), [])
    assert restored.open_count() == 1
    changed, closed_ids = restored.take_changes()
    assert [t.read_id for t in changed] == [track.read_id] and closed_ids == []


def test_direction_from_box_motion_and_heading() -> None:
    up, down = (600, 600, 120, 40), (600, 300, 120, 40)
    # Camera looking north: box moving up the image = driving away = northbound.
    assert direction_of_travel(up, down, 1280, 720, 0.0) == "northbound"
    assert direction_of_travel(down, up, 1280, 720, 0.0) == "southbound"
    # Camera looking east, vehicle crossing left to right = heading + 90 = southbound.
    assert direction_of_travel((100, 400, 120, 40), (900, 400, 120, 40), 1280, 720, 90.0) == "southbound"
    # Growing box (approaching) on a west-looking camera = eastbound.
    assert direction_of_travel((600, 400, 60, 20), (600, 400, 240, 80), 1280, 720, 270.0) == "eastbound"
    assert direction_of_travel(up, up, 1280, 720, 0.0) == ""
    assert direction_of_travel(up, down, 1280, 720, None) == ""


def test_consecutive_vehicles_with_similar_plates_are_two_passes() -> None:
    """Vehicle 1 approaches (box grows and moves down); 0.8 s later vehicle 2, whose plate is two
    edits away, appears far up the road again. Text similarity alone must not merge them."""
    tracker = PassTracker(pass_gap_s=2.0)
    first = [raw("7ABC123", f, box=(560, 370 + 25 * f, 150 + 8 * f, 75 + 4 * f)) for f in range(10)]
    second = [raw("ABC1234", f, box=(590, 370 + 25 * (f - 18), 150, 75)) for f in range(18, 26)]
    feed(tracker, first + second)
    tracks = tracker.close_all()
    assert sorted(consensus(t.votes).text for t in tracks) == ["7ABC123", "ABC1234"]


def test_heavily_misread_frame_still_joins_when_the_box_continues() -> None:
    tracker = PassTracker(pass_gap_s=2.0)
    texts = ["7ABC123", "7ABC123", "7ABC123", "7ARG128", "7ABC123", "7ABC123"]  # frame 3: 3 wrong
    feed(tracker, [raw(text, f, box=(600, 600 - 10 * f, 120, 40)) for f, text in enumerate(texts)])
    tracks = tracker.close_all()
    assert [(consensus(t.votes).text, len(t.votes)) for t in tracks] == [("7ABC123", 6)]


def test_build_read_rewrites_look_alikes_only_under_the_cameras_region() -> None:
    # Every frame reads 8ZX0123: no known format as read. Germany (closed) would take it as BZX0123.
    tracker = PassTracker(pass_gap_s=2.0)
    feed(tracker, [raw("8ZX0123", f, box=(600, 600 - 10 * f, 120, 40)) for f in range(4)])
    (track,) = tracker.close_all()
    read = build_read(track, CAMERA, default_grammar(), T0_NS, 0.0)
    assert (read.plate, read.region, read.format_known) == ("8ZX0123", "", False)
    read = build_read(track, CAMERA, default_grammar(), T0_NS, 0.0, region_hint="us")
    assert (read.plate, read.region, read.format_known) == ("8ZX0123", "", False)
    # A Maryland camera: Maryland's 1AB2345, as read.
    read = build_read(track, CAMERA, default_grammar(), T0_NS, 0.0, region_hint="us-md")
    assert (read.plate, read.region, read.format_known) == ("8ZX0123", "US-MD", True)
    read = build_read(track, CAMERA, default_grammar(), T0_NS, 0.0, region_hint="de")
    assert (read.plate, read.region, read.format_known) == ("BZX0123", "DE", True)
    assert read.candidates[0].text == "BZX0123"


def test_a_read_names_the_region_most_of_its_frames_read_printed_on_the_plate() -> None:
    def pass_of(printed: list[str]) -> Track:
        tracker = PassTracker(pass_gap_s=2.0)
        reads = [raw("ABC123", f, box=(600, 600 - 10 * f, 120, 40)) for f in range(len(printed))]
        for read, region in zip(reads, printed, strict=True):
            read.printed_region = region
        feed(tracker, reads)
        (track,) = tracker.close_all()
        return track

    # ABC123 fits formats of many regions: the grammar names none, the words on the plate do.
    assert build_read(pass_of(["", "", ""]), CAMERA, default_grammar(), T0_NS, 0.0).region == ""
    assert (
        build_read(pass_of(["", "us-tx", "US-TX"]), CAMERA, default_grammar(), T0_NS, 0.0).region == "US-TX"
    )
    assert (
        build_read(pass_of(["US-TX", "US-OK", "US-TX"]), CAMERA, default_grammar(), T0_NS, 0.0).region
        == "US-TX"
    )
    # Frames that disagree evenly name nothing printed: the grammar's region stands.
    tied = pass_of(["US-TX", "US-OK", ""])
    assert build_read(tied, CAMERA, default_grammar(), T0_NS, 0.0).region == ""
    unmarked = pass_of(["", "", ""])
    hinted = build_read(unmarked, CAMERA, default_grammar(), T0_NS, 0.0, region_hint="us-ia").region
    assert hinted == "US"  # the grammar's, under an Iowa camera's hint
    assert build_read(tied, CAMERA, default_grammar(), T0_NS, 0.0, region_hint="us-ia").region == hinted
    # Printed beats a region hint's format: the plate says Texas.
    texas = pass_of(["US-TX"])
    assert build_read(texas, CAMERA, default_grammar(), T0_NS, 0.0, region_hint="us-ia").region == "US-TX"
    # And the grammar cleans under it, not under the camera's closed region: a Texas car passing a
    # German camera keeps its text (Germany would fix 8ZX0123 into BZX0123).
    tracker = PassTracker(pass_gap_s=2.0)
    reads = [raw("8ZX0123", f, box=(600, 600 - 10 * f, 120, 40)) for f in range(2)]
    for read in reads:
        read.printed_region = "US-TX"
    feed(tracker, reads)
    (visitor,) = tracker.close_all()
    read = build_read(visitor, CAMERA, default_grammar(), T0_NS, 0.0, region_hint="de")
    assert (read.plate, read.region) == ("8ZX0123", "US-TX")


def test_the_printed_region_survives_the_state_record_and_old_records_still_load() -> None:
    tracker = PassTracker(pass_gap_s=2.0)
    first, second = raw("ABC123", 0), raw("ABC123", 1, box=(600, 590, 120, 40))
    first.printed_region = "US-NM"
    feed(tracker, [first, second])
    (track,) = tracker.take_changes()[0]
    record = json.loads(json.dumps(track_state(track)))
    assert json.loads(track_state_json(track)) == record
    # Observations stay six items (a normalizer of the release before restores the record); the
    # printed regions ride under a key of their own.
    assert all(len(obs) == 6 for obs in record["votes"]) and record["printed"] == ["US-NM", ""]
    (restored,) = PassTracker.restore(2.0, None, [record]).close_all()
    assert [vote.printed_region for vote in restored.votes] == ["US-NM", ""]
    # A record without the key (written before it, or by a pass that read no printed region).
    del record["printed"]
    (older,) = PassTracker.restore(2.0, None, [record]).close_all()
    assert [vote.printed_region for vote in older.votes] == ["", ""]
