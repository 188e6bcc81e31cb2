"""The shipped plate CRNN (services/inference/models/plate_crnn.onnx): it loads behind the engine
interface, answers in the shared top-k contract, and reads clean rendered plates."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from services.inference import model_io, postprocess
from services.inference.engine import CRNN_ONNX, OnnxBackend, PlateRecognizer, recognizer_characters
from services.inference.training import datasets, render


@pytest.fixture(scope="module")
def crnn() -> PlateRecognizer:
    assert CRNN_ONNX.is_file(), f"{CRNN_ONNX} is not in the checkout"
    return PlateRecognizer(OnnxBackend(threads=1, recognizer="crnn"))


def test_classes_are_blank_digits_and_latin_capitals() -> None:
    assert recognizer_characters("crnn") == ["blank", *render.ALPHABET]


def test_crnn_answers_in_the_top_k_contract(crnn: PlateRecognizer) -> None:
    crops = np.full((3, model_io.CRNN_HEIGHT, model_io.CRNN_WIDTH), 128, np.uint8)
    indices, probs = crnn.backend.recognize(crops)
    assert indices.shape == (3, model_io.CRNN_STEPS, model_io.TOP_K) and indices.dtype == np.int32
    assert probs.shape == indices.shape and probs.dtype == np.float32
    assert np.all(np.diff(probs, axis=2) <= 0)
    # A blank grey crop reads as nothing.
    assert [c[0].text for c in crnn.read_lines([np.full((40, 160, 3), 128, np.uint8)])] == [""]


def test_crnn_input_squeezes_any_crop_to_grey_32_by_128() -> None:
    for shape in ((20, 300, 3), (150, 300, 3), (200, 90, 3), (33, 129)):
        out = postprocess.crnn_input(np.zeros(shape, np.uint8))
        assert out.shape == (32, 128) and out.dtype == np.uint8
    tensor = model_io.crnn_input(np.random.default_rng(0).integers(0, 255, (2, 32, 128), dtype=np.uint8))
    assert tensor.shape == (2, 1, 32, 128)
    assert abs(float(tensor.mean())) < 1e-3


def test_reads_clean_rendered_plates(crnn: PlateRecognizer, plate_fonts: tuple[Path, ...]) -> None:
    """Plates drawn by the training renderer without damage: the model must read nearly all."""
    fonts = plate_fonts
    rng = np.random.default_rng(12345)
    truths, crops = [], []
    for _ in range(20):
        plate, _, label = render.render_plate(rng, fonts)
        truths.append(label)
        crops.append(np.ascontiguousarray(plate[..., ::-1]))
    readings = [c[0].text for c in crnn.read_lines(crops)]
    correct = sum(r == t for r, t in zip(readings, truths, strict=True))
    assert correct >= 16, list(zip(truths, readings, strict=True))


def test_candidates_carry_per_character_confidences(
    crnn: PlateRecognizer, plate_fonts: tuple[Path, ...]
) -> None:
    plate, _, _ = render.render_plate(np.random.default_rng(7), plate_fonts)
    candidates = crnn.read_lines([np.ascontiguousarray(plate[..., ::-1])])[0]
    best = candidates[0]
    assert len(best.char_confidences) == len(best.text) > 0
    assert all(0.0 < c <= 1.0 for c in best.char_confidences)
    assert len({c.text for c in candidates}) == len(candidates) >= 1


def test_dev_split_is_stable_and_roughly_half() -> None:
    names = [f"plate{i}.png" for i in range(400)]
    splits = [datasets.split_of(n) for n in names]
    assert splits == [datasets.split_of(n) for n in names]
    assert 150 < splits.count("train") < 250
    assert set(splits) == {"train", "heldout"}
