"""Real text lines for the plate classifier, cut from one half of the shared dev sets.

Runs in the product venv (it drives the detector and the reader through `PlateRecognizer`), not in
the training venv:

    platewatch-venv/bin/python -m services.inference.training.collect_lines --split train \
        --out var/classifier/lines-train.pkl

Every line the detector finds (after the plate-geometry filter) is cut with the classifier's margins
(`postprocess.classifier_cut`) and labelled from the dev set's truth and the line's reading:
- 1 (registration): the line lies on a labelled plate and its best reading is within two edits of
  the plate's label;
- 0 (not a registration): in a photo, the line lies on no labelled plate; in a plate crop (US set),
  its reading is at least four edits from the label and no piece of it (state names, slogans,
  frames, stickers);
- left out (ambiguous): anything else, and lines off the labelled plates whose reading looks like a
  registration (letters and digits, 5-8 characters, read with confidence >= 0.8), which may be
  another car's unlabelled plate.

Output: a pickle of {"cuts": [BGR uint8 arrays, at most 64 px high], "labels": [0/1], "sources":
[file names], "readings": [texts], "split": str, "for": "classifier"}. The dev sets are AGPL: the
pickle stays under var/ (ignored) and is never committed.

`--for reader` collects lines for the plate CRNN instead (`train --real-lines`): the reader's own cut
of each line (`_Line.crop`, the first of its cuts) that lies on a labelled plate and reads within two
edits of a label, labelled with that label's text. These are real registrations at camera scale, cut
as the read path cuts them, which the dev crops (whole plates, given) are not. Same pickle, with
"labels" holding texts and "for": "reader".

Two-row plates come from rendered frames (`synthetic_frames --two-row`) with `--split rendered`
(every image: they are not dev data, so nothing is held out; a folder holding an image not named as
rendered frames are is refused), and the recognizer then reads two rows (`read_two_rows`). Until
these, the models had seen one-row plates only; these are the inputs they get for two-row ones. A
two-row line (`_Line.rows`: two detected rows side by side, or a box shaped like both, cut apart)
that lies on a labelled plate and reads within two edits of its text is a registration; one read
further off is left out (it may have lost a row or characters to the detector, and would teach the
reader to make up what it cannot see).
- `--for rows` (the plate CRNN, `train --real-lines`): every cut the read path makes of such a
  line, labelled with the plate's text ("for": "rows");
- `--for classifier`: the line as the engine scores it (`engine._classifier_cut`: the rows side by
  side; a box split into rows also whole), labelled 1; the frames' one-row lines as above.
"""

from __future__ import annotations

import argparse
import json
import pickle
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from services.inference import postprocess
from services.inference.accuracy import LabelledImage, load_labels, on_truth, plate_key
from services.inference.engine import OnnxBackend, PlateRecognizer, _classifier_cut, _Line
from services.inference.images import ImageError, load_image
from services.inference.training import datasets
from services.normalizer.tracking import edit_distance

MAX_STORED_HEIGHT = 64
POSITIVE_MAX_EDITS = 2
NEGATIVE_MIN_EDITS = 4
_REGISTRATION_LIKE = re.compile(r"^(?=.*\d)(?=.*[A-Z])[A-Z0-9]{5,8}$")
REGISTRATION_LIKE_CONFIDENCE = 0.8


def _shares_run(reading: str, truth: str, run: int = 3) -> bool:
    """`reading` is part of `truth` or has `run` characters in a row in common with it."""
    if reading and reading in truth:
        return True
    return any(reading[i : i + run] in truth for i in range(len(reading) - run + 1))


def line_label(
    reading: str, confidence: float, truths: list[str], on_plate: bool, whole_image_is_plate: bool
) -> int | None:
    """1, 0 or None (left out) for one line; see the module docstring."""
    distance = min((edit_distance(reading, truth) for truth in truths), default=99)
    if on_plate and distance <= POSITIVE_MAX_EDITS:
        return 1
    if whole_image_is_plate:
        # A piece of the registration ("E9" of a split line) is neither: left out.
        piece = any(_shares_run(reading, truth) for truth in truths)
        return 0 if distance >= NEGATIVE_MIN_EDITS and not piece else None
    if on_plate:
        return None
    if _REGISTRATION_LIKE.match(reading) and confidence >= REGISTRATION_LIKE_CONFIDENCE:
        return None
    return 0


