"""The EU plate's blue band is painted over before a crop is read (`postprocess.clear_plate_bands`);
plates without one, blue US lettering and grey crops are left as they are. Synthetic plates only."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest

from services.inference import postprocess
from services.inference.training import render

# Hershey faces: no font files needed.
FONTS = (Path("hershey-simplex"), Path("hershey-duplex"))


def _eu_plate(seed: int, monkeypatch: pytest.MonkeyPatch) -> tuple[np.ndarray, int, int]:
    """(BGR plate, band width, registration left edge) of a rendered EU plate."""
    monkeypatch.setattr(render, "PLATE_STYLES", tuple(s for s in render.PLATE_STYLES if s.name == "eu"))
    plate, (text_x, _, _, _), _ = render.render_plate(np.random.default_rng(seed), FONTS)
    plate = np.ascontiguousarray(plate[..., ::-1])
    row = plate[plate.shape[0] // 2]
    band = 6
    while np.abs(row[band].astype(int) - row[6].astype(int)).max() <= 3:
        band += 1
    return plate, band, text_x


def _on_car(plate: np.ndarray, bodywork: tuple[int, int, int], margin: float) -> tuple[np.ndarray, int]:
    """The plate with `margin` of its height of bodywork (BGR) on every side, and that offset."""
    pad = round(margin * plate.shape[0])
    return cv2.copyMakeBorder(plate, pad, pad, pad, pad, cv2.BORDER_CONSTANT, value=bodywork), pad


def _blue_share(image: np.ndarray) -> float:
    hsv = cv2.cvtColor(image, cv2.COLOR_BGR2HSV)
    blue = (hsv[..., 0] >= 95) & (hsv[..., 0] <= 130) & (hsv[..., 1] >= 90) & (hsv[..., 2] >= 80)
    return float(blue.mean())


@pytest.mark.parametrize("seed", range(6))
def test_eu_band_is_found_and_painted_over(seed: int, monkeypatch: pytest.MonkeyPatch) -> None:
    plate, band, text_x = _eu_plate(seed, monkeypatch)
    crop, pad = _on_car(plate, (60, 60, 60), 0.08)
    left = postprocess.plate_band_cut(crop)
    assert pad + band - 3 <= left <= pad + text_x
    cleared = postprocess.clear_plate_bands(crop)
    assert cleared.shape == crop.shape
    assert _blue_share(crop[:, :left]) > 0.4
    assert _blue_share(cleared[:, :left]) == 0.0
    # Only the band changes: the registration and the rest of the plate are as they were.
    assert np.array_equal(cleared[:, left:], crop[:, left:])


def test_partial_band_of_a_line_cut_is_found(monkeypatch: pytest.MonkeyPatch) -> None:
    """A registration line cut with margin takes in only the band's right part."""
    plate, band, text_x = _eu_plate(1, monkeypatch)
    start = band // 2
    cut = plate[8:-8, start:]
    left = postprocess.plate_band_cut(cut)
    assert band - start - 3 <= left <= text_x - start


def test_plate_without_band_is_untouched(monkeypatch: pytest.MonkeyPatch) -> None:
    plate, band, _ = _eu_plate(3, monkeypatch)
    plate = plate.copy()
    plate[:, : band + 1] = plate[plate.shape[0] // 2, band + 4]
    crop, _ = _on_car(plate, (40, 40, 40), 0.08)
    assert postprocess.plate_band_cut(crop) == 0
    assert postprocess.clear_plate_bands(crop) is crop


def test_grey_crops_are_untouched(monkeypatch: pytest.MonkeyPatch) -> None:
    plate, _, _ = _eu_plate(4, monkeypatch)
    grey = cv2.cvtColor(plate, cv2.COLOR_BGR2GRAY)
    for crop in (grey, cv2.cvtColor(grey, cv2.COLOR_GRAY2BGR)):
        assert postprocess.plate_band_cut(crop) == 0
        assert postprocess.clear_plate_bands(crop) is crop


def _us_plate_blue_text(tight: bool) -> np.ndarray:
    """A white US plate with blue lettering, a blue state name and a blue strip at the left edge."""
    plate = np.full((150, 300, 3), 245, np.uint8)
    blue = (170, 70, 20)  # BGR
    cv2.putText(plate, "TEXAS", (95, 30), cv2.FONT_HERSHEY_DUPLEX, 0.9, blue, 2)
    cv2.rectangle(plate, (0, 45), (14, 115), blue, -1)
    cv2.putText(plate, "LBX 4821", (22, 105), cv2.FONT_HERSHEY_DUPLEX, 2.0, blue, 7)
    if tight:  # the registration line cut tight: the first letter at the crop's edge
        return np.ascontiguousarray(plate[50:115, 20:290])
    return plate


@pytest.mark.parametrize("tight", [False, True])
def test_us_plate_with_blue_lettering_is_untouched(tight: bool) -> None:
    crop = _us_plate_blue_text(tight)
    assert postprocess.plate_band_cut(crop) == 0
    assert postprocess.clear_plate_bands(crop) is crop
    framed, _ = _on_car(crop, (170, 90, 30), 0.1)  # on a blue car as well
    assert postprocess.plate_band_cut(framed) == 0


def test_reading_variants_read_the_cleared_crop(monkeypatch: pytest.MonkeyPatch) -> None:
    plate, band, _ = _eu_plate(5, monkeypatch)
    crop, pad = _on_car(plate, (60, 60, 60), 0.08)
    for variant in postprocess.reading_variants(crop):
        assert _blue_share(variant[:, : pad + band // 2]) == 0.0
