"""Pre- and post-processing around PP-OCRv4, ported from rapidocr_onnxruntime 1.4.4 (Apache-2.0):
DB box extraction (ch_ppocr_det/utils.py), rotated crops (main.py), CTC decoding
(ch_ppocr_rec/utils.py). Plus what is ours: plate-likeness filters and a vehicle colour estimate."""

from __future__ import annotations

import functools
import math
import re
import unicodedata
from dataclasses import dataclass, field

import cv2
import numpy as np

from services.inference import model_io

# DB post-processing, rapidocr's defaults (config.yaml, Det section).
DB_THRESH = 0.3
DB_BOX_THRESH = 0.5
DB_UNCLIP_RATIO = 1.6
DB_MIN_SIZE = 3
DB_MAX_CANDIDATES = 1000


@dataclass(frozen=True)
class Letterbox:
    """How a frame was fitted into the detector canvas: scaled by `scale`, padded right/bottom."""

    scale: float
    frame_width: int
    frame_height: int


# PP-OCRv4 det downsamples by 32: canvas sides are multiples of this.
DET_STRIDE = 32


def det_scale(
    frame_width: int, frame_height: int, max_width: int, max_height: int, max_upscale: float
) -> float:
    """The scale a frame is detected at: as large as fits max_width x max_height, but never above
    `max_upscale` (a small image or a plate crop is not blown up to fill a large canvas)."""
    return min(max_width / frame_width, max_height / frame_height, max_upscale)


def oriented_canvas(canvas: tuple[int, int], frame_width: int, frame_height: int) -> tuple[int, int]:
    """The canvas (width, height) turned to the frame: long side across for a landscape or square
    frame, upright for a portrait one (taller than wide). A portrait frame (a phone held upright,
    portrait video) is then detected at the scale a landscape frame of its size would be, for the same
    canvas pixels; on the landscape canvas it was fitted by its height, its plates at about half that
    scale (9:16)."""
    short_side, long_side = sorted(canvas)
    return (short_side, long_side) if frame_height > frame_width else (long_side, short_side)


