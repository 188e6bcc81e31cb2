"""The normalizer's shortcuts give exactly what the long way gives: the grammar's no-fix fast path and
the state record encoded from cached observation encodings."""

from __future__ import annotations

import json
import random

from services.common.pb.platewatch.v1 import common_pb2, reads_pb2
from services.normalizer.grammar import PlateFormat, PlateGrammar, _applies, _fit
from services.normalizer.tracking import PassTracker, ns_timestamp, track_state, track_state_json

T0_NS = 1_700_000_000 * 1_000_000_000


def test_grammar_fast_path_matches_the_full_search() -> None:
    every_region = frozenset(fmt.region for fmt in PlateGrammar.from_yaml().formats)
    for closed in (None, every_region):
        fast = PlateGrammar.from_yaml()
        if closed is not None:
            fast = PlateGrammar(fast.formats, closed)
        slow = PlateGrammar(fast.formats, fast.closed_regions)

        def fits_without_fix(stripped: str, hint: str, slow: PlateGrammar = slow) -> list[PlateFormat]:
            # Format by format, as the look-alike search does, instead of one regex per format.
            return [
                fmt
                for fmt in slow._by_length.get(len(stripped), [])
                if (_applies(fmt, hint) if hint else not fmt.regional)
                and _fit(stripped, fmt.positions) == (stripped, 0)
            ]

        slow._exact_fits = fits_without_fix  # type: ignore[method-assign]
        rng = random.Random(3)
        alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"
        texts = ["AB12CDE", "7ABC123", "MH12AB1234", "WX12345", "B MW 123", "ab-12 cde", "0O0O0O"]
        texts += ["".join(rng.choice(alphabet) for _ in range(rng.randint(4, 10))) for _ in range(1500)]
        for hint in (None, "us", "us-ca", "us-ia", "de", "br", "fr", "sk"):
            for text in texts:
                assert fast.clean(text, hint) == slow.clean(text, hint), (text, hint)


def test_track_state_json_equals_track_state() -> None:
    tracker = PassTracker(pass_gap_s=2.0)
    for frame in range(5):
        raw = reads_pb2.RawRead(
            camera_id="cam-1",
            agency_id="agency",
            frame_sequence=frame,
            captured_at=ns_timestamp(T0_NS + frame * 100_000_000),
            box=common_pb2.Box(x=600, y=600 - 10 * frame, width=120, height=40),
            frame_width=1280,
            frame_height=720,
        )
        text = "AB12CDE" if frame != 2 else "AB12C0E"
        raw.candidates.add(text=text, confidence=0.8 + frame / 100, char_confidences=[0.912345678] * 7)
        raw.candidates.add(text="A812CDE", confidence=0.1)
        tracker.add(raw, frame)
    (track,) = tracker.tracks["cam-1"]
    track.early_plate, track.early_region = "AB12CDE", "UK"
    assert json.loads(track_state_json(track)) == json.loads(json.dumps(track_state(track)))
