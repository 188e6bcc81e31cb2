"""Replay policy: filters, loop refusal, validation, replay headers, progress bookkeeping."""

from __future__ import annotations

import dataclasses

import pytest
from typer.testing import CliRunner

from services.cli import app
from services.common.pb.platewatch.v1 import reads_pb2
from services.common.topics import ALERTS, FRAMES, RAW_READS, READS, all_topics
from services.dlq.policy import (
    MAX_PROGRESS_METADATA,
    MAX_REPLAYS,
    SOURCE_TOPICS,
    DeadLetter,
    Decision,
    Progress,
    ReplayPolicy,
    decide,
    parse_time,
    replay_headers,
    source_topic,
)

VALID_READ = reads_pb2.Read(read_id="r-1", plate="AB123").SerializeToString()
# Field 15, wire type 7: no such wire type, so no schema parses this.
GARBAGE = b"\x7f\x7f\x7f not protobuf"


def letter(
    reason: str = "undecodable",
    failed_at_ms: int = 1_700_000_000_000,
    value: bytes | None = VALID_READ,
    offset: int = 5,
    **extra: str,
) -> DeadLetter:
    headers = [("reason", reason.encode()), ("failed_at_ms", str(failed_at_ms).encode())]
    headers += [(name, text.encode()) for name, text in extra.items()]
    return DeadLetter.from_record("p.platewatch.reads.v1.dlq", 0, offset, b"r-1", value, headers, 1)


def policy(**overrides: object) -> ReplayPolicy:
    options: dict[str, object] = {"reasons": None, "validate": False}
    options.update(overrides)
    return ReplayPolicy(**options)  # type: ignore[arg-type]


def test_short_names_map_to_registry_topics_with_dead_letter_topics() -> None:
    assert SOURCE_TOPICS == {"reads": READS, "raw-reads": RAW_READS, "frames": FRAMES, "alerts": ALERTS}
    registry = set(all_topics())
    for topic in SOURCE_TOPICS.values():
        assert topic in registry and topic.dead_letter in registry
    with pytest.raises(ValueError, match="unknown topic"):
        source_topic("platewatch.reads.v1")


def test_reason_filter_leaves_other_reasons_pending() -> None:
    chosen = policy(reasons=frozenset({"bad_timestamp", "missing_plate"}))
    assert decide(letter("bad_timestamp"), chosen, READS).decision is Decision.REPLAY
    verdict = decide(letter("undecodable"), chosen, READS)
    assert verdict.decision is Decision.FILTERED_REASON
    assert not verdict.decision.settles


def test_time_window_is_since_inclusive_until_exclusive() -> None:
    window = policy(since_ms=1000, until_ms=2000)
    assert decide(letter(failed_at_ms=999), window, READS).decision is Decision.FILTERED_TIME
    assert decide(letter(failed_at_ms=1000), window, READS).decision is Decision.REPLAY
    assert decide(letter(failed_at_ms=1999), window, READS).decision is Decision.REPLAY
    assert decide(letter(failed_at_ms=2000), window, READS).decision is Decision.FILTERED_TIME


def test_missing_failure_time_falls_back_to_the_record_timestamp() -> None:
    dead = DeadLetter.from_record("t", 0, 0, None, VALID_READ, [("reason", b"x")], 1500)
    assert dead.failed_at_ms == 1500
    assert decide(dead, policy(since_ms=1000, until_ms=2000), READS).decision is Decision.REPLAY


def test_validate_refuses_what_still_does_not_decode_and_never_the_rest() -> None:
    assert (
        decide(letter(value=GARBAGE), policy(validate=True), READS).decision is Decision.REFUSED_UNDECODABLE
    )
    assert decide(letter(value=None), policy(validate=True), READS).decision is Decision.REFUSED_UNDECODABLE
    assert decide(letter(value=VALID_READ), policy(validate=True), READS).decision is Decision.REPLAY
    # Without --validate the bytes go back unchecked: the operator chose that explicitly.
    assert decide(letter(value=GARBAGE), policy(validate=False), READS).decision is Decision.REPLAY


def test_loop_guard_refuses_messages_replayed_too_often() -> None:
    assert decide(letter(replay_count=str(MAX_REPLAYS - 1)), policy(), READS).decision is Decision.REPLAY
    refused = decide(letter(replay_count=str(MAX_REPLAYS)), policy(), READS)
    assert refused.decision is Decision.REFUSED_LOOP and refused.decision.settles
    # A count nobody can read is treated as exhausted, not as a fresh message.
    assert decide(letter(replay_count="lots"), policy(), READS).decision is Decision.REFUSED_LOOP


def test_loop_guard_counts_earlier_copies_when_the_header_was_lost() -> None:
    # A service that dead-letters a replayed message may drop its headers; the copies remain.
    fresh = letter()
    assert dataclasses.replace(fresh, earlier_copies=MAX_REPLAYS - 1).replay_count == MAX_REPLAYS - 1
    looping = dataclasses.replace(fresh, earlier_copies=MAX_REPLAYS)
    assert decide(looping, policy(), READS).decision is Decision.REFUSED_LOOP
    # The larger count wins either way.
    assert dataclasses.replace(letter(replay_count="2"), earlier_copies=1).replay_count == 2
    headers = dict(replay_headers(dataclasses.replace(fresh, earlier_copies=2)))
    assert headers["replay_count"] == b"3"


