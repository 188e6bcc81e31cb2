"""Leaning frames read again turned upright (`PlateRecognizer.recognize`, `deskew_min_degrees`): the
detector's box of a leaning line is taller than its text, so the plate classifier doubts the cut;
the frame turned by its lines' median angle is read level, and its boxes come back in frame pixels."""

from __future__ import annotations

from typing import Any

import cv2
import numpy as np
import pytest

from services.inference import engine, postprocess
from services.inference.engine import (
    DESKEW_ADD_FLOOR,
    DESKEW_SURE_PLATE,
    OnnxBackend,
    PlateRecognizer,
    PlateResult,
)
from services.inference.postprocess import Candidate


def _quad(x: float, y: float, w: float, h: float, degrees: float) -> np.ndarray:
    """A w x h box at (x, y) turned by `degrees` (image coordinates, positive: down to the right)
    about its top-left corner."""
    c, s = np.cos(np.radians(degrees)), np.sin(np.radians(degrees))
    corners = np.array([[0, 0], [w, 0], [w, h], [0, h]], np.float64)
    return (corners @ np.array([[c, s], [-s, c]]) + [x, y]).astype(np.float32)


@pytest.mark.parametrize("degrees", [0.0, 10.0, -12.5])
def test_line_angle_is_the_direction_of_the_text(degrees: float) -> None:
    assert postprocess.line_angle(_quad(100, 50, 120, 30, degrees)) == pytest.approx(degrees, abs=1e-3)


def test_a_turned_frame_keeps_all_its_pixels_and_maps_boxes_back() -> None:
    frame = np.full((300, 400, 3), 90, np.uint8)
    quad = _quad(150, 120, 100, 30, 10.0)
    cv2.fillPoly(frame, [quad.astype(np.int32)], (255, 255, 255))
    turned, back = postprocess.turned_upright(frame, 10.0)
    # The canvas grew to hold the corners: no pixel of the frame is cut off.
    assert turned.shape[1] > 400 and turned.shape[0] > 300
    # The white line is level in the turned image: its box is as high as the line.
    ys, xs = np.nonzero(turned[..., 0] > 200)
    box = (int(xs.min()), int(ys.min()), int(xs.max() - xs.min() + 1), int(ys.max() - ys.min() + 1))
    assert 28 <= box[3] <= 34 and 97 <= box[2] <= 104
    # Mapped back, the box surrounds the leaning line in frame pixels.
    x, y, w, h = postprocess.box_through(box, back, 400, 300)
    (qx0, qy0), (qx1, qy1) = quad.min(axis=0), quad.max(axis=0)
    assert abs(x - qx0) <= 3 and abs(y - qy0) <= 3
    assert abs(x + w - qx1) <= 3 and abs(y + h - qy1) <= 3


def _plate(text: str, confidence: float, box: tuple[int, int, int, int]) -> PlateResult:
    return PlateResult(box, [Candidate(text, confidence)], 0.9, np.zeros((10, 40, 3), np.uint8))


class _TwoPasses:
    """Stands in for `_recognize_once`: the first call returns `first` with the given line angle,
    the second (the turned frames) `second` (for the first frame of the call; any other frame reads
    nothing, level); records the frames each call got."""

    def __init__(self, first: list[PlateResult], angle: float, second: list[PlateResult]) -> None:
        self.passes = [(first, angle), (second, 0.0)]
        self.frames: list[list[np.ndarray]] = []

    def __call__(self, frames: list[np.ndarray], hints: Any) -> Any:
        plates, angle = self.passes[len(self.frames)]
        self.frames.append(frames)
        others = len(frames) - 1
        return (
            [list(plates), *([] for _ in range(others))],
            ["fine"] * len(frames),
            [0] * len(frames),
            [
                angle,
                *[0.0] * others,
            ],
            [[] for _ in frames],
        )


def _recognizer(passes: _TwoPasses, degrees: float = 3.0) -> PlateRecognizer:
    recognizer = PlateRecognizer.__new__(PlateRecognizer)
    recognizer.deskew_min_degrees = degrees
    recognizer.detection = "two_stage"
    recognizer._recognize_once = passes  # type: ignore[method-assign,assignment]
    return recognizer


