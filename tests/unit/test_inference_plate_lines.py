"""Plate finding on the detector's boxes: merging the pieces of a split text line, dropping the
accessory text around a plate (state name, slogan, stickers), padding a line's crop."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from services.inference import model_io, postprocess
from services.inference.engine import (
    DET_CANVAS_HEIGHT,
    DET_CANVAS_WIDTH,
    INVERTED_READING_MARGIN,
    OnnxBackend,
    PlateRecognizer,
    recognizer_characters,
)
from services.inference.main import InferenceSettings


def box(x: float, y: float, w: float, h: float) -> np.ndarray:
    """An axis-aligned quad, tl tr br bl."""
    return np.array([[x, y], [x + w, y], [x + w, y + h], [x, y + h]], np.float32)


def rotated(quad: np.ndarray, degrees: float) -> np.ndarray:
    centre = quad.mean(axis=0)
    matrix = cv2.getRotationMatrix2D((float(centre[0]), float(centre[1])), degrees, 1.0)
    return (np.c_[quad, np.ones(4)] @ matrix.T).astype(np.float32)


def test_pieces_of_one_line_are_merged_into_one_quad_around_them() -> None:
    # "ABC" and "123" either side of an emblem: same height, same baseline, a gap of 0.6 heights.
    left, right = box(10, 40, 130, 90), box(194, 42, 120, 86)
    assert postprocess.same_line(left, right)
    ((quad, score),) = postprocess.merge_line_pieces([(left, 0.9), (right, 0.7)])
    assert postprocess.quad_to_box(quad) == pytest.approx((10, 40, 305, 91), abs=2)
    # Area-weighted: the larger left piece counts more.
    assert 0.8 < score < 0.9


def test_groups_of_a_plate_up_to_0_9_heights_apart_are_one_line() -> None:
    # A DC plate's "800 002": two groups 0.88 heights apart (55 px high, 49 px between them).
    left = box(20, 21, 90, 55)
    assert postprocess.same_line(left, box(159, 22, 90, 55))
    assert not postprocess.same_line(left, box(162, 22, 90, 55))  # 0.95 heights apart


def test_merging_is_transitive_and_keeps_other_boxes_in_order() -> None:
    sticker = box(280, 5, 30, 12)
    pieces = [box(0, 40, 80, 60), box(100, 40, 80, 60), box(200, 42, 80, 58)]
    merged = postprocess.merge_line_pieces([(sticker, 0.8), *[(p, 0.9) for p in pieces]])
    assert len(merged) == 2
    assert merged[0][0] is sticker
    assert postprocess.quad_to_box(merged[1][0]) == pytest.approx((0, 40, 281, 61), abs=2)


@pytest.mark.parametrize(
    ("other", "why"),
    [
        (box(200, 40, 100, 40), "half the height: a different line of text"),
        (box(200, 110, 120, 80), "below, not beside"),
        (box(260, 40, 120, 80), "too far along the line (1.75 heights apart)"),
        (rotated(box(160, 40, 120, 80), 25), "not parallel"),
    ],
)
def test_lines_that_are_not_pieces_of_each_other_stay_apart(other: np.ndarray, why: str) -> None:
    line = box(0, 40, 120, 80)
    assert not postprocess.same_line(line, other), why
    assert len(postprocess.merge_line_pieces([(line, 0.9), (other, 0.9)])) == 2, why


def test_tilted_pieces_of_one_line_merge() -> None:
    left, right = box(0, 100, 120, 60), box(150, 100, 120, 60)
    # Both tilted by 8 degrees about the centre of the pair: still one line.
    centre = np.array([135.0, 130.0])
    matrix = cv2.getRotationMatrix2D((centre[0], centre[1]), 8, 1.0)
    tilt = [(np.c_[q, np.ones(4)] @ matrix.T).astype(np.float32) for q in (left, right)]
    assert postprocess.same_line(*tilt)
    ((quad, _),) = postprocess.merge_line_pieces([(tilt[0], 0.9), (tilt[1], 0.9)])
    width, height = postprocess.quad_size(quad)
    assert width == pytest.approx(270, abs=3) and height == pytest.approx(60, abs=3)


def test_whether_two_pieces_are_one_line_does_not_depend_on_their_order() -> None:
    # Random pieces a few degrees apart near the thresholds: the answer and the merged lines are the
    # same whichever piece the detector listed first.
    rng = np.random.default_rng(3)
    for _ in range(500):
        height = rng.uniform(20, 60)
        a = rotated(box(0, 100, rng.uniform(2, 5) * height, height), rng.uniform(-10, 10))
        b = rotated(
            box(
                rng.uniform(2, 7) * height,
                100 + rng.uniform(-0.6, 0.6) * height,
                rng.uniform(2, 5) * height,
                height,
            ),
            rng.uniform(-10, 10),
        )
        assert postprocess.same_line(a, b) == postprocess.same_line(b, a)
        assert len(postprocess.merge_line_pieces([(a, 0.9), (b, 0.8)])) == len(
            postprocess.merge_line_pieces([(b, 0.8), (a, 0.9)])
        )


def test_accessory_text_around_a_plate() -> None:
    registration = box(20, 40, 280, 90)
    assert postprocess.accessory_of(box(110, 8, 100, 22), registration)  # state name above
    assert postprocess.accessory_of(box(100, 132, 120, 20), registration)  # slogan below
    assert postprocess.accessory_of(box(270, 30, 35, 10), registration)  # sticker in a corner
    # Not the other way round, nor for a line of similar height, nor far away.
    assert not postprocess.accessory_of(registration, box(110, 8, 100, 22))
    assert not postprocess.accessory_of(box(20, 140, 280, 70), registration)
    assert not postprocess.accessory_of(box(600, 60, 100, 22), registration)
    assert not postprocess.accessory_of(box(110, 300, 100, 22), registration)


def test_pad_quad_grows_along_its_axes_and_clips_to_the_frame() -> None:
    quad = box(100, 100, 200, 50)
    padded = postprocess.pad_quad(quad, 0.2, 0.1, (720, 1280, 3))
    assert postprocess.quad_to_box(padded) == pytest.approx((90, 95, 221, 61), abs=1)
    shrunk = postprocess.pad_quad(quad, -0.1, -0.1, (720, 1280, 3))
    assert postprocess.quad_size(shrunk) == pytest.approx((190, 40), abs=0.01)
    tilted = rotated(quad, 10)
    assert postprocess.quad_size(postprocess.pad_quad(tilted, 0.2, 0.1, (720, 1280, 3))) == pytest.approx(
        (220, 60), abs=0.5
    )
    edge = postprocess.pad_quad(box(0, 0, 100, 40), 0.5, 0.5, (100, 200, 3))
    assert edge.min() >= 0 and edge[:, 0].max() <= 199 and edge[:, 1].max() <= 99


def _plate_with_state_name(registration: str, state: str) -> np.ndarray:
    """A white plate filling most of a grey frame: a large registration under a small word."""
    frame = np.full((360, 640, 3), 110, np.uint8)
    cv2.rectangle(frame, (120, 110), (520, 280), (245, 245, 245), -1)
    cv2.putText(frame, state, (262, 148), cv2.FONT_HERSHEY_SIMPLEX, 0.9, (40, 40, 40), 2)
    cv2.putText(frame, registration, (150, 240), cv2.FONT_HERSHEY_SIMPLEX, 3.0, (0, 0, 0), 9)
    return frame


def test_recognizer_returns_the_registration_not_the_small_word_above_it() -> None:
    recognizer = PlateRecognizer(OnnxBackend(threads=1))
    (plates,) = recognizer.recognize([_plate_with_state_name("KT4821", "COUNTY")])
    assert [p.text for p in plates] == ["KT4821"]


def ctc_steps(characters: list[str], text: str, sure: float) -> np.ndarray:
    """32 steps of plate-CRNN probabilities [32, classes] that decode to `text` (each character then
    a blank), every step's class at `sure` plus an even share of the rest."""
    classes = [characters.index(ch) for ch in text for _ in range(2)]
    classes = [c if i % 2 == 0 else 0 for i, c in enumerate(classes)]  # A _ B _ ...
    classes += [0] * (32 - len(classes))
    probs = np.full((len(classes), len(characters)), (1 - sure) / len(characters), np.float32)
    probs[np.arange(len(classes)), classes] += sure
    return probs


