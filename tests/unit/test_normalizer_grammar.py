"""Region grammar cleanup: look-alike fixes only where a format demands a letter or a digit."""

from __future__ import annotations

from services.normalizer.grammar import PlateGrammar, default_grammar, expand_pattern


def test_strips_separators_and_uppercases() -> None:
    plate = default_grammar().clean(" 7-abc.123 ")
    assert (plate.text, plate.region, plate.format_known, plate.fixes) == ("7ABC123", "US-CA", True, 0)


def test_fixes_letter_o_in_digit_position_only() -> None:
    # California 1LLL DDD: the O in the digit block becomes 0, the O in the letter block stays.
    plate = default_grammar().clean("7OBC1O3")
    assert plate.text == "7OBC103"
    assert plate.region == "US-CA"
    assert plate.fixes == 1


def test_fixes_digit_zero_in_letter_position() -> None:
    # French SIV AA-123-AA: a 0 read in the letter block is an O.
    grammar = PlateGrammar.from_yaml()
    plate = grammar.clean("A0-123-CD")
    assert plate.text == "AO123CD"
    assert plate.format_known
    # FR and IT share this format: the region is ambiguous.
    assert plate.region == ""


def test_prefers_fewest_substitutions() -> None:
    # Mercosur (LLLDLDD) fits with no fix; Brazil-old/US (LLLDDDD) would need D->0.
    plate = default_grammar().clean("ABC1D23")
    assert (plate.text, plate.region, plate.fixes) == ("ABC1D23", "BR", 0)


def test_unknown_format_left_as_is() -> None:
    plate = default_grammar().clean("O0O0O0O0O0O")
    assert plate.text == "O0O0O0O0O0O"
    assert not plate.format_known
    assert plate.region == ""


def test_expand_pattern_lengths() -> None:
    assert expand_pattern("[A-Z]{1,2}[0-9]") == [("L", "D"), ("L", "L", "D")]
    assert expand_pattern("W[0-9]{2}") == [("W", "D", "D")]
