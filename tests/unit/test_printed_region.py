"""The region named by words printed around a plate (services/inference/printed_region.py), and the
recognizer reading those words with the real models."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from services.inference import printed_region
from services.inference.engine import OnnxBackend, PlateRecognizer, PlateResult, _Line
from services.inference.postprocess import Candidate
from services.inference.printed_region import (
    allowed_edits,
    edit_distance,
    phrase_distance,
    phrases,
    region_of_words,
    words_of,
)
from services.normalizer.grammar import default_grammar
from tests.unit.test_inference_postprocess import render_frame


@pytest.mark.parametrize(
    ("texts", "region"),
    [
        (["ALASKA", "2750"], "US-AK"),
        (["Grand Canyon State"], "US-AZ"),  # a slogan alone
        (["The Natural State", "Arkansas'"], "US-AR"),  # name and slogan agree; a leading "The"
        (["Califormia"], "US-CA"),  # one misread letter in ten
        (["SunicIDAHO"], "US-ID"),  # the name after a misread word
        (["ARKANSAS"], "US-AR"),  # not Kansas, which lies within it
        (["WESTVIRGINIA"], "US-WV"),  # not Virginia
        (["WASHINGTON"], "US-WA"),  # not "Washington DC" two letters short
        (["WASHINGTON,DC"], "US-DC"),
        (["WASHINGTON COUNTY"], "US-WA"),  # not DC: its last letters are not there
        (["ScenicIDAHO"], "US-ID"),  # OCR glued the words; the capitals still part them
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
        # Found in review: names across word boundaries or one letter off a web address.
        ["RADIO WAVE"],
        ["OUT AHEAD"],
        ["REMAIN EVER"],
        ["INDIAN RIVER"],
        ["DMV.VA.GOV"],
    ],
)
def test_words_that_name_no_single_region_give_none(texts: list[str]) -> None:
    assert region_of_words(texts) is None


def test_phrase_distance_keeps_to_words_and_to_the_phrase_ends() -> None:
    assert edit_distance("LOUISIANA", "LOVISIANA") == 1 and edit_distance("TEXAS", "") == 5
    assert words_of("Scenic IDAHO") == words_of("ScenicIDAHO") == ("SCENICIDAHO", frozenset({0, 6, 11}))
    word, edges = words_of("ScenicIDAHO")
    assert phrase_distance("IDAHO", word, edges) == 0
    assert phrase_distance("IDAHO", word) is None  # without the edge between the words: not a word
    assert phrase_distance("LOUISIANA", "LOVISIANA") == 1
    assert phrase_distance("OHIO", "HIO") is None  # short names are read exactly
    assert phrase_distance("INDIANA", *words_of("INDIAN RIVER")) is None  # the last letter is its own
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


def _line_at(
    x: int, y: int, width: int, height: int, *, rows: tuple[np.ndarray, np.ndarray] | None = None
) -> _Line:
    quad = np.array([[x, y], [x + width, y], [x + width, y + height], [x, y + height]], np.float32)
    return _Line(0, quad, 0.9, [np.zeros((height, width, 3), np.uint8)], rows=rows)


def _plate_and_line(text: str, printed: str | None, *, rows: bool = False) -> tuple[PlateResult, _Line]:
    line = _line_at(0, 0, 100, 30)
    if rows:
        line.rows = (line.quad, line.quad)
    result = PlateResult((0, 0, 100, 30), [Candidate(text, 0.9, (0.9,) * len(text))], 0.9, line.crop)
    result.printed_region = printed
    return result, line


def test_a_plate_is_read_again_under_its_printed_region_only_where_that_helps(
    word_reader: PlateRecognizer, monkeypatch: pytest.MonkeyPatch
) -> None:
    calls: list[list[str | None] | None] = []

    def read_cuts(
        cuts: list[list[np.ndarray]], hints: list[str | None] | None = None
    ) -> list[list[Candidate]]:
        calls.append(hints)
        return [[Candidate("1041608", 0.8, (0.8,) * 7)] for _ in cuts]

    monkeypatch.setattr(word_reader, "read_cuts", read_cuts)
    # New Hampshire's all-digit series: "I041608" fits none of its formats; read again under it.
    misread = _plate_and_line("I041608", "US-NH")
    word_reader._read_again_under_printed_regions([misread], None)
    assert calls == [["US-NH"]] and misread[0].text == "1041608"
    # Not again: a text that fits the region, a plate without a printed region, a camera's own
    # region (it already decided), a two-row plate (its rows were settled together).
    calls.clear()
    fits = _plate_and_line("1041608", "US-NH")
    unnamed = _plate_and_line("I041608", None)
    two_rows = _plate_and_line("I041608", "US-NH", rows=True)
    word_reader._read_again_under_printed_regions([fits, unnamed, two_rows], None)
    hinted = _plate_and_line("I041608", "US-NH")
    word_reader._read_again_under_printed_regions([hinted], ["us-ma"])
    assert calls == [] and [p.text for p, _ in (fits, unnamed, two_rows, hinted)] == [
        "1041608",
        *["I041608"] * 3,
    ]
    # A reading again that is no plate (a sign word) leaves the plate as it was.
    monkeypatch.setattr(word_reader, "read_cuts", lambda cuts, hints=None: [[Candidate("TEXAS", 0.9, ())]])
    kept = _plate_and_line("I041608", "US-NH")
    word_reader._read_again_under_printed_regions([kept], None)
    assert kept[0].text == "I041608"


def test_recognize_offers_its_named_plates_for_a_reading_again(
    word_reader: PlateRecognizer, monkeypatch: pytest.MonkeyPatch
) -> None:
    offered: list[tuple[list[str | None], list[str | None] | None]] = []

    def spy(plates: list[tuple[PlateResult, _Line]], hints: list[str | None] | None) -> None:
        offered.append(([result.printed_region for result, _ in plates], hints))

    monkeypatch.setattr(word_reader, "_read_again_under_printed_regions", spy)
    word_reader.recognize([plate_with_word("TEXAS")], ["us-ok"])
    assert offered and offered[-1] == (["US-TX"], ["us-ok"])


def test_a_plate_read_again_turned_keeps_the_region_its_words_named() -> None:
    from services.inference.engine import _merged

    level, _ = _plate_and_line("ABC1234", "US-TX")
    turned, _ = _plate_and_line("ABC1234", None)
    turned.candidates = [Candidate("ABC1234", 0.99, (0.99,) * 7)]  # surer: it replaces the level one
    (merged,) = _merged([level], [turned])
    assert merged is turned and merged.printed_region == "US-TX"


def test_the_words_offered_for_a_plate_are_every_other_line_around_it(
    word_reader: PlateRecognizer, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Which detected lines count as words (review findings): a plate-like reading dropped as text
    around the plate does, a two-row plate's own rows do not, and an earlier round's lines do."""
    registration = _line_at(400, 400, 400, 60)
    slogan = _line_at(550, 370, 100, 20)  # reads GOODLIFE: plate-like, then dropped as accessory text
    upper, lower = _line_at(900, 300, 120, 40), _line_at(900, 345, 120, 40)
    pair = _line_at(900, 300, 120, 85, rows=(upper.quad, lower.quad))
    earlier = _line_at(520, 470, 150, 18)  # from a first round, not read again
    texts = {id(registration): "ABC1234", id(slogan): "GOODLIFE", id(pair): "AB1234"}
    current = [registration, slogan, pair]

    def read_cuts(
        cuts: list[list[np.ndarray]], hints: object = None, firsts: object = None
    ) -> list[list[Candidate]]:
        assert len(cuts) == len(current)
        return [[Candidate(texts[id(line)], 0.95, ())] for line in current]

    offered: list[set[int]] = []
    monkeypatch.setattr(word_reader, "read_cuts", read_cuts)
    monkeypatch.setattr(
        word_reader, "plate_scores", lambda frames, lines: np.full(len(lines), 0.9, np.float32)
    )
    monkeypatch.setattr(
        word_reader, "_name_printed_regions", lambda plates, words: offered.append({id(w) for w in words})
    )
    monkeypatch.setattr(word_reader, "_read_again_under_printed_regions", lambda plates, hints: None)
    results: list[list[PlateResult]] = [[]]
    frame = np.zeros((720, 1280, 3), np.uint8)
    word_reader._read_lines_into(results, [frame], current, None, [earlier, upper, lower])
    assert sorted(p.text for p in results[0]) == ["AB1234", "ABC1234"]
    (words,) = offered
    assert id(slogan) in words and id(earlier) in words
    assert id(upper) not in words and id(lower) not in words and id(registration) not in words


def test_the_setting_reads_words_with_triton_by_default_and_in_process_only_when_on() -> None:
    from services.inference.main import InferenceSettings

    def words(setting: str, triton_url: str) -> bool:
        backend = InferenceSettings(printed_region=setting).backend(triton_url, 1)
        recognizer = InferenceSettings(printed_region=setting).plate_recognizer(backend)
        assert recognizer.printed_region == backend.words
        return backend.words

    # Building a Triton backend opens no connection.
    assert words("auto", "localhost:1") and not words("auto", "")
    assert words("on", "") and words("on", "localhost:1")
    assert not words("off", "") and not words("off", "localhost:1")
