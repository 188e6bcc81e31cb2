"""Formats in services/normalizer/grammars.yaml that the recognizer's look-alike choice relies on."""

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
