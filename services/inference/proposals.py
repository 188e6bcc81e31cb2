"""Coarse-then-fine plate finding: where in a frame the text detector needs to look at full scale.

PP-OCRv4's text detector costs about 0.25 us of one core per canvas pixel, and a 1280x720 frame on
the 960x544 canvas is most of the frame's budget, although plates cover a few per cent of it. The
two-stage path (`PlateRecognizer(detection="two_stage")`) runs the detector twice:

1. coarse: the whole frame on a small canvas (`TwoStageOptions.coarse_canvas`, a quarter of the
   pixels of the full canvas). Its probability map, read at a lower threshold than the DB boxes
   (`TwoStageOptions.proposal_thresh`), proposes where text is (`coarse_regions`). When it proposes
   nothing, plate-shaped clusters of vertical edges do (`edge_regions`): they find plates whose
   text is only a few pixels high on the coarse canvas;
2. fine: each proposal, grown by a margin (`grow_region`), gets a window of the frame around it
   (`cover_regions`; a proposal inside another's window needs none) that is detected at the scale the
   full pass would have used (`cut_region`), or higher for small text in frames larger than 1280x720
   (`TwoStageOptions.min_fine_scale`), windows of the same canvas batched together (`pack_regions`). The DB
   boxes are moved back to frame coordinates (`shift_boxes`), boxes cut by a window's edge dropped
   (`inner_boxes`) and lines found by two windows kept once (`dedupe_boxes`).

Up to 1280x720 the fine pass sees the plate at the same scale as the single full-canvas pass, so boxes
(and hence crops and reads) are close to its own; the coarse pass only has to notice that there is text. The
window is not a tight cut: PP-OCRv4 det gates its channels by global averages (squeeze-and-excitation),
and on tight cuts around a plate it often found nothing. When the windows together would cost more
than `TwoStageOptions.max_cost_share` of the full canvas the frame takes the full pass instead (text
all over the frame). Only frames the full pass would shrink are staged: smaller images (plate
crops, small photos) are blown up to the canvas by the full pass, which is what reads them.

Everything here is pure numpy/OpenCV on boxes and images; the engine owns the models.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import cv2
import numpy as np

from services.inference import postprocess
from services.inference.boxes import iou

# (x0, y0, x1, y1) in frame pixels, half-open.
Region = tuple[int, int, int, int]


@dataclass(frozen=True)
class TwoStageOptions:
    """Knobs of the coarse-then-fine detection; defaults chosen on the train halves and synthetic
    frames (see README, Recognition)."""

    # The coarse canvas (multiples of 32): the frame is fitted into it, never upscaled past the
    # scale the full pass would use.
    coarse_canvas: tuple[int, int] = (480, 288)
    # DB probability (0..1) above which a coarse-map pixel proposes text. Below the DB box
    # threshold (0.3): small text is faint at the coarse scale.
    proposal_thresh: float = 0.15
    # Proposals smaller than this many coarse-map pixels are noise.
    min_proposal_pixels: int = 2
    # Margin around a proposal, in proposal heights along (left/right) and across (above/below),
    # and at least `min_margin_px` canvas pixels at the fine scale on every side: a proposal may be
    # only part of its line.
    margin_along: float = 1.5
    margin_across: float = 1.0
    min_margin_px: int = 16
    # The fine canvas (multiples of 32): a window of the frame around each proposal at its scale (the
    # full pass's, or `min_fine_scale` for small text), never smaller than this. PP-OCRv4 det gates
    # its channels by global averages (40 squeeze-and-excitation pools), so a tight cut around a
    # plate is not read like the same plate in a scene: on cuts of a few plate sizes it often found
    # nothing. The window keeps a scene around it.
    fine_canvas: tuple[int, int] = (480, 288)
    # Floors on the two passes' scales for frames larger than the canvas (1080p, 4K, phone photos),
    # where the full pass's scale (the 960x544 canvas fitted: 0.5 on 1920x1080, 0.25 on 3840x2160)
    # leaves a small plate's text a few pixels high: the coarse pass looks at least at
    # `min_coarse_scale` (its canvas grows to fit, never past the full pass's scale), and a proposal
    # less than `small_text_px` canvas pixels high at the full pass's scale gets a window detected at
    # least at `min_fine_scale` (never above 1), the scale 1280x720 frames are read at; larger text
    # stays at the full pass's scale. Chosen on the 150 synthetic frames' plates at the same pixel
    # size in larger frames (`training.frame_variants` 1080p and 4k; README, Recognition) and the
    # train-half EU photos, which read the same; read before -> then: 1920x1080 76.0 -> 88.0 %
    # (session 27: 89.3 % at 0.25, 95.3 % at the 0.375 coarse floor), 3840x2160 38.0 -> 88.7 %
    # (1280x720: 94.0 %). Alternatives, measured on an earlier build of the
    # same sets (then 76.7 / 36.0 % before), without the coarse pass reused as the full pass on 4K:
    # `small_text_px` 12 / 20 / 28 / 40 / every proposal: 1080p 79.3 / 83.3 / 86.7 / 88.0 / 87.3 %,
    # 4K 72.0 / 84.7 / 84.7 / 85.3 / 82.0 %; `min_fine_scale` 0.5 with 12: 76.7 and 72.0 %, and at
    # 0.5 a 340 px EU plate of a 2048x1536 training photo was split at the wide gap after its
    # district code. A coarse floor of 0.375 read 92.0 % of the 1080p frames, at a p50 of 99
    # instead of 71 ms. Session 27, once the int8 detector build v2 had cut a quarter of the
    # detector's time, made 0.375 the default by a rule written first: on the choosing sets 13 plates
    # gained and 3 lost (synth-1080p 134 -> 143 of 150, every frame up to 1280x720 unchanged; 4K
    # too, where the floor cannot pass the full pass's 0.25), held-out sets unchanged; 1080p frames
    # cost about 1.4x the CPU (mean 61 -> 88 ms; PLATEWATCH_MIN_COARSE_SCALE=0.25 for the old trade).
    min_coarse_scale: float = 0.375
    min_fine_scale: float = 0.75
    small_text_px: int = 40
    # Take the full pass instead when the fine canvases together would cost more than this share of
    # the full canvas, or when there are more windows than `max_regions`. The detector's cost is
    # about linear in canvas pixels (int8 build v2, one core: a 480x288 window ~13 ms, the 960x544
    # canvas ~54 ms; v1 ~17 and ~75 ms), so 1.0 takes whichever is cheaper (up to 1280x720, where
    # the windows are at the full pass's scale; in larger frames windows for small text read more
    # than the full pass would; a frame whose coarse pass ran at the full pass's scale keeps that
    # pass's boxes instead). Until session 11 it was 0.6, which sent 48 of the 150 synthetic frames
    # (three windows each) to the full pass; 1.0 sends 6 and reads 142 instead of 140 of them, with
    # fewer strays (0.047 -> 0.040 a frame), 104 -> 98 ms a frame (CPU mean); the training-half EU
    # photos read the same, as they are and at 1280x720.
    max_cost_share: float = 1.0
    max_regions: int = 12
    # Plate-shaped clusters of vertical edges (`edge_regions`), at most this many (0: none), proposed
    # when the coarse map proposes nothing (or always, with `edge_always`): they find plates too
    # small for the coarse pass. Always: a few more windows on busy frames for little gain (train
    # halves and synthetic frames, README).
    edge_proposals: int = 1
    edge_always: bool = False
    # A frame without any proposal (coarse or edge): True runs the full pass on it (a coarse pass
    # wasted), False finds nothing in it (cheap: many frames of a road camera show no text).
    full_pass_when_empty: bool = False
    # A frame whose coarse map proposed text but whose fine windows found none: True runs the full
    # pass on it. The int8 detector misses some plates in a fine window that it finds in the whole
    # frame (a clear 310 x 75 px plate in a 2048 x 1536 photo of the EU train half: the fp32
    # detector finds it in the same window).
    full_pass_when_fine_empty: bool = True
    # A frame whose coarse map proposed text and whose windows gave lines but no plate (a sign or a
    # badge proposed, the plate too small for the coarse map) is searched again
    # (engine.PlateRecognizer.recognize): with the full pass when `full_pass_when_no_plate`, else with
    # windows around up to `edge_windows_when_no_plate` plate-shaped clusters of vertical edges
    # (`edge_regions`) that its first windows did not hold (0: not searched again). Frames that only
    # the edge proposer saw are not searched again. On the 150 synthetic frames: no search 139 read,
    # edge windows (1, 2 or 3) 141 (2 frames take them), the full pass 142 (6 take it); on the same
    # frames with the plate painted over (signs and badges only) a frame costs 55, 54 and 118 ms (122 of
    # 150 take the full pass): a sign always in view would make every frame without a car pay a full
    # pass, hence edge windows by default (session 11; full pass in session 10). The training-half EU
    # photos read the same with all three.
    full_pass_when_no_plate: bool = False
    edge_windows_when_no_plate: int = 2

    def __post_init__(self) -> None:
        width, height = self.coarse_canvas
        fine_width, fine_height = self.fine_canvas
        if any(side % postprocess.DET_STRIDE for side in (width, height, fine_width, fine_height)):
            raise ValueError(f"canvas sides must be multiples of {postprocess.DET_STRIDE}")
        if not 0.0 < self.proposal_thresh < 1.0:
            raise ValueError("proposal_thresh must be within (0, 1)")
        if self.edge_windows_when_no_plate < 0:
            raise ValueError("edge_windows_when_no_plate must be at least 0")


def coarse_regions(
    prob_u8: np.ndarray, placement: postprocess.Letterbox, thresh: float, min_pixels: int = 2
) -> list[Region]:
    """Bounding boxes, in frame pixels, of the connected areas of a coarse DB map above `thresh`
    (slightly dilated so that the characters of one line join), largest first."""
    scaled_w = max(1, min(prob_u8.shape[1], round(placement.frame_width * placement.scale)))
    scaled_h = max(1, min(prob_u8.shape[0], round(placement.frame_height * placement.scale)))
    above = (prob_u8[:scaled_h, :scaled_w] > round(thresh * 255)).astype(np.uint8)
    if not above.any():
        return []
    joined = cv2.dilate(above, np.ones((3, 5), np.uint8))
    count, labels, stats, _ = cv2.connectedComponentsWithStats(joined, connectivity=8)
    # A component's size is its own pixels above the threshold: the dilation alone makes one pixel
    # fifteen, so the dilated area would let every speck pass `min_pixels`.
    own_pixels = np.bincount(labels[above.astype(bool)], minlength=count)
    regions: list[tuple[int, Region]] = []
    for label, (x, y, w, h, area) in enumerate(stats[1:count], start=1):
        if own_pixels[label] < min_pixels:
            continue
        box = (
            math.floor(x / placement.scale),
            math.floor(y / placement.scale),
            math.ceil((x + w) / placement.scale),
            math.ceil((y + h) / placement.scale),
        )
        regions.append((int(area), clip_region(box, placement.frame_width, placement.frame_height)))
    regions.sort(key=lambda r: -r[0])
    return [r for _, r in regions]


def clip_region(region: Region, width: int, height: int) -> Region:
    x0, y0, x1, y1 = region
    x0, y0 = min(max(0, x0), width - 1), min(max(0, y0), height - 1)
    return x0, y0, max(x0 + 1, min(width, x1)), max(y0 + 1, min(height, y1))


def grow_region(
    region: Region, along: float, across: float, min_margin: float, width: int, height: int
) -> Region:
    """`region` grown by `along` of its height left and right, `across` of its height above and
    below, at least `min_margin` frame pixels on every side, clipped to the frame."""
    x0, y0, x1, y1 = region
    h = y1 - y0
    dx = max(min_margin, along * h)
    dy = max(min_margin, across * h)
    return clip_region(
        (math.floor(x0 - dx), math.floor(y0 - dy), math.ceil(x1 + dx), math.ceil(y1 + dy)), width, height
    )


def contains(outer: Region, inner: Region) -> bool:
    return outer[0] <= inner[0] and outer[1] <= inner[1] and inner[2] <= outer[2] and inner[3] <= outer[3]


def window_around(region: Region, size: tuple[float, float], width: int, height: int) -> Region:
    """A window of at least `size` (frame pixels) containing `region`, centred on it and shifted to
    lie inside the frame (clipped where the frame is smaller)."""
    x0, y0, x1, y1 = region
    win_w = min(width, max(math.ceil(size[0]), x1 - x0))
    win_h = min(height, max(math.ceil(size[1]), y1 - y0))
    left = min(max(0, (x0 + x1) // 2 - win_w // 2), width - win_w)
    top = min(max(0, (y0 + y1) // 2 - win_h // 2), height - win_h)
    return left, top, left + win_w, top + win_h


def cover_regions(regions: list[Region], size: tuple[float, float], width: int, height: int) -> list[Region]:
    """Windows (`window_around`) that together contain every region: regions are taken in order
    (largest first from `coarse_regions`), and one already inside a window needs none of its own."""
    windows: list[Region] = []
    for region in regions:
        if not any(contains(window, region) for window in windows):
            windows.append(window_around(region, size, width, height))
    return windows


# A box within this many pixels of a window's inner edge (one that is not the frame's) was cut by it.
INNER_EDGE_SLACK = 2.0


def _cut_by_window(
    box: tuple[float, float, float, float], window: Region, width: int, height: int, slack: float
) -> bool:
    """Whether a box (x0, y0, x1, y1, inclusive) reaches within `slack` of an edge of the window that
    is not the frame's: the window truncated it."""
    qx0, qy0, qx1, qy1 = box
    x0, y0, x1, y1 = window
    return (
        (x0 > 0 and qx0 <= x0 + slack)
        or (y0 > 0 and qy0 <= y0 + slack)
        or (x1 < width and qx1 >= x1 - 1 - slack)
        or (y1 < height and qy1 >= y1 - 1 - slack)
    )


