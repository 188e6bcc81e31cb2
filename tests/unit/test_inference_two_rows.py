"""Two-row (stacked) plates: which detected lines are the rows of one plate, and reading them as one
line with the real in-process models (rendered frames; no dev sets needed)."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from services.inference import engine, postprocess
from services.inference.engine import OnnxBackend, PlateRecognizer, _Line, _settle_two_rows
from services.inference.main import InferenceSettings
from services.inference.postprocess import Candidate
from tests.unit.test_inference_postprocess import render_frame


def quad(x: float, y: float, w: float, h: float) -> np.ndarray:
    """An axis-aligned tl-tr-br-bl quad."""
    return np.array([[x, y], [x + w, y], [x + w, y + h], [x, y + h]], np.float32)


def turned(quad_: np.ndarray, degrees: float, centre: np.ndarray | None = None) -> np.ndarray:
    """`quad_` turned about `centre` (default: its own centre)."""
    centre = quad_.mean(axis=0) if centre is None else centre
    radians = np.radians(degrees)
    rotation = np.array([[np.cos(radians), -np.sin(radians)], [np.sin(radians), np.cos(radians)]])
    return ((quad_ - centre) @ rotation.T + centre).astype(np.float32)


def render_two_row_frame(top: str, bottom: str) -> np.ndarray:
    """A red 'motorcycle' with a white square plate: `top` over `bottom`, and a line of signage."""
    frame = np.full((720, 1280, 3), (40, 40, 160), np.uint8)
    cv2.rectangle(frame, (560, 360), (760, 520), (255, 255, 255), -1)
    cv2.rectangle(frame, (560, 360), (760, 520), (0, 0, 0), 3)
    cv2.putText(frame, top, (585, 430), cv2.FONT_HERSHEY_SIMPLEX, 2.0, (0, 0, 0), 6)
    cv2.putText(frame, bottom, (570, 500), cv2.FONT_HERSHEY_SIMPLEX, 2.0, (0, 0, 0), 6)
    cv2.putText(frame, "Welcome to town", (100, 100), cv2.FONT_HERSHEY_SIMPLEX, 1.5, (255, 255, 255), 3)
    return frame


# The detector's (unclipped) boxes of a square plate's rows overlap a little: seen on rendered plates.
UPPER, LOWER = quad(582, 383, 128, 55), quad(568, 454, 154, 53)


def test_the_rows_of_a_square_plate_are_stacked_and_only_top_over_bottom() -> None:
    assert postprocess.stacked_rows(UPPER, LOWER)
    assert not postprocess.stacked_rows(LOWER, UPPER)
    overlapping = quad(903, 376, 109, 54), quad(912, 331, 93, 57)
    assert postprocess.stacked_rows(overlapping[1], overlapping[0])
    # A leaning plate: both rows turned about the plate's centre.
    centre = np.concatenate([UPPER, LOWER]).mean(axis=0)
    for degrees in (-8, 8):
        upper, lower = turned(UPPER, degrees, centre), turned(LOWER, degrees, centre)
        assert postprocess.stacked_rows(upper, lower)
        union = postprocess.stacked_union(upper, lower)
        assert postprocess.line_angle(union) == pytest.approx(degrees, abs=0.01)
        # tl tr br bl: the union holds every corner of both rows.
        inside = cv2.pointPolygonTest(union.reshape(-1, 1, 2), (0.0, 0.0), False)
        assert inside < 0
        for point in np.concatenate([upper, lower]):
            assert cv2.pointPolygonTest(union.reshape(-1, 1, 2), tuple(map(float, point)), True) >= -0.01


@pytest.mark.parametrize(
    ("upper", "lower", "why"),
    [
        (quad(600, 400, 200, 25), quad(560, 430, 280, 60), "a state name: much less high"),
        (quad(670, 380, 60, 55), quad(560, 454, 280, 55), "a narrow piece over a wide line"),
        (quad(560, 380, 150, 55), quad(760, 454, 150, 55), "not over each other"),
        (quad(560, 300, 150, 55), quad(560, 454, 150, 55), "too far apart"),
        (quad(560, 400, 150, 55), quad(720, 400, 150, 55), "side by side: one line"),
        (quad(560, 380, 30, 55), quad(560, 454, 40, 55), "rows narrower than two characters"),
        (turned(quad(582, 383, 128, 55), 20), quad(568, 454, 154, 53), "not parallel"),
    ],
)
def test_lines_that_are_not_two_rows_of_one_plate(upper: np.ndarray, lower: np.ndarray, why: str) -> None:
    assert not postprocess.stacked_rows(upper, lower), why


def test_stacked_pairs_use_each_line_once_closest_first() -> None:
    # Three rows of equal lines: the middle one pairs with one neighbour only.
    rows = [quad(560, 300, 150, 50), quad(560, 360, 150, 50), quad(560, 415, 150, 50)]
    pairs = postprocess.stacked_pairs(rows)
    assert pairs == [(1, 2)]
    assert postprocess.stacked_pairs([LOWER, UPPER, quad(100, 100, 300, 60)]) == [(1, 0)]


def test_the_union_of_two_rows_holds_both() -> None:
    union = postprocess.stacked_union(UPPER, LOWER)
    assert postprocess.quad_bounds(union) == pytest.approx((568, 383, 722, 507))
    assert postprocess.line_angle(union) == pytest.approx(0.0, abs=1e-6)


def test_side_by_side_puts_the_bottom_row_right_of_the_top_at_its_height() -> None:
    top = np.zeros((20, 40, 3), np.uint8)
    bottom = np.full((40, 100, 3), 255, np.uint8)
    line = postprocess.side_by_side(top, bottom)
    assert line.shape == (20, 90, 3)
    assert line[:, :40].max() == 0 and line[:, 40:].min() == 255


@pytest.fixture(scope="module")
def recognizers() -> tuple[PlateRecognizer, PlateRecognizer]:
    backend = OnnxBackend(threads=1)
    return PlateRecognizer(backend), PlateRecognizer(backend, read_two_rows=False)


@pytest.mark.parametrize(("top", "bottom"), [("ABC", "1234"), ("ABC", "1D23")])
def test_a_two_row_plate_is_read_whole_with_its_box_around_both_rows(
    recognizers: tuple[PlateRecognizer, PlateRecognizer], top: str, bottom: str
) -> None:
    two_rows, one_row = recognizers
    frame = render_two_row_frame(top, bottom)
    plates = two_rows.recognize([frame])[0]
    assert [plate.text for plate in plates] == [top + bottom]
    x, y, w, h = plates[0].box
    assert x <= 575 and y <= 390 and x + w >= 715 and y + h >= 500
    # The evidence shows the plate as it is: both rows, one above the other.
    crop_height, crop_width = plates[0].crop.shape[:2]
    assert crop_width < 2 * crop_height
    # Without two-row reading only the bottom row reads as a plate: a wrong, partial read.
    assert [plate.text for plate in one_row.recognize([frame])[0]] == [bottom]


def test_a_one_row_plate_reads_the_same_with_two_row_reading(
    recognizers: tuple[PlateRecognizer, PlateRecognizer],
) -> None:
    two_rows, one_row = recognizers
    frame = render_frame("ABC1234")
    read = [(plate.text, plate.box) for plate in two_rows.recognize([frame])[0]]
    assert read == [(plate.text, plate.box) for plate in one_row.recognize([frame])[0]]
    assert read[0][0] == "ABC1234"


def test_two_row_text_needs_a_digit() -> None:
    assert postprocess.two_row_text("ABC1234")
    assert postprocess.two_row_text("AB12CDE")
    assert not postprocess.two_row_text("BESTWEST")


def test_a_box_shaped_like_a_square_plate_splits_into_its_upper_and_lower_halves() -> None:
    box = quad(100, 200, 130, 100)
    assert postprocess.merged_rows_shaped(box)
    upper, lower = postprocess.split_rows(box, 0.5)
    np.testing.assert_allclose(upper, quad(100, 200, 130, 50))
    np.testing.assert_allclose(lower, quad(100, 250, 130, 50))
    # Turned, the halves turn with it: the split runs along the text.
    tilted = turned(box, 10)
    assert postprocess.merged_rows_shaped(tilted)
    upper, lower = postprocess.split_rows(tilted, 0.5)
    assert postprocess.line_angle(upper) == pytest.approx(10, abs=0.01)
    np.testing.assert_allclose(postprocess.stacked_union(upper, lower), tilted, atol=1e-3)
    # A one-row line's shape, a box under 0.8 times as wide as high, and one too small to hold two
    # rows are not split.
    for not_two_rows in (quad(0, 0, 150, 100), quad(0, 0, 79, 100), quad(0, 0, 18, 15)):
        assert not postprocess.merged_rows_shaped(not_two_rows)
    assert postprocess.merged_rows_shaped(quad(0, 0, 80, 100))
    assert postprocess.merged_rows_shaped(quad(0, 0, 149, 100))


def test_a_split_box_can_be_cut_above_or_below_its_middle() -> None:
    box = turned(quad(100, 200, 130, 100), 10)
    middle = postprocess.split_rows(box, 0.5)
    # The middle cut is the old middle, to the bit (what session 21 read).
    tl, tr, br, bl = box
    np.testing.assert_array_equal(middle[0][2:], [(tr + br) / 2, (tl + bl) / 2])
    upper, lower = postprocess.split_rows(box, 0.45)
    assert postprocess.quad_size(upper)[1] == pytest.approx(45, abs=0.01)
    assert postprocess.quad_size(lower)[1] == pytest.approx(55, abs=0.01)
    np.testing.assert_allclose(postprocess.stacked_union(upper, lower), box, atol=1e-3)
    assert postprocess.line_angle(lower) == pytest.approx(10, abs=0.01)
    for outside in (0.0, 1.0, 1.2):
        with pytest.raises(ValueError, match="inside the box"):
            postprocess.split_rows(box, outside)
    assert postprocess.MERGED_ROWS_SPLITS[0] == 0.5  # the middle is the cut read first


def test_a_split_box_is_read_from_a_cut_at_each_split_position(
    recognizers: tuple[PlateRecognizer, PlateRecognizer],
) -> None:
    two_rows, _ = recognizers
    frame = render_close_rows_frame("ABC", "123", 36)
    (merged,) = [line for line in two_rows.detect_lines([frame]) if line.merged_rows]
    assert len(merged.cuts) == len(postprocess.MERGED_ROWS_SPLITS) * len(two_rows.crop_margins)
    expected = []
    for at in postprocess.MERGED_ROWS_SPLITS:
        upper, lower = (two_rows._cuts(frame, part) for part in postprocess.split_rows(merged.quad, at))
        expected.extend(engine._rows_side_by_side(upper, lower))
    for cut, wanted in zip(merged.cuts, expected, strict=True):
        np.testing.assert_array_equal(cut, wanted)
    assert not np.array_equal(merged.cuts[0], merged.cuts[-1])
    # Without reading variants there is no cascade (every cut would always be read): the middle only.
    plain = PlateRecognizer(two_rows.backend, read_variants=False)
    (single,) = [line for line in plain.detect_lines([frame]) if line.merged_rows]
    assert len(single.cuts) == len(plain.crop_margins)
    np.testing.assert_array_equal(single.cuts[0], merged.cuts[0])
    # Its rows (what the classifier's cut is made from) are the middle cut's.
    assert merged.rows is not None
    for row, half in zip(merged.rows, postprocess.split_rows(merged.quad, 0.5), strict=True):
        np.testing.assert_array_equal(row, half)


@pytest.mark.parametrize("batch", [1, 2, 16])
def test_a_split_box_scores_the_better_of_its_rows_and_itself_whole(
    recognizers: tuple[PlateRecognizer, PlateRecognizer], monkeypatch: pytest.MonkeyPatch, batch: int
) -> None:
    two_rows, _ = recognizers
    frame = render_close_rows_frame("ABC", "123", 36)
    (merged,) = [line for line in two_rows.detect_lines([frame]) if line.merged_rows]
    # A one-row line before it (the plate's top edge) and a second split box after it (the plate's
    # corner and bodywork), in batches of `batch`: every cut looks different.
    one_row = _Line(0, quad(560, 350, 200, 30), 0.9, [frame[350:380, 560:760]])
    box = quad(500, 320, 110, 100)
    assert postprocess.merged_rows_shaped(box)
    halves = postprocess.split_rows(box, 0.5)
    other = _Line(0, box, 0.9, [frame[320:420, 500:610]], rows=halves, merged_rows=True)
    lines = [one_row, merged, other]
    monkeypatch.setattr(engine, "CLS_MAX_BATCH", batch)

    def rows_and_whole(line: _Line) -> np.ndarray:
        return np.stack(
            [
                postprocess.classifier_input(engine._classifier_cut(frame, line)),
                postprocess.classifier_input(postprocess.classifier_cut(frame, line.quad)),
            ]
        )

    # Two stand-in classifiers that order each split box's two cuts both ways (brightness and
    # darkness), so that each of them wins at least once.
    winners = set()
    shipped = engine.MERGED_ROWS_WHOLE_SCORE
    for brighter_wins in (True, False):

        def classify(cuts: np.ndarray, brighter_wins: bool = brighter_wins) -> np.ndarray:
            brightness = cuts.reshape(len(cuts), -1).mean(axis=1) / 255.0
            return (brightness if brighter_wins else 1.0 - brightness).astype(np.float32)

        monkeypatch.setattr(two_rows.backend, "classify", classify)
        own = classify(postprocess.classifier_input(engine._classifier_cut(frame, one_row))[None])[0]
        pairs = [classify(rows_and_whole(line)) for line in (merged, other)]
        winners.update("whole" if whole > rows else "rows" for rows, whole in pairs)
        expected = [own, *(max(rows, whole) for rows, whole in pairs)]
        np.testing.assert_allclose(two_rows.plate_scores([frame], lines), expected, rtol=1e-6)
        # Without the rule a split box scores its rows.
        monkeypatch.setattr(engine, "MERGED_ROWS_WHOLE_SCORE", False)
        rows_only = [own, *(rows for rows, _ in pairs)]
        np.testing.assert_allclose(two_rows.plate_scores([frame], lines), rows_only, rtol=1e-6)
        monkeypatch.setattr(engine, "MERGED_ROWS_WHOLE_SCORE", shipped)
    assert winners == {"whole", "rows"}


def test_a_split_box_with_no_score_for_its_rows_keeps_its_whole_score(
    recognizers: tuple[PlateRecognizer, PlateRecognizer], monkeypatch: pytest.MonkeyPatch
) -> None:
    two_rows, _ = recognizers
    frame = render_close_rows_frame("ABC", "123", 36)
    (merged,) = [line for line in two_rows.detect_lines([frame]) if line.merged_rows]
    rows_cut = postprocess.classifier_input(engine._classifier_cut(frame, merged))

    def classify(cuts: np.ndarray) -> np.ndarray:
        return np.array([np.nan if np.array_equal(cut, rows_cut) else 0.7 for cut in cuts], np.float32)

    monkeypatch.setattr(two_rows.backend, "classify", classify)
    assert two_rows.plate_scores([frame], [merged])[0] == pytest.approx(0.7)


def _short_split_box_counted(
    two_rows: PlateRecognizer, monkeypatch: pytest.MonkeyPatch
) -> tuple[np.ndarray, _Line, list[int]]:
    """A close-row frame whose split box reads AB12 (under the floor), the box, and the sizes of the
    recognizer batches `two_rows` reads from now on (counted through a monkeypatch)."""
    frame = render_close_rows_frame("AB", "12", 36)
    (merged,) = [line for line in two_rows.detect_lines([frame]) if line.merged_rows]
    crops_read: list[int] = []
    original = two_rows._recognize

    def counted(crops: list[np.ndarray]) -> list[tuple[np.ndarray, np.ndarray]]:
        crops_read.append(len(crops))
        return original(crops)

    monkeypatch.setattr(two_rows, "_recognize", counted)
    return frame, merged, crops_read


def test_a_split_box_that_reads_short_at_first_is_not_read_again(
    recognizers: tuple[PlateRecognizer, PlateRecognizer], monkeypatch: pytest.MonkeyPatch
) -> None:
    two_rows, _ = recognizers
    frame, merged, crops_read = _short_split_box_counted(two_rows, monkeypatch)
    monkeypatch.setattr(two_rows, "sure_reading", 1.0)  # hardly a reading is sure: each is read again
    (first,) = two_rows.read_cuts([merged.cuts], None, [5])
    assert len(first[0].text) < 5
    assert sum(crops_read) == 1  # the middle cut as given, nothing more
    crops_read.clear()
    two_rows.read_cuts([merged.cuts], None, [len(first[0].text)])
    assert sum(crops_read) == len(merged.cuts) * len(postprocess.READING_VARIANTS)
    with pytest.raises(ValueError, match="character counts"):
        two_rows.read_cuts([merged.cuts], None, [5, 5])
    # Reading frames, a split box gets the floor and other lines none.
    crops_read.clear()
    assert two_rows.recognize([frame])[0] == []
    stopped = sum(crops_read)
    monkeypatch.setattr(postprocess, "MERGED_ROWS_MIN_FIRST_CHARS", 0)
    crops_read.clear()
    assert two_rows.recognize([frame])[0] == []
    assert sum(crops_read) == stopped + len(merged.cuts) * len(postprocess.READING_VARIANTS) - 1
    # A one-row line read beside it gets no floor.
    monkeypatch.undo()
    one_row = _Line(0, quad(100, 100, 200, 40), 0.9, [frame[100:140, 100:300]])
    floors: list[list[int] | None] = []
    read_cuts = two_rows.read_cuts

    def recorded(cuts: list, hints: list | None = None, min_first_chars: list[int] | None = None) -> list:
        floors.append(min_first_chars)
        return read_cuts(cuts, hints, min_first_chars)

    monkeypatch.setattr(two_rows, "read_cuts", recorded)
    monkeypatch.setattr(two_rows, "plate_classifier", False)
    two_rows._read_lines_into([[]], [frame], [one_row, merged], None)
    assert floors == [[0, postprocess.MERGED_ROWS_MIN_FIRST_CHARS]]


def test_the_floor_on_a_first_reading_is_each_lines_own(
    recognizers: tuple[PlateRecognizer, PlateRecognizer], monkeypatch: pytest.MonkeyPatch
) -> None:
    two_rows, _ = recognizers
    _, merged, crops_read = _short_split_box_counted(two_rows, monkeypatch)
    monkeypatch.setattr(two_rows, "sure_reading", 1.0)
    # A line without cuts first (never read), then the same short reading with no floor and with one:
    # only the second is read again, all its variants.
    readings = two_rows.read_cuts([[], [merged.cuts[0]], merged.cuts], None, [9, 0, 5])
    assert [len(reading[0].text) if reading else None for reading in readings] == [None, 4, 4]
    assert crops_read == [2, len(postprocess.READING_VARIANTS) - 1]


class _PolarityStub:
    """Stand-in recognizer outputs and decoding: a dark crop reads `AB` unsurely, a light one
    `ABC123` surely (so the inverted reading of a dark cut wins, and is long enough). Counts the
    crops read."""

    def __init__(self) -> None:
        self.crops_read = 0

    def recognize(self, crops: list[np.ndarray]) -> list[tuple[np.ndarray, np.ndarray]]:
        self.crops_read += len(crops)
        return [(np.array([[int(crop.mean() > 127)]]), np.ones((1, 1), np.float32)) for crop in crops]

    @staticmethod
    def read_variants(
        outputs: list[tuple[np.ndarray, np.ndarray]], *_: object, **__: object
    ) -> list[Candidate]:
        if any(int(indices[0, 0]) for indices, _ in outputs):
            return [Candidate("ABC123", 0.95, (0.95,) * 6)]
        return [Candidate("AB", 0.3, (0.3, 0.3))]


@pytest.mark.parametrize("sure_reading", [1.0, 2.0])
def test_a_dark_split_box_is_floored_on_its_inverted_reading(
    monkeypatch: pytest.MonkeyPatch, sure_reading: float
) -> None:
    reader = PlateRecognizer(OnnxBackend(threads=1), read_inverted=True, sure_reading=sure_reading)
    dark = np.full((32, 160, 3), 20, np.uint8)
    stub = _PolarityStub()
    monkeypatch.setattr(reader, "_recognize", stub.recognize)
    monkeypatch.setattr(engine.decoding, "read_variants", stub.read_variants)
    (reading,) = reader.read_cuts([[dark, dark, dark]], None, [5])
    # Read inverted (the plain reading, AB, is under the floor, the inverted one is not) and voted.
    assert reading[0].text == "ABC123"
    assert stub.crops_read == 3 * len(postprocess.READING_VARIANTS) + 1
    # A floor the inverted reading is under too stops the line, with the cascade on only (a
    # sure_reading above 1 reads every line whole).
    stub.crops_read = 0
    reader.read_cuts([[dark, dark, dark]], None, [7])
    assert stub.crops_read == (2 if sure_reading <= 1.0 else 3 * len(postprocess.READING_VARIANTS) + 1)


def test_a_reading_of_a_split_box_needs_six_characters() -> None:
    assert postprocess.two_row_text("AB12")
    assert not postprocess.two_row_text("AB12", merged=True)
    assert not postprocess.two_row_text("ABCDEF", merged=True)
    assert postprocess.two_row_text("ABC123", merged=True)


def render_close_rows_frame(top: str, bottom: str, gap: int) -> np.ndarray:
    """A square plate with `top` over `bottom` so close (baselines `gap` px apart, letters about
    42 px high) that the detector finds both rows as one box."""
    frame = np.full((720, 1280, 3), (40, 40, 160), np.uint8)
    cv2.rectangle(frame, (560, 360), (760, 460 + gap), (255, 255, 255), -1)
    cv2.rectangle(frame, (560, 360), (760, 460 + gap), (0, 0, 0), 3)
    cv2.putText(frame, top, (585, 420), cv2.FONT_HERSHEY_SIMPLEX, 2.0, (0, 0, 0), 6)
    cv2.putText(frame, bottom, (585, 420 + gap), cv2.FONT_HERSHEY_SIMPLEX, 2.0, (0, 0, 0), 6)
    return frame


@pytest.mark.parametrize("gap", [32, 40])
def test_two_rows_the_detector_found_as_one_box_are_read_whole(
    recognizers: tuple[PlateRecognizer, PlateRecognizer], gap: int
) -> None:
    two_rows, one_row = recognizers
    frame = render_close_rows_frame("ABC", "123", gap)
    lines = two_rows.detect_lines([frame])
    (merged,) = [line for line in lines if line.rows is not None]
    assert merged.merged_rows
    assert not [line for line in lines if line.rows is None]  # the box is too square for one line
    plates = two_rows.recognize([frame])[0]
    assert [plate.text for plate in plates] == ["ABC123"]
    np.testing.assert_allclose(plates[0].box, postprocess.quad_to_box(merged.quad), atol=1)
    assert one_row.recognize([frame])[0] == []
    # The box is one of the frame's line quads (which reading it turned upright works from).
    *_, quads = two_rows._recognize_once([frame], None)
    assert any(np.array_equal(found, merged.quad) for found in quads[0])


def test_the_rows_of_a_pair_are_not_split_however_short(
    recognizers: tuple[PlateRecognizer, PlateRecognizer],
) -> None:
    # Two rows of two characters: each row's box is shaped like a two-row plate's, yet it is one row.
    two_rows, _ = recognizers
    frame = np.full((720, 1280, 3), (40, 40, 160), np.uint8)
    upper, lower = quad(610, 350, 80, 60), quad(610, 430, 80, 60)
    assert postprocess.merged_rows_shaped(upper)
    lines = two_rows._lines_from_boxes(0, frame, [(upper, 0.9), (lower, 0.9)])
    assert [line.merged_rows for line in lines if line.rows is not None] == [False]


def test_a_split_box_reading_too_short_for_two_rows_is_not_a_plate(
    recognizers: tuple[PlateRecognizer, PlateRecognizer], monkeypatch: pytest.MonkeyPatch
) -> None:
    two_rows, _ = recognizers
    frame = render_close_rows_frame("AB", "12", 36)
    assert two_rows.recognize([frame])[0] == []
    # Read without the length rule, it would be a plate: the rule is what keeps it out.
    monkeypatch.setattr(postprocess, "MERGED_ROWS_MIN_CHARS", 1)
    assert [plate.text for plate in two_rows.recognize([frame])[0]] == ["AB12"]


def test_two_rows_of_words_are_not_a_plate(recognizers: tuple[PlateRecognizer, PlateRecognizer]) -> None:
    # Read side by side, BEST over WEST reads and classifies like a plate (BESTWEST): only the missing
    # digit keeps it out.
    two_rows, _ = recognizers
    frame = render_two_row_frame("BEST", "WEST")
    (line,) = [line for line in two_rows.detect_lines([frame]) if line.rows is not None]
    assert two_rows.plate_scores([frame], [line])[0] >= two_rows.min_plate_score
    assert two_rows.read_lines([line.crop])[0][0].text == "BESTWEST"
    assert two_rows.recognize([frame])[0] == []


def test_the_classifier_and_the_reader_see_the_two_rows_side_by_side(
    recognizers: tuple[PlateRecognizer, PlateRecognizer],
) -> None:
    two_rows, _ = recognizers
    frame = render_two_row_frame("ABC", "1234")
    (line,) = [line for line in two_rows.detect_lines([frame]) if line.rows is not None]
    for cut in (engine._classifier_cut(frame, line), line.crop):
        height, width = cut.shape[:2]
        assert width > 2.5 * height  # one line of seven characters, not the square plate


def test_a_two_row_plate_and_its_rows_are_scored_on_one_cut_of_each_row(
    recognizers: tuple[PlateRecognizer, PlateRecognizer], monkeypatch: pytest.MonkeyPatch
) -> None:
    two_rows, _ = recognizers
    frame = render_two_row_frame("ABC", "1234")
    lines = two_rows.detect_lines([frame])
    (pair,) = [line for line in lines if line.rows is not None]
    # The rows as lines of their own, beside the two-row line.
    rows = [line for line in lines if line.rows is None and any(line.quad is row for row in pair.rows)]
    assert len(rows) == 2
    uncached = [postprocess.classifier_input(engine._classifier_cut(frame, line)) for line in lines]
    expected = two_rows.backend.classify(np.stack(uncached))
    cut_quads: list[np.ndarray] = []

    def counted(frame_: np.ndarray, quad_: np.ndarray) -> np.ndarray:
        cut_quads.append(quad_)
        return original(frame_, quad_)

    original = postprocess.classifier_cut
    monkeypatch.setattr(postprocess, "classifier_cut", counted)
    np.testing.assert_allclose(two_rows.plate_scores([frame], lines), expected, rtol=1e-5)
    assert len(cut_quads) == len(lines) - 1  # every line's quad once; the two-row line adds none


def test_the_rows_of_a_two_row_plate_are_not_plates_of_their_own_whatever_their_heights(
    recognizers: tuple[PlateRecognizer, PlateRecognizer],
) -> None:
    # Rows of unequal height whose boxes overlap: the quad around both is less than 1.5 times as high
    # as the lower row, so the accessory-text rule alone would keep that row as a plate ("1234").
    two_rows, _ = recognizers
    frame = render_two_row_frame("ABC", "1234")
    upper, lower = quad(582, 378, 128, 76), quad(568, 425, 154, 100)
    assert postprocess.stacked_rows(upper, lower)
    lines = two_rows._lines_from_boxes(0, frame, [(upper, 0.9), (lower, 0.9)])
    results: list[list[engine.PlateResult]] = [[]]
    two_rows._read_lines_into(results, [frame], lines, None)
    assert [plate.text for plate in results[0]] == ["ABC1234"]


def _found(text: str, box: np.ndarray, rows: tuple[np.ndarray, np.ndarray] | None = None) -> tuple:
    return (_Line(0, box, 0.9, [np.zeros((8, 8, 3), np.uint8)], rows=rows), [Candidate(text, 0.9)], 0.9)


@pytest.mark.parametrize(
    ("two_row", "upper", "lower", "kept"),
    [
        # The two-row reading fits a format (Brazil LLL9999): it is the plate, its rows are not.
        ("ABC1234", "ABC1", "1234", ["ABC1234"]),
        # It fits none while a row alone fits one (German AB123): a one-row plate with a line under it.
        ("AB123XYZ", "AB123", "XYZ1", ["AB123", "XYZ1"]),
        # Neither fits a format: the two-row reading.
        ("99Q9Q9Q", "99Q", "9Q9Q", ["99Q9Q9Q"]),
    ],
)
def test_settle_two_rows_keeps_the_plate_or_its_rows(
    two_row: str, upper: str, lower: str, kept: list[str]
) -> None:
    union = postprocess.stacked_union(UPPER, LOWER)
    found = [
        _found(upper, UPPER.copy()),
        _found(lower, LOWER.copy()),
        _found(two_row, union, (UPPER, LOWER)),
        _found("XYZ987", quad(100, 100, 200, 50)),  # another plate in the frame stays
    ]
    settled = _settle_two_rows(found, None)
    assert sorted(candidates[0].text for _, candidates, _ in settled) == sorted([*kept, "XYZ987"])


def test_the_setting_turns_two_row_reading_off() -> None:
    backend = OnnxBackend(threads=1)
    assert InferenceSettings().plate_recognizer(backend).read_two_rows
    assert not InferenceSettings(read_two_rows=False).plate_recognizer(backend).read_two_rows


def test_a_two_row_plates_evidence_is_upright_however_tall(
    recognizers: tuple[PlateRecognizer, PlateRecognizer],
) -> None:
    # Two narrow rows (two characters each): the plate is taller than wide, and its crop stays so.
    two_rows, _ = recognizers
    frame = np.full((720, 1280, 3), (40, 40, 160), np.uint8)
    cv2.rectangle(frame, (600, 330), (700, 530), (255, 255, 255), -1)
    upper, lower = quad(610, 350, 80, 60), quad(610, 430, 80, 60)
    (line,) = [
        line for line in two_rows._lines_from_boxes(0, frame, [(upper, 0.9), (lower, 0.9)]) if line.rows
    ]
    plate = engine._plate_result(frame, line, [Candidate("AB12", 0.9)], 0.9)
    height, width = plate.crop.shape[:2]
    assert height > 1.5 * width
