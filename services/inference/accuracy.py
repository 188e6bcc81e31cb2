"""`platewatch bench accuracy DIR`: the product's whole read path (decode, find, read) on a labelled
folder, as a JSON summary.

Layouts (`load_labels`):
* openalpr benchmark: an image plus a `.txt` per image whose lines are `file x y w h PLATE`
  (tabs, then a plate may hold a space; or spaces); several lines are several plates of that image.
* crops: `groundtruth.csv` with `file,state,PLATE` rows; the whole image is the plate's box.

Per image the top plate is the most confident one `platewatch recognize` returns. Figures:
`exact_top1` (the top plate's text is one of the image's plates), `top3` (one of them is among the
top plate's first three candidates), `box_hit` (some returned plate's box overlaps a truth box with
IoU > 0.4: did we find the plate at all; on a crop, whose box is the whole image, some returned
plate lies on it, `on_truth`, since a plate's box is its text line), `stray_plates_per_image` and
`images_with_stray_plates` (returned plates on no labelled plate: signs, stickers, phone numbers,
which would be false reads in the product, or plates the labels leave out), latency per image
p50/p95 (file read + decode + find + read, one image at a time; `cpu_ms`: the process's CPU time
over the same span, with OpenCV and onnxruntime held to `--threads` threads), the most frequent
character confusions (truth character -> read character, aligned by difflib, over top plates that
lie on a labelled plate: a sign read instead is a miss, not a confusion), `printed_region` (over the
images whose labels give a region, the US crops' state: the share whose top plate names a region
from the words printed on it, the share that names the labelled one, and how many name another) and
the errors (unreadable files). Texts are compared upper case, letters and digits only.

Labels known to contradict their plate (`--errata`, by default `label_errata.csv` beside this module:
file name, label as given, corrected label, evidence) do not change those figures: they are measured
on the labels as given. Beside them, `corrected` gives the number of labels corrected and the
exact-top-1 and top-3 rates and the confusions against the corrected labels (against a wrong label
the reader is charged with a confusion it did not make).

With `--misses`, `misses` lists every measured image whose top plate is not one of its labels as
given or not one of its corrected labels: the file name, its labels as given, its corrected labels
(the same where no erratum applies) and the top plate's text ("" when no plate was returned or its
text has no letter or digit), so that two models or settings can be compared image by image.

With `--region-hint labels`, each image is read with the region its labels give (the crops' `state`
column of US crops, as "us-<state>": a camera configured with its state), with `--region-hint de`
with that region: the region's plate formats decide between look-alike readings (`decoding.choose`).
With `--roll 10`, every image is read as a camera with that known roll reads its frames (turned
upright by it first, `PlateRecognizer.recognize`).

With `--frame WxH` (e.g. 1280x720) every image is first fitted onto a black frame of that size and
JPEG-encoded (quality 90), outside the timing; the timing then covers decoding that JPEG, finding
and reading: the per-frame cost of a camera frame of that size, with the dev set's plates in it.
"""

from __future__ import annotations

import csv
import difflib
import json
import re
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import cv2
import numpy as np
import typer

from services.inference.boxes import intersection, iou
from services.inference.training.datasets import ERRATA_FILE, label_fields, load_errata, plate_key

if TYPE_CHECKING:  # the models load on use, not when the CLI starts
    from services.inference.engine import PlateRecognizer

IOU_HIT = 0.4
TOP_CONFUSIONS = 15
IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp", ".webp")
FRAME_JPEG_QUALITY = 90


@dataclass(frozen=True)
class TruthPlate:
    # The label as given.
    text: str
    # (x, y, w, h) in image pixels; None: the whole image.
    box: tuple[int, int, int, int] | None
    # What the plate shows where an erratum says the label does not; None: the label stands.
    corrected: str | None = None

    @property
    def truth(self) -> str:
        """The text a right reading gives: the corrected label where there is one."""
        return self.text if self.corrected is None else self.corrected


@dataclass
class LabelledImage:
    path: Path
    plates: list[TruthPlate] = field(default_factory=list)
    # The region the labels give (crops layout: "us-" + the state column), "" when none.
    region: str = ""


class LayoutError(ValueError):
    """The folder is in neither supported layout."""