def det_canvas(
    frame_width: int, frame_height: int, max_width: int, max_height: int, max_upscale: float
) -> tuple[float, tuple[int, int]]:
    """(scale, (canvas width, canvas height)) for one frame: the frame at `det_scale`, its canvas
    rounded up to multiples of `DET_STRIDE` and capped at max_width x max_height (themselves
    multiples of the stride)."""
    scale = det_scale(frame_width, frame_height, max_width, max_height, max_upscale)

    def side(frame_side: int, cap: int) -> int:
        fitted = max(1, round(frame_side * scale))
        return min(cap, -(-fitted // DET_STRIDE) * DET_STRIDE)

    return scale, (side(frame_width, max_width), side(frame_height, max_height))


def letterbox(
    image: np.ndarray, width: int, height: int, scale: float | None = None
) -> tuple[np.ndarray, Letterbox]:
    """Resize `image` (BGR uint8) by `scale` (default: the largest that fits width x height, aspect
    kept) into a width x height canvas, padded right and bottom with black. Frames of different sizes
    share one det batch on a common canvas (Triton batches only equal shapes)."""
    frame_height, frame_width = image.shape[:2]
    if scale is None:
        scale = min(width / frame_width, height / frame_height)
    resized_w = max(1, min(width, round(frame_width * scale)))
    resized_h = max(1, min(height, round(frame_height * scale)))
    if (resized_w, resized_h) == (width, height) and (resized_w, resized_h) == (frame_width, frame_height):
        return np.ascontiguousarray(image), Letterbox(scale, frame_width, frame_height)
    canvas = np.zeros((height, width, 3), dtype=np.uint8)
    if (resized_w, resized_h) == (frame_width, frame_height):
        canvas[:resized_h, :resized_w] = image
    else:
        canvas[:resized_h, :resized_w] = cv2.resize(
            image, (resized_w, resized_h), interpolation=cv2.INTER_AREA
        )
    return canvas, Letterbox(scale, frame_width, frame_height)


def _mini_box(contour: np.ndarray) -> tuple[np.ndarray, float]:
    """Corners of the minimum-area rectangle ordered tl, tr, br, bl (rapidocr get_mini_boxes)."""
    rect = cv2.minAreaRect(contour)
    points = sorted(cv2.boxPoints(rect).tolist(), key=lambda p: p[0])
    left = sorted(points[:2], key=lambda p: p[1])
    right = sorted(points[2:], key=lambda p: p[1])
    return np.array([left[0], right[0], right[1], left[1]], dtype=np.float32), min(rect[1])


def _box_score(prob: np.ndarray, box: np.ndarray) -> float:
    """Mean probability inside the box (rapidocr box_score_fast)."""
    h, w = prob.shape
    xmin = int(np.clip(np.floor(box[:, 0].min()), 0, w - 1))
    xmax = int(np.clip(np.ceil(box[:, 0].max()), 0, w - 1))
    ymin = int(np.clip(np.floor(box[:, 1].min()), 0, h - 1))
    ymax = int(np.clip(np.ceil(box[:, 1].max()), 0, h - 1))
    mask = np.zeros((ymax - ymin + 1, xmax - xmin + 1), dtype=np.uint8)
    shifted: np.ndarray = box - np.array([xmin, ymin], dtype=np.float32)
    cv2.fillPoly(mask, [shifted.reshape(-1, 2).astype(np.int32)], 1)
    return float(cv2.mean(prob[ymin : ymax + 1, xmin : xmax + 1], mask)[0])


def _unclip(box: np.ndarray, ratio: float) -> np.ndarray:
    """Grow a rectangle by area * ratio / perimeter on every side. rapidocr offsets the polygon with
    pyclipper (rounded corners); for a rectangle the min-area rectangle of that is the same."""
    rect = cv2.minAreaRect(box)
    (cx, cy), (rw, rh), angle = rect
    if rw <= 0 or rh <= 0:
        return box
    distance = rw * rh * ratio / (2 * (rw + rh))
    return cv2.boxPoints(((cx, cy), (rw + 2 * distance, rh + 2 * distance), angle))


def db_boxes(
    prob_u8: np.ndarray,
    placement: Letterbox,
    *,
    thresh: float = DB_THRESH,
    box_thresh: float = DB_BOX_THRESH,
    unclip_ratio: float = DB_UNCLIP_RATIO,
) -> list[tuple[np.ndarray, float]]:
    """Text quads (4x2 float32, frame pixels, tl tr br bl) and scores from one UINT8 DB map."""
    prob = prob_u8.astype(np.float32) / 255.0
    bitmap = cv2.dilate((prob > thresh).astype(np.uint8), np.ones((2, 2), np.uint8))
    contours, _ = cv2.findContours(bitmap * 255, cv2.RETR_LIST, cv2.CHAIN_APPROX_SIMPLE)
    results: list[tuple[np.ndarray, float]] = []
    for contour in contours[:DB_MAX_CANDIDATES]:
        points, short_side = _mini_box(contour)
        if short_side < DB_MIN_SIZE:
            continue
        score = _box_score(prob, points)
        if score < box_thresh:
            continue
        box, short_side = _mini_box(_unclip(points, unclip_ratio))
        if short_side < DB_MIN_SIZE + 2:
            continue
        box = box / placement.scale
        box[:, 0] = np.clip(np.round(box[:, 0]), 0, placement.frame_width - 1)
        box[:, 1] = np.clip(np.round(box[:, 1]), 0, placement.frame_height - 1)
        results.append((box.astype(np.float32), score))
    return results


# Pieces of one text line that the detector split (a plate's "ABC 123" around an emblem or a wide
# space, a line cut where a character touches the frame): neighbours along the same line, of similar
# height, with at most this gap between their (unclipped) boxes, in line heights. 0.9, not 0.8:
# a DC plate's "800 002" (0.88 heights apart) is one registration; on the training halves and the
# synthetic frames nothing else changed from 0.8 up to 1.0.
MERGE_MAX_HEIGHT_RATIO = 1.4
MERGE_MAX_GAP = 0.9
MERGE_MAX_OFFSET = 0.35
MERGE_MAX_ANGLE_DEG = 10.0


@dataclass(frozen=True)
class _LineFrame:
    """A quad's own axes: centre, unit direction along the text, unit normal, width and height."""

    centre: np.ndarray
    along: np.ndarray
    normal: np.ndarray
    width: float
    height: float


def _text_direction(quad: np.ndarray) -> np.ndarray:
    """The (unnormalized) direction along a tl-tr-br-bl quad's text: its top and bottom edges summed."""
    quad = quad.astype(np.float64)
    return (quad[1] - quad[0]) + (quad[2] - quad[3])


def _line_frame(quad: np.ndarray) -> _LineFrame:
    quad = quad.astype(np.float64)
    direction = _text_direction(quad)
    norm = float(np.linalg.norm(direction))
    along = direction / norm if norm > 0 else np.array([1.0, 0.0])
    width, height = quad_size(quad)
    return _LineFrame(quad.mean(axis=0), along, np.array([-along[1], along[0]]), width, height)


def _alike(fa: _LineFrame, fb: _LineFrame, max_height_ratio: float, max_angle_deg: float) -> bool:
    """Whether two lines are of about one height (the taller at most `max_height_ratio` times the
    shorter) and run alike (directions at most `max_angle_deg` apart)."""
    low, high = sorted((fa.height, fb.height))
    if low <= 0 or high / low > max_height_ratio:
        return False
    return abs(float(fa.along @ fb.along)) >= math.cos(math.radians(max_angle_deg))


def same_line(a: np.ndarray, b: np.ndarray) -> bool:
    """Whether quads `a` and `b` are two pieces of one text line: similar height, parallel, on the
    same baseline (centres offset across the line by at most `MERGE_MAX_OFFSET` of the smaller
    height) and overlapping or apart along it by at most `MERGE_MAX_GAP` of the larger height."""
    fa, fb = _line_frame(a), _line_frame(b)
    if not _alike(fa, fb, MERGE_MAX_HEIGHT_RATIO, MERGE_MAX_ANGLE_DEG):
        return False
    low, high = sorted((fa.height, fb.height))
    # The line's direction is the pieces' mean direction, so that the answer does not depend on
    # which piece is `a` (the detector's order): measured along one piece's own axes, two pieces a few
    # degrees apart could be one line one way round and not the other.
    along = fa.along + (fb.along if float(fa.along @ fb.along) >= 0.0 else -fb.along)
    along /= float(np.linalg.norm(along))
    normal = np.array([-along[1], along[0]])
    offset = fb.centre - fa.centre
    if abs(float(offset @ normal)) > MERGE_MAX_OFFSET * low:
        return False
    gap = abs(float(offset @ along)) - (fa.width + fb.width) / 2
    return gap <= MERGE_MAX_GAP * high


def merge_line_pieces(boxes: list[tuple[np.ndarray, float]]) -> list[tuple[np.ndarray, float]]:
    """DB boxes with the pieces of each text line (`same_line`, transitively) replaced by one quad
    around them all (tl tr br bl) whose score is the pieces' area-weighted mean; other boxes as given,
    in their order (a merged line takes the place of its first piece)."""
    parent = list(range(len(boxes)))

    def root(i: int) -> int:
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    for i in range(len(boxes)):
        for j in range(i + 1, len(boxes)):
            if root(i) != root(j) and same_line(boxes[i][0], boxes[j][0]):
                parent[root(j)] = root(i)
    groups: dict[int, list[int]] = {}
    for i in range(len(boxes)):
        groups.setdefault(root(i), []).append(i)
    merged: list[tuple[np.ndarray, float]] = []
    for members in sorted(groups.values(), key=lambda m: m[0]):
        if len(members) == 1:
            merged.append(boxes[members[0]])
            continue
        points = np.concatenate([boxes[i][0] for i in members]).astype(np.float32)
        quad, _ = _mini_box(points)
        areas = [max(1e-6, float(np.prod(quad_size(boxes[i][0])))) for i in members]
        score = float(np.average([boxes[i][1] for i in members], weights=areas))
        merged.append((quad, score))
    return merged


# A plate's registration is its largest text; the smaller lines on and around it (state name,
# county, slogan, stickers, dealer frame) are accessories. A line is one when a line at least this
# much taller lies around it: its centre within the taller line's box grown by these fractions.
ACCESSORY_HEIGHT_RATIO = 1.5
ACCESSORY_REACH_ACROSS = 1.0
ACCESSORY_REACH_ALONG = 0.25


def accessory_of(small: np.ndarray, big: np.ndarray) -> bool:
    """Whether text line `small` is accessory text of the line `big` (see `ACCESSORY_HEIGHT_RATIO`):
    `big` is at least that much taller and `small`'s centre lies within `big`'s box grown by
    `ACCESSORY_REACH_ACROSS` of its height above and below and `ACCESSORY_REACH_ALONG` of its width
    to either side."""
    fs, fb = _line_frame(small), _line_frame(big)
    if fs.height <= 0 or fb.height < ACCESSORY_HEIGHT_RATIO * fs.height:
        return False
    offset = fs.centre - fb.centre
    along = abs(float(offset @ fb.along))
    across = abs(float(offset @ fb.normal))
    return along <= fb.width * (0.5 + ACCESSORY_REACH_ALONG) and across <= fb.height * (
        0.5 + ACCESSORY_REACH_ACROSS
    )


# Two-row plates (motorcycles', square plates: Brazil's LLL over 9999 or 9L99, the UK's AB12 over CDE,
# German ones) are found by the detector as two text lines, one above the other, of which neither is
# the registration. Two lines are a plate's two rows when they are about as high (`STACK_MAX_HEIGHT_RATIO`)
# and wide (the narrower at least `STACK_MIN_WIDTH_RATIO` of the wider), parallel, centred on each
# other along the rows (offset at most `STACK_MAX_SHIFT` of the wider row's width) and close across
# them: centres `STACK_CENTRE_DISTANCE` mean row heights apart. A state name or slogan above or below a
# one-row registration is much smaller, and a second plate is not that close. The rows are then read
# as one line laid side by side (`side_by_side`; engine.PlateRecognizer), which the plate classifier
# and the CRNN take as a one-row plate.
STACK_MAX_HEIGHT_RATIO = 1.4
STACK_MIN_WIDTH_RATIO = 0.4
STACK_MAX_SHIFT = 0.3
STACK_CENTRE_DISTANCE = (0.6, 2.0)
STACK_MAX_ANGLE_DEG = 10.0
# A row is at least this wide for its height (two characters) and at most as wide as a one-row line.
STACK_MIN_ROW_ASPECT = 0.8


def stacked_rows(upper: np.ndarray, lower: np.ndarray) -> bool:
    """Whether quad `lower` lies right below quad `upper` as the second row of one two-row plate
    (see `STACK_MAX_HEIGHT_RATIO`)."""
    fu, fl = _line_frame(upper), _line_frame(lower)
    return _row_shaped(fu) and _row_shaped(fl) and _stacked(fu, fl)


def _row_shaped(frame: _LineFrame) -> bool:
    """A line that can be a row of a two-row plate: not tiny, two characters wide or more."""
    return (
        frame.height >= MIN_LINE_HEIGHT_PX
        and STACK_MIN_ROW_ASPECT <= frame.width / frame.height <= MAX_LINE_ASPECT
    )


def _stacked(fu: _LineFrame, fl: _LineFrame) -> bool:
    """`stacked_rows` for two row-shaped lines' frames."""
    if not _alike(fu, fl, STACK_MAX_HEIGHT_RATIO, STACK_MAX_ANGLE_DEG):
        return False
    narrow, wide = sorted((fu.width, fl.width))
    if narrow < STACK_MIN_WIDTH_RATIO * wide:
        return False
    offset = fl.centre - fu.centre
    if abs(float(offset @ fu.along)) > STACK_MAX_SHIFT * wide:
        return False
    across = float(offset @ fu.normal) / ((fu.height + fl.height) / 2)
    return STACK_CENTRE_DISTANCE[0] <= across <= STACK_CENTRE_DISTANCE[1]


# A box squarer than a one-row line (MIN_LINE_ASPECT) but at least this wide for its height may be a
# two-row plate whose rows the detector saw as one box (rows set close together: seen on rendered
# square plates with the rows at 0.65-0.8 of the usual spacing).
MERGED_ROWS_MIN_ASPECT = 0.8
# A registration read from such a box split in two holds at least this many characters (the rendered
# two-row formats hold 6-7: LLL 9999, AB12 CDE; some real ones hold fewer, e.g. German B A 1, and
# are then read only when the detector finds their rows apart); shorter readings of split boxes were
# badges and stickers on the training-half photos (KC70, A7U4, N7N4).
MERGED_ROWS_MIN_CHARS = 6
# A split box whose middle cut, read as given, holds fewer characters than this is not read again
# (other cuts, reading variants): badges taken for split boxes (KC70, A7G4 on EU photos) cost 17-30
# ms a photo so, and their readings never reached 6 characters. One under `MERGED_ROWS_MIN_CHARS`,
# since voting may add a character; 6 itself read 4 fewer of 900 close-row frames (seeds 6262,
# 7373, 8484), 5 the same; session 22.
MERGED_ROWS_MIN_FIRST_CHARS = MERGED_ROWS_MIN_CHARS - 1
# Where such a box is cut into its rows, in fractions of its height from the top: the middle first,
# then a little higher and lower. The rows seldom meet at the box's exact middle (a border, a bolt or
# a sticker widens one side). The middle cut is read first; when its reading is unsure and holds at
# least `MERGED_ROWS_MIN_FIRST_CHARS` characters, all cuts are read and vote like a line's cuts with
# different margins (`engine.PlateRecognizer.read_cuts`). Chosen on rendered close-row frames of a
# fresh seed (6262, 0.65 and 0.8 spacing: 146 -> 153 of 300; the middle alone, or each cut read apart
# with the surest kept, 146); session 22.
MERGED_ROWS_SPLITS: tuple[float, ...] = (0.5, 0.45, 0.55)


def merged_rows_shaped(quad: np.ndarray) -> bool:
    """Whether `quad` is shaped like a two-row plate seen as one box: aspect from
    `MERGED_ROWS_MIN_ASPECT` up to (not including) `MIN_LINE_ASPECT`, and at least twice
    `MIN_LINE_HEIGHT_PX` high."""
    width, height = quad_size(quad)
    return height >= 2 * MIN_LINE_HEIGHT_PX and MERGED_ROWS_MIN_ASPECT <= width / height < MIN_LINE_ASPECT


def split_rows(quad: np.ndarray, at: float) -> tuple[np.ndarray, np.ndarray]:
    """The upper and lower parts (tl tr br bl quads) of `quad`, cut at `at` of its height from the
    top (along its own sides, so a leaning box's parts lean with it)."""
    if not 0.0 < at < 1.0:
        raise ValueError(f"the cut must lie inside the box: {at}")
    tl, tr, br, bl = quad.astype(np.float32)
    # At 0.5 this is exactly (tl + bl) / 2: scaling by 0.5 is exact in floating point.
    cut_left, cut_right = tl * (1 - at) + bl * at, tr * (1 - at) + br * at
    return np.array([tl, tr, cut_right, cut_left]), np.array([cut_left, cut_right, br, bl])


def two_row_text(text: str, merged: bool = False) -> bool:
    """Whether plate text read from two stacked rows can be a registration: it holds a digit. Two-row
    registrations do (LLL 9999, AB12 CDE); two-row stickers and brand names (LIQUI MOLY, seen on a
    training-half EU photo) mostly do not. Read from one box split in two (`merged`, see
    `merged_rows_shaped`), it also holds at least `MERGED_ROWS_MIN_CHARS` characters."""
    return any(ch.isdigit() for ch in text) and (not merged or len(text) >= MERGED_ROWS_MIN_CHARS)


def stacked_pairs(quads: list[np.ndarray]) -> list[tuple[int, int]]:
    """(upper, lower) positions in `quads` of the lines that are two rows of one plate
    (`stacked_rows`); a line is a row of at most one plate, the closest pairs taken first."""
    # Busy frames hold dozens of lines: each line's frame is computed once, and only row-shaped lines
    # whose centres are near enough to be stacked are compared (`_stacked` allows at most 2 mean
    # heights across plus 0.3 of the wider row along, which is at most 0.75 of either row's width).
    rows = [(i, f) for i, f in enumerate(map(_line_frame, quads)) if _row_shaped(f)]
    if len(rows) < 2:
        return []
    centres = np.array([f.centre for _, f in rows])
    heights = np.array([f.height for _, f in rows])
    widths = np.array([f.width for _, f in rows])
    distances = np.linalg.norm(centres[:, None] - centres[None], axis=2)
    near = distances <= heights[:, None] + heights[None] + widths[:, None]
    # A line is never stacked on itself (`_stacked` needs its centres 0.6 heights apart).
    pairs = [
        (float(distances[a, b]), rows[a][0], rows[b][0])
        for a, b in zip(*np.nonzero(near), strict=True)
        if _stacked(rows[a][1], rows[b][1])
    ]
    taken: set[int] = set()
    chosen: list[tuple[int, int]] = []
    for _, upper, lower in sorted(pairs):
        if upper not in taken and lower not in taken:
            taken.update((upper, lower))
            chosen.append((upper, lower))
    return chosen


def stacked_union(upper: np.ndarray, lower: np.ndarray) -> np.ndarray:
    """The quad (tl tr br bl) around both rows of a two-row plate, along the upper row's axes."""
    frame = _line_frame(upper)
    points = np.concatenate([upper, lower]).astype(np.float64) - frame.centre
    along, across = points @ frame.along, points @ frame.normal
    corners = [
        (along.min(), across.min()),
        (along.max(), across.min()),
        (along.max(), across.max()),
        (along.min(), across.max()),
    ]
    return np.array([frame.centre + a * frame.along + n * frame.normal for a, n in corners], np.float32)


def side_by_side(top: np.ndarray, bottom: np.ndarray) -> np.ndarray:
    """A two-row plate's rows as one line: `bottom` scaled to `top`'s height and put on its right."""
    height = top.shape[0]
    width = max(1, round(bottom.shape[1] * height / max(1, bottom.shape[0])))
    return np.ascontiguousarray(
        np.hstack([top, cv2.resize(bottom, (width, height), interpolation=cv2.INTER_LINEAR)])
    )


# Margins a detected line is cut with before it is read, each as (along, across) fractions of the line
# height per side; with several, the first cut is read first, and when that reading is not sure every
# cut is read (with its `READING_VARIANTS`) and all the reads vote (engine.PlateRecognizer.read_cuts).
# The plate CRNN was trained on line crops with up to 0.25 line heights of margin and on whole plates,
# and reads a loosely framed line better than the detector's tight box. Pipeline top-1 on the synthetic
# whole-plate set / US train crops / EU train photos: (0.2, 0.2) 83.25 / 94.9 / 94.2%; tight (0, 0)
# 82.75 / 88.0 / 92.3; vertical only (0, 0.2) 82.0 / 92.8 / 90.4, (0.05, 0.2) 81.75 / 94.1 / 90.4;
# tight and (0.2, 0.2) voting 83.25 / 93.3 / 94.2 at twice the reads: no better, so one cut.
LINE_CROP_MARGINS: tuple[tuple[float, float], ...] = ((0.2, 0.2),)


def pad_quad(quad: np.ndarray, along: float, across: float, frame_shape: tuple[int, ...]) -> np.ndarray:
    """The quad (tl tr br bl) grown along its own axes by `along` of its height at each end and by
    `across` of its height above and below (negative: shrunk), clipped to the frame."""
    f = _line_frame(quad)
    half_w = max(1.0, f.width / 2 + along * f.height)
    half_h = max(1.0, f.height / 2 + across * f.height)
    u, n = f.along * half_w, f.normal * half_h
    grown = np.array([f.centre - u - n, f.centre + u - n, f.centre + u + n, f.centre - u + n])
    grown[:, 0] = np.clip(grown[:, 0], 0, frame_shape[1] - 1)
    grown[:, 1] = np.clip(grown[:, 1], 0, frame_shape[0] - 1)
    return grown.astype(np.float32)


def quad_to_box(quad: np.ndarray) -> tuple[int, int, int, int]:
    """Axis-aligned (x, y, width, height) around a quad."""
    x0, y0 = np.floor(quad.min(axis=0)).astype(int)
    x1, y1 = np.ceil(quad.max(axis=0)).astype(int)
    return int(x0), int(y0), int(x1 - x0 + 1), int(y1 - y0 + 1)


def quad_bounds(quad: np.ndarray) -> tuple[float, float, float, float]:
    """(x0, y0, x1, y1) of the quad's corners: its axis-aligned extent, inclusive."""
    (x0, y0), (x1, y1) = quad.min(axis=0), quad.max(axis=0)
    return float(x0), float(y0), float(x1), float(y1)


def quad_size(quad: np.ndarray) -> tuple[float, float]:
    """(width, height) of a tl-tr-br-bl quad along its own axes."""
    width = max(np.linalg.norm(quad[0] - quad[1]), np.linalg.norm(quad[2] - quad[3]))
    height = max(np.linalg.norm(quad[0] - quad[3]), np.linalg.norm(quad[1] - quad[2]))
    return float(width), float(height)


def line_angle(quad: np.ndarray) -> float:
    """The direction of a tl-tr-br-bl quad's text in degrees, in image coordinates (y down): positive
    when the line runs down to the right, in (-180, 180]."""
    direction = _text_direction(quad)
    return float(np.degrees(np.arctan2(direction[1], direction[0])))


def turned_upright(frame: np.ndarray, degrees: float, grow: bool = True) -> tuple[np.ndarray, np.ndarray]:
    """`frame` turned about its centre so that a line at `line_angle` `degrees` runs level, on a canvas
    grown to hold all of it (edge pixels replicated into the corners; `grow=False`: the frame's own
    size, its corners cut), and the 2x3 affine map from the turned image's pixels back to the frame's
    (for `box_through`)."""
    height, width = frame.shape[:2]
    matrix = cv2.getRotationMatrix2D((width / 2, height / 2), degrees, 1.0)
    cos, sin = abs(matrix[0, 0]), abs(matrix[0, 1])
    new_width, new_height = width, height
    if grow:
        new_width, new_height = round(width * cos + height * sin), round(width * sin + height * cos)
    matrix[0, 2] += (new_width - width) / 2
    matrix[1, 2] += (new_height - height) / 2
    turned = cv2.warpAffine(
        frame, matrix, (new_width, new_height), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE
    )
    return turned, cv2.invertAffineTransform(matrix)


def inverse_affine(matrix: np.ndarray) -> np.ndarray:
    """The 2x3 affine map that undoes `matrix` (e.g. frame pixels into `turned_upright`'s image)."""
    return cv2.invertAffineTransform(np.asarray(matrix, np.float64))


def extent_through(box: tuple[int, int, int, int], matrix: np.ndarray) -> tuple[int, int, int, int]:
    """(x0, y0, x1, y1): the whole-pixel extent around the corners of the (x, y, w, h) `box` taken
    through the 2x3 affine `matrix` (floor of the least, ceiling of the greatest coordinates)."""
    x, y, w, h = box
    return points_extent_through(np.array([[x, y], [x + w, y], [x + w, y + h], [x, y + h]]), matrix)


def points_extent_through(points: np.ndarray, matrix: np.ndarray) -> tuple[int, int, int, int]:
    """(x0, y0, x1, y1): the whole-pixel extent around `points` ([N, 2], e.g. a line's quad) taken
    through the 2x3 affine `matrix`. A leaning quad's own corners, not its axis-aligned box: turned
    level, its extent is as high as its text."""
    affine = np.asarray(matrix, np.float64)
    mapped = np.asarray(points, np.float64).reshape(-1, 2) @ affine[:, :2].T + affine[:, 2]
    (x0, y0), (x1, y1) = np.floor(mapped.min(axis=0)), np.ceil(mapped.max(axis=0))
    return int(x0), int(y0), int(x1), int(y1)


def box_through(
    box: tuple[int, int, int, int], matrix: np.ndarray, frame_width: int, frame_height: int
) -> tuple[int, int, int, int]:
    """The axis-aligned box, within a `frame_width` x `frame_height` frame, around `box`'s corners
    mapped by the 2x3 affine `matrix` (`extent_through`, clipped to the frame)."""
    x0, y0, x1, y1 = extent_through(box, matrix)
    x0, y0 = min(max(x0, 0), frame_width - 1), min(max(y0, 0), frame_height - 1)
    x1, y1 = min(max(x1, 0), frame_width), min(max(y1, 0), frame_height)
    return x0, y0, max(1, x1 - x0), max(1, y1 - y0)


def crop_quad(image: np.ndarray, quad: np.ndarray, turn_tall: bool = True) -> np.ndarray:
    """Perspective-rectified crop of the quad (rapidocr get_rotate_crop_image): with `turn_tall`, a
    crop at least 1.5 times as tall as wide is turned a quarter (vertical text read as a line)."""
    width, height = (max(1, int(v)) for v in quad_size(quad))
    target = np.array([[0, 0], [width, 0], [width, height], [0, height]], dtype=np.float32)
    matrix = cv2.getPerspectiveTransform(quad.astype(np.float32), target)
    crop = cv2.warpPerspective(
        image, matrix, (width, height), borderMode=cv2.BORDER_REPLICATE, flags=cv2.INTER_CUBIC
    )
    if turn_tall and crop.shape[0] / crop.shape[1] >= 1.5:
        crop = np.rot90(crop)
    return np.ascontiguousarray(crop)


def rec_input(crop: np.ndarray) -> np.ndarray:
    """A crop as one fixed [48, 320, 3] rec input: height 48, aspect kept up to width 320 (wider
    crops are squeezed), padded right with grey (normalizes to ~0, like rapidocr's zero padding)."""
    h, w = crop.shape[:2]
    width = min(model_io.REC_WIDTH, max(1, math.ceil(model_io.REC_HEIGHT * w / max(h, 1))))
    out = np.full((model_io.REC_HEIGHT, model_io.REC_WIDTH, 3), model_io.REC_PAD_VALUE, dtype=np.uint8)
    out[:, :width] = cv2.resize(crop, (width, model_io.REC_HEIGHT))
    return out


@dataclass(frozen=True)
class Candidate:
    """One reading of a text line; confidence is the mean of the per-character confidences."""

    text: str
    confidence: float
    char_confidences: tuple[float, ...] = field(default_factory=tuple)


def ctc_decode(
    indices: np.ndarray, probs: np.ndarray, characters: list[str], top_k: int = 3
) -> list[Candidate]:
    """Greedy CTC decode of one line from per-step top-k classes ([T, K], best first; class 0 is the
    blank). The best path collapses repeats and drops blanks (rapidocr CTCLabelDecode); further
    candidates swap one character for its runner-up at that step, ranked by mean confidence."""
    best = indices[:, 0]
    keep = np.ones(len(best), dtype=bool)
    keep[1:] = best[1:] != best[:-1]
    keep &= best != 0
    steps = np.flatnonzero(keep)
    chars = [characters[i] for i in best[steps]]
    confs = [float(p) for p in probs[steps, 0]]
    if not chars:
        return [Candidate("", 0.0)]
    candidates = [Candidate("".join(chars), float(np.mean(confs)), tuple(confs))]
    alternatives: list[Candidate] = []
    for position, step in enumerate(steps):
        for rank in range(1, indices.shape[1]):
            cls = int(indices[step, rank])
            if cls == 0 or cls >= len(characters):
                continue
            alt_chars = list(chars)
            alt_confs = list(confs)
            alt_chars[position] = characters[cls]
            alt_confs[position] = float(probs[step, rank])
            alternatives.append(Candidate("".join(alt_chars), float(np.mean(alt_confs)), tuple(alt_confs)))
            break
    alternatives.sort(key=lambda c: c.confidence, reverse=True)
    seen = {candidates[0].text}
    for alternative in alternatives:
        if len(candidates) >= top_k:
            break
        if alternative.text not in seen:
            seen.add(alternative.text)
            candidates.append(alternative)
    return candidates


# Letters the recognizer may return in lower case though plates print them in upper case: their
# glyphs differ from the capital only in size.
_CASE_AMBIGUOUS = set("cosuvwxz")
_SEPARATORS = re.compile(r"[\s\-\.·:_]")
# 4-8 letters and digits, or 3 with a digit among them (US short plates; the engine also asks the
# plate classifier for a firm score on those: engine.MIN_SHORT_PLATE_SCORE).
_PLATE_TEXT = re.compile(r"^(?=.*[0-9])[A-Z0-9]{3}$|^[A-Z0-9]{4,8}$")
# Words printed on plates or around them that are never the registration: US state names that fit the
# 4-8 character window (with spaces removed) and common signage. A vanity plate spelling one of these
# exactly is lost; that trade is far cheaper than a "NEWYORK" read per New York car.
NOT_PLATES = frozenset(
    """ALABAMA ALASKA ARIZONA ARKANSAS COLORADO DELAWARE FLORIDA GEORGIA HAWAII IDAHO ILLINOIS INDIANA
    IOWA KANSAS KENTUCKY LOUISIAN MAINE MARYLAND MICHIGAN MISSOURI MONTANA NEBRASKA NEVADA NEWYORK
    NEWJERSEY OHIO OKLAHOMA OREGON TEXAS UTAH VERMONT VIRGINIA WYOMING WISCONSIN NEWMEXICO
    USA EXIT NORTH SOUTH EAST WEST STOP TAXI POLICE DEALER""".split()
)
MIN_LINE_ASPECT = 1.5
MAX_LINE_ASPECT = 12.0
MIN_LINE_HEIGHT_PX = 8


# A whole image at most this large and this plate-shaped is taken to be a plate crop (some cameras and
# ALPR systems send plate patches instead of frames): it is also read whole, as one line
# (engine.PlateRecognizer, `read_crops_whole`). A plate cut with its frame is about 2:1 (US; the US
# dev crops are 1.64-2.75) to 4.7:1 (EU one-line). Video frames are not taken for crops: 4:3 and CIF
# shapes are under the aspect floor or over the height cap, and 16:9 (320x180, 256x144) is excluded
# by shape (`VIDEO_ASPECT`; 5 of the 751 US dev crops have that shape and are read as before).
PLATE_CROP_MAX_SIDES = (480, 200)
PLATE_CROP_ASPECTS = (1.4, 5.5)
VIDEO_ASPECT = 16 / 9


def plate_crop_shaped(width: int, height: int) -> bool:
    """Whether a whole image of this size looks like a plate crop (`PLATE_CROP_MAX_SIDES`,
    `PLATE_CROP_ASPECTS`, not within 2 % of a 16:9 video frame) rather than a scene."""
    if height < MIN_LINE_HEIGHT_PX or width > PLATE_CROP_MAX_SIDES[0] or height > PLATE_CROP_MAX_SIDES[1]:
        return False
    aspect = width / height
    if abs(aspect / VIDEO_ASPECT - 1.0) <= 0.02:
        return False
    return PLATE_CROP_ASPECTS[0] <= aspect <= PLATE_CROP_ASPECTS[1]


def compact_text(text: str) -> str:
    """`text` without separators (spaces, dashes, dots...), case kept; NFKC folds the PP-OCR
    dictionary's full-width letters and digits (U+FF21...) into ASCII."""
    return _SEPARATORS.sub("", unicodedata.normalize("NFKC", text))


def plate_text(text: str) -> str | None:
    """The plate string in `text`, or None when the text does not look like a plate: 4-8
    alphanumerics (or 3 with a digit among them) after removing spaces and dashes, in upper case
    (lower case only for letters whose shapes do not tell case apart; other lower case means
    signage, not a plate), and not a state name or sign word (`NOT_PLATES`)."""
    compact = compact_text(text)
    if any(ch.islower() and ch not in _CASE_AMBIGUOUS for ch in compact):
        return None
    compact = compact.upper()
    if compact in NOT_PLATES or _misread_word(compact):
        return None
    return compact if _PLATE_TEXT.match(compact) else None


# Beam candidates repeat across variants and frames; each check scans every word of NOT_PLATES.
@functools.lru_cache(maxsize=4096)
def _misread_word(text: str) -> bool:
    """A long state or sign word read with one character wrong ("AIASKA", "0HIO" stays a plate:
    only words of six or more letters, where one edit is still unmistakable)."""
    if len(text) < 6:
        return False
    return any(len(word) >= 6 and _within_one_edit(text, word) for word in NOT_PLATES)


def _within_one_edit(a: str, b: str) -> bool:
    """Levenshtein distance <= 1."""
    if abs(len(a) - len(b)) > 1:
        return False
    if len(a) == len(b):
        return sum(x != y for x, y in zip(a, b, strict=True)) <= 1
    short, long = (a, b) if len(a) < len(b) else (b, a)
    return any(long[:i] + long[i + 1 :] == short for i in range(len(long)))


def plate_like_geometry(width: float, height: float) -> bool:
    """A plate's text line is a wide, not-tiny box."""
    if height < MIN_LINE_HEIGHT_PX or width <= 0:
        return False
    return MIN_LINE_ASPECT <= width / height <= MAX_LINE_ASPECT


# Named colours for the vehicle estimate: hue ranges in OpenCV's 0-179 scale.
_HUES = (
    ("red", 0, 8),
    ("orange", 8, 20),
    ("yellow", 20, 33),
    ("green", 33, 85),
    ("blue", 85, 130),
    ("purple", 130, 160),
    ("red", 160, 180),
)


# Colour names in alphabetical order (a tie goes to the first, as with `np.unique`), and each hue's name.
_COLOUR_NAMES = tuple(sorted({"black", "grey", "white", *(name for name, _, _ in _HUES)}))
_BLACK, _GREY, _WHITE = (_COLOUR_NAMES.index(name) for name in ("black", "grey", "white"))
_HUE_CODES = np.full(256, _COLOUR_NAMES.index("red"), np.uint8)
for _name, _low, _high in _HUES:
    _HUE_CODES[_low:_high] = _COLOUR_NAMES.index(_name)


# Pixels less saturated than this are black, grey or white by value alone.
_ACHROMATIC_SATURATION = 50


def _colour_rule(hue: np.ndarray, sat: np.ndarray, val: np.ndarray) -> np.ndarray:
    """Index into `_COLOUR_NAMES` per HSV pixel: low saturation is black / grey / white by value,
    otherwise black when dark, else the hue's name."""
    achromatic = np.where(val < 60, _BLACK, np.where(val < 170, _GREY, _WHITE)).astype(np.uint8)
    chromatic = np.where(val < 50, np.uint8(_BLACK), _HUE_CODES[hue])
    return np.where(sat < _ACHROMATIC_SATURATION, achromatic, chromatic)


def _colour_lut() -> np.ndarray:
    """`_colour_rule` tabulated by (saturation under `_ACHROMATIC_SATURATION`, hue, value): the rule
    looks at saturation only through that threshold, so 2 x 256 x 256 entries hold every case."""
    hue, val = (axis.ravel() for axis in np.meshgrid(np.arange(256), np.arange(256), indexing="ij"))
    return np.concatenate(
        [_colour_rule(hue, np.full_like(hue, 255), val), _colour_rule(hue, np.zeros_like(hue), val)]
    ).astype(np.uint8)


# A lookup is about 3.5 times as fast as the rule's nested selects on a car's surroundings (150k pixels:
# 2.0 -> 0.56 ms, one core), and `vehicle_colour` runs for every plate.
_COLOUR_LUT = _colour_lut()


def _colour_codes(hsv: np.ndarray) -> np.ndarray:
    """`_colour_rule` for every pixel of an HSV (uint8) image, flattened."""
    hue, sat, val = hsv[..., 0], hsv[..., 1], hsv[..., 2]
    index = (sat < _ACHROMATIC_SATURATION).astype(np.int32) << 16 | hue.astype(np.int32) << 8 | val
    return _COLOUR_LUT[index].ravel()


def vehicle_colour(frame: np.ndarray, box: tuple[int, int, int, int]) -> tuple[str, float]:
    """Dominant colour of the bodywork around and above a plate, with the share of pixels that
    voted for it as the confidence. Classical and rough: ("unknown", 0.0) when there is no region."""
    x, y, w, h = box
    frame_h, frame_w = frame.shape[:2]
    x0, x1 = max(0, x - w), min(frame_w, x + 2 * w)
    y0, y1 = max(0, y - 3 * h), min(frame_h, y + 2 * h)
    if x1 <= x0 or y1 <= y0:
        return "unknown", 0.0
    hsv = cv2.cvtColor(frame[y0:y1, x0:x1], cv2.COLOR_BGR2HSV)
    counts = np.bincount(_colour_codes(hsv), minlength=len(_COLOUR_NAMES))
    # The plate itself is not the car: its pixels' votes are taken back.
    plate = hsv[max(0, y - y0) : max(0, y + h - y0), max(0, x - x0) : max(0, x + w - x0)]
    if plate.size:
        counts -= np.bincount(_colour_codes(plate), minlength=len(_COLOUR_NAMES))
    total = int(counts.sum())
    if total == 0:
        return "unknown", 0.0
    best = int(np.argmax(counts))
    return _COLOUR_NAMES[best], float(counts[best] / total)


# Test-time variants of a crop read by the plate CRNN, as (horizontal, vertical) fractions cut from
# each side (negative: border added): the crop as given, narrower, wider, and with the top and bottom
# trimmed (state names and slogans). Their readings vote (`decoding.combine_variants`). Chosen on a
# synthetic validation set (never on the dev crops): +1.1 points exact there.
READING_VARIANTS: tuple[tuple[float, float], ...] = ((0.0, 0.0), (0.04, 0.0), (-0.04, 0.0), (0.0, 0.06))


# The blue band of an EU plate (stars and country code, white or yellow, on blue at the plate's left
# edge): a line cut with margin (`LINE_CROP_MARGINS`) or a whole-plate crop takes in part or all of
# it, and the recognizer may read the country letter as part of the registration. Before a crop is
# read, a band found at its left is painted over with the plate body next to it (`clear_plate_bands`:
# the crop keeps its size and margins, which the recognizer reads best with). Found on the crop scaled
# to `BAND_SCAN_HEIGHT` rows, by columns: a run of mostly saturated-blue columns at the crop's edge
# (after at most `BAND_MAX_LEAD` crop heights of frame or bodywork that is not plate body), at most
# `BAND_MAX_WIDTH` crop heights and `BAND_MAX_SHARE` of the crop wide, followed by plate body (white,
# grey in shade, or yellow), spanning at least `BAND_MIN_SPAN` of the rows that body spans next to
# it (a band covers the plate's height; a blue letter or graphic less) and not `BAND_MAX_OVERHANG`
# beyond them (blue bodywork goes on above and below the plate), on a plate whose body holds almost
# no blue itself (`BAND_MAX_INTERIOR_BLUE`: blue lettering or a blue field is no EU plate). Greyscale
# (night, infrared) crops have no blue and are left as they are. The right-hand bands some plates
# carry (Italy, Portugal) are not handled: the same scan mirrored found only blue bodywork beside the
# plate on the synthetic and training sets (no such plates there), and painting that added letters.
# Thresholds chosen on synthetic renders and the training halves only.
BAND_SCAN_HEIGHT = 32
BAND_BLUE_HUE = (95, 130)  # OpenCV hue (0-179): EU reflex blue is ~107
BAND_MIN_SATURATION = 90
BAND_MIN_VALUE = 35
# ...and of the crop's 90th-percentile value: near-black ink with a blue cast is no band.
BAND_MIN_RELATIVE_VALUE = 0.35
BAND_MIN_BLUE_COLUMN = 0.5  # share of a column's pixels that are blue for it to start the band
BAND_MIN_BAND_COLUMN = 0.3  # ...to continue it (the stars and the country code take a column's share)
BAND_BODY_MAX_SATURATION = 80
BAND_BODY_MIN_VALUE = 0.5  # of the crop's 90th-percentile value
BAND_MIN_BODY_COLUMN = 0.4
BAND_MAX_LEAD = 0.3
BAND_MAX_WIDTH = 0.7
BAND_MAX_SHARE = 0.3
BAND_BODY_WINDOW = 0.25  # crop heights of plate body looked at next to the band
BAND_MIN_SPAN = 0.7
BAND_MAX_OVERHANG = 0.1
BAND_MAX_INTERIOR_BLUE = 0.05


def _band_masks(crop: np.ndarray) -> tuple[np.ndarray, np.ndarray] | None:
    """(blue, body) boolean masks of the crop scaled to `BAND_SCAN_HEIGHT` rows, or None for a grey
    or tiny crop."""
    if crop.ndim != 3 or crop.shape[2] != 3 or crop.shape[0] < 4 or crop.shape[1] < 8:
        return None
    height, width = crop.shape[:2]
    scan_w = max(8, round(width * BAND_SCAN_HEIGHT / height))
    interpolation = cv2.INTER_AREA if height > BAND_SCAN_HEIGHT else cv2.INTER_LINEAR
    small = cv2.resize(crop, (scan_w, BAND_SCAN_HEIGHT), interpolation=interpolation)
    hsv = cv2.cvtColor(small, cv2.COLOR_BGR2HSV)
    hue, sat, val = hsv[..., 0], hsv[..., 1], hsv[..., 2]
    reference = float(np.percentile(val, 90))
    blue = (hue >= BAND_BLUE_HUE[0]) & (hue <= BAND_BLUE_HUE[1]) & (sat >= BAND_MIN_SATURATION)
    blue &= val >= max(BAND_MIN_VALUE, BAND_MIN_RELATIVE_VALUE * reference)
    if not blue.any():
        return None
    bright = val >= BAND_BODY_MIN_VALUE * reference
    yellow = (hue >= 15) & (hue <= 35) & (sat >= BAND_MIN_SATURATION)
    body = bright & ((sat <= BAND_BODY_MAX_SATURATION) | yellow) & ~blue
    return blue, body


def _band_end(blue: np.ndarray, body: np.ndarray) -> tuple[int, int, int] | None:
    """(columns the band takes from the left of masks `blue` / `body` (h x w), its first and last
    row) for a band found there, else None."""
    height, width = blue.shape
    col_blue, col_body = blue.mean(axis=0), body.mean(axis=0)
    start = 0
    while start < width and col_blue[start] < BAND_MIN_BLUE_COLUMN:
        if col_body[start] >= BAND_MIN_BODY_COLUMN or start >= BAND_MAX_LEAD * height:
            return None
        start += 1
    limit = min(width, start + int(BAND_MAX_WIDTH * height) + 1, int(BAND_MAX_SHARE * width) + 1)
    end = start
    while end < limit and col_blue[end] >= BAND_MIN_BAND_COLUMN:
        end += 1
    if end == start or end >= limit:
        return None
    window = slice(end, min(width, end + max(2, round(BAND_BODY_WINDOW * height))))
    if col_body[window].mean() < BAND_MIN_BODY_COLUMN:
        return None
    band_rows = np.flatnonzero(blue[:, start:end].mean(axis=1) >= BAND_MIN_BLUE_COLUMN)
    body_rows = np.flatnonzero(body[:, window].mean(axis=1) >= BAND_MIN_BAND_COLUMN)
    if band_rows.size == 0 or body_rows.size == 0:
        return None
    band_span = band_rows[-1] - band_rows[0] + 1
    body_span = body_rows[-1] - body_rows[0] + 1
    if band_span < BAND_MIN_SPAN * body_span:
        return None
    overhang = BAND_MAX_OVERHANG * height
    if band_rows[0] < body_rows[0] - overhang or band_rows[-1] > body_rows[-1] + overhang:
        return None  # blue above or below the plate: bodywork, not a band
    return end, int(body_rows[0]), int(body_rows[-1])


def plate_band_cut(crop: np.ndarray) -> int:
    """Pixels of a plate's blue band at the crop's left (0: none there); 0 as well when the plate body
    right of it (its rows next to the band, its columns up to the last that is mostly body) is blue
    over more than `BAND_MAX_INTERIOR_BLUE` of its area."""
    masks = _band_masks(crop)
    if masks is None:
        return 0
    blue, body = masks
    band = _band_end(blue, body)
    if band is None:
        return 0
    x0, y0, y1 = band
    plate_columns = x0 + np.flatnonzero(body[y0 : y1 + 1, x0:].mean(axis=0) >= BAND_MIN_BODY_COLUMN)
    if plate_columns.size == 0:
        return 0
    if blue[y0 : y1 + 1, plate_columns[0] : plate_columns[-1] + 1].mean() > BAND_MAX_INTERIOR_BLUE:
        return 0
    return math.ceil(x0 * crop.shape[1] / blue.shape[1])


def _row_body(body: np.ndarray) -> np.ndarray:
    """Per row, the plate body's colour in a strip next to a band (h x k x 3): its 90th percentile
    per channel, so that a glyph stroke in the strip does not darken the row (a median would paint
    the strokes across the band as bars)."""
    rank = min(body.shape[1] - 1, int(0.9 * body.shape[1]))
    return np.sort(body, axis=1)[:, rank : rank + 1]


def clear_plate_bands(crop: np.ndarray) -> np.ndarray:
    """The crop with the blue band `plate_band_cut` finds at its left painted over with the plate body
    next to it (`_row_body`), so that the crop keeps its size and framing; as given when there is none
    or when it would take more than half the crop."""
    left = plate_band_cut(crop)
    height, width = crop.shape[:2]
    if not left or left > width / 2:
        return crop
    out = crop.copy()
    out[:, :left] = _row_body(crop[:, left : left + max(2, round(BAND_BODY_WINDOW * height))])
    return out


def reading_variants(
    crop: np.ndarray, variants: tuple[tuple[float, float], ...] = READING_VARIANTS
) -> list[np.ndarray]:
    """The crop cut or padded (edge pixels replicated) by each (horizontal, vertical) fraction per side;
    a cut that would leave fewer than 4 pixels returns the crop as given. An EU plate's blue band at the
    crop's left (`clear_plate_bands`) is painted over first."""
    crop = clear_plate_bands(crop)
    height, width = crop.shape[:2]
    out: list[np.ndarray] = []
    for fx, fy in variants:
        dx, dy = round(width * abs(fx)), round(height * abs(fy))
        if fx < 0 or fy < 0:
            pad_x, pad_y = (dx if fx < 0 else 0), (dy if fy < 0 else 0)
            crop_x, crop_y = (0 if fx < 0 else dx), (0 if fy < 0 else dy)
            base = crop[crop_y : height - crop_y, crop_x : width - crop_x]
            out.append(cv2.copyMakeBorder(base, pad_y, pad_y, pad_x, pad_x, cv2.BORDER_REPLICATE))
        elif width - 2 * dx < 4 or height - 2 * dy < 4:
            out.append(crop)
        else:
            out.append(crop[dy : height - dy, dx : width - dx])
    return out


# The plate classifier sees a line with more of its surroundings than the reader's cut: the plate
# body, border and band around a registration, the bodywork around a badge, the panel of a sign.
CLASSIFIER_MARGINS: tuple[float, float] = (0.5, 0.6)


def classifier_cut(frame: np.ndarray, quad: np.ndarray) -> np.ndarray:
    """The line `quad` of `frame` with the classifier's margins, rectified (BGR)."""
    return crop_quad(frame, pad_quad(quad, *CLASSIFIER_MARGINS, frame.shape))


def classifier_input(cut: np.ndarray) -> np.ndarray:
    """A BGR cut as one [32, 128, 3] uint8 plate-classifier input, squeezed to fit."""
    return _squeeze(cut, model_io.CLS_WIDTH, model_io.CLS_HEIGHT)


def _squeeze(image: np.ndarray, width: int, height: int) -> np.ndarray:
    """`image` resized to exactly width x height (area averaging when it shrinks both ways)."""
    h, w = image.shape[:2]
    interpolation = cv2.INTER_AREA if h > height and w > width else cv2.INTER_LINEAR
    return cv2.resize(image, (width, height), interpolation=interpolation)


def crnn_input(crop: np.ndarray) -> np.ndarray:
    """A BGR (or grey) crop as one [32, 128] grey uint8 plate-CRNN input, squeezed to fit (the
    model is trained on crops of every aspect, from whole US plates to single text lines)."""
    grey = crop if crop.ndim == 2 else cv2.cvtColor(crop, cv2.COLOR_BGR2GRAY)
    return _squeeze(grey, model_io.CRNN_WIDTH, model_io.CRNN_HEIGHT)