def test_a_leaning_frame_takes_the_turned_reading_when_it_is_surer() -> None:
    frame = np.zeros((720, 1280, 3), np.uint8)
    # "SALE" overlaps nothing the turned pass read and is under DESKEW_ADD_FLOOR: it is not kept.
    passes = _TwoPasses(
        [_plate("SALE", DESKEW_ADD_FLOOR - 0.01, (10, 10, 50, 20))],
        10.0,
        [_plate("976802", 0.9, (600, 400, 100, 30))],
    )
    recognizer = _recognizer(passes)
    (plates,) = recognizer.recognize([frame])
    assert [p.text for p in plates] == ["976802"]
    assert recognizer.last_paths == ["fine+turned"]
    # The second pass read the frame turned, on a grown canvas; the box came back into the frame.
    assert passes.frames[1][0].shape[0] > 720
    x, y, w, h = plates[0].box
    assert 0 <= x and x + w <= 1280 and 0 <= y and y + h <= 720
    assert (x, y, w, h) == postprocess.box_through(
        (600, 400, 100, 30), postprocess.turned_upright(frame, 10.0)[1], 1280, 720
    )


def test_a_leaning_frame_keeps_its_first_reading_when_that_is_surer() -> None:
    frame = np.zeros((720, 1280, 3), np.uint8)
    # The turned pass read the same plate (its box maps back onto the first one), less surely.
    first_box = postprocess.box_through(
        (600, 400, 100, 30), postprocess.turned_upright(frame, -8.0)[1], 1280, 720
    )
    passes = _TwoPasses([_plate("976802", 0.9, first_box)], -8.0, [_plate("97680", 0.6, (600, 400, 100, 30))])
    recognizer = _recognizer(passes)
    (plates,) = recognizer.recognize([frame])
    assert [(p.text, p.box) for p in plates] == [("976802", first_box)]
    assert recognizer.last_paths == ["fine"] and len(passes.frames) == 2


def test_a_second_car_only_the_losing_pass_read_is_kept_when_confident_enough() -> None:
    """The turned reading leads; the first reading's plate on another car (no overlap) stays at the
    floor, its low-confidence one does not, and its reading of the leading plate gives way."""
    frame = np.zeros((720, 1280, 3), np.uint8)
    back = postprocess.turned_upright(frame, 10.0)[1]
    turned_box = (600, 400, 100, 30)
    mapped = postprocess.box_through(turned_box, back, 1280, 720)
    passes = _TwoPasses(
        [
            _plate("976BO2", 0.6, mapped),  # the same plate, read less surely
            _plate("KD1EMM", DESKEW_ADD_FLOOR, (50, 600, 120, 40)),  # a second car
            _plate("EXIT", DESKEW_ADD_FLOOR - 0.01, (1100, 50, 80, 30)),  # too unsure to stand alone
        ],
        10.0,
        [_plate("976802", 0.9, turned_box)],
    )
    recognizer = _recognizer(passes)
    (plates,) = recognizer.recognize([frame])
    assert [(p.text, p.box) for p in plates] == [("976802", mapped), ("KD1EMM", (50, 600, 120, 40))]
    assert recognizer.last_paths == ["fine+turned"]


def test_the_turned_pass_mends_and_adds_plates_of_a_first_reading_that_leads() -> None:
    """The first reading leads (its best plate is surer); the turned pass's surer reading of one of its
    plates replaces it (the floor is for plates only one pass found), and a plate only the turned
    pass found is added at the floor."""
    frame = np.zeros((720, 1280, 3), np.uint8)
    back = postprocess.turned_upright(frame, -8.0)[1]
    second_car, third_car = (100, 500, 90, 30), (900, 300, 90, 30)
    passes = _TwoPasses(
        [
            _plate("976802", 0.95, (600, 400, 100, 30)),
            _plate("EF612PV", 0.1, postprocess.box_through(second_car, back, 1280, 720)),
        ],
        -8.0,
        [
            _plate("FF612PV", DESKEW_ADD_FLOOR - 0.2, second_car),  # replaces whatever the floor
            _plate("RVK0L69", DESKEW_ADD_FLOOR, third_car),
            _plate("CRWH", 0.2, (300, 100, 60, 20)),
        ],
    )
    recognizer = _recognizer(passes)
    (plates,) = recognizer.recognize([frame])
    assert [p.text for p in plates] == ["976802", "RVK0L69", "FF612PV"]
    assert plates[1].box == postprocess.box_through(third_car, back, 1280, 720)
    assert recognizer.last_paths == ["fine"]


