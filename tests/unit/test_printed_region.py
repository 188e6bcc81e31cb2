"""The region named by words printed around a plate (services/inference/printed_region.py), and the
recognizer reading those words with the real models."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from services.inference import printed_region
from services.inference.engine import OnnxBackend, PlateRecognizer
from services.inference.printed_region import allowed_edits, phrases, region_of_words, substring_distance
from services.normalizer.grammar import default_grammar
from tests.unit.test_inference_postprocess import render_frame


@pytest.mark.parametrize(
    ("texts", "region"),
    [
        (["ALASKA", "2750"], "US-AK"),
        (["Grand Canyon State"], "US-AZ"),  # a slogan alone
        (["The Natural State", "Arkansas'"], "US-AR"),  # name and slogan agree; a leading "The"
        (["Califormia"], "US-CA"),  # one misread letter in ten
        (["SunicIDAHO"], "US-ID"),  # the name inside a longer misread
        (["ARKANSAS"], "US-AR"),  # not Kansas, which lies within it
        (["WESTVIRGINIA"], "US-WV"),  # not Virginia
        (["WASHINGTON"], "US-WA"),  # not "Washington DC" two letters short
        (["WASHINGTON,DC"], "US-DC"),
        (["EVERGREEN STATE", "WASHINGTON"], "US-WA"),
        (["NORTH CAROLINA", "First in Flight"], "US-NC"),  # South Carolina is two edits away: nested
        (["SOUTHDAKOTA"], "US-SD"),
        (["BRASIL"], "BR"),
    ],
)
def test_words_name_their_region(texts: list[str], region: str) -> None:
    assert region_of_words(texts) == region


@pytest.mark.parametrize(
    "texts",
    [
        [],
        ["", "2750", "JAN"],
        ["hio"],  # four-letter names must be read exactly
        ["MISSSSPP"],  # three letters off in eleven
        ["Virginia", "Texas"],  # a Texas dealer's frame around a Virginia plate: no region, not a guess
        ["ARKANSAS", "KANSAS"],  # two texts, two regions
        ["IN GOD WE TRUST"],  # printed by several states: not listed
    ],
)
def test_words_that_name_no_single_region_give_none(texts: list[str]) -> None:
    assert region_of_words(texts) is None


def test_substring_distance_and_edit_allowance() -> None:
    assert substring_distance("IDAHO", "SCENICIDAHO") == 0
    assert substring_distance("LOUISIANA", "LOVISIANA") == 1
    assert substring_distance("OHIO", "HIO") == 1
    assert substring_distance("TEXAS", "") == 5
    assert [allowed_edits("X" * n) for n in (4, 5, 6, 11, 12, 18)] == [0, 0, 1, 1, 2, 3]


def test_every_phrase_names_a_region_the_grammar_knows_and_one_region_only() -> None:
    grammar = default_grammar()
    by_phrase: dict[str, set[str]] = {}
    for region, phrase in phrases():
        assert grammar.knows_region(region), region
        assert len(phrase) >= 4, phrase
        by_phrase.setdefault(phrase, set()).add(region)
    assert all(len(regions) == 1 for regions in by_phrase.values())
    # Every US state and DC has its name listed.
    assert sum(region.startswith("US-") for region in {r for r, _ in phrases()}) == 51


def plate_with_word(word: str) -> np.ndarray:
    """render_frame's plate, taller, with `word` printed small above the registration."""
    frame = render_frame("ABC1234")
    cv2.rectangle(frame, (480, 360), (820, 490), (255, 255, 255), -1)
    cv2.putText(frame, "ABC1234", (495, 465), cv2.FONT_HERSHEY_SIMPLEX, 1.9, (0, 0, 0), 5)
    cv2.putText(frame, word, (560, 395), cv2.FONT_HERSHEY_SIMPLEX, 0.7, (0, 0, 160), 2)
    return frame


@pytest.fixture(scope="module")
def word_reader() -> PlateRecognizer:
    return PlateRecognizer(OnnxBackend(threads=1, words=True), printed_region=True)


@pytest.mark.parametrize(
    ("word", "region"), [("TEXAS", "US-TX"), ("NEW MEXICO", "US-NM"), ("Lone Star State", "US-TX")]
)
def test_the_recognizer_reads_the_region_printed_above_a_plate(
    word_reader: PlateRecognizer, word: str, region: str
) -> None:
    (plate,) = word_reader.recognize([plate_with_word(word)])[0]
    assert plate.text == "ABC1234" and plate.printed_region == region


def test_words_away_from_the_plate_or_not_read_name_nothing(word_reader: PlateRecognizer) -> None:
    # The same word as a sign across the frame is no text of the plate's.
    frame = render_frame("ABC1234")
    cv2.putText(frame, "TEXAS", (100, 250), cv2.FONT_HERSHEY_SIMPLEX, 0.7, (255, 255, 255), 2)
    (plate,) = word_reader.recognize([frame])[0]
    assert plate.text == "ABC1234" and plate.printed_region is None
    # Off (the in-process default), the words are not read at all.
    plain = PlateRecognizer(OnnxBackend(threads=1))
    (plate,) = plain.recognize([plate_with_word("TEXAS")])[0]
    assert plate.printed_region is None


def test_phrases_file_is_read_once_longest_first() -> None:
    listed = phrases()
    assert listed is phrases()
    assert [len(phrase) for _, phrase in listed] == sorted((len(p) for _, p in listed), reverse=True)
    assert ("US-NM", "LANDOFENCHANTMENT") in listed and printed_region.letters(
        "Show-Me State"
    ) == "SHOWMESTATE"
