"""A small plate-shaped image is a plate crop: it is also read whole, and that reading replaces the
detected lines' plates only when none was read or it extends the best of them."""

from __future__ import annotations

import numpy as np
import pytest

from services.inference import postprocess
from services.inference.engine import PlateRecognizer, PlateResult, whole_reading_wins
from services.inference.postprocess import Candidate
from tests.unit.test_inference_plate_lines import _one_line_frame, _ReadsByBrightness

TIGHT = ((0.0, 0.0),)


@pytest.mark.parametrize(
    ("width", "height", "shaped"),
    [
        (320, 156, True),  # a US plate cut with its frame
        (90, 44, True),
        (470, 100, True),  # an EU one-line plate
        (320, 195, True),  # the squarest US dev crop
        (480, 200, True),
        (481, 200, False),  # larger than a crop
        (400, 201, False),
        (354, 328, False),  # a small photo, not plate-shaped
        (352, 240, False),  # video frames: CIF
        (320, 240, False),  # 4:3
        (320, 180, False),  # 16:9
        (256, 144, False),
        (1280, 720, False),
        (600, 100, False),
        (40, 7, False),  # too low to hold a line
    ],
)
def test_plate_crop_shape(width: int, height: int, shaped: bool) -> None:
    assert postprocess.plate_crop_shaped(width, height) is shaped


def _plate(text: str, confidence: float) -> PlateResult:
    return PlateResult((0, 0, 10, 5), [Candidate(text, confidence, ())], 0.9, np.zeros((5, 10, 3), np.uint8))


def test_the_whole_reading_wins_only_over_nothing_or_a_part_of_it() -> None:
    assert whole_reading_wins("LXK5176", [])
    assert whole_reading_wins("LXK5176", [_plate("K5176", 0.99)])
    assert whole_reading_wins("4434R", [_plate("434R", 0.9), _plate("WYO1", 0.5)])
    # Judged against the most confident plate only.
    assert not whole_reading_wins("4434R", [_plate("434R", 0.5), _plate("WYO1", 0.9)])
    assert not whole_reading_wins("AB128", [_plate("AB123", 0.5)])  # same length: the line's
    assert not whole_reading_wins("K5176", [_plate("K5176", 0.5)])
    assert not whole_reading_wins("XK517", [_plate("K5176", 0.5)])  # overlaps, does not contain
    assert not whole_reading_wins("K517", [_plate("LXK5176", 0.5)])


def _crop_with_one_line() -> tuple[np.ndarray, np.ndarray]:
    """A light 200 x 100 plate crop with one dark line, and the canvas DB map that finds it (the crop
    is blown up 4.8 times onto the 960 x 544 canvas)."""
    _, prob = _one_line_frame()
    crop = np.full((100, 200, 3), 230, np.uint8)
    crop[48:64, 75:125] = 30  # _one_line_frame's dark box, scaled down
    return crop, prob


@pytest.mark.parametrize(
    ("line", "whole", "read_whole", "expected"),
    [
        ("K5176", "LXK5176", True, "LXK5176"),  # the detector cut the left characters off
        ("K5176", "LXK5176", False, "K5176"),
        ("AB123", "AB128", True, "AB123"),  # a different reading of the same length: the line's
    ],
)
def test_a_plate_crop_is_read_whole_too(line: str, whole: str, read_whole: bool, expected: str) -> None:
    crop, prob = _crop_with_one_line()
    # The tight line cut is dark (reads `line`); the whole crop is light (reads `whole`).
    backend = _ReadsByBrightness(prob, line, whole)
    recognizer = PlateRecognizer(backend, crop_margins=TIGHT, read_crops_whole=read_whole)
    (plates,) = recognizer.recognize([crop])
    assert [p.text for p in plates] == [expected]
    if expected == whole:
        assert plates[0].box == (0, 0, 200, 100)
        assert plates[0].detection_confidence > 0  # the best score of the lines detected in it


def test_a_plate_crop_with_no_line_detected_is_read_whole() -> None:
    crop, prob = _crop_with_one_line()
    backend = _ReadsByBrightness(np.zeros_like(prob), "K5176", "LXK5176")
    (plates,) = PlateRecognizer(backend, crop_margins=TIGHT).recognize([crop])
    assert [(p.text, p.box, p.detection_confidence) for p in plates] == [("LXK5176", (0, 0, 200, 100), 0.0)]


def test_detect_lines_gives_only_detected_lines() -> None:
    crop, prob = _crop_with_one_line()
    recognizer = PlateRecognizer(_ReadsByBrightness(prob, "K5176", "LXK5176"), crop_margins=TIGHT)
    (line,) = recognizer.detect_lines([crop])
    assert not line.whole_image


def test_a_frame_is_never_read_whole() -> None:
    frame, prob = _one_line_frame()  # 960 x 544: a scene, not a crop
    backend = _ReadsByBrightness(prob, "K5176", "LXK5176")
    (plates,) = PlateRecognizer(backend, crop_margins=TIGHT).recognize([frame])
    assert [p.text for p in plates] == ["K5176"]


def test_in_a_batch_only_the_crops_are_read_whole() -> None:
    crop, prob = _crop_with_one_line()
    frame, _ = _one_line_frame()
    backend = _ReadsByBrightness(prob, "K5176", "LXK5176")
    results = PlateRecognizer(backend, crop_margins=TIGHT).recognize([crop, frame, crop])
    assert [[(p.text, p.box) for p in plates] for plates in results][::2] == [
        [("LXK5176", (0, 0, 200, 100))]
    ] * 2
    assert [p.text for p in results[1]] == ["K5176"]