def load_labels(
    directory: Path, errata: dict[tuple[str, str], str] | None = None
) -> tuple[str, list[LabelledImage]]:
    """("crops" | "openalpr", images with their plates), sorted by file name; a plate whose (file
    name, label) is in `errata` carries the erratum's corrected label."""
    errata = errata or {}

    def plate(file: str, label: str, box: tuple[int, int, int, int] | None) -> TruthPlate:
        text = plate_key(label)
        return TruthPlate(text, box, errata.get((file, text)))

    truth_csv = directory / "groundtruth.csv"
    if truth_csv.is_file():
        images: dict[str, LabelledImage] = {}
        with truth_csv.open(newline="") as handle:
            for row in csv.reader(handle):
                if len(row) < 3 or not row[0].lower().endswith(IMAGE_SUFFIXES):
                    continue  # the header or a blank line
                state = row[1].strip().lower()
                region = f"us-{state}" if re.fullmatch(r"[a-z]{2}", state) else ""
                entry = images.setdefault(row[0], LabelledImage(directory / row[0], region=region))
                entry.plates.append(plate(row[0], row[2], None))
        return "crops", [images[name] for name in sorted(images)]
    boxed: dict[str, LabelledImage] = {}
    for label_file in sorted(directory.glob("*.txt")):
        for line in label_file.read_text(errors="replace").splitlines():
            fields = label_fields(line)
            if len(fields) < 6 or not fields[0].lower().endswith(IMAGE_SUFFIXES):
                continue
            try:
                x, y, w, h = (int(v) for v in fields[1:5])
            except ValueError:
                continue
            entry = boxed.setdefault(fields[0], LabelledImage(directory / fields[0]))
            entry.plates.append(plate(fields[0], fields[5], (x, y, w, h)))
    if not boxed:
        raise LayoutError(
            f"{directory}: no groundtruth.csv (file,state,PLATE) and no openalpr .txt labels "
            "(file x y w h PLATE)"
        )
    return "openalpr", [boxed[name] for name in sorted(boxed)]


def confusions(truth: str, read: str) -> list[tuple[str, str]]:
    """(truth char, read char) pairs over the equal-length replaced runs difflib aligns, whatever the
    lengths (insertions and deletions are not confusions, and a dropped character plus an extra one
    do not shift the rest into confusions: "ABC123" read "BC1234" has none)."""
    pairs: list[tuple[str, str]] = []
    matcher = difflib.SequenceMatcher(a=truth, b=read, autojunk=False)
    for op, t1, t2, r1, r2 in matcher.get_opcodes():
        if op == "replace" and t2 - t1 == r2 - r1:
            pairs.extend(zip(truth[t1:t2], read[r1:r2], strict=True))
    return pairs


def percentile(values: list[float], q: float) -> float | None:
    """The q-quantile (0 <= q <= 1) of `values` by linear interpolation between the closest ranks
    (numpy's default), None when there are none."""
    if not 0.0 <= q <= 1.0:
        raise ValueError(f"q must be within [0, 1], not {q}")
    if not values:
        return None
    ordered = sorted(values)
    position = q * (len(ordered) - 1)
    low = int(position)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (position - low)


