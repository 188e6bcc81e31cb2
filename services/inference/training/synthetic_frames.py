"""Render a labelled set of synthetic camera frames in the openalpr benchmark layout, for choices
that must not be made on the dev sets (the plate classifier's threshold, detection settings):

    var/recognizer/venv/bin/python -m services.inference.training.synthetic_frames \
        --out var/synthetic-frames --count 150 --seed 4242
    platewatch bench accuracy var/synthetic-frames

Each 1280x720 frame is a street-like scene (sky, road, blocks of colour) with one rendered plate on its
bodywork (`render.plate_on_car`, plate 70-240 px wide) and one to three pieces of other text at
similar sizes: sign panels, car badges and model codes, burned-in timestamps
(`classifier._text_scene`, never registration-like). `<name>.txt` holds `name x y w h PLATE` for
the plate. Runs in the training venv (PIL, the classifier's renderers); the seed fixes everything.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import cv2
import numpy as np

from services.inference.training import classifier, datasets, render

WIDTH, HEIGHT = 1280, 720


def _background(rng: np.random.Generator) -> np.ndarray:
    """A street-like scene (BGR): sky, road, verges, and a few blocks of colour (vehicles, walls)."""
    frame = np.empty((HEIGHT, WIDTH, 3), np.uint8)
    horizon = int(rng.integers(180, 320))
    frame[:horizon] = render._colour(rng, 150, 256)
    frame[horizon:] = render._colour(rng, 40, 140)
    road = np.array([[560, horizon], [720, horizon], [WIDTH + 300, HEIGHT], [-300, HEIGHT]], np.int32)
    cv2.fillPoly(frame, [road], render._colour(rng, 60, 120))
    for _ in range(int(rng.integers(2, 7))):
        x, y = int(rng.integers(0, WIDTH - 100)), int(rng.integers(horizon - 100, HEIGHT - 60))
        w, h = int(rng.integers(80, 420)), int(rng.integers(50, 260))
        cv2.rectangle(frame, (x, y), (x + w, y + h), render._colour(rng), -1)
    texture = rng.normal(0, 5, frame.shape)
    return np.clip(frame + texture, 0, 255).astype(np.uint8)


def _paste(
    frame: np.ndarray, image: np.ndarray, width: int, rng: np.random.Generator
) -> tuple[float, int, int] | None:
    """Paste RGB `image` scaled to `width` px at a random spot (it may cover earlier pastes);
    (scale, left, top), or None when it does not fit the frame."""
    scale = width / image.shape[1]
    resized = cv2.resize(image, (width, max(1, round(image.shape[0] * scale))), interpolation=cv2.INTER_AREA)
    height = resized.shape[0]
    if height >= HEIGHT or width >= WIDTH:
        return None
    left = int(rng.integers(0, WIDTH - width))
    top = int(rng.integers(0, HEIGHT - height))
    frame[top : top + height, left : left + width] = resized[..., ::-1]
    return scale, left, top


def render_frame(
    rng: np.random.Generator, fonts: tuple[Path, ...], two_row: bool = False, row_spacing: float = 1.0
) -> tuple[np.ndarray, tuple[int, int, int, int], str]:
    """One frame (BGR), the plate's box (x y w h) in it and its label; with `two_row`, the plate is
    a two-row one (`render.two_row_plate_on_car`, its rows `row_spacing` times the style's distance
    apart)."""
    frame = _background(rng)
    for _ in range(int(rng.integers(1, 4))):
        pick = rng.random()
        if pick < 0.4:
            text = classifier.SIGN_WORDS[int(rng.integers(len(classifier.SIGN_WORDS)))]
            scene, _ = classifier._text_scene(rng, fonts, text, "sign")
        elif pick < 0.8:
            text = classifier.BADGES[int(rng.integers(len(classifier.BADGES)))]
            scene, _ = classifier._text_scene(rng, fonts, text, "badge")
        else:
            scene, _ = classifier._text_scene(rng, fonts, classifier._overlay_text(rng), "overlay")
        _paste(frame, scene, int(rng.integers(120, 420)), rng)
    if two_row:
        surround, (pad, ph, pw), _, label = render.two_row_plate_on_car(rng, fonts, row_spacing)
    else:
        surround, (pad, ph, pw), _, label = render.plate_on_car(rng, fonts)
    plate_width = int(rng.integers(70, 240))
    while True:
        placed = _paste(frame, surround, round(plate_width * surround.shape[1] / pw), rng)
        if placed is not None:
            break
        plate_width = int(plate_width * 0.8)
    scale, left, top = placed
    box = (round(left + pad * scale), round(top + pad * scale), round(pw * scale), round(ph * scale))
    return frame, box, label


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--count", type=int, default=150)
    parser.add_argument("--seed", type=int, default=4242)
    parser.add_argument("--two-row", action="store_true", help="two-row (motorcycle, square) plates")
    parser.add_argument(
        "--row-spacing",
        type=float,
        default=1.0,
        help="two-row plates: the distance between the rows' centres, times the style's (0.65: touching)",
    )
    args = parser.parse_args()
    if not args.row_spacing > 0:
        parser.error("--row-spacing must be positive")
    args.out.mkdir(parents=True, exist_ok=True)
    fonts = render.find_fonts()
    for index in range(args.count):
        frame, (x, y, w, h), label = render_frame(
            np.random.default_rng([args.seed, index]), fonts, args.two_row, args.row_spacing
        )
        stem = f"{datasets.RENDERED_FRAME_PREFIX}{index:04d}"
        name = f"{stem}.jpg"
        cv2.imwrite(str(args.out / name), frame, [cv2.IMWRITE_JPEG_QUALITY, 90])
        (args.out / f"{stem}.txt").write_text(f"{name}\t{x}\t{y}\t{w}\t{h}\t{label}\n")
    summary = {
        "out": str(args.out),
        "frames": args.count,
        "seed": args.seed,
        "two_row": args.two_row,
        "row_spacing": args.row_spacing,
    }
    print(json.dumps(summary))


if __name__ == "__main__":
    main()
