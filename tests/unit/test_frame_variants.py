"""The benchmark frame variants keep each plate's pixels and move its label with them."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest

from services.inference.training.frame_variants import make_set

PLATE = (905, 410, 120, 40)  # x, y, w, h in the 1280x720 source


def _source(tmp_path: Path, size: tuple[int, int] = (1280, 720), box: tuple[int, ...] = PLATE) -> Path:
    width, height = size
    rng = np.random.default_rng(3)
    frame = np.full((height, width, 3), 120, np.uint8)
    x, y, w, h = box
    # A smooth, distinctive patch (JPEG keeps it close) where the plate is.
    patch = cv2.resize(
        rng.integers(0, 256, (4, 12, 3), dtype=np.uint8), (w, h), interpolation=cv2.INTER_LINEAR
    )
    frame[y : y + h, x : x + w] = patch
    source = tmp_path / "source"
    source.mkdir(parents=True)
    cv2.imwrite(str(source / "f.png"), frame)
    (source / "f.txt").write_text(f"f.png\t{x}\t{y}\t{w}\t{h}\tAB123CD\n")
    return source


def _plate_of(folder: Path) -> tuple[np.ndarray, np.ndarray, list[str]]:
    label = (folder / "f.txt").read_text().rstrip("\n").split("\t")
    image = cv2.imread(str(folder / "f.png"))
    assert image is not None
    x, y, w, h = (int(v) for v in label[1:5])
    return image, image[y : y + h, x : x + w].astype(int), label


@pytest.mark.parametrize(
    ("kind", "shape"), [("portrait", (1280, 720)), ("1080p", (1080, 1920)), ("4k", (2160, 3840))]
)
def test_reframed_sets_keep_the_plate_pixels_under_the_moved_label(
    tmp_path: Path, kind: str, shape: tuple[int, int]
) -> None:
    source = _source(tmp_path)
    _, original, _ = _plate_of(source)
    dest = tmp_path / kind
    assert make_set(kind, source, dest) == 1
    image, plate, label = _plate_of(dest)
    assert image.shape[:2] == shape
    assert label[5] == "AB123CD"
    assert np.abs(plate - original).mean() < 4  # the same pixels, through JPEG


def test_a_portrait_photo_cut_keeps_the_plate_and_skips_what_does_not_fit(tmp_path: Path) -> None:
    source = _source(tmp_path, (800, 600), (600, 300, 150, 40))
    _, original, _ = _plate_of(source)
    assert make_set("portrait-photo", source, tmp_path / "cut") == 1
    image, plate, _ = _plate_of(tmp_path / "cut")
    assert image.shape[:2] == (600, 450)
    assert np.abs(plate - original).mean() < 4
    wide = _source(tmp_path / "wide", (800, 600), (100, 300, 500, 40))  # wider than a 450 px cut
    assert make_set("portrait-photo", wide, tmp_path / "none") == 0


def test_a_night_frame_is_grey_and_dark_around_a_lit_plate(tmp_path: Path) -> None:
    source = _source(tmp_path)
    assert make_set("night", source, tmp_path / "night") == 1
    image, plate, label = _plate_of(tmp_path / "night")
    assert label[1:5] == [str(v) for v in PLATE]
    b, g, r = cv2.split(image.astype(int))
    assert np.abs(b - g).max() <= 3 and np.abs(g - r).max() <= 3  # grey, through JPEG
    assert image[:200, :400].mean() < 45  # the scene at a quarter of its 120
    assert plate.mean() > 2 * image[:200, :400].mean()
