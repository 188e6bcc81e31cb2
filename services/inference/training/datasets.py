"""The shared openalpr dev sets as labelled plate crops, and the fixed train / held-out split.

US: `openalpr-us-crops/groundtruth.csv` (`file,state,PLATE`), one plate crop per file.
EU: `openalpr-eu/*.txt` (`file<TAB>x<TAB>y<TAB>w<TAB>h<TAB>PLATE`), crops cut from the frames' boxes.
The datasets are AGPL: read in place, never copied into the repo.

`split_of(name)` puts each file in "train" or "heldout" by a hash of its name, so the split is
stable across runs and machines; the recognizer may be fine-tuned on "train" only, and accuracy is
reported on "heldout". `fold_of(name, folds)` cuts the files into folds the same way, so a run can
validate on one fold of "train" (`train --validation-fold`).
"""

from __future__ import annotations

import csv
import hashlib
import os
import re
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

# Not services.common.settings: the training venv (training/requirements.txt) has no pydantic.
REPO_ROOT = Path(__file__).resolve().parents[3]

# ../shared/datasets from the repository root (PLATEWATCH_SHARED_DATASETS overrides it).
DATASETS_DIR = Path(os.environ.get("PLATEWATCH_SHARED_DATASETS") or REPO_ROOT.parent / "shared" / "datasets")
_NOT_ALNUM = re.compile(r"[^A-Z0-9]")
# Labels of these sets that contradict their plate (file, label as given, corrected, evidence).
ERRATA_FILE = Path(__file__).resolve().parents[1] / "label_errata.csv"
# What `synthetic_frames` names its rendered frames (and `frame_variants` keeps): no dev-set file is
# named so, which is how `collect_lines --split rendered` tells rendered frames from dev photos.
RENDERED_FRAME_PREFIX = "synthetic_"


@dataclass(frozen=True)
class LabelledCrop:
    """One plate: where it comes from, its truth, and which split it belongs to."""

    dataset: str
    name: str
    image_path: Path
    box: tuple[int, int, int, int] | None  # None: the whole image is the crop
    plate: str

    @property
    def split(self) -> str:
        return split_of(self.name)

    def load(self) -> np.ndarray | None:
        """The crop as BGR uint8, or None when the image cannot be read."""
        image = cv2.imread(str(self.image_path), cv2.IMREAD_COLOR)
        if image is None:
            return None
        if self.box is None:
            return image
        x, y, w, h = self.box
        crop = image[max(0, y) : y + h, max(0, x) : x + w]
        return crop if crop.size else None


def split_of(name: str) -> str:
    """ "train" or "heldout", half and half, fixed by the file name."""
    digest = hashlib.sha256(name.encode()).digest()
    return "train" if digest[0] % 2 == 0 else "heldout"


def fold_of(name: str, folds: int) -> int:
    """Which of `folds` folds (0 .. folds-1) a file falls in, fixed by its name and independent of
    `split_of` (another byte of the same hash): a training run can keep one fold of the "train" half
    out of its real samples and validate on it, so that recipes are chosen on real plates without
    reading the held-out half."""
    if folds < 2:
        raise ValueError(f"at least 2 folds: {folds}")
    return hashlib.sha256(name.encode()).digest()[1] % folds


def us_crops(directory: Path = DATASETS_DIR / "openalpr-us-crops") -> list[LabelledCrop]:
    """The US crops listed in groundtruth.csv (empty when the folder is absent)."""
    truth = directory / "groundtruth.csv"
    if not truth.is_file():
        return []
    crops = []
    with truth.open(newline="") as handle:
        for row in csv.reader(handle):
            if len(row) >= 3 and row[0].lower().endswith((".png", ".jpg", ".jpeg")):
                crops.append(LabelledCrop("us", row[0], directory / row[0], None, row[2].strip().upper()))
    return crops


def label_fields(line: str) -> list[str]:
    """The fields of an openalpr label line (`file x y w h PLATE`): split at tabs when it has any,
    so that a plate written with a space ("AB 123") stays one field, else at runs of spaces."""
    if "\t" in line:
        return [field.strip() for field in line.split("\t")]
    return line.split()


def boxed_images(directory: Path, dataset: str) -> list[LabelledCrop]:
    """Plates of an openalpr benchmark folder (image + `.txt` per image with `file x y w h PLATE`)."""
    crops = []
    for label_file in sorted(directory.glob("*.txt")):
        for line in label_file.read_text().splitlines():
            fields = label_fields(line)
            if len(fields) < 6:
                continue
            x, y, w, h = (int(v) for v in fields[1:5])
            crops.append(
                LabelledCrop(
                    dataset, fields[0], directory / fields[0], (x, y, w, h), fields[5].strip().upper()
                )
            )
    return crops


def eu_crops(directory: Path = DATASETS_DIR / "openalpr-eu") -> list[LabelledCrop]:
    """The EU plates as crops cut from their boxes (empty when the folder is absent)."""
    return boxed_images(directory, "eu") if directory.is_dir() else []


def plate_key(text: str) -> str:
    """A label or reading as compared: upper case, ASCII letters and digits only."""
    return _NOT_ALNUM.sub("", text.upper())


def load_errata(path: Path) -> dict[tuple[str, str], str]:
    """{(file name, label as given): corrected label} from an errata CSV (`#` lines are comments;
    header `file,label,corrected,evidence`). Raises ValueError, naming the file's line, on a row
    without the three fields or a (file, label) listed twice."""
    with path.open(newline="", encoding="utf-8-sig") as handle:
        # Comments and blank lines out (csv skips blank rows too), each row with its line number.
        numbered = [
            (n, line) for n, line in enumerate(handle, start=1) if line.strip() and not line.startswith("#")
        ]
    rows = csv.DictReader(line for _, line in numbered)
    errata: dict[tuple[str, str], str] = {}
    for (number, _), row in zip(numbered[1:], rows, strict=False):
        file, label, corrected = (row.get(key) or "" for key in ("file", "label", "corrected"))
        if not (file.strip() and plate_key(label) and plate_key(corrected)):
            raise ValueError(f"{path}: line {number} needs file, label and corrected: {row}")
        key = (file.strip(), plate_key(label))
        if key in errata:
            raise ValueError(f"{path}: line {number} lists {key} again")
        errata[key] = plate_key(corrected)
    return errata
