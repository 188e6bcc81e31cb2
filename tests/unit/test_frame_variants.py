"""The benchmark frame variants keep each plate's pixels and move its label with them."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest

from services.inference.training.frame_variants import make_set

PLATE = (905, 410, 120, 40)  # x, y, w, h in the 1280x720 source


def _source(
    tmp_path: Path, size: tuple[int, int] = (1280, 720), box: tuple[int, ...] = PLATE, second: bool = False
) -> Path:
    """A JPEG frame with a smooth, distinctive patch (JPEG keeps it close) where the plate is and, with
    `second`, another labelled plate 200 px to its left; the labels space-separated."""
    width, height = size
    rng = np.random.default_rng(3)
    frame = np.full((height, width, 3), 120, np.uint8)
    x, y, w, h = box
    patch = cv2.resize(
        rng.integers(0, 256, (4, 12, 3), dtype=np.uint8), (w, h), interpolation=cv2.INTER_LINEAR
    )
    frame[y : y + h, x : x + w] = patch
    # Sharp text that is no plate (signs) all over the frame but the plates' rows: an added scene
    # must not show a readable copy of it.
    for row in range(60, height, 160):
        if abs(row - y) > 2 * h:
            for col in range(20, width - 200, 260):
                cv2.putText(frame, "SIGN 42", (col, row), cv2.FONT_HERSHEY_SIMPLEX, 1.2, (10, 10, 10), 3)
    labels = f"f.jpg {x} {y} {w} {h} AB123CD\n"
    if second:
        frame[y : y + h, x - 200 : x - 200 + w] = patch
        labels += f"f.jpg {x - 200} {y} {w} {h} XY987ZZ\n"
    source = tmp_path / "source"
    source.mkdir(parents=True)
    cv2.imwrite(str(source / "f.jpg"), frame, [cv2.IMWRITE_JPEG_QUALITY, 95])
    (source / "f.txt").write_text(labels)
    return source


def _plate_of(folder: Path, index: int = 0) -> tuple[np.ndarray, np.ndarray, list[str]]:
    label = (folder / "f.txt").read_text().splitlines()[index].split()
    image = cv2.imread(str(folder / "f.jpg"))
    assert image is not None
    x, y, w, h = (int(v) for v in label[1:5])
    return image, image[y : y + h, x : x + w].astype(int), label


@pytest.mark.parametrize(
    ("kind", "shape"), [("portrait", (1280, 720)), ("1080p", (1080, 1920)), ("4k", (2160, 3840))]
)
def test_reframed_sets_keep_the_plate_pixels_under_the_moved_labels(
    tmp_path: Path, kind: str, shape: tuple[int, int]
) -> None:
    source = _source(tmp_path, second=True)
    dest = tmp_path / kind
    assert make_set(kind, source, dest) == 1
    for index, text in enumerate(("AB123CD", "XY987ZZ")):
        _, original, _ = _plate_of(source, index)
        image, plate, label = _plate_of(dest, index)
        assert image.shape[:2] == shape
        assert label[5] == text
        assert np.abs(plate - original).mean() < 5  # the same pixels, through JPEG twice
    # The added scene is blurred (no readable copy of the sign or plates): everything outside the
    # pasted frame, against the pasted frame itself.
    _, _, label = _plate_of(dest)
    top = int(label[2]) - PLATE[1]  # where the pasted frame starts
    left = max(0, int(label[1]) - PLATE[0])
    # Local contrast (the grey range over 9x9 pixels): the sign's strokes, even enlarged, span ~100.
    contrast = cv2.morphologyEx(cv2.cvtColor(image, cv2.COLOR_BGR2GRAY), cv2.MORPH_GRADIENT, np.ones((9, 9)))
    pasted = np.zeros(contrast.shape, bool)
    pasted[max(0, top - 8) : top + 728, max(0, left - 8) : left + 1288] = True
    assert contrast[pasted].max() > 80
    assert contrast[~pasted].max() < 40


def test_a_portrait_photo_cut_keeps_the_plate_and_skips_what_does_not_fit(tmp_path: Path) -> None:
    source = _source(tmp_path, (800, 600), (600, 300, 150, 40))
    _, original, _ = _plate_of(source)
    assert make_set("portrait-photo", source, tmp_path / "cut") == 1
    image, plate, _ = _plate_of(tmp_path / "cut")
    assert image.shape[:2] == (600, 450)
    assert np.abs(plate - original).mean() < 5
    wide = _source(tmp_path / "wide", (800, 600), (100, 300, 500, 40))  # wider than a 450 px cut
    assert make_set("portrait-photo", wide, tmp_path / "none") == 0


def test_a_night_frame_is_grey_and_dark_around_its_lit_plates(tmp_path: Path) -> None:
    source = _source(tmp_path, second=True)
    assert make_set("night", source, tmp_path / "night") == 1
    image, _, label = _plate_of(tmp_path / "night")
    assert label[1:5] == [str(v) for v in PLATE]
    b, g, r = cv2.split(image.astype(int))
    assert np.abs(b - g).max() <= 3 and np.abs(g - r).max() <= 3  # grey, through JPEG
    assert image[:200, :400].mean() < 45  # the scene at a quarter of its 120
    for index in (0, 1):
        _, plate, _ = _plate_of(tmp_path / "night", index)
        assert plate.mean() > 2 * image[:200, :400].mean()


def test_us_scene_puts_each_crop_over_a_painted_out_plate_and_keeps_its_name_and_label(
    tmp_path: Path,
) -> None:
    from services.inference.training.frame_variants import US_WIDTH_RANGE, us_in_scenes

    scenes = _source(tmp_path, second=True)
    crops = tmp_path / "crops"
    crops.mkdir()
    rng = np.random.default_rng(5)
    crop = cv2.resize(
        rng.integers(0, 256, (5, 10, 3), dtype=np.uint8), (320, 160), interpolation=cv2.INTER_NEAREST
    )
    cv2.imwrite(str(crops / "ca17.png"), crop)
    cv2.imwrite(str(crops / "ny3.png"), 255 - crop)
    (crops / "groundtruth.csv").write_text("file,state,plate\nca17.png,ca,7abc123\nny3.png,ny,XYZ1234\n")
    dest = tmp_path / "us-scene"
    assert us_in_scenes(crops, scenes, dest) == 2
    scene = cv2.imread(str(scenes / "f.jpg"))
    for name, plate, source in (("ca17", "7ABC123", crop), ("ny3", "XYZ1234", 255 - crop)):
        label = (dest / f"{name}.txt").read_text().split()
        assert label[0] == f"{name}.png" and label[5] == plate  # the crop's name keeps its split
        image = cv2.imread(str(dest / f"{name}.png"))
        assert image.shape == scene.shape
        x, y, w, h = (int(v) for v in label[1:5])
        assert US_WIDTH_RANGE[0] * PLATE[2] - 1 <= w <= US_WIDTH_RANGE[1] * PLATE[2] + 1
        assert abs(h - w / 2) <= 1
        # Centred on the first plate, and the crop's pixels there (through JPEG once).
        assert (
            abs(x + w / 2 - (PLATE[0] + PLATE[2] / 2)) <= 1
            and abs(y + h / 2 - (PLATE[1] + PLATE[3] / 2)) <= 1
        )
        expected = cv2.resize(source, (w, h), interpolation=cv2.INTER_AREA).astype(int)
        assert np.abs(image[y : y + h, x : x + w].astype(int) - expected).mean() < 12
        # The second plate, 200 px to the left, is painted out: no trace of its patch's contrast.
        second = image[PLATE[1] : PLATE[1] + PLATE[3], PLATE[0] - 200 : PLATE[0] - 200 + PLATE[2]]
        original = scene[PLATE[1] : PLATE[1] + PLATE[3], PLATE[0] - 200 : PLATE[0] - 200 + PLATE[2]]
        assert second.astype(int).std() < 0.3 * original.astype(int).std()


def test_tilt_turns_the_frame_about_its_plate_by_5_to_15_degrees(tmp_path: Path) -> None:
    import math

    source = _source(tmp_path, second=True)
    dest = tmp_path / "tilt"
    assert make_set("tilt", source, dest) == 1
    image, _, label = _plate_of(dest)
    assert image.shape[:2] == (720, 1280) and label[5] == "AB123CD"
    x, y, w, h = (int(v) for v in label[1:5])
    px, py, pw, ph = PLATE
    # Turned about its own centre: the new box is centred where the plate was.
    assert abs(x + w / 2 - (px + pw / 2)) <= 1.5 and abs(y + h / 2 - (py + ph / 2)) <= 1.5
    # The box around a pw x ph rectangle turned by a: pw cos a + ph sin a wide.
    widths = [pw * math.cos(math.radians(a)) + ph * math.sin(math.radians(a)) for a in (5, 15)]
    heights = [pw * math.sin(math.radians(a)) + ph * math.cos(math.radians(a)) for a in (5, 15)]
    assert min(widths) - 2 <= w <= max(widths) + 2 and min(heights) - 2 <= h <= max(heights) + 2
    # The other plate (200 px to the left) turns with the frame: its new box is centred on its patch.
    _, _, other = _plate_of(dest, 1)
    assert other[5] == "XY987ZZ"
    ox, oy, ow, oh = (int(v) for v in other[1:5])
    _, original, _ = _plate_of(source, 1)
    turned = image[oy + oh // 2 - 5 : oy + oh // 2 + 5, ox + ow // 2 - 5 : ox + ow // 2 + 5].astype(int)
    centre = original[PLATE[3] // 2 - 5 : PLATE[3] // 2 + 5, PLATE[2] // 2 - 5 : PLATE[2] // 2 + 5]
    assert np.abs(turned.mean(axis=(0, 1)) - centre.mean(axis=(0, 1))).max() < 12
    assert abs(oy + oh / 2 - (py + ph / 2)) > 5  # turned, not only shifted: it left the plate's row


def test_roll_turns_every_frame_about_its_centre_so_level_text_runs_down_to_the_right(tmp_path: Path) -> None:
    from services.inference import postprocess
    from services.inference.training.frame_variants import ROLL_DEGREES

    source = _source(tmp_path, second=True)
    dest = tmp_path / "roll"
    assert make_set("roll", source, dest) == 1
    image, _, label = _plate_of(dest)
    assert image.shape[:2] == (720, 1280)
    # A plate right of the centre moves down (text runs down to the right), and turning the frame
    # back by ROLL_DEGREES (as `recognize(rolls=...)` does) puts the patch back where it was.
    _, y, _, h = (int(v) for v in label[1:5])
    px, py, pw, ph = PLATE
    assert y + h / 2 > py + ph / 2 + 20
    level, _ = postprocess.turned_upright(image, ROLL_DEGREES, grow=False)
    _, original, _ = _plate_of(source)
    back = level[py + 10 : py + ph - 10, px + 10 : px + pw - 10].astype(int)
    assert np.abs(back - original[10:-10, 10:-10]).mean() < 12


def test_dark_plate_inverts_the_labelled_plates_only(tmp_path: Path) -> None:
    source = _source(tmp_path, second=True)
    assert make_set("dark-plate", source, tmp_path / "dark") == 1
    image, _, label = _plate_of(tmp_path / "dark")
    assert label[1:5] == [str(v) for v in PLATE]
    for index in (0, 1):
        _, inverted, _ = _plate_of(tmp_path / "dark", index)
        _, original, _ = _plate_of(source, index)
        assert np.abs(inverted - (255 - original)).mean() < 6  # through JPEG
    assert np.abs(image[:200, :400].astype(int) - cv2.imread(str(source / "f.jpg"))[:200, :400]).mean() < 3


def test_us_scene_of_one_half_uses_only_crops_and_photos_of_that_half(tmp_path: Path) -> None:
    from services.inference.training.datasets import split_of
    from services.inference.training.frame_variants import us_in_scenes

    scenes = tmp_path / "scenes"
    scenes.mkdir()
    rng = np.random.default_rng(9)
    photos = [f"p{i}.jpg" for i in range(12)]
    for index, name in enumerate(photos):
        frame = np.full((360, 480, 3), 20 * index, np.uint8)  # each photo its own grey
        cv2.imwrite(str(scenes / name), frame)
        (scenes / f"p{index}.txt").write_text(f"{name} 200 200 80 20 AB123CD\n")
    crops = tmp_path / "crops"
    crops.mkdir()
    names = [f"c{i}.png" for i in range(12)]
    for name in names:
        cv2.imwrite(str(crops / name), rng.integers(0, 256, (80, 160, 3), dtype=np.uint8))
    (crops / "groundtruth.csv").write_text("".join(f"{n},ca,ABC{i}\n" for i, n in enumerate(names)))
    assert {split_of(n) for n in names} == {split_of(n) for n in photos} == {"train", "heldout"}
    for half in ("train", "heldout"):
        dest = tmp_path / half
        written = us_in_scenes(crops, scenes, dest, split=half)
        made = sorted(p.name for p in dest.glob("*.png"))
        assert written == len(made) == sum(split_of(n) == half for n in names)
        assert all(split_of(n) == half for n in made)
        greys = {20 * i for i, n in enumerate(photos) if split_of(n) == half}
        for name in made:
            corner = cv2.imread(str(dest / name))[5:15, 5:15].astype(int)
            assert round(corner.mean() / 20) * 20 in greys  # the backdrop is a photo of the same half
    with pytest.raises(ValueError, match="split"):
        us_in_scenes(crops, scenes, tmp_path / "bad", split="test")
