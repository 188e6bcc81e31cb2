"""Region grammar cleanup: no rewrite without the camera's region; with it, look-alike fixes only into
formats of that region (and only of a region whose formats are closed), where a format demands a letter
or a digit."""

from __future__ import annotations

from pathlib import Path

import pytest

from services.normalizer.grammar import PlateGrammar, default_grammar, expand_pattern


def all_closed() -> PlateGrammar:
    """The shipped formats, with every region treated as closed (exercises the fixing itself)."""
    grammar = default_grammar()
    return PlateGrammar(grammar.formats, frozenset(fmt.region for fmt in grammar.formats))


def test_strips_separators_and_uppercases() -> None:
    plate = default_grammar().clean(" 7-abc.123 ")
    assert (plate.text, plate.region, plate.format_known, plate.fixes) == ("7ABC123", "US-CA", True, 0)


@pytest.mark.parametrize("grammar", [default_grammar(), all_closed()])
def test_no_hint_never_rewrites_a_character(grammar: PlateGrammar) -> None:
    # A valid US read stays as read; US and Brazil share LLLDDDD, so the region is not known.
    plate = grammar.clean("ABC1234")
    assert (plate.text, plate.region, plate.format_known, plate.fixes) == ("ABC1234", "", True, 0)
    # Fits no format as read (the old cleanup forced it into California's 8ZXO123): kept, marked unknown.
    plate = grammar.clean("8ZX0123")
    assert (plate.text, plate.region, plate.format_known, plate.fixes) == ("8ZX0123", "", False, 0)
    # A look-alike in a digit block: without a region nothing says which character it is.
    plate = grammar.clean("7OBC1O3")
    assert (plate.text, plate.format_known) == ("7OBC1O3", False)


def test_hint_reports_the_region_of_an_exact_fit() -> None:
    plate = default_grammar().clean("ABC1234", "us")
    assert (plate.text, plate.region, plate.format_known, plate.fixes) == ("ABC1234", "US", True, 0)
    plate = default_grammar().clean("ABC1234", "BR")
    assert (plate.text, plate.region) == ("ABC1234", "BR")


def test_us_hint_fixes_only_into_us_formats() -> None:
    grammar = all_closed()
    # California 1LLL DDD: the O in the digit block becomes 0, the O in the letter block stays.
    plate = grammar.clean("7OBC1O3", "us")
    assert (plate.text, plate.region, plate.format_known, plate.fixes) == ("7OBC103", "US-CA", True, 1)
    # California and US LLLDDDD tie (one fix each); Germany (BZX0123) also would, but is not US.
    plate = grammar.clean("8ZX0123", "us")
    assert (plate.text, plate.region, plate.fixes) == ("8ZXO123", "US", 1)
    # A Maryland camera: it fits Maryland's 1AB2345 (a regional format) as read.
    plate = grammar.clean("8ZX0123", "us-md")
    assert (plate.text, plate.region, plate.fixes) == ("8ZX0123", "US-MD", 0)
    # A sub-region hint still uses its country's generic formats: LLLDDDD.
    plate = grammar.clean("AB01234", "us-ca")
    assert (plate.text, plate.region, plate.fixes) == ("ABO1234", "US", 1)


def test_de_hint_does_not_rewrite_into_us_formats() -> None:
    grammar = all_closed()
    plate = grammar.clean("7OBC1O3", "de")
    assert (plate.text, plate.region, plate.format_known, plate.fixes) == ("7OBC1O3", "", False, 0)
    plate = grammar.clean("8ZX0123", "de")
    assert (plate.text, plate.region, plate.fixes) == ("BZX0123", "DE", 1)


def test_open_region_hint_never_rewrites() -> None:
    # The shipped grammar lists the US as open (states' own formats, vanity plates): no fix into it.
    grammar = default_grammar()
    assert "US" not in grammar.closed_regions
    plate = grammar.clean("7OBC1O3", "us")
    assert (plate.text, plate.format_known, plate.fixes) == ("7OBC1O3", False, 0)
    # A plate of an unlisted US format fitting a German one is kept; it may be local, so no region.
    plate = grammar.clean("JX1000", "us")
    assert (plate.text, plate.region, plate.format_known, plate.fixes) == ("JX1000", "", True, 0)
    assert grammar.clean("JX1000").region == "DE"
    # A camera in Washington DC: its AB 1234.
    assert grammar.clean("JX1000", "us-dc").region == "US-DC"


