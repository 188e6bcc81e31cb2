"""Benchmark sets of other frame shapes and light, made from a labelled set in the openalpr layout.

    .venv/bin/python -m services.inference.training.frame_variants KIND SRC DST
    platewatch bench accuracy DST

Each plate keeps its pixel size, so a set says how the read path copes with the frame around it, not
with bigger or smaller plates. Kinds (the first label of an image is the plate the new frame is built
around; labels move with the pixels):

- `portrait` (1280x720 frames in): a 720x1280 frame, as a phone held upright sees; the 720x720
  square of the frame that holds the plate at the bottom, above it the frame's top squeezed to 720
  wide and blurred (more scene, no readable text);
- `portrait-photo` (landscape photos in): a 3:4 upright cut of the photo's full height around the
  plate; photos whose plate is wider than the cut are left out;
- `1080p`, `4k`: the frame pasted at a seeded position into a blurred enlargement of itself of
  1920x1080 or 3840x2160 (a larger sensor seeing the same car at the same pixel size);
- `tilt`: the frame rotated about its plate by 5-15 degrees either way (edges reflected), as a
  camera with some roll, a car on a slope or a hand-held phone sees it; labels become the boxes
  around the turned plates (a plate turned out of the frame loses its label);
- `roll`: the frame turned about its centre so that level text runs down to the right by
  `ROLL_DEGREES` (10; edges reflected), every frame alike: a fixed camera mounted with that roll, read
  as such with `platewatch bench accuracy DST --roll 10`;
- `dark-plate`: every labelled plate's box inverted (255 - v), so its text is light on a dark
  plate: a stand-in for black plates (old Czech and Slovak, some US specialty series); the whole box
  is inverted, so an EU band turns orange where a real black plate's band stays blue;
- `night`: the frame in grey, its scene at a quarter of its brightness with sensor noise and the
  labelled plates bright, as a retroreflective plate under a camera's infrared light. A stand-in: real
  IR footage also has bloom, overexposure and motion blur.

`us_in_scenes` (CLI kind `us-scene`, `--scenes DIR`) builds whole photos around plate crops instead:
each US crop of a `groundtruth.csv` folder takes the place of the labelled plate of a real photo (the
EU photos: their plates painted out, the crop scaled to 0.7-1.2 times the painted plate's width), so
real US plates are read among a real car's badges, lamps and bumper at camera scale, which the crops
alone never show. The composite keeps the crop's file name (and so its train / held-out half), is
JPEG-compressed once as a camera would, and is stored under that name (losslessly for PNG names, the
US set's; at quality 100 for JPEG names). With `--split heldout` both the crops and the photos are of
the held-out half: the set to measure a model trained on train-half composites with.

Session 12 used them on the 150 synthetic frames (`synthetic_frames --count 150 --seed 4242`) and the
EU photos (README, Recognition: "Frame shape and size"); session 13 added `tilt` and `us-scene`,
session 15 `roll` and `dark-plate`. Pure
OpenCV and numpy; seeded.
"""

from __future__ import annotations

import argparse
import csv
from collections.abc import Callable
from pathlib import Path

import cv2
import numpy as np

from services.inference import postprocess
from services.inference.training.datasets import split_of

KINDS = ("portrait", "portrait-photo", "1080p", "4k", "tilt", "roll", "dark-plate", "night", "us-scene")
TILT_DEGREES = (5.0, 15.0)
ROLL_DEGREES = 10.0
SEED = 7
JPEG_QUALITY = 92
# Blur of the added scene (pixels): strong enough that no text in it is readable.
SCENE_BLUR = 40.0

Label = list[str]  # file, x, y, w, h, plate (and any further fields), as in the .txt
Made = tuple[np.ndarray, list[Label]] | None


def _moved(labels: list[Label], matrix: np.ndarray, width: int, height: int) -> list[Label]:
    """The labels with each box taken through the 2x3 affine `matrix` (the whole-pixel box around the
    moved box), without those that leave a width x height frame."""
    moved = []
    for label in labels:
        x, y, w, h = (int(v) for v in label[1:5])
        x0, y0, x1, y1 = postprocess.extent_through((x, y, w, h), matrix)
        if x0 >= 0 and y0 >= 0 and x1 <= width and y1 <= height:
            box = (str(v) for v in (x0, y0, x1 - x0, y1 - y0))
            moved.append([label[0], *box, *label[5:]])
    return moved


