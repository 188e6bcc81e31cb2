"""The detector builds (services/inference/det_build.py): the fp32 rewrite is exact, the int8 build
stays close to it, and builds are cached."""

from __future__ import annotations

import collections
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
import pytest

from services.inference import det_build, model_io, postprocess
from services.inference.triton_repo import DET_ONNX


def _detect(model: Path, batch: np.ndarray) -> np.ndarray:
    options = ort.SessionOptions()
    options.intra_op_num_threads = 1
    session = ort.InferenceSession(str(model), options, providers=["CPUExecutionProvider"])
    return np.asarray(session.run(None, {"x": batch})[0])


@pytest.fixture(scope="module")
def frame_batch() -> np.ndarray:
    frame = det_build.calibration_frames()[3]
    canvas, _ = postprocess.letterbox(frame, 960, 544)
    return model_io.det_input(canvas[None])


@pytest.fixture(scope="module")
def cache_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("det-models")


def test_fp32_rewrite_is_exact_and_drops_the_elementwise_chains(
    frame_batch: np.ndarray, cache_dir: Path
) -> None:
    built = det_build.det_model("fp32", cache_dir=cache_dir)
    ops = collections.Counter(node.op_type for node in onnx.load(str(built)).graph.node)
    original_ops = collections.Counter(node.op_type for node in onnx.load(str(DET_ONNX)).graph.node)
    assert original_ops["Div"] > 0 and ops["Div"] == 0
    assert ops["HardSwish"] == original_ops["Div"]
    assert ops["Mul"] + ops["Add"] < original_ops["Mul"] + original_ops["Add"] - 2 * original_ops["Div"]
    expected = _detect(DET_ONNX, frame_batch)
    got = _detect(built, frame_batch)
    assert got.shape == expected.shape
    assert float(np.abs(got - expected).max()) < 1e-3


def test_int8_build_finds_the_same_text(frame_batch: np.ndarray, cache_dir: Path) -> None:
    built = det_build.det_model("int8", cache_dir=cache_dir)
    expected = _detect(DET_ONNX, frame_batch)[0, 0] > postprocess.DB_THRESH
    got = _detect(built, frame_batch)[0, 0] > postprocess.DB_THRESH
    assert expected.sum() > 500, "the demo frame should hold text"
    overlap = (expected & got).sum() / (expected | got).sum()
    assert overlap > 0.8


def test_builds_are_cached_and_keyed_by_precision(cache_dir: Path) -> None:
    first = det_build.det_model("fp32", cache_dir=cache_dir)
    stamp = first.stat().st_mtime_ns
    assert det_build.det_model("fp32", cache_dir=cache_dir) == first
    assert first.stat().st_mtime_ns == stamp
    assert det_build.det_model("int8", cache_dir=cache_dir) != first
    assert det_build.det_model("original", cache_dir=cache_dir) == DET_ONNX
    assert not list(cache_dir.glob(".build-*")), "no temporary build folder is left behind"
    with pytest.raises(ValueError, match="precision"):
        det_build.det_model("fp16", cache_dir=cache_dir)  # type: ignore[arg-type]
