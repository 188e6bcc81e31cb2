"""Pre/post-processing around PP-OCRv4, and the whole recognizer in-process on rendered plates."""

from __future__ import annotations

from typing import Any

import cv2
import numpy as np
import pytest

from services.inference import model_io, postprocess
from services.inference.engine import OnnxBackend, PlateRecognizer, rec_characters


def render_frame(text: str = "ABC1234", size: tuple[int, int] = (1280, 720)) -> np.ndarray:
    """A red 'car' with a white plate carrying black `text`, plus a line of lower-case signage."""
    width, height = size
    frame = np.full((height, width, 3), (40, 40, 160), np.uint8)
    cv2.rectangle(frame, (480, 400), (820, 480), (255, 255, 255), -1)
    cv2.putText(frame, text, (495, 465), cv2.FONT_HERSHEY_SIMPLEX, 1.9, (0, 0, 0), 5)
    cv2.putText(frame, "Welcome to town", (100, 100), cv2.FONT_HERSHEY_SIMPLEX, 1.5, (255, 255, 255), 3)
    return frame


@pytest.fixture(scope="module")
def recognizer() -> PlateRecognizer:
    return PlateRecognizer(OnnxBackend(threads=1))


def _one_hot_steps(classes: list[int], num_classes: int, k: int = 3) -> tuple[np.ndarray, np.ndarray]:
    probs = np.full((len(classes), num_classes), 0.01 / num_classes, np.float32)
    for step, cls in enumerate(classes):
        probs[step, cls] = 0.9
        probs[step, (cls + 1) % num_classes] = 0.09
    indices, top = model_io.rec_output(probs[None], k)
    return indices[0], top[0]


def test_ctc_decode_collapses_repeats_and_drops_blanks() -> None:
    characters = ["blank", "A", "B", "1", " "]
    # A A _ A B B _ _ 1 -> "AAB1" (a blank separates the two A's).
    indices, probs = _one_hot_steps([1, 1, 0, 1, 2, 2, 0, 0, 3], len(characters))
    candidates = postprocess.ctc_decode(indices, probs, characters, top_k=3)
    assert candidates[0].text == "AAB1"
    assert len(candidates[0].char_confidences) == 4
    assert candidates[0].confidence == pytest.approx(0.9, abs=1e-3)
    # Runner-ups swap one character each, rank below the best, and are distinct.
    assert 1 < len(candidates) <= 3
    assert all(c.confidence < candidates[0].confidence for c in candidates[1:])
    assert len({c.text for c in candidates}) == len(candidates)


def test_ctc_decode_of_all_blank_is_empty() -> None:
    indices, probs = _one_hot_steps([0] * 10, 4)
    assert postprocess.ctc_decode(indices, probs, ["blank", "A", "B", " "])[0].text == ""


def test_rec_output_is_sorted_top_k() -> None:
    probs = np.random.default_rng(1).random((2, 40, 50)).astype(np.float32)
    indices, top = model_io.rec_output(probs, 5)
    assert indices.shape == (2, 40, 5) and top.dtype == np.float32
    assert np.array_equal(indices[..., 0], probs.argmax(axis=2))
    assert np.all(np.diff(top, axis=2) <= 0)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("ABC 1234", "ABC1234"),
        ("AB-123-CD", "AB123CD"),
        ("M5XSX", "M5XSX"),
        ("ＡBC1234", "ABC1234"),  # noqa: RUF001 - the rec dictionary has full-width letters
        ("7oX123", "7OX123"),  # 'o' looks the same in both cases
        ("abc", None),
        ("Welcome", None),
        ("ABC", None),
        ("T2R", "T2R"),  # three characters with a digit: a US short plate
        ("248", "248"),
        ("A1", None),
        ("ABCD123456", None),
        ("AB€123", None),
        ("NEW YORK", None),  # state name on the plate, not the registration
        ("TEXAS", None),
        ("AIASKA", None),  # a state name with one character misread
        ("NEVADAA", None),
        ("0HI0", "0HI0"),  # short words need an exact match
        ("ALASK4X", "ALASK4X"),  # two edits away: a registration
    ],
)
def test_plate_text_filter(text: str, expected: str | None) -> None:
    assert postprocess.plate_text(text) == expected


def test_plate_geometry_filter() -> None:
    assert postprocess.plate_like_geometry(250, 47)
    assert not postprocess.plate_like_geometry(40, 40)  # square
    assert not postprocess.plate_like_geometry(600, 30)  # a long sentence
    assert not postprocess.plate_like_geometry(30, 5)  # too small to read