def test_fingerprint_is_key_and_bytes() -> None:
    assert letter(offset=1).fingerprint == letter(offset=9, reason="other").fingerprint
    assert letter(value=b"a").fingerprint != letter(value=b"b").fingerprint
    keyed = DeadLetter.from_record("t", 0, 0, b"k1", b"v", [], 0)
    assert keyed.fingerprint != DeadLetter.from_record("t", 0, 0, b"k", b"1v", [], 0).fingerprint


def test_filters_come_before_refusals() -> None:
    # A message outside the policy is left for another run, even if it would be refused.
    outside = letter("other", replay_count="9")
    assert decide(outside, policy(reasons=frozenset({"mine"})), READS).decision is Decision.FILTERED_REASON


def test_replay_headers_point_back_and_count_up() -> None:
    first = dict(replay_headers(letter("missing_plate", offset=42)))
    assert first["replayed_from"] == b"p.platewatch.reads.v1.dlq/0/42"
    assert first["replay_count"] == b"1"
    assert first["dead_letter_reason"] == b"missing_plate"
    again = dict(replay_headers(letter(offset=43, replay_count="2")))
    assert again["replay_count"] == b"3"


def test_policy_must_name_something_sensible() -> None:
    with pytest.raises(ValueError):
        ReplayPolicy(reasons=frozenset(), validate=True)
    with pytest.raises(ValueError):
        ReplayPolicy(reasons=None, validate=True, max_messages=0)
    with pytest.raises(ValueError):
        ReplayPolicy(reasons=None, validate=True, since_ms=5, until_ms=5)


def test_parse_time_accepts_iso_and_epoch_ms() -> None:
    assert parse_time("1700000000000") == 1_700_000_000_000
    assert parse_time("2023-11-14T22:13:20Z") == 1_700_000_000_000
    assert parse_time("2023-11-14T22:13:20") == 1_700_000_000_000
    assert parse_time("2023-11-15T00:13:20+02:00") == 1_700_000_000_000


def test_progress_advances_its_watermark_over_contiguous_settled_offsets() -> None:
    progress = Progress(watermark=10)
    progress.settle(12)
    progress.settle(13)
    progress.settle(15)
    assert (progress.watermark, progress.settled) == (10, {12, 13, 15})
    assert progress.metadata() == "v1:12-13,15"
    progress.settle(10)
    progress.settle(11)
    assert (progress.watermark, progress.settled) == (14, {15})
    assert progress.is_settled(3) and progress.is_settled(15) and not progress.is_settled(14)


def test_progress_survives_a_commit_round_trip() -> None:
    progress = Progress(watermark=3)
    for offset in (5, 6, 7, 9, 20):
        progress.settle(offset)
    restored = Progress.from_commit(progress.watermark, progress.metadata())
    assert (restored.watermark, restored.settled) == (3, {5, 6, 7, 9, 20})
    assert Progress.from_commit(None, None).watermark == 0
    # Metadata written by something else is ignored rather than misread.
    assert Progress.from_commit(7, "something else").settled == set()
    # Ranges the watermark has reached are folded into it.
    assert Progress.from_commit(5, "v1:2-4,5-6,9").watermark == 7


def test_progress_watermark_raised_by_retention() -> None:
    progress = Progress(watermark=0)
    for offset in (3, 4, 8):
        progress.settle(offset)
    progress.raise_watermark(2)
    assert (progress.watermark, progress.settled) == (2, {3, 4, 8})
    progress.raise_watermark(3)
    assert (progress.watermark, progress.settled) == (5, {8})


def test_progress_knows_when_its_metadata_would_no_longer_fit() -> None:
    progress = Progress(watermark=0)
    offset = 1_000_000
    while progress.fits_with(offset):
        progress.settle(offset)
        offset += 2  # never contiguous: one range per offset
    assert len(progress.metadata()) <= MAX_PROGRESS_METADATA
    # Filling the gap between two ranges merges them, which never lengthens the record.
    assert progress.fits_with(offset - 3)
    # An offset that is already settled changes nothing.
    assert progress.fits_with(offset - 2)


def test_cli_requires_an_explicit_policy() -> None:
    runner = CliRunner()
    no_validate_choice = runner.invoke(app, ["dlq", "replay", "--topic", "reads", "--reason", "x"])
    assert no_validate_choice.exit_code != 0
    no_selection = runner.invoke(app, ["dlq", "replay", "--topic", "reads", "--validate"])
    assert no_selection.exit_code != 0 and "--all-reasons" in no_selection.output
    both = runner.invoke(
        app, ["dlq", "replay", "--topic", "reads", "--validate", "--reason", "x", "--all-reasons"]
    )
    assert both.exit_code != 0
    unknown = runner.invoke(app, ["dlq", "replay", "--topic", "nope", "--validate", "--all-reasons"])
    assert unknown.exit_code != 0 and "unknown topic" in unknown.output