def _stored(cut: np.ndarray) -> np.ndarray:
    height, width = cut.shape[:2]
    if height <= MAX_STORED_HEIGHT:
        return cut
    scale = MAX_STORED_HEIGHT / height
    return cv2.resize(cut, (max(1, round(width * scale)), MAX_STORED_HEIGHT), interpolation=cv2.INTER_AREA)


def _frames_of_split(
    directories: list[Path], split: str
) -> Iterator[tuple[str, LabelledImage, np.ndarray, list[list[float]]]]:
    """(layout, labelled image, frame, truth boxes in frame pixels) of every readable image of
    `split` in the dev-set `directories` (every image for "rendered"); a plate crop's box is the
    whole frame."""
    for directory in directories:
        if not directory.is_dir():
            continue
        layout, images = load_labels(directory)
        for labelled in images:
            if split != "rendered" and datasets.split_of(labelled.path.name) != split:
                continue
            try:
                loaded = load_image(labelled.path)
            except ImageError:
                continue
            height, width = loaded.image.shape[:2]
            truth_boxes = [
                [v / loaded.scale for v in p.box] if p.box is not None else [0.0, 0.0, width, height]
                for p in labelled.plates
            ]
            yield layout, labelled, loaded.image, truth_boxes


@dataclass
class _ReadLine:
    """One detected line of a dev-set image, read, with what the truth says about where it lies."""

    layout: str  # "crops" (the whole image is a plate) or "openalpr" (a photo with boxes)
    labelled: LabelledImage
    frame: np.ndarray
    line: _Line
    reading: str  # the best reading as plate text (separators dropped)
    confidence: float
    on_plates: list[str]  # the labels of the plates it lies on


def _read_lines(directories: list[Path], split: str, recognizer: PlateRecognizer) -> Iterator[_ReadLine]:
    """Every line the detector finds (after the plate-geometry filter) in the images of `split`."""
    for layout, labelled, frame, truth_boxes in _frames_of_split(directories, split):
        lines = recognizer.detect_lines([frame])
        readings = recognizer.read_cuts([line.cuts for line in lines])
        for line, candidates in zip(lines, readings, strict=True):
            best = candidates[0]
            box = list(postprocess.quad_to_box(line.quad))
            on_plates = [
                plate.text
                for plate, truth_box in zip(labelled.plates, truth_boxes, strict=True)
                if on_truth(box, truth_box)  # type: ignore[arg-type]
            ]
            reading = postprocess.plate_text(best.text) or plate_key(best.text)
            yield _ReadLine(layout, labelled, frame, line, reading, best.confidence, on_plates)


def _registration(read: _ReadLine) -> str | None:
    """The label of the plate `read` lies on that its reading is nearest, when it reads within
    `POSITIVE_MAX_EDITS` of it: the line is that registration; else None."""
    if not read.on_plates:
        return None
    truth = min(read.on_plates, key=lambda text: edit_distance(read.reading, text))
    return truth if edit_distance(read.reading, truth) <= POSITIVE_MAX_EDITS else None


def _empty(purpose: str) -> dict[str, Any]:
    return {"cuts": [], "labels": [], "sources": [], "readings": [], "for": purpose}


def _keep(data: dict[str, Any], cut: np.ndarray, label: int | str, read: _ReadLine) -> None:
    data["cuts"].append(_stored(cut))
    data["labels"].append(label)
    data["sources"].append(read.labelled.path.name)
    data["readings"].append(read.reading)