class _ReadsByBrightness:
    """A fake plate-CRNN backend: one DB map with a single line; a dark rec input (the tight cut of
    that line) reads `dark` surely, a brighter one (cut with margin, the light bodywork around the
    line) reads `light` less surely. Counts the rec inputs it is given."""

    name = "fake"
    recognizer = "crnn"
    words = False

    def __init__(self, prob: np.ndarray, dark: str, light: str) -> None:
        self.prob, self.dark, self.light, self.reads = prob, dark, light, 0
        self.characters = recognizer_characters("crnn")

    def detect(self, images: np.ndarray) -> np.ndarray:
        return np.repeat(self.prob[None], len(images), axis=0)

    def _steps(self, text: str, sure: float) -> np.ndarray:
        return ctc_steps(self.characters, text, sure)

    def recognize(self, batch: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        self.reads += len(batch)
        probs = np.stack(
            [
                self._steps(self.dark, 0.95) if row.mean() < 60 else self._steps(self.light, 0.7)
                for row in batch
            ]
        )
        return model_io.rec_output(probs, 3)

    def classify(self, cuts: np.ndarray) -> np.ndarray:
        """Every line is a plate: these tests are about cutting and reading lines."""
        return np.ones(len(cuts), np.float32)


def _one_line_frame() -> tuple[np.ndarray, np.ndarray]:
    """A light frame with one dark text line, and a DB map (canvas-sized) that finds just that line."""
    frame = np.full((DET_CANVAS_HEIGHT, DET_CANVAS_WIDTH, 3), 230, np.uint8)
    frame[236:304, 366:594] = 30  # the DB box, unclipped, around the map below
    prob = np.zeros((DET_CANVAS_HEIGHT, DET_CANVAS_WIDTH), np.uint8)
    prob[256:284, 386:574] = 255
    return frame, prob


def test_each_line_is_cut_with_each_margin_and_the_first_cut_is_kept() -> None:
    frame, prob = _one_line_frame()
    recognizer = PlateRecognizer(
        _ReadsByBrightness(prob, "AB123", "AB128"), crop_margins=((0.0, 0.0), (0.2, 0.2))
    )
    (line,) = recognizer.detect_lines([frame])
    tight, padded = line.cuts
    assert line.crop is tight
    height = tight.shape[0]
    assert padded.shape[0] == pytest.approx(height * 1.4, abs=2)
    assert padded.shape[1] == pytest.approx(tight.shape[1] + 0.4 * height, abs=2)


def test_the_reading_variants_of_all_cuts_of_a_line_vote_together() -> None:
    frame, prob = _one_line_frame()
    texts = {}
    for margins in (((0.2, 0.2),), ((0.0, 0.0), (0.2, 0.2)), ((0.2, 0.2), (0.0, 0.0))):
        backend = _ReadsByBrightness(prob, "AB123", "AB128")
        (plates,) = PlateRecognizer(backend, crop_margins=margins).recognize([frame])
        assert backend.reads == len(margins) * len(postprocess.READING_VARIANTS)
        texts[margins] = [p.text for p in plates]
    # The padded cut alone reads the bodywork-lit line; with the tight cut voting too, its surer
    # reading wins, whichever cut comes first.
    assert texts[((0.2, 0.2),)] == ["AB128"]
    assert texts[((0.0, 0.0), (0.2, 0.2))] == texts[((0.2, 0.2), (0.0, 0.0))] == ["AB123"]


def test_a_sure_plain_reading_is_not_read_again_as_the_other_variants() -> None:
    frame, prob = _one_line_frame()
    tight = ((0.0, 0.0),)
    reads, texts = {}, {}
    # The tight cut reads every character at 0.95 (plus a share of the rest).
    for sure_reading in (0.9, 0.98, 1.01):
        backend = _ReadsByBrightness(prob, "AB123", "AB128")
        (plates,) = PlateRecognizer(backend, crop_margins=tight, sure_reading=sure_reading).recognize([frame])
        reads[sure_reading], texts[sure_reading] = backend.reads, [p.text for p in plates]
    assert reads == {0.9: 1, 0.98: len(postprocess.READING_VARIANTS), 1.01: len(postprocess.READING_VARIANTS)}
    assert texts[0.9] == texts[0.98] == texts[1.01] == ["AB123"]


def test_an_unsure_line_is_read_as_every_variant_of_every_cut() -> None:
    frame, prob = _one_line_frame()
    reads, texts = {}, {}
    # The padded cut reads at 0.7, the tight one at 0.95: only the first cut decides whether the line
    # is sure; an unsure line reads every variant of every cut, and they all vote.
    for margins in (((0.2, 0.2), (0.0, 0.0)), ((0.0, 0.0), (0.2, 0.2))):
        backend = _ReadsByBrightness(prob, "AB123", "AB128")
        (plates,) = PlateRecognizer(backend, crop_margins=margins, sure_reading=0.9).recognize([frame])
        reads[margins[0]], texts[margins[0]] = backend.reads, [p.text for p in plates]
    assert reads == {(0.2, 0.2): 2 * len(postprocess.READING_VARIANTS), (0.0, 0.0): 1}
    assert texts == {(0.2, 0.2): ["AB123"], (0.0, 0.0): ["AB123"]}


def test_sure_and_unsure_lines_in_one_call_keep_their_own_readings() -> None:
    _, prob = _one_line_frame()
    backend = _ReadsByBrightness(prob, "AB123", "AB128")
    dark, light = np.full((40, 160, 3), 30, np.uint8), np.full((40, 160, 3), 200, np.uint8)
    recognizer = PlateRecognizer(backend, sure_reading=0.9)
    readings = recognizer.read_lines([dark, light, dark, light])
    assert [r[0].text for r in readings] == ["AB123", "AB128", "AB123", "AB128"]
    # Four plain reads, then the other variants of the two light (unsure, 0.7) crops only.
    assert backend.reads == 4 + 2 * (len(postprocess.READING_VARIANTS) - 1)
    with pytest.raises(ValueError, match="region hints"):
        recognizer.read_lines([dark, light], ["us"])
    assert recognizer.read_cuts([[], [dark]])[1][0].text == "AB123"


class _ReadsLightUnsurely(_ReadsByBrightness):
    """Reads a light rec input (light letters on a dark plate, inverted) at `light_sure`."""

    def __init__(self, light_sure: float) -> None:
        super().__init__(np.zeros((4, 4), np.uint8), "AB123", "AB128")
        self.light_sure = light_sure
        # Per rec input, in order: was it dark (a light crop inverted)?
        self.dark_inputs: list[bool] = []

    def recognize(self, batch: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        self.reads += len(batch)
        self.dark_inputs.extend(bool(row.mean() < 60) for row in batch)
        probs = np.stack(
            [
                self._steps(self.dark, 0.95) if row.mean() < 60 else self._steps(self.light, self.light_sure)
                for row in batch
            ]
        )
        return model_io.rec_output(probs, 3)


def test_an_unsure_line_that_reads_much_surer_inverted_is_read_inverted() -> None:
    light = np.full((40, 160, 3), 200, np.uint8)  # inverted: 55, which reads "AB123" at 0.95
    variants = len(postprocess.READING_VARIANTS)
    texts, inputs = {}, {}
    for light_sure, read_inverted in ((0.5, True), (0.5, False), (0.7, True)):
        backend = _ReadsLightUnsurely(light_sure)
        recognizer = PlateRecognizer(backend, sure_reading=0.9, read_inverted=read_inverted)
        texts[light_sure, read_inverted] = recognizer.read_lines([light])[0][0].text
        inputs[light_sure, read_inverted] = backend.dark_inputs
    reads = {key: len(dark) for key, dark in inputs.items()}
    # 0.95 beats 0.5 by more than the margin: the plain read, the inverted one, then the other
    # variants, all inverted (they read the dark text too).
    assert INVERTED_READING_MARGIN == 0.4
    assert texts[0.5, True] == "AB123" and inputs[0.5, True] == [False] + [True] * variants
    assert texts[0.5, False] == "AB128" and reads[0.5, False] == variants
    # 0.95 does not beat 0.7 by the margin: read as given, for one read more.
    assert texts[0.7, True] == "AB128" and reads[0.7, True] == 1 + variants
    # A sure line is never read inverted, and only the plate CRNN reads inverted at all.
    backend = _ReadsLightUnsurely(0.5)
    dark = np.full((40, 160, 3), 30, np.uint8)
    assert (
        PlateRecognizer(backend, sure_reading=0.9, read_inverted=True).read_lines([dark])[0][0].text
        == "AB123"
    )
    assert backend.reads == 1
    assert not PlateRecognizer(backend, read_variants=False, read_inverted=True).read_inverted
    # Without the cascade (every line read as every variant) polarity is still decided first.
    backend = _ReadsLightUnsurely(0.5)
    assert (
        PlateRecognizer(backend, sure_reading=1.01, read_inverted=True).read_lines([light])[0][0].text
        == "AB123"
    )
    assert backend.dark_inputs == [False] + [True] * variants


def test_lines_of_several_cuts_are_read_inverted_each_on_its_own_word() -> None:
    light, dark = np.full((40, 160, 3), 200, np.uint8), np.full((40, 160, 3), 30, np.uint8)
    variants = len(postprocess.READING_VARIANTS)
    backend = _ReadsLightUnsurely(0.5)
    recognizer = PlateRecognizer(backend, sure_reading=0.9, read_inverted=True)
    readings = recognizer.read_cuts([[], [light, light], [dark], [light]], [None, "us", None, "de"])
    assert [r[0].text if r else None for r in readings] == [None, "AB123", "AB123", "AB123"]
    # First cuts as given (3 lines), then the two unsure lines' first cuts inverted, then every other
    # variant of their cuts, inverted: line 1 has two cuts, line 3 one.
    assert backend.dark_inputs == [False, True, False] + [True, True] + [True] * (
        2 * variants - 1 + variants - 1
    )


def test_the_inverted_reading_setting_reaches_the_recognizer() -> None:
    backend = _ReadsLightUnsurely(0.5)
    assert not InferenceSettings().plate_recognizer(backend).read_inverted
    assert InferenceSettings(read_inverted=True).plate_recognizer(backend).read_inverted


def test_a_recognizer_needs_a_crop_margin() -> None:
    with pytest.raises(ValueError):
        PlateRecognizer(_ReadsByBrightness(np.zeros((4, 4), np.uint8), "A", "B"), crop_margins=())


class _RecordsCanvases(_ReadsByBrightness):
    """Records the det batch shapes; its DB map is the single line of `_one_line_frame`, cut or
    padded to each canvas."""

    def __init__(self, prob: np.ndarray) -> None:
        super().__init__(prob, "AB123", "AB128")
        self.shapes: list[tuple[int, ...]] = []

    def detect(self, images: np.ndarray) -> np.ndarray:
        self.shapes.append(images.shape)
        n, height, width = images.shape[:3]
        prob = np.zeros((height, width), np.uint8)
        h, w = min(height, self.prob.shape[0]), min(width, self.prob.shape[1])
        prob[:h, :w] = self.prob[:h, :w]
        return np.repeat(prob[None], n, axis=0)


def test_small_frames_get_a_small_canvas_and_a_batch_holds_one_canvas() -> None:
    frame, prob = _one_line_frame()
    backend = _RecordsCanvases(prob)
    small = np.full((150, 300, 3), 230, np.uint8)
    # By default every frame is fitted into the fixed canvas.
    PlateRecognizer(backend).detect_lines([small])
    assert backend.shapes[-1] == (1, DET_CANVAS_HEIGHT, DET_CANVAS_WIDTH, 3)
    recognizer = PlateRecognizer(backend, max_upscale=1.0, fit_canvas=True)
    recognizer.detect_lines([small])
    assert backend.shapes[-1] == (1, 160, 320, 3)
    # Mixed sizes: each batch holds frames of one canvas (the small frame is not padded to the large
    # one's), and the line of the full-size frame maps back to its own pixels.
    lines = recognizer.detect_lines([small, frame, small])
    assert backend.shapes[-2:] == [(2, 160, 320, 3), (1, DET_CANVAS_HEIGHT, DET_CANVAS_WIDTH, 3)]
    (line,) = [line for line in lines if line.frame_index == 1]
    x, y, w, h = postprocess.quad_to_box(line.quad)
    assert abs(x - 366) <= 3 and abs(y - 236) <= 3 and abs(w - 228) <= 4 and abs(h - 68) <= 4


def test_the_canvas_cap_must_be_a_multiple_of_the_detector_stride() -> None:
    with pytest.raises(ValueError):
        PlateRecognizer(_ReadsByBrightness(np.zeros((4, 4), np.uint8), "A", "B"), canvas=(1000, 544))
