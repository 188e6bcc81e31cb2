"""The training renderer's side art (`render.render_plate(..., side_art_share)`): pictures beside a
US plate's registration that are never part of the label; off by default without touching the
random stream."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from services.inference.training import render

# Hershey faces: no font files needed.
FONTS = (Path("hershey-simplex"), Path("hershey-duplex"))


# The next draw after render_plate(default_rng(seed)) for seeds 0-7, recorded with the renderer as
# it was before side art existed (410fb5a). The draw count of a plate does not depend on pixels, so
# these hold across Pillow and OpenCV versions; a change means older training runs' streams changed.
NEXT_DRAW_BEFORE_SIDE_ART = [
    1472190201,
    1836585942,
    1687089311,
    387164545,
    1694250175,
    732407263,
    1861127702,
    2083627519,
]
# The same after render_sample (the plate on a car, cut and augmented: the noise drawn depends on the
# crop's size, which Hershey faces fix).
NEXT_DRAW_AFTER_SAMPLE = [
    1463759014,
    1673157334,
    193914726,
    1536321376,
    462416339,
    925430037,
    608811762,
    620163565,
]


def test_share_zero_keeps_the_random_stream() -> None:
    for seed, expected in enumerate(NEXT_DRAW_BEFORE_SIDE_ART):
        rng = np.random.default_rng(seed)
        render.render_plate(rng, FONTS, 0.0)
        assert int(rng.integers(0, 2**31)) == expected
    for seed, expected in enumerate(NEXT_DRAW_AFTER_SAMPLE):
        rng = np.random.default_rng(seed)
        render.render_sample(rng, FONTS, 0.0, 0.0)
        assert int(rng.integers(0, 2**31)) == expected
    for seed in range(8):
        plate, box, label = render.render_plate(np.random.default_rng(seed), FONTS)
        plate_off, box_off, label_off = render.render_plate(np.random.default_rng(seed), FONTS, 0.0)
        assert (label, box) == (label_off, box_off) and np.array_equal(plate, plate_off)
        crop, crop_label = render.render_sample(np.random.default_rng(seed), FONTS)
        crop_off, crop_label_off = render.render_sample(np.random.default_rng(seed), FONTS, 0.0, 0.0)
        assert crop_label == crop_label_off and np.array_equal(crop, crop_off)


def test_labels_are_unchanged_and_only_us_plates_change() -> None:
    changed = 0
    for seed in range(60):
        plate, _, label = render.render_plate(np.random.default_rng(seed), FONTS)
        with_art, _, label_on = render.render_plate(np.random.default_rng(seed), FONTS, 1.0)
        assert label_on == label
        differs = plate.shape != with_art.shape or not np.array_equal(plate, with_art)
        # Only the US style (2:1, wider than tall by less than the EU band plates) draws art.
        if plate.shape[1] / plate.shape[0] > 3:
            assert not differs
        changed += differs
    assert changed > 10


def test_the_box_takes_the_art_in_on_most_plates(monkeypatch: pytest.MonkeyPatch) -> None:
    # A stand-in art box in the plate's top-left corner, so a box that took it in starts there.
    monkeypatch.setattr(render, "_side_art", lambda *args: (1, 1, 3, 3))
    taken = kept = 0
    for seed in range(80):
        plate, box, _ = render.render_plate(np.random.default_rng(seed), FONTS, 1.0)
        if plate.shape[1] / plate.shape[0] > 2.5:  # EU and Brazilian plates: no art
            continue
        x, y, w, h = box
        if (x, y) == (1, 1):
            taken += 1
            assert w > 3 and h > 3  # the registration is still inside
        else:
            kept += 1
    assert taken > 2 * kept > 0


@pytest.mark.parametrize("kind", render.SIDE_ART_KINDS)
@pytest.mark.parametrize("side", ["left", "right"])
def test_art_lies_beside_the_registration_inside_its_box(
    side: str, kind: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    only = tuple(1.0 if name == kind else 0.0 for name in render.SIDE_ART_KINDS)
    monkeypatch.setattr(render, "SIDE_ART_WEIGHTS", only)
    registration = (90, 40, 120, 50)  # x, y, w, h
    for seed in range(8):
        plate = Image.new("RGB", (300, 150), (230, 230, 230))
        art = render._side_art(
            plate, np.random.default_rng(seed), FONTS, registration, side, (300, 150), (0, 0, 0)
        )
        changed = np.argwhere((np.asarray(plate) != 230).any(axis=2))
        assert len(changed) > 0
        rows, columns = changed[:, 0], changed[:, 1]
        x, y, w, h = art
        # Everything drawn is in the returned art box (outlines reach one pixel past it) ...
        assert columns.min() >= x and columns.max() <= x + w + 1
        assert rows.min() >= y and rows.max() <= y + h + 1
        # ... which is on its side of the registration, never over it.
        if side == "left":
            assert columns.max() < registration[0]
        else:
            assert columns.min() >= registration[0] + registration[2]