def test_a_piece_of_a_plate_or_a_box_over_two_replaces_nothing() -> None:
    """The turned pass's surer plates that overlap kept ones but are not boxed like one of them (a piece
    inside a plate, a box spanning two plates) are dropped, not taken for the plate."""
    frame = np.zeros((720, 1280, 3), np.uint8)
    back = postprocess.turned_upright(frame, 10.0)[1]
    left, right = (300, 400, 120, 30), (440, 400, 120, 30)
    passes = _TwoPasses(
        [
            _plate("RVK0L69", 0.9, (900, 100, 100, 30)),  # the first reading leads
            _plate("976802", 0.6, postprocess.box_through(left, back, 1280, 720)),
            _plate("KD1EMM", 0.55, postprocess.box_through(right, back, 1280, 720)),
        ],
        10.0,
        [
            _plate("68", 0.8, (340, 405, 40, 20)),  # inside the first plate, surer than it
            _plate("976KD1", 0.7, (300, 400, 260, 30)),  # over both, surer than either
        ],
    )
    recognizer = _recognizer(passes)
    (plates,) = recognizer.recognize([frame])
    assert [p.text for p in plates] == ["RVK0L69", "976802", "KD1EMM"]
    assert recognizer.last_paths == ["fine"]


@pytest.mark.parametrize(
    ("angle", "degrees", "confidence"),
    [(2.0, 3.0, 0.9), (10.0, 0.0, 0.9), (10.0, 3.0, DESKEW_SURE_PLATE)],
    ids=["level", "deskew off", "leaning but already sure"],
)
def test_a_level_frame_a_sure_plate_or_deskew_off_is_read_once(
    angle: float, degrees: float, confidence: float
) -> None:
    passes = _TwoPasses([_plate("976802", confidence, (10, 10, 50, 20))], angle, [])
    recognizer = _recognizer(passes, degrees)
    recognizer.recognize([np.zeros((720, 1280, 3), np.uint8)])
    assert len(passes.frames) == 1


PLATE_AT = (560, 400)


def _tilted_plate_frame() -> np.ndarray:
    """A 1280x720 frame with a plate on a car at `PLATE_AT`, turned 12 degrees about the plate (its text
    runs down to the right)."""
    rng = np.random.default_rng(0)
    frame = cv2.GaussianBlur(rng.normal(110, 25, (720, 1280, 3)).clip(0, 255).astype(np.uint8), (5, 5), 0)
    x, y = PLATE_AT
    cv2.rectangle(frame, (x - 150, y - 60), (x + 330, y + 120), (40, 60, 150), -1)
    cv2.rectangle(frame, (x, y), (x + 180, y + 50), (240, 240, 240), -1)
    cv2.putText(frame, "KT4821", (x + 10, y + 38), cv2.FONT_HERSHEY_SIMPLEX, 1.1, (20, 20, 20), 3)
    matrix = cv2.getRotationMatrix2D((x + 90, y + 25), -12.0, 1.0)
    return cv2.warpAffine(frame, matrix, (1280, 720), borderMode=cv2.BORDER_REFLECT)


def _centred_on_the_text(box: tuple[int, int, int, int]) -> bool:
    """The box's centre is on the plate's text line (which starts 10 px into the plate)."""
    x, y = PLATE_AT
    bx, by, bw, bh = box
    return abs(bx + bw / 2 - (x + 80)) <= 20 and abs(by + bh / 2 - (y + 25)) <= 15