def _shifted(labels: list[Label], dx: int, dy: int, width: int, height: int) -> list[Label]:
    """The labels moved by (dx, dy), without those that leave a width x height frame."""
    return _moved(labels, np.array([[1, 0, dx], [0, 1, dy]], np.float32), width, height)


def portrait(frame: np.ndarray, labels: list[Label], rng: np.random.Generator) -> Made:
    """720x1280 from a 1280x720 frame (see the module docstring)."""
    height, width = frame.shape[:2]
    side = height
    x, _, w, _ = (int(v) for v in labels[0][1:5])
    left = min(max(0, x + w // 2 - side // 2), width - side)
    top_rows = round(side * 16 / 9) - side
    scene = cv2.resize(frame[:top_rows], (side, top_rows), interpolation=cv2.INTER_AREA)
    scene = cv2.GaussianBlur(scene, (0, 0), SCENE_BLUR / 5)
    out = np.vstack([scene, frame[:, left : left + side]])
    return out, _shifted(labels, -left, top_rows, side, out.shape[0])


def portrait_photo(frame: np.ndarray, labels: list[Label], rng: np.random.Generator) -> Made:
    """A 3:4 upright cut of a landscape photo around its plate (see the module docstring)."""
    height, width = frame.shape[:2]
    cut = round(height * 3 / 4)
    x, _, w, _ = (int(v) for v in labels[0][1:5])
    if cut >= width or w > cut:
        return None
    left = min(max(0, x + w // 2 - cut // 2), width - cut)
    return np.ascontiguousarray(frame[:, left : left + cut]), _shifted(labels, -left, 0, cut, height)


def _enlarged(size: tuple[int, int]) -> Callable[[np.ndarray, list[Label], np.random.Generator], Made]:
    def make(frame: np.ndarray, labels: list[Label], rng: np.random.Generator) -> Made:
        width, height = size
        h, w = frame.shape[:2]
        if w > width or h > height:
            return None
        scene = cv2.resize(frame, size, interpolation=cv2.INTER_LINEAR)
        out = cv2.GaussianBlur(scene, (0, 0), SCENE_BLUR)
        left, top = int(rng.integers(0, width - w + 1)), int(rng.integers(0, height - h + 1))
        out[top : top + h, left : left + w] = frame
        return out, _shifted(labels, left, top, width, height)

    return make


def _rotated(frame: np.ndarray, labels: list[Label], centre: tuple[float, float], degrees: float) -> Made:
    """The frame turned counter-clockwise by `degrees` (cv2.getRotationMatrix2D's sense: level text
    then runs up to the right) about `centre`, in its own size with edges reflected, labels moved."""
    height, width = frame.shape[:2]
    matrix = cv2.getRotationMatrix2D(centre, degrees, 1.0)
    out = cv2.warpAffine(
        frame, matrix, (width, height), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT
    )
    return out, _moved(labels, matrix, width, height)


def tilt(frame: np.ndarray, labels: list[Label], rng: np.random.Generator) -> Made:
    """The frame turned about its first plate (see the module docstring)."""
    x, y, w, h = (int(v) for v in labels[0][1:5])
    degrees = float(rng.uniform(*TILT_DEGREES)) * (1 if rng.random() < 0.5 else -1)
    return _rotated(frame, labels, (x + w / 2, y + h / 2), degrees)


def roll(frame: np.ndarray, labels: list[Label], rng: np.random.Generator) -> Made:
    """The frame as a camera with `ROLL_DEGREES` of roll sees it (see the module docstring)."""
    height, width = frame.shape[:2]
    return _rotated(frame, labels, (width / 2, height / 2), -ROLL_DEGREES)  # text runs down


def dark_plate(frame: np.ndarray, labels: list[Label], rng: np.random.Generator) -> Made:
    """The frame with its labelled plates inverted (see the module docstring)."""
    out = frame.copy()
    height, width = frame.shape[:2]
    for label in labels:
        x, y, w, h = (int(v) for v in label[1:5])
        x0, y0, x1, y1 = max(0, x), max(0, y), min(width, x + w), min(height, y + h)
        out[y0:y1, x0:x1] = 255 - out[y0:y1, x0:x1]
    return out, labels


def night(frame: np.ndarray, labels: list[Label], rng: np.random.Generator) -> Made:
    """The frame as a night infrared picture (see the module docstring)."""
    grey = cv2.cvtColor(frame, cv2.COLOR_BGR2GRAY).astype(np.float32)
    lit = np.zeros_like(grey)
    for label in labels:  # every labelled plate is retroreflective
        x, y, w, h = (int(v) for v in label[1:5])
        box = np.zeros_like(grey)
        cv2.rectangle(box, (x, y), (x + w, y + h), 1.0, -1)
        lit = np.maximum(lit, cv2.GaussianBlur(box, (0, 0), max(2.0, h / 6)))
    plate = np.clip((grey - 40) * 1.3 + 40, 0, 255)
    noisy = grey * 0.25 * (1 - lit) + plate * lit + rng.normal(0, 6, grey.shape)
    out = np.clip(noisy, 0, 255).astype(np.uint8)
    return cv2.cvtColor(out, cv2.COLOR_GRAY2BGR), labels


MAKERS: dict[str, Callable[[np.ndarray, list[Label], np.random.Generator], Made]] = {
    "portrait": portrait,
    "portrait-photo": portrait_photo,
    "1080p": _enlarged((1920, 1080)),
    "4k": _enlarged((3840, 2160)),
    "tilt": tilt,
    "roll": roll,
    "dark-plate": dark_plate,
    "night": night,
}


# The crop's width against the painted-out plate's: a US plate is 0.59 times an EU plate's width, and
# US cameras are set up for larger plates; the range spans both.
US_WIDTH_RANGE = (0.7, 1.2)


def _painted_out(scene: np.ndarray, labels: list[Label]) -> np.ndarray:
    """`scene` with every labelled plate inpainted from its surroundings (no readable text left)."""
    mask = np.zeros(scene.shape[:2], np.uint8)
    for label in labels:
        x, y, w, h = (int(v) for v in label[1:5])
        pad = max(3, h // 5)
        cv2.rectangle(mask, (x - pad, y - pad), (x + w + pad, y + h + pad), 255, -1)
    return cv2.inpaint(scene, mask, 5, cv2.INPAINT_TELEA)


def us_in_scene(
    crop: np.ndarray, scene: np.ndarray, labels: list[Label], rng: np.random.Generator
) -> tuple[np.ndarray, tuple[int, int, int, int]] | None:
    """The scene with its plates painted out and `crop` centred on its first plate (see the module
    docstring), and the crop's box (x, y, w, h) in it; None when the crop would not fit."""
    x, y, w, h = (int(v) for v in labels[0][1:5])
    width = round(w * rng.uniform(*US_WIDTH_RANGE))
    height = round(width * crop.shape[0] / crop.shape[1])
    frame_height, frame_width = scene.shape[:2]
    if width >= frame_width or height >= frame_height or width < 8:
        return None
    left = min(max(0, x + w // 2 - width // 2), frame_width - width)
    top = min(max(0, y + h // 2 - height // 2), frame_height - height)
    out = _painted_out(scene, labels)
    out[top : top + height, left : left + width] = cv2.resize(
        crop, (width, height), interpolation=cv2.INTER_AREA
    )
    ok, jpeg = cv2.imencode(".jpg", out, [cv2.IMWRITE_JPEG_QUALITY, JPEG_QUALITY])
    if not ok:
        raise RuntimeError("JPEG encoding failed")
    camera = cv2.imdecode(jpeg, cv2.IMREAD_COLOR)
    if camera is None:
        raise RuntimeError("a JPEG this process encoded failed to decode")
    return camera, (left, top, width, height)


def _labels_of(txt: Path) -> list[Label]:
    # Whitespace-separated, as `accuracy.load_labels` reads them; written back with tabs.
    return [line.split() for line in txt.read_text().splitlines() if line.strip()]


def us_in_scenes(crops: Path, scenes: Path, dest: Path, seed: int = SEED, split: str | None = None) -> int:
    """Writes one composite per crop listed in `crops`/groundtruth.csv to `dest` (see the module
    docstring), scenes taken in turn from the labelled photos of `scenes`; returns how many. With
    `split` ("train" / "heldout"), only crops and photos of that half (`datasets.split_of`), so that
    lines cut from the composites can train a model without anything of the other half."""
    if split not in (None, "train", "heldout"):
        raise ValueError(f"split must be train or heldout: {split!r}")
    rng = np.random.default_rng(seed)
    backdrops = []
    for txt in sorted(scenes.glob("*.txt")):
        labels = _labels_of(txt)
        if split is not None and labels and split_of(labels[0][0]) != split:
            continue
        if labels and (image := cv2.imread(str(scenes / labels[0][0]), cv2.IMREAD_COLOR)) is not None:
            backdrops.append((image, labels))
    if not backdrops:
        raise ValueError(f"{scenes}: no labelled photos")
    dest.mkdir(parents=True, exist_ok=True)
    written = 0
    with (crops / "groundtruth.csv").open(newline="") as handle:
        rows = [
            row
            for row in csv.reader(handle)
            if len(row) >= 3
            and row[0].lower().endswith((".png", ".jpg", ".jpeg"))
            and split in (None, split_of(row[0]))
        ]
    for index, (name, _state, plate) in enumerate(row[:3] for row in sorted(rows)):
        crop = cv2.imread(str(crops / name), cv2.IMREAD_COLOR)
        if crop is None:
            continue
        scene, labels = backdrops[index % len(backdrops)]
        made = us_in_scene(crop, scene, labels, rng)
        if made is None:
            continue
        image, box = made
        jpeg = name.lower().endswith((".jpg", ".jpeg"))  # PNG writers warn on a JPEG option
        cv2.imwrite(str(dest / name), image, [cv2.IMWRITE_JPEG_QUALITY, 100] if jpeg else [])
        (dest / f"{Path(name).stem}.txt").write_text(
            "\t".join([name, *(str(v) for v in box), plate.strip().upper()]) + "\n"
        )
        written += 1
    return written


def make_set(kind: str, source: Path, dest: Path, seed: int = SEED) -> int:
    """Writes the `kind` variant of every labelled image in `source` to `dest` (same names); returns
    how many were written. `us-scene` is built by `us_in_scenes`, which needs the photos too."""
    if kind not in MAKERS:
        raise ValueError(f"no frame variant {kind!r} for make_set (kinds: {', '.join(MAKERS)})")
    make = MAKERS[kind]
    rng = np.random.default_rng(seed)
    dest.mkdir(parents=True, exist_ok=True)
    written = 0
    for txt in sorted(source.glob("*.txt")):
        labels = _labels_of(txt)
        if not labels:
            continue
        frame = cv2.imread(str(source / labels[0][0]), cv2.IMREAD_COLOR)
        if frame is None:
            continue
        made = make(frame, labels, rng)
        if made is None or not made[1]:
            continue
        image, moved = made
        cv2.imwrite(str(dest / labels[0][0]), image, [cv2.IMWRITE_JPEG_QUALITY, JPEG_QUALITY])
        (dest / txt.name).write_text("".join("\t".join(label) + "\n" for label in moved))
        written += 1
    return written


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("kind", choices=KINDS)
    parser.add_argument("source", type=Path)
    parser.add_argument("dest", type=Path)
    parser.add_argument("--seed", type=int, default=SEED)
    parser.add_argument("--scenes", type=Path, help="us-scene: labelled photos to put the crops in")
    parser.add_argument(
        "--split", choices=("train", "heldout"), help="us-scene: crops and photos of one half only"
    )
    args = parser.parse_args()
    if args.kind == "us-scene":
        if args.scenes is None:
            parser.error("us-scene needs --scenes")
        written = us_in_scenes(args.source, args.scenes, args.dest, args.seed, args.split)
    else:
        written = make_set(args.kind, args.source, args.dest, args.seed)
    print(f"{written} images written to {args.dest}")


if __name__ == "__main__":
    main()