def measure(
    recognizer: PlateRecognizer,
    images: list[LabelledImage],
    frame: tuple[int, int] | None = None,
    region_hint: str = "",
    roll: float = 0.0,
    list_misses: bool = False,
) -> dict[str, Any]:
    """The summary over `images`, each fitted onto a `frame` (width, height) first when given and
    read with `region_hint` ("labels": each image's own region) and the camera's `roll` (degrees)
    (see the module docstring); with `list_misses`, also `misses`."""
    from services.inference.images import ImageError, load_image

    exact = top3 = box_hits = stray_plates = images_with_strays = 0
    # Images whose labels give a region; of them, those whose top plate's printed region is named, right.
    region_labelled = region_named = region_right = 0
    exact_corrected = top3_corrected = 0
    latencies: list[float] = []
    cpu_times: list[float] = []
    confused: Counter[tuple[str, str]] = Counter()
    confused_corrected: Counter[tuple[str, str]] = Counter()
    errors: list[dict[str, str]] = []
    misses: list[dict[str, Any]] = []
    for labelled in images:
        started, cpu_started = time.perf_counter(), time.process_time()
        try:
            loaded = load_image(labelled.path)
        except ImageError as exc:
            errors.append({"image": labelled.path.name, "error": str(exc)})
            continue
        height, width = loaded.image.shape[:2]
        truth_boxes = [
            p.box if p.box is not None else (0, 0, round(width * loaded.scale), round(height * loaded.scale))
            for p in labelled.plates
        ]
        # Frame pixels per file pixel, and where the image's origin lies in the frame.
        to_frame, frame_left, frame_top = 1.0 / loaded.scale, 0, 0
        image = loaded.image
        if frame is not None:
            image, to_frame, frame_left, frame_top = _as_frame_jpeg(loaded.image, frame)
            to_frame /= loaded.scale
            started, cpu_started = time.perf_counter(), time.process_time()
            decoded = cv2.imdecode(image, cv2.IMREAD_COLOR)
            if decoded is None:
                raise RuntimeError("a JPEG this process encoded failed to decode")
            image = decoded
        hint = labelled.region if region_hint == "labels" else region_hint
        plates = recognizer.recognize([image], [hint or None], [roll])[0]
        latencies.append((time.perf_counter() - started) * 1000)
        cpu_times.append((time.process_time() - cpu_started) * 1000)
        truths = {p.text for p in labelled.plates}
        corrected_truths = {p.truth for p in labelled.plates}
        found_boxes = [
            [(plate.box[0] - frame_left) / to_frame, (plate.box[1] - frame_top) / to_frame]
            + [side / to_frame for side in plate.box[2:]]
            for plate in plates
        ]
        # A crop's label box is the whole image, around the plate; a returned box is a text line of
        # it, so a hit there is a returned plate on the crop (`on_truth`), not an IoU that the line's
        # share of the crop would decide.
        box_hits += any(
            on_truth(f, t) if p.box is None else iou(f, t) > IOU_HIT
            for f in found_boxes
            for p, t in zip(labelled.plates, truth_boxes, strict=True)
        )
        on_a_plate = [any(on_truth(f, t) for t in truth_boxes) for f in found_boxes]
        strays = on_a_plate.count(False)
        stray_plates += strays
        images_with_strays += strays > 0
        top_index = max(range(len(plates)), key=lambda i: plates[i].confidence) if plates else None
        top = None if top_index is None else plates[top_index]
        read = "" if top is None else plate_key(top.text)
        if read not in truths or read not in corrected_truths:
            misses.append(
                {
                    "image": labelled.path.name,
                    "truth": sorted(truths),
                    "corrected": sorted(corrected_truths),
                    "read": read,
                }
            )
        if labelled.region:
            region_labelled += 1
            printed = None if top is None else top.printed_region
            region_named += printed is not None
            region_right += printed is not None and printed.lower() == labelled.region
        if top is None:
            continue
        first_three = [plate_key(c.text) for c in top.candidates[:3]]
        exact += read in truths
        top3 += any(text in truths for text in first_three)
        exact_corrected += read in corrected_truths
        top3_corrected += any(text in corrected_truths for text in first_three)
        # A top plate on no labelled plate (a sign read instead) is a miss, not a misread: its
        # characters are no confusions of the plate's.
        for truth_set, counter in ((truths, confused), (corrected_truths, confused_corrected)):
            if read not in truth_set and top_index is not None and on_a_plate[top_index]:
                nearest = max(truth_set, key=lambda t: difflib.SequenceMatcher(a=t, b=read).ratio())
                counter.update(confusions(nearest, read))
    measured = len(images) - len(errors)
    corrected_labels = sum(p.corrected is not None for labelled in images for p in labelled.plates)

    def rate(count: int) -> float | None:
        return round(count / measured, 4) if measured else None

    def most_common(counter: Counter[tuple[str, str]]) -> list[dict[str, Any]]:
        return [{"truth": t, "read": r, "count": n} for (t, r), n in counter.most_common(TOP_CONFUSIONS)]

    return {
        "images": len(images),
        "measured": measured,
        "exact_top1": rate(exact),
        "top3": rate(top3),
        "corrected": {
            "labels": corrected_labels,
            "exact_top1": rate(exact_corrected),
            "top3": rate(top3_corrected),
            "confusions": most_common(confused_corrected),
        },
        "box_hit": rate(box_hits),
        # The region printed on the top plate (a state's name or slogan) against the labels' region,
        # over the images whose labels give one (US crops: the state column); null rates without any.
        "printed_region": {
            "labelled": region_labelled,
            "named": round(region_named / region_labelled, 4) if region_labelled else None,
            "right": round(region_right / region_labelled, 4) if region_labelled else None,
            "wrong": region_named - region_right,
        },
        "stray_plates_per_image": None if not measured else round(stray_plates / measured, 3),
        "images_with_stray_plates": rate(images_with_strays),
        "frame": None if frame is None else f"{frame[0]}x{frame[1]}",
        "latency_ms": _percentiles(latencies),
        "cpu_ms": _percentiles(cpu_times),
        "confusions": most_common(confused),
        "errors": errors,
        **({"misses": misses} if list_misses else {}),
    }


def on_truth(found: list[float], truth: tuple[int, int, int, int]) -> bool:
    """A returned plate box belongs to a labelled plate: it overlaps it (IoU > 0.4) or lies at least
    half inside it (a line of a plate crop whose label box is the whole image)."""
    if iou(found, truth) > IOU_HIT:
        return True
    area = found[2] * found[3]
    return area > 0 and intersection(found, truth) >= 0.5 * area