def collect(directories: list[Path], split: str, recognizer: PlateRecognizer) -> dict[str, Any]:
    """The labelled line cuts of every image of `split` in the dev-set `directories` (or, with
    `split` "rendered", of every rendered frame in them). A two-row line (the recognizer reads two
    rows) is a registration when it lies on a labelled plate and reads within `POSITIVE_MAX_EDITS`
    of its text, cut as the engine scores it (`engine._classifier_cut`: the rows side by side; a box
    split into rows also whole), and is left out otherwise."""
    data = _empty("classifier")
    for read in _read_lines(directories, split, recognizer):
        if read.line.rows is not None:
            if _registration(read) is not None:
                _keep(data, _classifier_cut(read.frame, read.line), 1, read)
                if read.line.merged_rows:
                    _keep(data, postprocess.classifier_cut(read.frame, read.line.quad), 1, read)
            continue
        truths = [p.text for p in read.labelled.plates]
        label = line_label(
            read.reading, read.confidence, truths, bool(read.on_plates), read.layout == "crops"
        )
        if label is not None:
            _keep(data, postprocess.classifier_cut(read.frame, read.line.quad), label, read)
    return data


def reader_lines(
    directories: list[Path], split: str, recognizer: PlateRecognizer, two_rows: bool = False
) -> dict[str, Any]:
    """The reader's cuts of the registration lines of every image of `split` in `directories`, each
    labelled with the text of the labelled plate it lies on that its reading is nearest; with
    `two_rows`, every cut of the two-row lines only (`--for rows`; see the module docstring)."""
    data = _empty("rows" if two_rows else "reader")
    for read in _read_lines(directories, split, recognizer):
        if two_rows and read.line.rows is None:
            continue
        if (truth := _registration(read)) is not None:
            for cut in read.line.cuts if two_rows else [read.line.crop]:
                _keep(data, cut, truth, read)
    return data


def _not_rendered(directories: list[Path]) -> str | None:
    """The first labelled image in `directories` that is not a rendered frame (by its name), if any:
    dev photos and their variants keep the dev sets' names, and their held-out half must stay out."""
    for directory in directories:
        if not directory.is_dir():
            continue
        for labelled in load_labels(directory)[1]:
            if not labelled.path.name.startswith(datasets.RENDERED_FRAME_PREFIX):
                return str(labelled.path)
    return None


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--split",
        choices=("train", "heldout", "rendered"),
        required=True,
        help="rendered: every image of --datasets, which must be rendered frames (--for rows or classifier)",
    )
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument(
        "--datasets",
        type=Path,
        nargs="*",
        default=[datasets.DATASETS_DIR / "openalpr-eu", datasets.DATASETS_DIR / "openalpr-us-crops"],
    )
    parser.add_argument(
        "--for",
        dest="purpose",
        choices=("classifier", "reader", "rows"),
        default="classifier",
        help="classifier: lines labelled 0/1; reader: registration cuts labelled with their text; "
        "rows: two-row plates' cuts from rendered frames, labelled with their text",
    )
    args = parser.parse_args()
    if args.purpose == "rows" and args.split != "rendered":
        parser.error("--for rows takes rendered frames (--split rendered)")
    if args.purpose == "reader" and args.split == "rendered":
        parser.error("--for reader takes the dev sets' lines (--split train or heldout)")
    if args.split == "rendered" and (not_rendered := _not_rendered(args.datasets)):
        parser.error(
            f"--split rendered takes rendered frames only (named {datasets.RENDERED_FRAME_PREFIX}*, as "
            f"synthetic_frames writes them), not the dev sets or their variants: {not_rendered}"
        )
    # Lines are labelled from the truth, not by the classifier: no classifier to load.
    # Two-row lines for rendered frames (their plates are drawn whole, and `rows` takes only them);
    # the dev sets' collections, as before two-row lines existed, one-row lines only.
    recognizer = PlateRecognizer(
        OnnxBackend(threads=1, cls_onnx=None), plate_classifier=False, read_two_rows=args.split == "rendered"
    )
    if args.purpose == "classifier":
        data = collect(args.datasets, args.split, recognizer)
    else:
        data = reader_lines(args.datasets, args.split, recognizer, two_rows=args.purpose == "rows")
    data["split"] = args.split
    args.out.parent.mkdir(parents=True, exist_ok=True)
    with args.out.open("wb") as handle:
        pickle.dump(data, handle)
    labels = data["labels"]
    registrations = int(sum(labels)) if args.purpose == "classifier" else len(labels)
    print(json.dumps({"out": str(args.out), "lines": len(labels), "registrations": registrations}))


if __name__ == "__main__":
    main()
