"""The plate classifier (plate_cls): its tensor contract, how the recognizer uses its scores, and the
shipped model on real lines of the held-out dev half (skipped without ../shared/datasets)."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest

from services.inference import model_io, postprocess
from services.inference.engine import (
    CLS_MAX_BATCH,
    MIN_SHORT_PLATE_SCORE,
    OnnxBackend,
    PlateRecognizer,
    PlateResult,
    _Line,
)
from services.inference.training.collect_lines import line_label
from tests.unit.test_inference_plate_lines import _one_line_frame, _ReadsByBrightness
from tests.unit.test_inference_postprocess import render_frame


class _ScoredLines(_ReadsByBrightness):
    """Reads every line as AB123 and gives each line the plate score `score`."""

    def __init__(self, score: float) -> None:
        _, prob = _one_line_frame()
        super().__init__(prob, "AB123", "AB123")
        self.score = score
        self.classified: list[tuple[int, ...]] = []

    def classify(self, cuts: np.ndarray) -> np.ndarray:
        self.classified.append(cuts.shape)
        return np.full(len(cuts), self.score, np.float32)


@pytest.fixture(scope="module")
def backend() -> OnnxBackend:
    return OnnxBackend(threads=1)


def test_cls_input_is_nchw_and_normalized_per_cut() -> None:
    cuts = np.stack([np.full((32, 128, 3), 40, np.uint8), np.full((32, 128, 3), 200, np.uint8)])
    cuts[1, :, :64] = 10
    tensor = model_io.cls_input(cuts)
    assert tensor.shape == (2, 3, 32, 128) and tensor.dtype == np.float32
    assert np.allclose(tensor[0], 0.0)  # a flat cut has nothing to say
    assert abs(float(tensor[1].mean())) < 1e-4 and tensor[1].std() > 0.9


def test_classifier_cut_takes_in_the_surroundings() -> None:
    frame, _ = _one_line_frame()
    quad = np.array([[386, 256], [574, 256], [574, 284], [386, 284]], np.float32)
    cut = postprocess.classifier_cut(frame, quad)
    along, across = postprocess.CLASSIFIER_MARGINS
    assert cut.shape[0] == pytest.approx(28 * (1 + 2 * across), abs=2)
    assert cut.shape[1] == pytest.approx(188 + 2 * along * 28, abs=2)
    assert postprocess.classifier_input(cut).shape == (model_io.CLS_HEIGHT, model_io.CLS_WIDTH, 3)


def test_lines_the_classifier_rejects_are_dropped_and_kept_ones_carry_their_score() -> None:
    frame, _ = _one_line_frame()
    rejected = _ScoredLines(0.05)
    recognizer = PlateRecognizer(rejected, min_plate_score=0.2)
    assert recognizer.recognize([frame]) == [[]]
    assert rejected.classified == [(1, model_io.CLS_HEIGHT, model_io.CLS_WIDTH, 3)]
    assert recognizer.last_rejected == 1

    accepted = _ScoredLines(0.7)
    ((plate,),) = PlateRecognizer(accepted, min_plate_score=0.2).recognize([frame])
    assert plate.text == "AB123" and plate.plate_score == pytest.approx(0.7)


def test_a_line_the_classifier_rejects_is_not_read() -> None:
    frame, _ = _one_line_frame()
    rejected, accepted = _ScoredLines(0.05), _ScoredLines(0.7)
    PlateRecognizer(rejected, min_plate_score=0.2).recognize([frame])
    PlateRecognizer(accepted, min_plate_score=0.2).recognize([frame])
    # Dropped whatever it would read: classified, never read.
    assert rejected.reads == 0 and len(rejected.classified) == 1
    assert accepted.reads > 0 and len(accepted.classified) == 1


def test_a_line_the_classifier_gives_no_score_is_dropped() -> None:
    frame, _ = _one_line_frame()
    backend = _ScoredLines(float("nan"))
    recognizer = PlateRecognizer(backend, min_plate_score=0.2)
    assert recognizer.recognize([frame]) == [[]]
    assert recognizer.last_rejected == 1 and backend.reads == 0  # dropped before it is read


def test_a_line_scored_exactly_at_the_threshold_is_kept() -> None:
    frame, _ = _one_line_frame()
    ((plate,),) = PlateRecognizer(_ScoredLines(0.25), min_plate_score=0.25).recognize([frame])
    assert plate.plate_score == pytest.approx(0.25)


def test_a_sure_reading_the_classifier_doubts_ranks_below_a_plate() -> None:
    def result(text: str, reading: float, score: float | None) -> PlateResult:
        crop = np.zeros((8, 8, 3), np.uint8)
        return PlateResult((0, 0, 8, 8), [postprocess.Candidate(text, reading)], 0.9, crop, plate_score=score)

    sign, plate = result("TIRES", 1.0, 0.53), result("IOL3H", 0.99, 0.998)
    assert sign.confidence == pytest.approx(0.53) and plate.confidence == pytest.approx(0.99 * 0.998)
    assert sorted([sign, plate], key=lambda p: p.confidence, reverse=True)[0] is plate
    # Without the classifier's word the reading's confidence stands alone.
    assert result("IOL3H", 0.99, None).confidence == pytest.approx(0.99)


class _ShortLine(_ScoredLines):
    """Reads every line as the three-character plate T2R, scored `score`."""

    def __init__(self, score: float) -> None:
        super().__init__(score)
        self.dark = self.light = "T2R"


def test_a_three_character_reading_needs_the_classifiers_firm_score() -> None:
    frame, _ = _one_line_frame()
    unsure = PlateRecognizer(_ShortLine(MIN_SHORT_PLATE_SCORE - 0.05), min_plate_score=0.1)
    assert unsure.recognize([frame]) == [[]] and unsure.last_rejected == 1
    ((plate,),) = PlateRecognizer(_ShortLine(MIN_SHORT_PLATE_SCORE), min_plate_score=0.1).recognize([frame])
    assert plate.text == "T2R"
    # A stricter threshold than the short-plate floor applies to short readings too.
    assert PlateRecognizer(_ShortLine(0.6), min_plate_score=0.7).recognize([frame]) == [[]]
    # Without the classifier nothing vouches for a short reading; a longer one is kept as before.
    assert PlateRecognizer(_ShortLine(1.0), plate_classifier=False).recognize([frame]) == [[]]
    ((plate,),) = PlateRecognizer(_ScoredLines(1.0), plate_classifier=False).recognize([frame])
    assert plate.text == "AB123"


class _ScoresByBrightness(_ScoredLines):
    """Scores each cut by its mean brightness, so a score tells which line it came from."""

    def classify(self, cuts: np.ndarray) -> np.ndarray:
        self.classified.append(cuts.shape)
        return (cuts.reshape(len(cuts), -1).mean(axis=1) / 255.0).astype(np.float32)


def test_plate_scores_come_back_in_line_order_across_batches() -> None:
    frames = [np.full((200, 400, 3), grey, np.uint8) for grey in (40, 200)]
    quad = np.array([[100, 80], [300, 80], [300, 120], [100, 120]], np.float32)
    lines = [_Line(i % 2, quad, 1.0, []) for i in range(CLS_MAX_BATCH + 5)]
    backend = _ScoresByBrightness(1.0)
    scores = PlateRecognizer(backend).plate_scores(frames, lines)
    assert [len_ for len_, *_ in backend.classified] == [CLS_MAX_BATCH, 5]
    expected = [40 / 255 if i % 2 == 0 else 200 / 255 for i in range(len(lines))]
    assert np.allclose(scores, expected, atol=1e-3)


def test_with_the_classifier_off_nothing_is_asked_or_dropped() -> None:
    frame, _ = _one_line_frame()
    backend = _ScoredLines(0.0)
    ((plate,),) = PlateRecognizer(backend, plate_classifier=False).recognize([frame])
    assert plate.text == "AB123" and plate.plate_score is None
    assert backend.classified == []


def _quad(x0: float, y0: float, x1: float, y1: float) -> np.ndarray:
    return np.array([[x0, y0], [x1, y0], [x1, y1], [x0, y1]], np.float32)


def test_the_shipped_classifier_tells_a_plate_from_signage(backend: OnnxBackend) -> None:
    frame = render_frame("KT4821")  # the plate's text spans about x 495-790, y 423-465
    cv2.rectangle(frame, (60, 50), (760, 130), (40, 120, 40), -1)
    cv2.putText(frame, "EXIT 79B MILE", (80, 110), cv2.FONT_HERSHEY_SIMPLEX, 1.8, (255, 255, 255), 4)
    cuts = [
        postprocess.classifier_cut(frame, _quad(495, 423, 790, 466)),
        postprocess.classifier_cut(frame, _quad(80, 70, 560, 111)),
    ]
    plate_score, sign_score = backend.classify(np.stack([postprocess.classifier_input(c) for c in cuts]))
    assert plate_score > 0.5 > sign_score


@pytest.mark.parametrize(
    ("reading", "on_plate", "crop", "expected"),
    [
        ("AB123C", True, False, 1),  # one edit from the label
        ("CITROEN", False, False, 0),  # a badge off the plate
        ("PO51C87", False, False, None),  # registration-like off the labelled plate: another car?
        ("TEXAS", True, True, 0),  # the state name of a plate crop
        ("123", True, True, None),  # a piece of the registration
        ("XX", True, False, None),  # on the plate, read far from its label
    ],
)
def test_collected_lines_are_labelled_from_the_truth(
    reading: str, on_plate: bool, crop: bool, expected: int | None
) -> None:
    assert line_label(reading, 0.95, ["AB1234C" if crop else "AB123D"], on_plate, crop) == expected


def test_the_shipped_classifier_on_held_out_dev_lines(shared_datasets: Path, backend: OnnxBackend) -> None:
    """On the held-out EU photos (never trained on) nearly every registration passes the
    recognizer's threshold, and some of the other lines that read like plates (badges, signs,
    printed digits: the ones that would become stray reads) do not. Regression floors under the
    figures measured when the model shipped: 55 of 56 registrations kept, 3 of 8 such lines rejected."""
    from services.inference.training.collect_lines import collect

    recognizer = PlateRecognizer(backend, plate_classifier=False)
    data = collect([shared_datasets / "openalpr-eu"], "heldout", recognizer)
    labels = np.array(data["labels"])
    plate_like = np.array([postprocess.plate_text(r) is not None for r in data["readings"]])
    assert labels.sum() >= 20 and ((labels == 0) & plate_like).sum() >= 4
    scores = backend.classify(np.stack([postprocess.classifier_input(c) for c in data["cuts"]]))
    # Each line against the score its own reading needs (3-character readings need more).
    recognizer = PlateRecognizer(backend)
    needed = np.array(
        [recognizer.required_plate_score(postprocess.plate_text(r) or r) for r in data["readings"]]
    )
    kept = (scores[labels == 1] >= needed[labels == 1]).mean()
    rejected = (scores[(labels == 0) & plate_like] < needed[(labels == 0) & plate_like]).mean()
    assert kept >= 0.9 and rejected >= 0.25