def _percentiles(values: list[float]) -> dict[str, float | None]:
    return {
        name: None if (value := percentile(values, q)) is None else round(value, 1)
        for name, q in (("p50", 0.5), ("p95", 0.95))
    }


def _as_frame_jpeg(image: np.ndarray, frame: tuple[int, int]) -> tuple[np.ndarray, float, int, int]:
    """`image` fitted onto a black `frame` and JPEG-encoded: (JPEG bytes as uint8, scale, left, top)."""
    from services.inference.frames import place_in_frame

    placed, scale, left, top = place_in_frame(image, *frame)
    ok, jpeg = cv2.imencode(".jpg", placed, [cv2.IMWRITE_JPEG_QUALITY, FRAME_JPEG_QUALITY])
    if not ok:
        raise RuntimeError("JPEG encoding failed")
    return jpeg, scale, left, top


def parse_frame(value: str) -> tuple[int, int] | None:
    """ "WxH" -> (W, H); "" -> None."""
    if not value:
        return None
    match = re.fullmatch(r"(\d+)x(\d+)", value.strip().lower())
    if match is None or int(match[1]) < 32 or int(match[2]) < 32:
        raise typer.BadParameter(f"frame must be WIDTHxHEIGHT, at least 32x32: {value!r}")
    return int(match[1]), int(match[2])


def accuracy(
    directory: Annotated[
        Path, typer.Argument(help="openalpr benchmark folder or crops with groundtruth.csv")
    ],
    limit: Annotated[int, typer.Option(help="at most this many images (0: all)")] = 0,
    split: Annotated[
        str,
        typer.Option(help="all, or heldout / train: the fixed half the plate CRNN was (not) trained on"),
    ] = "all",
    triton: Annotated[
        str, typer.Option(help="Triton gRPC address HOST:PORT; default: onnxruntime in this process")
    ] = "",
    threads: Annotated[int, typer.Option(help="onnxruntime intra-op threads (1 = one core)")] = 1,
    frame: Annotated[
        str,
        typer.Option(help="WxH: fit every image onto a camera frame this size first (e.g. 1280x720)"),
    ] = "",
    region_hint: Annotated[
        str,
        typer.Option(help="camera region to read with: a region (us-ia, de), or 'labels' (crops: the state)"),
    ] = "",
    roll: Annotated[
        float, typer.Option(help="the camera's roll to read with: degrees level text runs down to the right")
    ] = 0.0,
    errata: Annotated[
        str,
        typer.Option(
            help="CSV of labels known to be wrong (file,label,corrected,evidence), reported beside the "
            "figures on the labels as given; '' for none"
        ),
    ] = str(ERRATA_FILE),
    misses: Annotated[
        bool,
        typer.Option(
            "--misses", help="also list every image whose top plate is not its label, as given or corrected"
        ),
    ] = False,
) -> None:
    """Print a JSON summary of the whole read path on a labelled folder: images, exact top-1 rate,
    truth among the top 3, plate-box hit rate (IoU > 0.4; on crops, a plate found on the crop),
    latency per image p50/p95 and the most frequent character confusions."""
    from services.common.frames import MAX_ROLL_DEG, roll_in_range
    from services.inference.main import InferenceSettings
    from services.inference.recognize import require_known_region
    from services.inference.training.datasets import split_of

    if split not in ("all", "heldout", "train"):
        raise typer.BadParameter("split must be all, heldout or train")
    hint = region_hint.strip().lower()
    if hint not in ("", "labels"):
        require_known_region("--region-hint", hint)
    if not roll_in_range(roll):
        raise typer.BadParameter(f"--roll must be within +-{MAX_ROLL_DEG:g} degrees: {roll}")
    frame_size = parse_frame(frame)
    # "One core" means every library's worker threads: OpenCV's too (its resizes and warps), not only
    # onnxruntime's, or cpu_ms would miss their time.
    cv2.setNumThreads(threads)
    try:
        layout, images = load_labels(directory, load_errata(Path(errata)) if errata else None)
    except (LayoutError, OSError, ValueError) as exc:
        typer.echo(str(exc), err=True)
        raise typer.Exit(2) from exc
    if split != "all":
        images = [i for i in images if split_of(i.path.name) == split]
    if limit:
        images = images[:limit]
    settings = InferenceSettings()
    recognizer = settings.plate_recognizer(settings.backend(triton, threads))
    try:
        summary = measure(recognizer, images, frame_size, hint, roll, list_misses=misses)
    finally:
        recognizer.backend.close()
    head = {
        "dir": str(directory),
        "layout": layout,
        "split": split,
        "model": recognizer.model_version,
        "region_hint": region_hint or None,
        "roll": roll,
        "errata": errata or None,
    }
    typer.echo(json.dumps({**head, **summary}, indent=2))
