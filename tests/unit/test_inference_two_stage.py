"""Coarse-then-fine plate finding (`PlateRecognizer(detection="two_stage")`,
services/inference/proposals.py): a small plate in a large frame is found by a coarse pass and read
from a full-scale window around it, boxes in frame pixels; frames where that would not pay (text all
over, small images) take the single full-canvas pass."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from services.inference import model_io, postprocess, proposals
from services.inference.engine import (
    DET_MAX_BATCH,
    OnnxBackend,
    PlateRecognizer,
    RecognizerName,
    _Line,
    recognizer_characters,
)
from tests.unit.test_inference_plate_lines import ctc_steps


def _noisy_frame(seed: int, width: int = 1280, height: int = 720) -> np.ndarray:
    rng = np.random.default_rng(seed)
    frame = rng.normal(110, 25, (height, width, 3)).clip(0, 255).astype(np.uint8)
    return cv2.GaussianBlur(frame, (5, 5), 0)


def _frame_with_plate(text: str, x: int, y: int, seed: int = 0) -> np.ndarray:
    """A 1280x720 noisy frame with a car body and a 180x50 white plate at (x, y): about 1% of the
    frame, 135 pixels wide on the full pass's 960x544 canvas."""
    frame = _noisy_frame(seed)
    cv2.rectangle(frame, (x - 150, y - 60), (x + 330, y + 120), (40, 60, 150), -1)
    cv2.rectangle(frame, (x, y), (x + 180, y + 50), (240, 240, 240), -1)
    cv2.putText(frame, text, (x + 10, y + 38), cv2.FONT_HERSHEY_SIMPLEX, 1.1, (20, 20, 20), 3)
    return frame


@pytest.fixture(scope="module")
def backend() -> OnnxBackend:
    return OnnxBackend(threads=1)


@pytest.mark.parametrize(("text", "x", "y"), [("KT4821", 830, 470), ("MX52WQ", 120, 90)])
def test_a_small_plate_in_a_large_frame_is_read_from_a_window_in_frame_coordinates(
    backend: OnnxBackend, text: str, x: int, y: int
) -> None:
    frame = _frame_with_plate(text, x, y)
    recognizer = PlateRecognizer(backend, detection="two_stage")
    (plates,) = recognizer.recognize([frame])
    assert recognizer.last_paths == ["fine"]
    assert [p.text for p in plates] == [text]
    bx, by, bw, bh = plates[0].box
    # The text line on the plate, in frame pixels (not window or canvas pixels).
    assert x <= bx <= x + 30 and y <= by <= y + 25
    assert 90 <= bw <= 180 and 20 <= bh <= 50
    # The single full-canvas pass finds the same line.
    (full,) = PlateRecognizer(backend, detection="full").recognize([frame])
    assert [p.text for p in full] == [text]
    fx, fy, fw, fh = full[0].box
    assert abs(fx - bx) <= 6 and abs(fy - by) <= 6 and abs(fw - bw) <= 10 and abs(fh - bh) <= 10


def test_a_plate_too_small_for_the_coarse_pass_is_found_by_its_edges(backend: OnnxBackend) -> None:
    # A 70x19 plate (text 7 pixels high on the coarse canvas: the coarse DB map stays blank).
    frame = _noisy_frame(3)
    x, y, w, h = 700, 450, 70, 19
    cv2.rectangle(frame, (x - w, y - h), (x + 2 * w, y + 2 * h), (40, 60, 150), -1)
    cv2.rectangle(frame, (x, y), (x + w, y + h), (240, 240, 240), -1)
    cv2.putText(frame, "KT4821", (x + 4, y + 14), cv2.FONT_HERSHEY_SIMPLEX, 0.4, (20, 20, 20), 1)
    without_edges = PlateRecognizer(backend, two_stage=proposals.TwoStageOptions(edge_proposals=0))
    assert without_edges.recognize([frame]) == [[]]
    assert without_edges.last_paths == ["empty"]
    recognizer = PlateRecognizer(backend)
    (plates,) = recognizer.recognize([frame])
    assert recognizer.last_paths == ["fine"]
    assert [p.text for p in plates] == ["KT4821"]
    bx, by, bw, bh = plates[0].box
    assert abs(bx - x) <= 4 and abs(by - y) <= 4 and w - 20 <= bw <= w + 4 and h <= bh <= 2 * h


def test_edge_regions_are_plate_shaped_clusters_of_vertical_edges() -> None:
    frame = np.full((720, 1280, 3), 150, np.uint8)
    cv2.putText(frame, "AB1234", (300, 400), cv2.FONT_HERSHEY_SIMPLEX, 0.8, (10, 10, 10), 2)
    cv2.line(frame, (900, 100), (900, 600), (0, 0, 0), 4)  # a long vertical edge (a pole)
    cv2.rectangle(frame, (1000, 100), (1200, 300), (0, 0, 0), -1)  # a dark box
    (region,) = proposals.edge_regions(frame, 3)
    x0, y0, x1, y1 = region
    assert 290 <= x0 <= 310 and 370 <= y0 <= 390 and 390 <= x1 <= 420 and 395 <= y1 <= 410
    assert proposals.edge_regions(np.full((720, 1280, 3), 150, np.uint8), 3) == []