def test_closed_region_hint_fixes_digit_zero_in_letter_position() -> None:
    # Italy AA 123 AA (closed in the shipped grammar): a 0 read in the letter block is an O.
    plate = default_grammar().clean("A0-123-CD", "it")
    assert (plate.text, plate.region, plate.format_known, plate.fixes) == ("AO123CD", "IT", True, 1)
    # France shares the format but is open: no fix; without a hint neither.
    assert default_grammar().clean("A0-123-CD", "fr").text == "A0123CD"
    assert default_grammar().clean("A0-123-CD").text == "A0123CD"


def test_foreign_plate_under_a_hint_is_kept_and_known() -> None:
    # A French/Italian plate seen by a German camera: no German format fits; known, region ambiguous.
    plate = all_closed().clean("AB123CD", "de")
    assert (plate.text, plate.region, plate.format_known, plate.fixes) == ("AB123CD", "", True, 0)
    # A Brazilian Mercosur plate under a (closed) German hint: it cannot be German, so it is Brazilian.
    plate = default_grammar().clean("ABC4X23", "de")
    assert (plate.text, plate.region, plate.format_known, plate.fixes) == ("ABC4X23", "BR", True, 0)


def test_prefers_fewest_substitutions() -> None:
    # Mercosur (LLLDLDD) fits with no fix; Brazil-old (LLLDDDD) would need D->0.
    plate = default_grammar().clean("ABC1D23", "br")
    assert (plate.text, plate.region, plate.fixes) == ("ABC1D23", "BR", 0)
    plate = default_grammar().clean("ABC1S23", "br")
    assert (plate.text, plate.region, plate.fixes) == ("ABC1S23", "BR", 0)
    plate = default_grammar().clean("ABCI0S3", "br")
    # Brazil-old needs two fixes (I->1, S->5), Mercosur three (I->1, 0->O, S->5).
    assert (plate.text, plate.region, plate.fixes) == ("ABC1053", "BR", 2)


def test_unknown_format_left_as_is() -> None:
    for hint in (None, "us", "de"):
        plate = all_closed().clean("O0O0O0O0O0O", hint)
        assert (plate.text, plate.region, plate.format_known) == ("O0O0O0O0O0O", "", False), hint


def test_cache_is_keyed_by_text_and_hint() -> None:
    grammar = all_closed()
    assert grammar.clean("8ZX0123", "de").text == "BZX0123"
    assert grammar.clean("8ZX0123").text == "8ZX0123"
    assert grammar.clean("8ZX0123", "us").text == "8ZXO123"
    assert grammar.clean("8ZX0123", " DE ").text == "BZX0123"


def test_unknown_region_hint_acts_as_none() -> None:
    grammar = all_closed()
    assert not grammar.knows_region("jp")
    assert grammar.knows_region("us") and grammar.knows_region("us-ca") and grammar.knows_region("DE")
    assert grammar.clean("8ZX0123", "jp") == grammar.clean("8ZX0123")
    # An exact fit keeps the region it names without a hint (an unknown hint does not hide it).
    assert grammar.clean("7ABC123", "jp").region == grammar.clean("7ABC123").region == "US-CA"
    assert grammar.clean("ABC4X23", "jp").region == "BR"


def test_expand_pattern_lengths() -> None:
    assert expand_pattern("[A-Z]{1,2}[0-9]") == [("L", "D"), ("L", "L", "D")]
    assert expand_pattern("W[0-9]{2}") == [("W", "D", "D")]


def test_regional_formats_count_only_under_a_covering_hint() -> None:
    grammar = default_grammar()
    # Iowa's old DDD LLL and Maine's DDDD LL are regional; Slovakia's and Croatia's too.
    assert grammar.clean("3550CT").format_known is False
    assert grammar.clean("3550CT", "us-me").region == "US-ME"
    # A country-level hint does not bring in every state's series.
    assert grammar.clean("3550CT", "us").format_known is False
    assert grammar.clean("3550CT", "us-ia").format_known is False
    assert grammar.clean("BA2681M").format_known is False
    assert grammar.clean("BA2681M", "hr").region == "HR"
    assert grammar.clean("BA268IM", "sk").region == "SK"
    assert grammar.fits_region("BA268IM", "sk") and not grammar.fits_region("BA268IM", None)
    assert grammar.knows_region("us-ia") and grammar.knows_region("NO")


def test_region_codes_must_be_strings(tmp_path: Path) -> None:
    # YAML reads a bare NO (Norway) as false.
    broken = tmp_path / "grammars.yaml"
    broken.write_text('formats:\n  - {region: NO, name: norway, pattern: "[A-Z]{2}[0-9]{5}"}\n')
    with pytest.raises(ValueError, match="not a string"):
        PlateGrammar.from_yaml(broken)
