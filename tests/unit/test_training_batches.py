"""The recognizer's training batches (`services/inference/training/batches.py`): a function of
(seed, step), so rendering them in worker processes, or resuming a run, sees the same stream."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from services.inference import model_io
from services.inference.training import batches

# Hershey faces: no font files needed.
FONTS = (Path("hershey-simplex"), Path("hershey-duplex"))


def _stream(workers: int, line_share: float = 0.0) -> batches.BatchStream:
    rng = np.random.default_rng(3)
    real = [(rng.integers(0, 255, (40, 150, 3), dtype=np.uint8), f"AB{i}123") for i in range(5)]
    lines = [(rng.integers(0, 255, (20, 90, 3), dtype=np.uint8), f"LN{i}42") for i in range(3)]
    return batches.BatchStream(
        seed=7,
        batch=6,
        real_share=0.5,
        edge_distractors=0.2,
        steps=12,
        fonts=FONTS,
        real_train=real,
        workers=workers,
        line_share=line_share,
        line_train=lines,
        side_art=0.5,
    )


@pytest.mark.parametrize("line_share", [0.0, 0.4], ids=["crops", "crops and line cuts"])
def test_worker_processes_render_the_same_batches_as_the_trainer(line_share: float) -> None:
    in_process, pooled = _stream(0, line_share), _stream(2, line_share)
    try:
        # From a resumed step to the last one, in order.
        for step in range(5, 12):
            inputs, labels = in_process.batch(step)
            pooled_inputs, pooled_labels = pooled.batch(step)
            assert inputs.shape == (6, model_io.CRNN_HEIGHT, model_io.CRNN_WIDTH, 1)
            assert inputs.dtype == np.float32 and len(labels) == 6
            assert pooled_labels == labels and np.array_equal(pooled_inputs, inputs)
        # Different steps are different batches.
        assert not np.array_equal(in_process.batch(5)[0], in_process.batch(6)[0])
        # The line cuts reach the pooled batches too.
        drawn = {label for step in range(5, 12) for label in in_process.batch(step)[1]}
        assert any(label.startswith("LN") for label in drawn) == (line_share > 0)
    finally:
        pooled.close()


def test_a_step_asked_for_out_of_order_is_an_error() -> None:
    pooled = _stream(1)
    try:
        pooled.batch(3)
        with pytest.raises(ValueError, match="out of order"):
            pooled.batch(2)
    finally:
        pooled.close()


def _batch(
    line_share: float, line_train: list[tuple[np.ndarray, str]] | None
) -> tuple[np.ndarray, list[str]]:
    rng = np.random.default_rng(4)
    real = [(rng.integers(0, 255, (40, 150, 3), dtype=np.uint8), f"CD{i}456") for i in range(3)]
    return batches.render_batch(9, 2, 8, 0.5, 0.0, FONTS, real, line_share, line_train)


def test_line_cuts_take_their_share_of_the_batch() -> None:
    rng = np.random.default_rng(5)
    lines = [(rng.integers(0, 255, (20, 90, 3), dtype=np.uint8), "LINE42")]
    _, every = _batch(1.0, lines)
    assert every == ["LINE42"] * 8
    _, some = _batch(0.5, lines)
    assert 0 < some.count("LINE42") < 8


# The labels of `_batch`'s step as the batch code wrote them before line cuts existed (commit 7bc9c4c):
# a fixed reference, so a change that adds a draw to every sample is caught.
LABELS_BEFORE_LINE_CUTS = ["PUH1331", "CD2456", "", "DSZ3943", "CD0456", "0QVP296", "FHS705", "6Y99883"]


@pytest.mark.parametrize(
    ("line_share", "with_cuts"), [(0.0, False), (0.7, False), (0.0, True)], ids=["none", "empty", "share 0"]
)
def test_without_line_cuts_the_stream_is_what_it_was(line_share: float, with_cuts: bool) -> None:
    """No cuts to draw from, or a share of 0: no extra draw per sample, so runs from before line cuts
    existed resume on the same batches."""
    rng = np.random.default_rng(5)
    cuts = [(rng.integers(0, 255, (20, 90, 3), dtype=np.uint8), "LINE42")] if with_cuts else []
    inputs, labels = _batch(line_share, cuts)
    assert labels == LABELS_BEFORE_LINE_CUTS
    assert np.array_equal(inputs, _batch(0.0, None)[0])