def inner_boxes(
    boxes: list[tuple[np.ndarray, float]],
    window: Region,
    width: int,
    height: int,
    slack: float = INNER_EDGE_SLACK,
) -> list[tuple[np.ndarray, float]]:
    """The boxes (frame pixels) not cut by the window's edges: a box touching an edge that is not
    the frame's is a line the window truncated (another window covers the proposal it belongs to)."""
    kept = []
    for quad, score in boxes:
        if not _cut_by_window(postprocess.quad_bounds(quad), window, width, height, slack):
            kept.append((quad, score))
    return kept


def held_by_window(
    box: tuple[float, float, float, float],
    window: Region,
    width: int,
    height: int,
    slack: float = INNER_EDGE_SLACK,
) -> bool:
    """Whether a box (x0, y0, x1, y1, inclusive, frame pixels) lies inside the window and clear of its
    inner edges: a line there is one that window detected whole (`inner_boxes` keeps it)."""
    qx0, qy0, qx1, qy1 = box
    x0, y0, x1, y1 = window
    inside = qx0 >= x0 and qy0 >= y0 and qx1 <= x1 - 1 and qy1 <= y1 - 1
    return inside and not _cut_by_window(box, window, width, height, slack)


# Two boxes are one text line found twice when their axis-aligned IoU is above this.
SAME_LINE_IOU = 0.5


