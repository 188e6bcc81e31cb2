"""The two-row plates the training renderer draws (`render.TWO_ROW_STYLES`) for the two-row synthetic
frames (`synthetic_frames --two-row`): labels the region grammar knows, and frames the recognizer
reads whole. Hershey faces: no font files needed."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest

from services.inference.engine import OnnxBackend, PlateRecognizer
from services.inference.training import render
from services.normalizer.grammar import default_grammar

FONTS = (Path("hershey-simplex"), Path("hershey-duplex"))


@pytest.mark.parametrize("style", render.TWO_ROW_STYLES, ids=lambda style: style.name)
def test_each_style_renders_registrations_of_its_region(
    style: render.TwoRowStyle, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(render, "TWO_ROW_STYLES", (style,))
    grammar = default_grammar()
    region = style.name.split("-")[0].upper()
    for seed in range(6):
        plate, (x, y, w, h), label = render.render_two_row_plate(np.random.default_rng(seed), FONTS)
        lengths = {sum(ch in "L9A" for ch in top + bottom) for top, bottom in style.rows}
        assert len(label) in lengths
        assert 0 <= x and 0 <= y and x + w <= plate.shape[1] and y + h <= plate.shape[0]
        # The rows take most of the plate's height, one above the other.
        assert h > 0.5 * plate.shape[0]
        assert grammar.clean(label, region).region.upper().startswith(region), label


def test_two_row_plates_on_cars_are_read_whole() -> None:
    recognizer = PlateRecognizer(OnnxBackend(threads=1))
    one_row = PlateRecognizer(recognizer.backend, read_two_rows=False)
    read = one_row_read = 0
    for seed in range(8):
        surround, _, _, label = render.two_row_plate_on_car(np.random.default_rng(seed), FONTS)
        # On a grey 1280x720 frame, the plate about 150 px wide (RGB -> BGR).
        frame = np.full((720, 1280, 3), 90, np.uint8)
        scale = 300 / surround.shape[1]
        car = cv2.resize(surround, (300, round(surround.shape[0] * scale)))[..., ::-1]
        frame[200 : 200 + car.shape[0], 500:800] = car
        plates = recognizer.recognize([frame])[0]
        read += bool(plates) and plates[0].text == label
        plates = one_row.recognize([frame])[0]
        one_row_read += bool(plates) and plates[0].text == label
    assert one_row_read == 0
    assert read >= 6, read  # 8 of 8 when written


def test_row_spacing_sets_the_rows_closer_about_their_middle() -> None:
    for seed in range(4):
        usual = render.render_two_row_plate(np.random.default_rng(seed), FONTS)
        same = render.render_two_row_plate(np.random.default_rng(seed), FONTS, row_spacing=1.0)
        closer = render.render_two_row_plate(np.random.default_rng(seed), FONTS, row_spacing=0.65)
        np.testing.assert_array_equal(same[0], usual[0])
        assert closer[2] == usual[2]  # the same registration
        (_, y, _, h), (_, close_y, _, close_h) = usual[1], closer[1]
        # The box around both rows is shorter, and it shrinks from both ends (about the middle).
        assert close_h < 0.85 * h
        assert close_y > y and close_y + close_h < y + h