def test_text_all_over_the_frame_takes_the_full_pass(backend: OnnxBackend) -> None:
    frame = _noisy_frame(1)
    words = ["AB12CD", "XY34EF", "GH56IJ", "KL78MN", "OP90QR", "ST12UV"]
    for row in range(4):
        for col in range(3):
            cv2.putText(
                frame,
                words[(row + col) % len(words)],
                (60 + col * 420, 120 + row * 170),
                cv2.FONT_HERSHEY_SIMPLEX,
                1.2,
                (250, 250, 250),
                3,
            )
    recognizer = PlateRecognizer(backend, detection="two_stage")
    recognizer.detect_lines([frame])
    assert recognizer.last_paths == ["full"]


def test_a_frame_without_text_costs_only_the_coarse_pass_unless_asked(backend: OnnxBackend) -> None:
    frame = _noisy_frame(2)
    recognizer = PlateRecognizer(backend, detection="two_stage")
    assert recognizer.recognize([frame]) == [[]]
    assert recognizer.last_paths == ["empty"]
    safe = PlateRecognizer(backend, two_stage=proposals.TwoStageOptions(full_pass_when_empty=True))
    safe.detect_lines([frame])
    assert safe.last_paths == ["full"]


def test_images_smaller_than_the_canvas_take_the_full_pass(backend: OnnxBackend) -> None:
    crop = np.full((120, 360, 3), 235, np.uint8)
    cv2.putText(crop, "KT4821", (20, 85), cv2.FONT_HERSHEY_SIMPLEX, 2.0, (20, 20, 20), 5)
    recognizer = PlateRecognizer(backend, detection="two_stage")
    (plates,) = recognizer.recognize([crop])
    assert recognizer.last_paths == ["full"]
    assert [p.text for p in plates] == ["KT4821"]