def dedupe_boxes(
    boxes: list[tuple[np.ndarray, float]], max_iou: float = SAME_LINE_IOU
) -> list[tuple[np.ndarray, float]]:
    """One box per line where overlapping windows found it twice (axis-aligned IoU above `max_iou`:
    the higher score stays)."""
    kept: list[tuple[np.ndarray, float]] = []
    for quad, score in sorted(boxes, key=lambda b: -b[1]):
        a = postprocess.quad_to_box(quad)
        if all(iou(a, postprocess.quad_to_box(other)) <= max_iou for other, _ in kept):
            kept.append((quad, score))
    return kept


def _stride_up(value: float) -> int:
    return max(
        postprocess.DET_STRIDE, -(-math.ceil(value - 1e-6) // postprocess.DET_STRIDE) * postprocess.DET_STRIDE
    )


def region_canvas(region: Region, scale: float) -> tuple[int, int]:
    """The detector canvas (multiples of the stride) a region needs at `scale`."""
    x0, y0, x1, y1 = region
    return _stride_up((x1 - x0) * scale), _stride_up((y1 - y0) * scale)


def cut_region(
    frame: np.ndarray, region: Region, scale: float, canvas: tuple[int, int]
) -> tuple[np.ndarray, postprocess.Letterbox]:
    """The region of `frame` resized by `scale` into the top-left of a black `canvas` (width,
    height), and the placement that maps the detector's boxes back to region pixels."""
    x0, y0, x1, y1 = region
    return postprocess.letterbox(np.ascontiguousarray(frame[y0:y1, x0:x1]), *canvas, scale)


def shift_boxes(boxes: list[tuple[np.ndarray, float]], region: Region) -> list[tuple[np.ndarray, float]]:
    """DB boxes found in a region's cut, moved to frame coordinates."""
    offset = np.array([region[0], region[1]], np.float32)
    return [(quad + offset, score) for quad, score in boxes]


def pack_regions(sizes: list[tuple[int, int]], max_batch: int) -> list[tuple[list[int], tuple[int, int]]]:
    """Batches of region indices with the canvas each batch shares: only regions of the same canvas
    share a batch (at most `max_batch` each, in index order), since black padding up to a larger
    canvas changes what the detector finds (its channels are gated by global averages), and a frame's
    plates must not depend on which other windows or frames were detected with it."""
    by_canvas: dict[tuple[int, int], list[int]] = {}
    for index, size in enumerate(sizes):
        by_canvas.setdefault(size, []).append(index)
    return [
        (members[start : start + max_batch], canvas)
        for canvas, members in by_canvas.items()
        for start in range(0, len(members), max_batch)
    ]


# The classical proposer (`edge_regions`): a plate is a compact cluster of strong vertical edges (the
# strokes of its characters), which survives at sizes where the coarse DB map is already blank. Run
# on the grey frame scaled to `EDGE_SCAN_WIDTH` columns.
EDGE_SCAN_WIDTH = 640
EDGE_MIN_HEIGHT = 4  # scan pixels: a line about 8 pixels high in a 1280-wide frame
EDGE_MAX_HEIGHT = 40
EDGE_MIN_ASPECT = 1.8
EDGE_MAX_ASPECT = 8.0
EDGE_MIN_FILL = 0.45


def edge_regions(frame: np.ndarray, max_regions: int | None) -> list[Region]:
    """Up to `max_regions` (None: all) boxes (frame pixels) of plate-shaped clusters of vertical edges, most
    edge-dense first: the |d/dx| of the grey frame above its mean plus two standard deviations,
    closed along the line (strokes to a line) and opened across it (long vertical edges go), kept
    when the blob is `EDGE_MIN_HEIGHT`-`EDGE_MAX_HEIGHT` scan pixels high, plate-shaped
    (`EDGE_MIN_ASPECT`-`EDGE_MAX_ASPECT`) and fills at least `EDGE_MIN_FILL` of its box."""
    height, width = frame.shape[:2]
    scale = min(1.0, EDGE_SCAN_WIDTH / width)
    grey = cv2.cvtColor(frame, cv2.COLOR_BGR2GRAY) if frame.ndim == 3 else frame
    if scale < 1.0:
        grey = cv2.resize(grey, (round(width * scale), round(height * scale)), interpolation=cv2.INTER_AREA)
    edges = cv2.convertScaleAbs(cv2.Sobel(grey, cv2.CV_16S, 1, 0, ksize=3))
    mean, std = cv2.meanStdDev(edges)
    strong = (edges > max(40.0, float(mean[0][0] + 2 * std[0][0]))).astype(np.uint8)
    blobs = cv2.morphologyEx(strong, cv2.MORPH_CLOSE, np.ones((1, 7), np.uint8))
    blobs = cv2.morphologyEx(blobs, cv2.MORPH_OPEN, np.ones((3, 3), np.uint8))
    count, _, stats, _ = cv2.connectedComponentsWithStats(blobs, connectivity=8)
    scored: list[tuple[float, Region]] = []
    for label in range(1, count):
        x, y, w, h, area = (int(v) for v in stats[label])
        if not EDGE_MIN_HEIGHT <= h <= EDGE_MAX_HEIGHT or not EDGE_MIN_ASPECT <= w / h <= EDGE_MAX_ASPECT:
            continue
        if area < EDGE_MIN_FILL * w * h:
            continue
        density = float(strong[y : y + h, x : x + w].mean())
        box = (
            math.floor(x / scale),
            math.floor(y / scale),
            math.ceil((x + w) / scale),
            math.ceil((y + h) / scale),
        )
        scored.append((density, clip_region(box, width, height)))
    scored.sort(key=lambda s: -s[0])
    return [region for _, region in scored[:max_regions]]
