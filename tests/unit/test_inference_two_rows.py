"""Two-row (stacked) plates: which detected lines are the rows of one plate, and reading them as one
line with the real in-process models (rendered frames; no dev sets needed)."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from services.inference import engine, postprocess
from services.inference.engine import OnnxBackend, PlateRecognizer
from tests.unit.test_inference_postprocess import render_frame


def quad(x: float, y: float, w: float, h: float) -> np.ndarray:
    """An axis-aligned tl-tr-br-bl quad."""
    return np.array([[x, y], [x + w, y], [x + w, y + h], [x, y + h]], np.float32)


def turned(quad_: np.ndarray, degrees: float) -> np.ndarray:
    """`quad_` turned about its centre."""
    centre = quad_.mean(axis=0)
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
    # A leaning plate's rows lean alike.
    assert postprocess.stacked_rows(turned(UPPER, 8), turned(LOWER, 8))


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


def test_two_rows_of_words_are_not_a_plate(recognizers: tuple[PlateRecognizer, PlateRecognizer]) -> None:
    # Read side by side, BEST over WEST reads and classifies like a plate (BESTWEST): only the missing
    # digit keeps it out.
    two_rows, _ = recognizers
    assert two_rows.recognize([render_two_row_frame("BEST", "WEST")])[0] == []


def test_the_classifier_and_the_reader_see_the_two_rows_side_by_side(
    recognizers: tuple[PlateRecognizer, PlateRecognizer],
) -> None:
    two_rows, _ = recognizers
    frame = render_two_row_frame("ABC", "1234")
    (line,) = [line for line in two_rows.detect_lines([frame]) if line.rows is not None]
    for cut in (engine._classifier_cut(frame, line), line.crop):
        height, width = cut.shape[:2]
        assert width > 2.5 * height  # one line of seven characters, not the square plate