class _DarkIsText:
    """A fake detector that marks dark pixels as text (so its map follows the input's geometry),
    recording every batch it is given. Reads nothing."""

    name = "fake"
    recognizer: RecognizerName = "crnn"
    words = False

    def __init__(self) -> None:
        self.shapes: list[tuple[int, ...]] = []
        self.characters = recognizer_characters("crnn")

    def detect(self, images: np.ndarray) -> np.ndarray:
        self.shapes.append(images.shape)
        dark = images.max(axis=3) < 40
        # Letterbox padding is black too: only pixels with some colour count as text.
        return np.where(dark & (images.min(axis=3) > 5), 255, 0).astype(np.uint8)

    def recognize(self, batch: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        steps = np.zeros((len(batch), 32, 3), np.int32)
        return steps, np.ones((len(batch), 32, 3), np.float32)

    def classify(self, cuts: np.ndarray) -> np.ndarray:
        """Every line is a plate: these tests are about finding and reading lines."""
        return np.ones(len(cuts), np.float32)

    def is_ready(self) -> bool:
        return True

    def close(self) -> None:
        return None


def test_windows_are_batched_on_stride_multiples_and_boxes_map_back_to_the_frame() -> None:
    frame = np.full((1080, 1920, 3), 200, np.uint8)
    lines = [(100, 100), (1500, 200), (300, 900)]  # three dark lines far apart, 160x40 each
    for x, y in lines:
        frame[y : y + 40, x : x + 160] = 20
    backend = _DarkIsText()
    recognizer = PlateRecognizer(
        backend, detection="two_stage", two_stage=proposals.TwoStageOptions(max_cost_share=2.0)
    )
    found = recognizer.detect_lines([frame])
    assert recognizer.last_paths == ["fine"]
    coarse, *fine = backend.shapes
    # the coarse floor (0.375) on 1920x1080: 720x405, grown to multiples of 32
    assert coarse == (1, 416, 736, 3)
    assert sum(shape[0] for shape in fine) == 3
    for n, height, width, channels in fine:
        assert n <= DET_MAX_BATCH and channels == 3
        assert height % postprocess.DET_STRIDE == 0 and width % postprocess.DET_STRIDE == 0
    boxes = sorted(postprocess.quad_to_box(line.quad) for line in found)
    assert len(boxes) == 3
    for (x, y), (bx, by, bw, bh) in zip(sorted(lines), boxes, strict=True):
        # Centred on the dark line, grown by the DB unclip (at the full pass's scale, 0.5 here).
        assert abs(bx + bw / 2 - (x + 80)) <= 4 and abs(by + bh / 2 - (y + 20)) <= 4
        assert 160 < bw <= 230 and 40 < bh <= 100
    # The same boxes as the single full-canvas pass.
    full = PlateRecognizer(backend, detection="full").detect_lines([frame])
    full_boxes = sorted(postprocess.quad_to_box(line.quad) for line in full)
    assert np.abs(np.array(full_boxes) - np.array(boxes)).max() <= 2


def test_the_canvas_is_turned_to_the_frame() -> None:
    assert postprocess.oriented_canvas((960, 544), 1280, 720) == (960, 544)
    assert postprocess.oriented_canvas((960, 544), 720, 1280) == (544, 960)
    assert postprocess.oriented_canvas((960, 544), 600, 600) == (960, 544)
    # A canvas configured upright is still laid across a landscape frame.
    assert postprocess.oriented_canvas((544, 960), 1280, 720) == (960, 544)


def test_a_portrait_frame_is_detected_upright_at_the_landscape_scale() -> None:
    """A 720x1280 frame (phone held upright) goes on the upright canvases, so its line is detected at
    the scale a 1280x720 frame's would be (0.75), not fitted by its height (0.425)."""
    portrait = np.full((1280, 720, 3), 200, np.uint8)
    portrait[900:940, 300:460] = 20
    backend = _DarkIsText()
    full = PlateRecognizer(backend, detection="full")
    (line,) = full.detect_lines([portrait])
    assert backend.shapes == [(1, 960, 544, 3)]
    _, _, width, height = postprocess.quad_to_box(line.quad)
    assert 160 < width <= 230 and 40 < height <= 100

    backend.shapes.clear()
    staged = PlateRecognizer(backend, detection="two_stage")
    (staged_line,) = staged.detect_lines([portrait])
    assert staged.last_paths == ["fine"]
    assert backend.shapes[0] == (1, 480, 288, 3)
    # The window is cut at the full pass's scale: its line matches the full pass's box.
    assert (
        np.abs(np.array(postprocess.quad_to_box(staged_line.quad)) - postprocess.quad_to_box(line.quad)).max()
        <= 2
    )

    # Portrait and landscape frames given together are detected in batches of one orientation each.
    landscape = np.full((720, 1280, 3), 200, np.uint8)
    landscape[300:340, 600:760] = 20
    backend.shapes.clear()
    staged.detect_lines([portrait, landscape, portrait])
    assert backend.shapes[:2] == [(2, 480, 288, 3), (1, 288, 480, 3)]
    assert staged.last_paths == ["fine", "fine", "fine"]


def _spy_on_windows(recognizer: PlateRecognizer) -> list[tuple[proposals.Region, float]]:
    """The (window, scale) pairs the recognizer's fine windows are detected at, as it runs."""
    seen: list[tuple[proposals.Region, float]] = []
    detect_windows = recognizer._window_boxes

    def spy(
        frames: list[np.ndarray], fine: list[tuple[int, proposals.Region, float]]
    ) -> dict[int, list[tuple[np.ndarray, float]]]:
        seen.extend((region, scale) for _, region, scale in fine)
        return detect_windows(frames, fine)

    recognizer._window_boxes = spy  # type: ignore[method-assign]
    return seen


def _centres(lines: list[_Line]) -> list[tuple[int, int]]:
    boxes = [postprocess.quad_to_box(line.quad) for line in lines]
    return sorted((round(x + w / 2), round(y + h / 2)) for x, y, w, h in boxes)


def test_small_text_in_a_1080p_frame_gets_a_window_above_the_full_pass_scale() -> None:
    """On 1920x1080 the full pass's scale is 0.5: a proposal under `small_text_px` (40) canvas pixels
    high there gets a window at `min_fine_scale` (0.75), larger text a window at 0.5."""
    frame = np.full((1080, 1920, 3), 200, np.uint8)
    frame[400:424, 300:460] = 20  # small line: 12 canvas pixels high at 0.5
    frame[300:420, 1300:1700] = 20  # large line: 60 canvas pixels high at 0.5
    recognizer = PlateRecognizer(_DarkIsText(), detection="two_stage")
    windows = _spy_on_windows(recognizer)
    found = recognizer.detect_lines([frame])
    assert recognizer.last_paths == ["fine"]
    assert sorted((scale, proposals.contains(region, (300, 400, 460, 424))) for region, scale in windows) == [
        (0.5, False),
        (0.75, True),
    ]
    centres = _centres(found)
    assert len(centres) == 2
    assert abs(centres[0][0] - 380) <= 4 and abs(centres[0][1] - 412) <= 4
    assert abs(centres[1][0] - 1500) <= 8 and abs(centres[1][1] - 360) <= 8
    # Without the floor every window is at the full pass's scale.
    flat = PlateRecognizer(
        _DarkIsText(), detection="two_stage", two_stage=proposals.TwoStageOptions(min_fine_scale=0.0)
    )
    flat_windows = _spy_on_windows(flat)
    flat.detect_lines([frame])
    assert {scale for _, scale in flat_windows} == {0.5}


def test_a_4k_frame_reuses_its_coarse_pass_as_the_full_pass() -> None:
    """On 3840x2160 the coarse floor (0.375, capped at the full pass's 0.25) is the full pass's
    scale: the coarse pass is the full pass, its boxes are kept for text that scale suits, only
    small text gets a window (at 0.75), and the full pass is never run again."""
    frame = np.full((2160, 3840, 3), 200, np.uint8)
    frame[1000:1024, 600:760] = 20  # small line: 6 canvas pixels high at 0.25
    frame[400:600, 2400:3200] = 20  # large line: 50 canvas pixels high at 0.25
    backend = _DarkIsText()
    recognizer = PlateRecognizer(backend, detection="two_stage")
    windows = _spy_on_windows(recognizer)
    found = recognizer.detect_lines([frame])
    assert recognizer.last_paths == ["fine"]
    assert backend.shapes[0] == (1, 544, 960, 3)
    assert all(shape[1:3] != (544, 960) for shape in backend.shapes[1:])  # no second full pass
    assert [(proposals.contains(region, (600, 1000, 760, 1024)), scale) for region, scale in windows] == [
        (True, 0.75)
    ]
    centres = _centres(found)
    assert len(centres) == 2
    assert abs(centres[0][0] - 680) <= 4 and abs(centres[0][1] - 1012) <= 4
    assert abs(centres[1][0] - 2800) <= 8 and abs(centres[1][1] - 500) <= 8
    # Only large text: the coarse pass's boxes are the frame's, with no window at all.
    frame[1000:1024, 600:760] = 200
    windows.clear()
    assert len(recognizer.detect_lines([frame])) == 1
    assert recognizer.last_paths == ["coarse"] and windows == []
    # Without the floors the coarse pass is at 0.125 and every window at 0.25.
    flat_backend = _DarkIsText()
    flat = PlateRecognizer(
        flat_backend,
        detection="two_stage",
        two_stage=proposals.TwoStageOptions(min_coarse_scale=0.0, min_fine_scale=0.0),
    )
    flat_windows = _spy_on_windows(flat)
    flat.detect_lines([frame])
    assert flat_backend.shapes[0] == (1, 288, 480, 3)
    assert {scale for _, scale in flat_windows} == {0.25}


def test_coarse_regions_are_in_frame_pixels() -> None:
    prob = np.zeros((288, 480), np.uint8)
    prob[100:110, 200:260] = 200
    placement = postprocess.Letterbox(0.375, 1280, 720)
    (region,) = proposals.coarse_regions(prob, placement, 0.15)
    x0, y0, x1, y1 = region
    assert abs(x0 - 200 / 0.375) <= 6 and abs(x1 - 260 / 0.375) <= 6
    assert abs(y0 - 100 / 0.375) <= 6 and abs(y1 - 110 / 0.375) <= 6
    # Faint or absent text proposes nothing; the padding below the frame is ignored.
    prob[:] = 20
    prob[280:, :] = 255
    assert proposals.coarse_regions(prob, placement, 0.15) == []


def test_windows_cover_every_region_inside_the_frame() -> None:
    regions = [(1200, 680, 1270, 715), (1190, 650, 1230, 690), (10, 10, 60, 30)]
    windows = proposals.cover_regions(regions, (640, 384), 1280, 720)
    # The second region lies inside the first one's window and gets none of its own.
    assert windows == [(640, 336, 1280, 720), (0, 0, 640, 384)]
    assert all(any(proposals.contains(w, r) for w in windows) for r in regions)
    # A region larger than the window size gets a window of its own size.
    assert proposals.window_around((0, 0, 900, 100), (640, 384), 1280, 720) == (0, 0, 900, 384)


def test_boxes_cut_by_a_window_edge_are_dropped_and_duplicates_kept_once() -> None:
    def quad(x: float, y: float, w: float, h: float) -> np.ndarray:
        return np.array([[x, y], [x + w, y], [x + w, y + h], [x, y + h]], np.float32)

    window = (100, 100, 500, 400)
    inside, cut, at_frame_edge = quad(200, 200, 100, 30), quad(450, 200, 50, 30), quad(200, 0, 90, 30)
    kept = proposals.inner_boxes([(inside, 0.9), (cut, 0.9)], window, 1280, 720)
    assert [q is inside for q, _ in kept] == [True]
    # A window at the frame's edge does not cut what touches the frame's edge.
    assert len(proposals.inner_boxes([(at_frame_edge, 0.9)], (0, 0, 400, 300), 1280, 720)) == 1
    twice = proposals.dedupe_boxes([(inside, 0.8), (quad(201, 201, 100, 30), 0.9), (cut, 0.7)])
    assert [score for _, score in twice] == [0.9, 0.7]


def test_only_regions_of_the_same_canvas_share_a_batch() -> None:
    sizes = [(480, 288), (480, 320), (480, 288), (480, 288), (512, 288), (480, 288)]
    batches = proposals.pack_regions(sizes, 3)
    # Padding a window to a larger canvas changes the detector's output, so none is padded.
    assert batches == [([0, 2, 3], (480, 288)), ([5], (480, 288)), ([1], (480, 320)), ([4], (512, 288))]


@pytest.mark.parametrize(("width", "height"), [(1280, 720), (800, 600), (1024, 768), (1280, 960), (704, 576)])
def test_a_window_is_detected_on_the_fine_canvas_at_any_frame_size(width: int, height: int) -> None:
    # At 4:3 and odd frame sizes the full pass's scale is no round number (800x600: 0.9067); the
    # window must still fit the 480x288 fine canvas, not take the next one up (512x320).
    frame = np.full((height, width, 3), 200, np.uint8)
    frame[height // 2 : height // 2 + 30, width // 2 : width // 2 + 120] = 20
    backend = _DarkIsText()
    recognizer = PlateRecognizer(backend, detection="two_stage")
    (line,) = recognizer.detect_lines([frame])
    assert recognizer.last_paths == ["fine"]
    _, *fine = backend.shapes
    assert fine == [(1, 288, 480, 3)]
    bx, by, bw, bh = postprocess.quad_to_box(line.quad)
    assert abs(bx + bw / 2 - (width // 2 + 60)) <= 4 and abs(by + bh / 2 - (height // 2 + 15)) <= 4


def test_windows_of_frames_batched_together_are_never_padded() -> None:
    # A 4:3 frame's window (480x288) and a 1080p frame's window around a line wider than the fine
    # canvas holds (a larger canvas): read in one call, each is still detected on its own canvas,
    # as when its frame is read alone, since padding changes what the detector finds.
    small = np.full((600, 800, 3), 200, np.uint8)
    small[300:330, 400:520] = 20
    large = np.full((1080, 1920, 3), 200, np.uint8)
    large[500:540, 200:1600] = 20

    def fine_canvases(frames: list[np.ndarray]) -> list[tuple[int, int]]:
        backend = _DarkIsText()
        # A coarse floor of 0.25 puts both frames' coarse passes on the 480x288 canvas, so the
        # first detector call is their one coarse batch and the rest are windows.
        options = proposals.TwoStageOptions(min_coarse_scale=0.25)
        PlateRecognizer(backend, detection="two_stage", two_stage=options).detect_lines(frames)
        coarse, *fine = backend.shapes
        assert coarse[0] == len(frames)  # one coarse batch
        return sorted((h, w) for n, h, w, _ in fine for _ in range(n))

    alone = fine_canvases([small]) + fine_canvases([large])
    assert len(set(alone)) == 2
    assert fine_canvases([small, large]) == sorted(alone)


def test_a_speck_on_the_coarse_map_proposes_nothing() -> None:
    # One pixel above the threshold: the dilation that joins a line's characters makes it fifteen,
    # but `min_pixels` counts the component's own pixels.
    prob = np.zeros((288, 480), np.uint8)
    prob[100, 200] = 255
    placement = postprocess.Letterbox(0.25, 1920, 1080)
    assert proposals.coarse_regions(prob, placement, 0.15, min_pixels=2) == []
    prob[100, 201] = 255
    assert len(proposals.coarse_regions(prob, placement, 0.15, min_pixels=2)) == 1


def test_options_and_strategy_are_checked(backend: OnnxBackend) -> None:
    with pytest.raises(ValueError):
        proposals.TwoStageOptions(coarse_canvas=(500, 288))
    with pytest.raises(ValueError):
        proposals.TwoStageOptions(fine_canvas=(480, 300))
    with pytest.raises(ValueError):
        PlateRecognizer(backend, detection="tiles")  # type: ignore[arg-type]


def test_settings_choose_the_detection(monkeypatch: pytest.MonkeyPatch, backend: OnnxBackend) -> None:
    from services.inference.main import InferenceSettings

    default = InferenceSettings().plate_recognizer(backend)
    assert default.detection == "two_stage" and default.two_stage == proposals.TwoStageOptions()
    monkeypatch.setenv("PLATEWATCH_EDGE_ALWAYS", "true")
    monkeypatch.setenv("PLATEWATCH_EDGE_PROPOSALS", "2")
    monkeypatch.setenv("PLATEWATCH_FULL_PASS_WHEN_NO_PLATE", "true")
    monkeypatch.setenv("PLATEWATCH_EDGE_WINDOWS_WHEN_NO_PLATE", "5")
    monkeypatch.setenv("PLATEWATCH_MIN_COARSE_SCALE", "0.25")
    monkeypatch.setenv("PLATEWATCH_MIN_FINE_SCALE", "0")
    tuned = InferenceSettings().plate_recognizer(backend)
    assert (tuned.two_stage.min_coarse_scale, tuned.two_stage.min_fine_scale) == (0.25, 0.0)
    assert (tuned.two_stage.edge_always, tuned.two_stage.edge_proposals) == (True, 2)
    assert (tuned.two_stage.full_pass_when_no_plate, tuned.two_stage.edge_windows_when_no_plate) == (True, 5)
    monkeypatch.setenv("PLATEWATCH_DETECTION", "full")
    assert InferenceSettings().plate_recognizer(backend).detection == "full"
    monkeypatch.setenv("PLATEWATCH_DETECTION", "sideways")
    with pytest.raises(ValueError):
        InferenceSettings()


class _BlindInWindows(_DarkIsText):
    """Like `_DarkIsText`, but finds nothing in the fine windows (every call after the coarse one
    that is not on the full pass's canvas), as the int8 detector sometimes does with a clear plate."""

    def detect(self, images: np.ndarray) -> np.ndarray:
        found = super().detect(images)
        if len(self.shapes) > 1 and images.shape[1:3] != (544, 960):
            return np.zeros_like(found)
        return found


def test_a_frame_whose_windows_find_nothing_the_coarse_pass_proposed_takes_the_full_pass() -> None:
    frame = np.full((1080, 1920, 3), 200, np.uint8)
    frame[500:540, 800:960] = 20
    recognizer = PlateRecognizer(_BlindInWindows(), detection="two_stage")
    (line,) = recognizer.detect_lines([frame])
    assert recognizer.last_paths == ["full"]
    bx, by, bw, bh = postprocess.quad_to_box(line.quad)
    assert abs(bx + bw / 2 - 880) <= 4 and abs(by + bh / 2 - 520) <= 4
    # Without the fallback the plate the coarse pass saw is lost.
    blind = PlateRecognizer(
        _BlindInWindows(),
        detection="two_stage",
        two_stage=proposals.TwoStageOptions(full_pass_when_fine_empty=False),
    )
    assert blind.detect_lines([frame]) == []
    assert blind.last_paths == ["fine"]


class _PlateOnSecondLook(_DarkIsText):
    """Reads every line as KT4821; the classifier rejects everything until the full pass's canvas
    has been seen, as when the windows only held a sign and the plate needs the whole frame."""

    def __init__(self) -> None:
        super().__init__()
        self.full_seen = False

    def detect(self, images: np.ndarray) -> np.ndarray:
        self.full_seen = self.full_seen or images.shape[1:3] == (544, 960)
        return super().detect(images)

    def recognize(self, batch: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        probs = ctc_steps(self.characters, "KT4821", 0.99)
        return model_io.rec_output(np.repeat(probs[None], len(batch), axis=0), 3)

    def classify(self, cuts: np.ndarray) -> np.ndarray:
        return np.full(len(cuts), 1.0 if self.full_seen else 0.0, np.float32)


def test_a_frame_whose_windows_gave_no_plate_is_searched_again_by_the_full_pass() -> None:
    frame = np.full((1080, 1920, 3), 200, np.uint8)
    frame[500:540, 800:960] = 20
    backend = _PlateOnSecondLook()
    full_retry = proposals.TwoStageOptions(full_pass_when_no_plate=True)
    recognizer = PlateRecognizer(backend, detection="two_stage", two_stage=full_retry)
    (plates,) = recognizer.recognize([frame])
    assert recognizer.last_paths == ["fine+full"]
    assert [p.text for p in plates] == ["KT4821"]
    # The full pass looked at the whole frame again: its word replaces the windows' rejection.
    assert recognizer.last_rejected == 0
    # Switched off, the frame keeps what its windows gave.
    off = PlateRecognizer(
        _PlateOnSecondLook(),
        detection="two_stage",
        two_stage=proposals.TwoStageOptions(full_pass_when_no_plate=False, edge_windows_when_no_plate=0),
    )
    assert off.recognize([frame]) == [[]]
    assert off.last_paths == ["fine"]


class _AlwaysDoubts(_PlateOnSecondLook):
    def classify(self, cuts: np.ndarray) -> np.ndarray:
        return np.zeros(len(cuts), np.float32)


def test_a_line_rejected_in_the_window_and_again_by_the_full_pass_counts_once() -> None:
    frame = np.full((1080, 1920, 3), 200, np.uint8)
    frame[500:540, 800:960] = 20
    full_retry = proposals.TwoStageOptions(full_pass_when_no_plate=True)
    recognizer = PlateRecognizer(_AlwaysDoubts(), detection="two_stage", two_stage=full_retry)
    assert recognizer.recognize([frame]) == [[]]
    assert recognizer.last_paths == ["fine+full"] and recognizer.last_rejected == 1


def _add_strokes(frame: np.ndarray, x: int, y: int, step: int = 8) -> None:
    """Thin dark vertical strokes over 160 x 40 pixels: a plate-shaped edge cluster."""
    frame[y : y + 40, x : x + 160 : step] = 20
    frame[y : y + 40, x + 1 : x + 160 : step] = 20


def _merged_strokes(found: np.ndarray) -> np.ndarray:
    """Detector maps with nearby thin strokes dilated into one text block (as a real detector sees a
    line of characters)."""
    return np.stack([cv2.dilate(m, np.ones((9, 9), np.uint8)) for m in found])


class _BlankCoarseMap(_AlwaysDoubts):
    """Sees nothing in the coarse pass (the first call), dark stripes as one text block after it."""

    def detect(self, images: np.ndarray) -> np.ndarray:
        found = super().detect(images)
        if len(self.shapes) == 1:
            return np.zeros_like(found)
        return _merged_strokes(found)


def test_a_frame_only_the_edge_proposer_saw_is_not_searched_again() -> None:
    frame = np.full((1080, 1920, 3), 200, np.uint8)
    _add_strokes(frame, 800, 500)  # plate-shaped vertical edges, nothing the coarse map sees
    backend = _BlankCoarseMap()
    recognizer = PlateRecognizer(backend, detection="two_stage")
    assert recognizer.detect_lines([frame]), "the edge window should give a line"
    assert recognizer.last_paths == ["fine"]
    backend.shapes.clear()
    assert recognizer.recognize([frame]) == [[]]
    assert recognizer.last_paths == ["fine"] and recognizer.last_rejected == 1
    assert all(shape[1:3] != (544, 960) for shape in backend.shapes)  # no full pass


class _SignThenStripes(_PlateOnSecondLook):
    """Sees dark pixels as text; in the fine windows (every call after the coarse one) dark stripes
    merge into one text block. The classifier takes a cut with the sign's blue ink for a sign, any
    other for a plate."""

    def detect(self, images: np.ndarray) -> np.ndarray:
        found = _DarkIsText.detect(self, images)
        if len(self.shapes) == 1:
            return found
        return _merged_strokes(found)

    def classify(self, cuts: np.ndarray) -> np.ndarray:
        blue = [(cut[..., 0].astype(int) - cut[..., 2]).max() > 15 for cut in cuts]
        return np.array([0.0 if sign else 1.0 for sign in blue], np.float32)


# Windows at the full pass's scale (0.5 on 1920x1080: the sign's window is 960x576), not the small-text
# floor (`min_fine_scale`): the second-search tests below place stickers and plates relative to it.
AT_FULL_SCALE = proposals.TwoStageOptions(min_fine_scale=0.0)


def _sign_and_small_plate() -> np.ndarray:
    """A solid dark blue sign the coarse pass sees, and far from it a plate of thin vertical strokes that
    the coarse pass does not (its strokes average out at a quarter scale) but the edge proposer does."""
    frame = np.full((1080, 1920, 3), 200, np.uint8)
    frame[200:240, 200:360] = (35, 10, 10)  # dark blue (BGR)
    _add_strokes(frame, 1500, 800)
    return frame


def test_a_frame_whose_windows_gave_no_plate_is_searched_again_around_edge_clusters() -> None:
    frame = _sign_and_small_plate()
    backend = _SignThenStripes()
    recognizer = PlateRecognizer(backend, detection="two_stage")
    (plates,) = recognizer.recognize([frame])
    assert recognizer.last_paths == ["fine+edges"]
    assert [p.text for p in plates] == ["KT4821"]
    bx, by, bw, bh = plates[0].box
    assert abs(bx + bw / 2 - 1580) <= 8 and abs(by + bh / 2 - 820) <= 8
    assert recognizer.last_rejected == 1  # the sign, counted once
    assert all(shape[1:3] != (544, 960) for shape in backend.shapes)  # no full pass
    # Without the second search the sign's window is all the frame gets.
    off = proposals.TwoStageOptions(edge_windows_when_no_plate=0)
    recognizer = PlateRecognizer(_SignThenStripes(), detection="two_stage", two_stage=off)
    assert recognizer.recognize([frame]) == [[]]
    assert recognizer.last_paths == ["fine"]


class _ReadsByInk(_DarkIsText):
    """Reads a line drawn in the darkest ink (< 20 in the middle rows of its input) as the short
    plate T2R, any other as AB1234; every line is a plate to the classifier."""

    def recognize(self, batch: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        # The middle rows of an input are the line itself.
        texts = ["T2R" if row[12:20].min() < 20 else "AB1234" for row in batch]
        return model_io.rec_output(np.stack([ctc_steps(self.characters, t, 0.99) for t in texts]), 3)


def test_a_short_reading_does_not_make_the_line_it_surrounds_accessory_text() -> None:
    frame = np.full((1080, 1920, 3), 200, np.uint8)
    frame[500:590, 800:1100] = 10  # a big fleet number, read T2R
    frame[630:670, 870:1030] = 30  # the registration below it, 0.44 of its height
    texts = sorted(p.text for p in PlateRecognizer(_ReadsByInk(), detection="full").recognize([frame])[0])
    assert texts == ["AB1234", "T2R"]
    # A plate-length reading around it still makes the smaller line an accessory (state name).
    frame[500:590, 800:1100] = 30
    texts = [p.text for p in PlateRecognizer(_ReadsByInk(), detection="full").recognize([frame])[0]]
    assert texts == ["AB1234"]


@pytest.mark.parametrize(
    ("lines", "max_cost_share", "path"),
    [
        # Each dark line far from the others needs its own 480x288 window (0.26 of the 960x544
        # canvas): three cost less than the full pass, four more.
        ([(100, 100), (1500, 200), (300, 900)], proposals.TwoStageOptions.max_cost_share, "fine"),
        (
            [(100, 100), (1500, 200), (300, 900), (1500, 900)],
            proposals.TwoStageOptions.max_cost_share,
            "full",
        ),
        ([(100, 100), (1500, 200), (300, 900)], 0.6, "full"),
    ],
)
def test_a_frame_takes_the_full_pass_when_its_windows_would_cost_more(
    lines: list[tuple[int, int]], max_cost_share: float, path: str
) -> None:
    frame = np.full((1080, 1920, 3), 200, np.uint8)
    for x, y in lines:
        frame[y : y + 40, x : x + 160] = 20
    backend = _DarkIsText()
    options = proposals.TwoStageOptions(max_cost_share=max_cost_share)
    recognizer = PlateRecognizer(backend, detection="two_stage", two_stage=options)
    found = recognizer.detect_lines([frame])
    assert recognizer.last_paths == [path]
    assert len(found) == len(lines)
    windows = sum(shape[0] for shape in backend.shapes[1:])
    assert windows == (len(lines) if path == "fine" else 1)


def test_a_box_is_held_by_a_window_only_clear_of_its_inner_edges() -> None:
    width, height = 1920, 1080
    window = (100, 100, 500, 400)
    assert proposals.held_by_window((150, 150, 300, 200), window, width, height)
    assert not proposals.held_by_window((90, 150, 300, 200), window, width, height)  # sticks out
    # Within the slack of an inner edge: the window cut that line (`inner_boxes` drops it).
    assert not proposals.held_by_window((101, 150, 300, 200), window, width, height)
    assert not proposals.held_by_window((150, 150, 498, 200), window, width, height)
    quad = np.array([[101, 150], [300, 150], [300, 200], [101, 200]], np.float32)
    assert proposals.inner_boxes([(quad, 1.0)], window, width, height) == []
    # The frame's own edges cut nothing.
    assert proposals.held_by_window((0, 0, 50, 50), (0, 0, 400, 300), width, height)


def test_the_second_search_looks_past_edge_clusters_the_first_windows_held() -> None:
    frame = _sign_and_small_plate()
    # Three edge-dense blue stickers in the sign's window, denser than the plate's strokes.
    for x, y in [(500, 100), (500, 320), (100, 420)]:
        for dx in range(0, 160, 4):
            frame[y : y + 40, x + dx : x + dx + 2] = (35, 10, 10)
    recognizer = PlateRecognizer(_SignThenStripes(), detection="two_stage", two_stage=AT_FULL_SCALE)
    (plates,) = recognizer.recognize([frame])
    assert recognizer.last_paths == ["fine+edges"]
    assert [p.text for p in plates] == ["KT4821"]


def test_a_plate_the_first_window_cut_is_searched_again() -> None:
    frame = np.full((1080, 1920, 3), 200, np.uint8)
    frame[200:240, 200:360] = (35, 10, 10)  # the sign: its window is (0, 0, 960, 576)
    _add_strokes(frame, 764, 300)  # inside that window, but its line reaches the window's edge
    recognizer = PlateRecognizer(_SignThenStripes(), detection="two_stage", two_stage=AT_FULL_SCALE)
    (plates,) = recognizer.recognize([frame])
    assert recognizer.last_paths == ["fine+edges"]
    assert [p.text for p in plates] == ["KT4821"]


def test_only_a_window_at_the_scale_small_text_needs_holds_it() -> None:
    """The second search: a small edge cluster (a plate 40 px high, 20 canvas pixels at 1080p's 0.5)
    inside a first window detected at the full pass's scale (a large sign's) was not looked at
    closely enough there, so it gets its own window at 0.75; inside a 0.75 window it was."""
    frame = np.full((1080, 1920, 3), 200, np.uint8)
    _add_strokes(frame, 500, 300)
    recognizer = PlateRecognizer(_DarkIsText(), detection="two_stage")
    windows = _spy_on_windows(recognizer)
    coarse_window = ((0, 0, 960, 576), 0.5)
    recognizer._edge_window_boxes([frame], [0], {0: [coarse_window]})
    assert [(proposals.contains(region, (500, 300, 660, 340)), scale) for region, scale in windows] == [
        (True, 0.75)
    ]
    windows.clear()
    recognizer._edge_window_boxes([frame], [0], {0: [((0, 0, 960, 576), 0.75)]})
    assert windows == []


def _sign_and_small_plate_4k() -> np.ndarray:
    """`_sign_and_small_plate` on a 3840x2160 frame: a 200 px sign (50 canvas pixels at the full
    pass's 0.25, which the coarse pass is) and a stroke plate 40 px high."""
    frame = np.full((2160, 3840, 3), 200, np.uint8)
    frame[400:600, 400:1200] = (35, 10, 10)
    _add_strokes(frame, 3000, 1600)
    return frame


def test_a_4k_frame_with_only_a_sign_seen_is_searched_again_around_edge_clusters() -> None:
    """Its coarse pass (the full pass) read the sign, no window was needed; the plate too small for
    that scale is found by the second search's edge window at 0.75, and the full pass never runs
    again."""
    backend = _SignThenStripes()
    recognizer = PlateRecognizer(backend, detection="two_stage")
    (plates,) = recognizer.recognize([_sign_and_small_plate_4k()])
    assert recognizer.last_paths == ["fine+edges"]
    assert [p.text for p in plates] == ["KT4821"]
    assert recognizer.last_rejected == 1  # the sign, counted once
    assert [shape[1:3] for shape in backend.shapes].count((544, 960)) == 1
    # With the full pass as the second search, the coarse pass's boxes are reused, not recomputed.
    backend = _SignThenStripes()
    again = PlateRecognizer(
        backend, detection="two_stage", two_stage=proposals.TwoStageOptions(full_pass_when_no_plate=True)
    )
    assert again.recognize([_sign_and_small_plate_4k()]) == [[]]
    assert again.last_paths == ["fine+full"]
    assert backend.shapes == [(1, 544, 960, 3)]


def test_a_4k_frame_keeps_its_full_pass_boxes_where_the_windows_found_nothing() -> None:
    """The coarse pass (the full pass) found a line a small-text window then misses: the line stays."""
    frame = np.full((2160, 3840, 3), 200, np.uint8)
    frame[1000:1060, 600:920] = 20  # 15 canvas pixels high at 0.25: small text, window at 0.75
    backend = _BlindInWindows()
    recognizer = PlateRecognizer(backend, detection="two_stage")
    (line,) = recognizer.detect_lines([frame])
    assert recognizer.last_paths == ["fine"]
    x, y, w, h = postprocess.quad_to_box(line.quad)
    assert abs(x + w / 2 - 760) <= 8 and abs(y + h / 2 - 1030) <= 8
    assert [shape[1:3] for shape in backend.shapes].count((544, 960)) == 1


def test_a_line_only_a_closer_second_window_sees_is_read() -> None:
    """1080p: a large sign's window at 0.5 holds a stroke plate whose odd-column strokes average out
    at 0.5; the second search's window at 0.75 finds it, and it is read (not taken for a line the
    first round already read)."""
    frame = np.full((1080, 1920, 3), 200, np.uint8)
    frame[60:160, 200:600] = (35, 10, 10)  # 100 px high: 50 canvas pixels at 0.5
    _add_strokes(frame, 501, 400)
    recognizer = PlateRecognizer(_SignThenStripes(), detection="two_stage")
    windows = _spy_on_windows(recognizer)
    (plates,) = recognizer.recognize([frame])
    assert recognizer.last_paths == ["fine+edges"]
    assert [p.text for p in plates] == ["KT4821"]
    assert [scale for _, scale in windows] == [0.5, 0.75]


def test_the_second_search_on_4k_windows_only_text_its_full_pass_could_not_read() -> None:
    """A large edge cluster (a stroke sign 200 px high) was seen by the coarse pass, which is the full
    pass there: the second search opens no window at that scale for it, only one at 0.75 for the
    small stroke plate."""
    frame = np.full((2160, 3840, 3), 200, np.uint8)
    frame[1000:1024, 600:760] = (35, 10, 10)  # a small sign: the first round's window at 0.75
    for x in range(1600, 2400, 24):
        frame[300:500, x : x + 8] = (35, 10, 10)
    _add_strokes(frame, 3000, 1600)
    recognizer = PlateRecognizer(_SignThenStripes(), detection="two_stage")
    windows = _spy_on_windows(recognizer)
    (plates,) = recognizer.recognize([frame])
    assert recognizer.last_paths == ["fine+edges"]
    assert [p.text for p in plates] == ["KT4821"]
    assert {scale for _, scale in windows} == {0.75}


def test_a_4k_frame_with_too_many_small_windows_keeps_its_coarse_pass() -> None:
    """More small-text windows than `max_regions`: the frame keeps what its coarse pass (the full pass)
    found, without running the full pass again."""
    frame = np.full((2160, 3840, 3), 200, np.uint8)
    for row in range(4):
        for col in range(4):
            frame[200 + row * 500 : 224 + row * 500, 200 + col * 900 : 360 + col * 900] = 20
    backend = _DarkIsText()
    recognizer = PlateRecognizer(backend, detection="two_stage")
    lines = recognizer.detect_lines([frame])
    assert recognizer.last_paths == ["coarse"]
    assert len(lines) == 16
    assert backend.shapes == [(1, 544, 960, 3)]