def test_letterbox_and_box_maths_map_back_to_frame_pixels() -> None:
    frame = np.zeros((720, 1280, 3), np.uint8)
    canvas, placement = postprocess.letterbox(frame, 960, 544)
    assert canvas.shape == (544, 960, 3)
    assert placement.scale == pytest.approx(0.75)
    # A text blob on the DB map at canvas (300..450, 300..337) maps back by 1/scale.
    prob = np.zeros((544, 960), np.uint8)
    prob[300:338, 300:451] = 230
    (quad, score), *rest = postprocess.db_boxes(prob, placement)
    assert not rest and score > 0.8
    # The contour runs through pixel centres (150 x 37); unclipping grows each side by
    # area * 1.6 / perimeter, as in PP-OCR; then everything is scaled by 1 / 0.75. The 2x2 dilation
    # and inclusive pixel counting add a pixel or two.
    grow = 150 * 37 * 1.6 / (2 * (150 + 37))
    expected = [(300 - grow) / 0.75, (300 - grow) / 0.75, (150 + 2 * grow) / 0.75, (37 + 2 * grow) / 0.75]
    assert postprocess.quad_to_box(quad) == pytest.approx(expected, abs=5)


def test_crop_quad_and_rec_input_shapes() -> None:
    frame = np.arange(720 * 1280 * 3, dtype=np.uint32).reshape(720, 1280, 3).astype(np.uint8)
    quad = np.array([[100, 50], [300, 50], [300, 100], [100, 100]], np.float32)
    crop = postprocess.crop_quad(frame, quad)
    assert crop.shape == (50, 200, 3)
    rec = postprocess.rec_input(crop)
    assert rec.shape == (48, 320, 3)
    # 200x50 scales to 192x48: the rest is grey padding.
    assert np.all(rec[:, 192:] == model_io.REC_PAD_VALUE)


def test_vehicle_colour_of_red_car() -> None:
    colour, confidence = postprocess.vehicle_colour(render_frame(), (496, 424, 253, 47))
    assert colour == "red" and confidence > 0.6


def test_colour_lookup_matches_the_colour_rule_for_every_hsv_value() -> None:
    hue, sat, val = (axis.ravel().astype(np.uint8) for axis in np.mgrid[0:180, 0:256, 0:256])
    hsv = np.stack([hue, sat, val], axis=-1)
    np.testing.assert_array_equal(postprocess._colour_codes(hsv), postprocess._colour_rule(hue, sat, val))


def test_vehicle_colour_leaves_the_plate_out_and_breaks_ties_alphabetically() -> None:
    frame = np.full((300, 400, 3), (200, 60, 20), np.uint8)  # blue bodywork (BGR)
    frame[140:160, 150:250] = 255  # a white plate: not the car
    assert postprocess.vehicle_colour(frame, (150, 140, 100, 20)) == ("blue", 1.0)
    frame[:, :200] = 0  # half black, half blue around the plate
    frame[140:160, 150:250] = 255
    colour, share = postprocess.vehicle_colour(frame, (150, 140, 100, 20))
    assert (colour, share) == ("black", pytest.approx(0.5))
    assert postprocess.vehicle_colour(frame, (0, 0, 400, 300))[0] == "unknown"


def test_characters_come_from_the_model() -> None:
    characters = rec_characters()
    assert characters[0] == "blank" and characters[-1] == " "
    assert {"A", "Z", "0", "9"} <= set(characters)


def test_recognizer_reads_rendered_plate_and_drops_signage(recognizer: PlateRecognizer) -> None:
    (plates,) = recognizer.recognize([render_frame("ABC1234")])
    assert [p.text for p in plates] == ["ABC1234"]
    plate = plates[0]
    x, y, w, h = plate.box
    assert 470 <= x <= 520 and 400 <= y <= 450 and 200 <= w <= 340 and 30 <= h <= 80
    assert plate.confidence > 0.9 and len(plate.candidates[0].char_confidences) == 7
    assert plate.detection_confidence > 0.5
    assert plate.crop.ndim == 3 and plate.crop.shape[1] > plate.crop.shape[0]
    assert plate.vehicle_color == "red"


def test_recognizer_batches_frames_in_order(recognizer: PlateRecognizer) -> None:
    blank = np.full((480, 640, 3), 90, np.uint8)
    results = recognizer.recognize([render_frame("XYZ987"), blank, render_frame("KLM4455")])
    assert [[p.text for p in r] for r in results] == [["XYZ987"], [], ["KLM4455"]]
    assert recognizer.recognize([]) == []


