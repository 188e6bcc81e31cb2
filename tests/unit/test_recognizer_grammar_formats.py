"""Formats in services/normalizer/grammars.yaml that the recognizer's look-alike and edge-trim choices rely
on."""

from __future__ import annotations

from services.inference import decoding
from services.normalizer.grammar import default_grammar


def test_us_digits_then_letters_is_a_known_format() -> None:
    plate = default_grammar().clean("858GAB")
    assert (plate.text, plate.region, plate.format_known, plate.fixes) == ("858GAB", "US", True, 0)


def test_us_digits_then_letters_decides_a_look_alike() -> None:
    # 123 ABC: the O read as 0 in the letter block loses to the model's own O reading.
    chosen = decoding.choose(
        [
            decoding.ScoredCandidate(decoding.Candidate("3550CT", 0.6), -0.5, path_log_prob=-0.5),
            decoding.ScoredCandidate(decoding.Candidate("355OCT", 0.5), -1.0, path_log_prob=-1.0),
        ]
    )
    assert chosen[0].candidate.text == "355OCT"
    assert chosen[0].region == "US"


def _readings(*texts_and_log_probs: tuple[str, float]) -> list[decoding.ScoredCandidate]:
    return [
        decoding.ScoredCandidate(decoding.Candidate(text, 0.9), log_prob, path_log_prob=log_prob)
        for text, log_prob in texts_and_log_probs
    ]


def test_camera_region_formats_decide_a_look_alike_first() -> None:
    # A Slovak camera: BA 268 IM; the model prefers a 1 for the I (no base format fits either way).
    scored = _readings(("BA2681M", -0.2), ("BA268IM", -1.0))
    assert decoding.choose(scored)[0].candidate.text == "BA268IM"  # FR/IT LL DDD LL, a base format
    hinted = decoding.choose(scored, region_hint="sk")
    assert (hinted[0].candidate.text, hinted[0].region, hinted[0].format_known) == ("BA268IM", "SK", True)
    # A Croatian camera: LL DDDD L is its format, so the model's reading stays first.
    assert decoding.choose(scored, region_hint="hr")[0].candidate.text == "BA2681M"


def test_camera_region_formats_decide_an_edge_trim() -> None:
    # Illinois' LL DDDDD is no base format: only a camera in Illinois drops the stray leading X.
    scored = _readings(("XAB12345", -0.1), ("AB12345", -1.5))
    assert decoding.choose(scored)[0].candidate.text == "XAB12345"
    hinted = decoding.choose(scored, region_hint="us-il")
    assert (hinted[0].candidate.text, hinted[0].region, hinted[0].format_known) == ("AB12345", "US-IL", True)
    # Both trims fit some format; a Massachusetts camera takes its own D LLL DD over the likelier
    # base-format Dutch sidecode LLL DD L.
    scored = _readings(("3KKK33A", -0.1), ("KKK33A", -0.5), ("3KKK33", -1.0))
    assert decoding.choose(scored)[0].candidate.text == "KKK33A"
    assert decoding.choose(scored, region_hint="us-ma")[0].candidate.text == "3KKK33"


def test_camera_region_promotes_only_plate_like_readings() -> None:
    # Lower case is not plate text (the PP-OCRv4 reader emits it): it never wins on a region's format.
    scored = _readings(("wrk346al", -0.1), ("rk346al", -0.5))
    assert decoding.choose(scored, region_hint="sk")[0].candidate.text == "wrk346al"


def test_camera_region_swap_needs_a_likely_enough_look_alike() -> None:
    # Maine's 1234 AB: the O read as 0 stays when the O reading is far less likely (ratio 0.1).
    scored = _readings(("0123AB", -0.1), ("O123AB", -4.0))
    assert decoding.choose(scored, region_hint="us-me")[0].candidate.text == "0123AB"
    scored = _readings(("O123AB", -0.1), ("0123AB", -1.5))
    assert decoding.choose(scored, region_hint="us-me")[0].candidate.text == "0123AB"
    # Not a look-alike pair (M/W): never swapped, whatever the format says.
    scored = _readings(("ABC123W", -0.1), ("ABC1234", -0.2))
    assert decoding.choose(scored, region_hint="us-ny")[0].candidate.text == "ABC123W"
    # An unknown region acts as none, and a country-level hint does not bring in every state's series
    # (Maine's 1234 AB would take 3550CT).
    scored = _readings(("3550CT", -0.5), ("355OCT", -1.0))
    for hint in ("jp", "us", "us-ia", None):
        assert decoding.choose(scored, region_hint=hint)[0].candidate.text == "355OCT", hint
    assert decoding.choose(scored, region_hint="us-me")[0].candidate.text == "3550CT"