@pytest.mark.parametrize(
    ("sure_plate", "paths"),
    [(1.01, ("fine+turned",)), (DESKEW_SURE_PLATE, ("fine", "fine+turned"))],
    ids=["turned reading forced", "shipped sureness"],
)
def test_a_plate_in_a_frame_with_roll_is_read_and_boxed_in_frame_pixels(
    monkeypatch: pytest.MonkeyPatch, sure_plate: float, paths: tuple[str, ...]
) -> None:
    """The real models, the roll unknown: the frame is read leaning and, unless that reading is sure,
    turned; whichever reading leads, the plate is read and boxed on its text in frame pixels."""
    # Whether the leaning reading is already sure depends on the shipped classifier's score of the
    # leaning line (run11 0.98, run12 0.997, against DESKEW_SURE_PLATE 0.99); the sure case is tested
    # above with fake passes, so a sureness no reading reaches (1.01) makes the turned reading happen,
    # and it wins, being surer than the leaning one.
    monkeypatch.setattr(engine, "DESKEW_SURE_PLATE", sure_plate)
    recognizer = PlateRecognizer(OnnxBackend(threads=1))
    (plates,) = recognizer.recognize([_tilted_plate_frame()])
    assert plates and plates[0].text == "KT4821"
    assert len(recognizer.last_paths) == 1 and recognizer.last_paths[0] in paths
    assert _centred_on_the_text(plates[0].box)


def _counting_searches(recognizer: PlateRecognizer) -> list[tuple[int, ...]]:
    """Record the shape of the first frame of every whole search (`_recognize_once`) it makes."""
    calls: list[tuple[int, ...]] = []
    search = recognizer._recognize_once

    def counting(frames: list[np.ndarray], hints: Any) -> Any:
        calls.append(frames[0].shape)
        return search(frames, hints)

    recognizer._recognize_once = counting  # type: ignore[method-assign]
    return calls