def test_det_canvas_fits_large_frames_and_does_not_blow_up_small_ones() -> None:
    # A 1280x720 frame shrinks to fit the cap; its canvas is the scaled frame rounded up to 32s.
    scale, size = postprocess.det_canvas(1280, 720, 960, 544, 1.0)
    assert scale == pytest.approx(0.75) and size == (960, 544)
    scale, size = postprocess.det_canvas(1280, 720, 640, 352, 1.0)
    assert scale == pytest.approx(352 / 720) and size == (640, 352)
    # A plate crop is detected at its own size (at most max_upscale), not stretched to the cap.
    scale, size = postprocess.det_canvas(300, 150, 960, 544, 1.0)
    assert scale == 1.0 and size == (320, 160)
    scale, size = postprocess.det_canvas(300, 150, 960, 544, 2.0)
    assert scale == 2.0 and size == (608, 320)
    # Unbounded upscale: the old fit-the-cap scale, on a canvas cut to the scaled frame.
    scale, size = postprocess.det_canvas(576, 432, 960, 544, float("inf"))
    assert scale == pytest.approx(544 / 432) and size == (736, 544)
    for width, height in ((1, 1), (33, 7), (5000, 40), (40, 5000)):
        scale, (cw, ch) = postprocess.det_canvas(width, height, 960, 544, 1.5)
        assert cw % postprocess.DET_STRIDE == 0 and ch % postprocess.DET_STRIDE == 0
        assert 0 < cw <= 960 and 0 < ch <= 544
        assert round(width * scale) <= cw and round(height * scale) <= ch


def test_letterbox_at_a_given_scale_pads_right_and_bottom() -> None:
    frame = np.full((150, 300, 3), 200, np.uint8)
    canvas, placement = postprocess.letterbox(frame, 320, 160, 1.0)
    assert canvas.shape == (160, 320, 3) and placement.scale == 1.0
    assert np.array_equal(canvas[:150, :300], frame)
    assert not canvas[150:].any() and not canvas[:, 300:].any()
    # Already canvas-sized: used as is.
    same, _ = postprocess.letterbox(canvas, 320, 160, 1.0)
    assert np.array_equal(same, canvas)
    doubled, placement = postprocess.letterbox(frame, 640, 320, 2.0)
    assert placement.scale == 2.0 and doubled[:300, :600].min() == 200 and not doubled[300:].any()


def test_region_hints_go_with_their_frames(
    recognizer: PlateRecognizer, monkeypatch: pytest.MonkeyPatch
) -> None:
    from services.inference import decoding

    seen: list[tuple[str | None, Any]] = []
    read_variants = decoding.read_variants

    def recording(
        outputs: Any, characters: Any, top_k: int = 3, grammar: Any = None, region_hint: str | None = None
    ) -> Any:
        result = read_variants(outputs, characters, top_k, grammar, region_hint)
        seen.append((region_hint, result))
        return result

    monkeypatch.setattr(decoding, "read_variants", recording)
    frames = [render_frame("ABC1234"), render_frame("XYZ9876"), render_frame("JKL4567")]
    hinted = recognizer.recognize(frames, ["us-ny", None, "de"])
    assert [[p.text for p in plates] for plates in hinted] == [["ABC1234"], ["XYZ9876"], ["JKL4567"]]
    # One plate line per frame (and the signage lines the plate classifier does not drop before
    # reading, with their frame's hint). Every line read is decoded from its plain cut first, in order;
    # the lines not sure of that reading are decoded again from all the variants, in order too, each
    # with its own frame's hint.
    detected = recognizer.detect_lines(frames)
    scores = recognizer.plate_scores(frames, detected)
    lines = [
        line for line, score in zip(detected, scores, strict=True) if score >= recognizer.min_plate_score
    ]
    assert len(lines) >= len(frames)
    expected = [["us-ny", None, "de"][line.frame_index] for line in lines]
    assert [hint for hint, _ in seen[: len(lines)]] == expected
    unsure = [
        i
        for i, (_, result) in enumerate(seen[: len(lines)])
        if min(result[0].char_confidences, default=0.0) < recognizer.sure_reading
    ]
    assert [hint for hint, _ in seen[len(lines) :]] == [expected[i] for i in unsure]
    with pytest.raises(ValueError, match="region hints"):
        recognizer.recognize(frames[:1], ["us", "de"])
