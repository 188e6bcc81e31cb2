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
    assert float(np.abs(got - expected).max()) < 1e-4


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


def _tiny_graph(path: Path) -> None:
    """Conv(no bias) -> Mul(a) -> Add(b) -> hardswish as Add/Clip/Mul/Div -> Conv(bias) -> Mul(c),
    and a Conv whose weights are a graph input (nothing to fold)."""
    from onnx import TensorProto, helper, numpy_helper

    rng = np.random.default_rng(0)

    def const(name: str, value: np.ndarray) -> onnx.TensorProto:
        return numpy_helper.from_array(np.asarray(value, np.float32), name)

    inits = [
        const("w1", rng.normal(size=(4, 3, 3, 3))),
        const("w2", rng.normal(size=(2, 4, 1, 1))),
        const("b2", rng.normal(size=(2,))),
        const("a", [0.7]),
        const("b", [0.2]),
        const("three", 3.0),
        const("zero", 0.0),
        const("six", 6.0),
        const("c", [1.5]),
    ]
    nodes = [
        helper.make_node("Conv", ["x", "w1"], ["c1"], pads=[1, 1, 1, 1]),
        helper.make_node("Mul", ["c1", "a"], ["m1"]),
        helper.make_node("Add", ["m1", "b"], ["h"]),
        helper.make_node("Add", ["h", "three"], ["h3"]),
        helper.make_node("Clip", ["h3", "zero", "six"], ["hc"]),
        helper.make_node("Mul", ["h", "hc"], ["hm"]),
        helper.make_node("Div", ["hm", "six"], ["hs"]),
        helper.make_node("Conv", ["hs", "w2", "b2"], ["c2"]),
        helper.make_node("Mul", ["c", "c2"], ["y"]),
        helper.make_node("Conv", ["x", "wx"], ["z"]),
    ]
    graph = helper.make_graph(
        nodes,
        "tiny",
        [
            helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 3, 8, 8]),
            helper.make_tensor_value_info("wx", TensorProto.FLOAT, [2, 3, 1, 1]),
        ],
        [
            helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 2, 8, 8]),
            helper.make_tensor_value_info("z", TensorProto.FLOAT, [1, 2, 8, 8]),
        ],
        inits,
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    model.ir_version = 8  # what onnxruntime reads (the wheel's detector is IR 8 too)
    onnx.save(model, str(path))


def test_rewrite_of_a_small_graph_is_exact(tmp_path: Path) -> None:
    source, rewritten = tmp_path / "tiny.onnx", tmp_path / "tiny-fused.onnx"
    _tiny_graph(source)
    assert det_build.fuse_det(source, rewritten) == (2, 1)
    ops = collections.Counter(node.op_type for node in onnx.load(str(rewritten)).graph.node)
    assert ops["Conv"] == 3 and ops["HardSwish"] == 1 and ops["Div"] == 0 and ops["Mul"] == 0
    feeds = {
        "x": np.random.default_rng(1).normal(size=(1, 3, 8, 8)).astype(np.float32),
        "wx": np.random.default_rng(2).normal(size=(2, 3, 1, 1)).astype(np.float32),
    }
    runs = [
        ort.InferenceSession(str(path), providers=["CPUExecutionProvider"]).run(None, feeds)
        for path in (source, rewritten)
    ]
    for expected, got in zip(*runs, strict=True):
        assert float(np.abs(np.asarray(got) - np.asarray(expected)).max()) < 1e-4