def test_a_large_leaning_frame_is_read_again_in_windows_around_its_first_lines(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The real models: a frame larger than the canvas is searched once; its turned reading only
    detects windows around the lines that search found (DESKEW_IN_WINDOWS)."""
    # As above: the turned reading always happens, however sure the leaning one is.
    monkeypatch.setattr(engine, "DESKEW_SURE_PLATE", 1.01)
    recognizer = PlateRecognizer(OnnxBackend(threads=1))
    searches = _counting_searches(recognizer)
    (plates,) = recognizer.recognize([_tilted_plate_frame()])
    assert plates and plates[0].text == "KT4821"
    assert recognizer.last_paths == ["fine+turned"]
    assert _centred_on_the_text(plates[0].box)
    assert searches == [(720, 1280, 3)]
    # Without it, the grown turned frame is searched anew.
    monkeypatch.setattr(engine, "DESKEW_IN_WINDOWS", False)
    recognizer.recognize([_tilted_plate_frame()])
    assert len(searches) == 3 and searches[2][1] > 1280


def test_a_leaning_frame_smaller_than_the_canvas_is_searched_again_whole(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # Its plate reads sure at once; a sureness no reading reaches makes it take the second reading.
    monkeypatch.setattr(engine, "DESKEW_SURE_PLATE", 1.01)
    recognizer = PlateRecognizer(OnnxBackend(threads=1))
    searches = _counting_searches(recognizer)
    frame = np.ascontiguousarray(_tilted_plate_frame()[250:570, 400:880])
    (plates,) = recognizer.recognize([frame])
    assert plates and plates[0].text == "KT4821"
    assert recognizer.last_paths[0].startswith("full")
    # The second search is of the whole turned frame, grown to hold its corners.
    assert len(searches) == 2 and searches[1][1] > 480


def test_a_batch_reads_large_frames_turned_in_windows_at_their_texts_scale_and_small_ones_anew(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The real models, one 1920x1080 frame (full-pass scale 0.5) and one small frame, both leaning
    and made to take the turned reading: the large one is read from windows, its plate's at the
    fine scale its text calls for (about 25 canvas px high at 0.5), each with its own hint; the small
    one is searched anew with its hint."""
    monkeypatch.setattr(engine, "DESKEW_SURE_PLATE", 1.01)
    recognizer = PlateRecognizer(OnnxBackend(threads=1))
    large = cv2.resize(_tilted_plate_frame(), (1920, 1080))
    small = np.ascontiguousarray(_tilted_plate_frame()[250:570, 400:880])
    searches = _counting_searches(recognizer)
    windows: list[tuple[tuple[int, ...], list[tuple[int, Any, float]]]] = []
    window_boxes = recognizer._window_boxes

    def recording_windows(frames: list[np.ndarray], fine: Any) -> Any:
        windows.append((frames[0].shape, list(fine)))
        return window_boxes(frames, fine)

    read_hints: list[Any] = []
    read_lines_into = recognizer._read_lines_into

    def recording_reads(results: Any, frames: Any, lines: Any, hints: Any) -> Any:
        read_hints.append((hints, sorted({line.frame_index for line in lines})))
        return read_lines_into(results, frames, lines, hints)

    recognizer._window_boxes = recording_windows  # type: ignore[method-assign]
    recognizer._read_lines_into = recording_reads  # type: ignore[method-assign]
    large_plates, small_plates = recognizer.recognize([large, small], ["us-ny", "de"])
    assert [p.text for p in large_plates] == ["KT4821"] and [p.text for p in small_plates] == ["KT4821"]
    # Each boxed on its own frame's text line (the plate's text centre scaled, or cut, with the frame).
    for (x, y, w, h), (cx, cy) in [(large_plates[0].box, (960, 637)), (small_plates[0].box, (240, 175))]:
        assert abs(x + w / 2 - cx) <= 30 and abs(y + h / 2 - cy) <= 20
    # One search of both, then one of the small frame alone, grown.
    assert [shape[:2] for shape in searches] == [(1080, 1920), (searches[1][0], searches[1][1])]
    assert searches[1][1] > 480 and searches[1][0] > 320
    # The turned windows (cut from the grown turned frames) are all the large frame's (index 0
    # among the leaning frames); the one holding the plate's centre is at the fine scale.
    (turned_windows,) = [fine for shape, fine in windows if shape[1] > 1920]
    assert {k for k, _, _ in turned_windows} == {0}
    turned, _ = postprocess.turned_upright(large, recognizer.last_leans[0] or 0.0)
    centre = np.array([[PLATE_AT[0] * 1.5 + 120, PLATE_AT[1] * 1.5 + 37]])
    matrix = cv2.getRotationMatrix2D((960, 540), recognizer.last_leans[0] or 0.0, 1.0)
    grow = ((turned.shape[1] - 1920) / 2, (turned.shape[0] - 1080) / 2)
    cx, cy = (centre @ matrix[:, :2].T + matrix[:, 2])[0] + grow
    plate_scales = [s for _, (x0, y0, x1, y1), s in turned_windows if x0 <= cx < x1 and y0 <= cy < y1]
    assert plate_scales and set(plate_scales) == {recognizer.two_stage.min_fine_scale}
    # Hints: the turned windows' lines are read with the leaning frames' hints, the small frame's
    # new search with its own.
    assert (["us-ny", "de"], [0]) in read_hints
    assert (["de"], [0]) in read_hints


def test_a_known_roll_reads_the_frame_turned_once_and_boxes_it_in_frame_pixels() -> None:
    """The real models, the camera's roll given: one pass over the frame turned upright first."""
    recognizer = PlateRecognizer(OnnxBackend(threads=1))
    (plates,) = recognizer.recognize([_tilted_plate_frame()], rolls=[12.0])
    assert plates and plates[0].text == "KT4821"
    assert recognizer.last_paths == ["rolled+fine"]
    assert _centred_on_the_text(plates[0].box)


def test_a_known_roll_turns_the_frame_in_its_own_size_before_reading() -> None:
    frame = np.zeros((720, 1280, 3), np.uint8)
    cv2.rectangle(frame, (500, 300), (700, 360), (255, 255, 255), -1)
    passes = _TwoPasses([_plate("976802", 0.9, (600, 400, 100, 30))], 0.0, [])
    recognizer = _recognizer(passes)
    plates, _ = recognizer.recognize([frame, frame], rolls=[10.0, 0.0])
    (other,) = passes.frames
    turned, back = postprocess.turned_upright(frame, 10.0, grow=False)
    # The first frame was read turned (in its own size), the second as it is; nothing leant, so one pass.
    assert other[0].shape == frame.shape and np.array_equal(other[0], turned)
    assert other[1] is frame and len(passes.frames) == 1
    assert (
        plates[0].box == postprocess.box_through((600, 400, 100, 30), back, 1280, 720) != (600, 400, 100, 30)
    )
    assert recognizer.last_paths == ["rolled+fine", "fine"]


def test_each_frame_reports_its_lean_with_its_known_roll() -> None:
    """The first frame is turned by its roll of 8 degrees and its lines still lean 2; the second has
    no lines of plate proportions (its angle NaN)."""

    def first_pass(frames: list[np.ndarray], hints: Any) -> Any:
        return [[] for _ in frames], ["fine"] * len(frames), [0] * len(frames), [2.0, float("nan")], [[], []]

    recognizer = _recognizer(_TwoPasses([], 0.0, []), degrees=0.0)  # deskew off: one pass each
    recognizer._recognize_once = first_pass  # type: ignore[method-assign,assignment]
    frame = np.zeros((720, 1280, 3), np.uint8)
    recognizer.recognize([frame, frame], rolls=[8.0, 0.0])
    assert recognizer.last_leans == [pytest.approx(10.0), None]
    recognizer.recognize([frame, frame])
    assert recognizer.last_leans == [pytest.approx(2.0), None]


@pytest.mark.parametrize(
    "rolls", [[10.0], [10.0, 46.0], [float("nan"), 0.0]], ids=["count", "too far", "nan"]
)
def test_rolls_are_one_per_frame_and_within_45_degrees(rolls: list[float]) -> None:
    recognizer = _recognizer(_TwoPasses([], 0.0, []))
    with pytest.raises(ValueError, match="roll"):
        recognizer.recognize([np.zeros((72, 128, 3), np.uint8)] * 2, rolls=rolls)


class _Batch:
    """Stands in for `_recognize_once` over a batch: the first call gives each frame a plate, a
    path and an angle; the second (the turned frames) a surer plate each. Records frames and hints."""

    def __init__(self, angles: list[float]) -> None:
        self.angles = angles
        self.calls: list[tuple[list[np.ndarray], Any]] = []

    def __call__(self, frames: list[np.ndarray], hints: Any) -> Any:
        self.calls.append((frames, hints))
        if len(self.calls) == 1:
            plates = [[_plate(f"FIRST{i}", 0.5, (10, 10, 50, 20))] for i in range(len(frames))]
            return (
                plates,
                [f"path{i}" for i in range(len(frames))],
                [i + 1 for i in range(len(frames))],
                self.angles,
                [[] for _ in frames],
            )
        plates = [[_plate(f"TURNED{i}", 0.9, (10, 10, 50, 20))] for i in range(len(frames))]
        return plates, ["fine"] * len(frames), [0] * len(frames), [0.0] * len(frames), [[] for _ in frames]


def test_only_the_leaning_frames_of_a_batch_are_turned_with_their_own_hints() -> None:
    frames = [np.full((720, 1280, 3), i, np.uint8) for i in range(3)]
    batch = _Batch([0.5, -9.0, 12.0])
    recognizer = PlateRecognizer.__new__(PlateRecognizer)
    recognizer.deskew_min_degrees = 3.0
    recognizer.detection = "two_stage"
    recognizer._recognize_once = batch  # type: ignore[method-assign,assignment]
    results = recognizer.recognize(frames, ["us-ca", "us-ny", "us-tx"])
    turned_frames, turned_hints = batch.calls[1]
    assert turned_hints == ["us-ny", "us-tx"]
    # The second and third frames, in order (told apart by their fill).
    assert [int(f[f.shape[0] // 2, f.shape[1] // 2, 0]) for f in turned_frames] == [1, 2]
    assert [r[0].text for r in results] == ["FIRST0", "TURNED0", "TURNED1"]
    assert recognizer.last_paths == ["path0", "fine+turned", "fine+turned"]
    # The level frame's classifier drops are kept, the turned frames' are the turned pass's.
    assert recognizer.last_rejected == 1
