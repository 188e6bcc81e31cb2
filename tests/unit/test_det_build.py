"""The detector builds (services/inference/det_build.py): the fp32 rewrite is exact, the int8 build
stays close to it, its two rewrites keep its bytes, and builds are cached."""

from __future__ import annotations

import collections
from pathlib import Path
from typing import Any

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


def test_int8_build_rewrites_every_hardswish_affine_and_gate_without_changing_the_map(
    frame_batch: np.ndarray, cache_dir: Path, tmp_path: Path
) -> None:
    built = det_build.det_model("int8", cache_dir=cache_dir)
    plain = tmp_path / "plain.onnx"
    det_build.quantize_det(det_build.det_model("fp32", cache_dir=cache_dir), plain, tmp_path, rewrite=False)
    ops = collections.Counter(node.op_type for node in onnx.load(str(built)).graph.node)
    plain_ops = collections.Counter(node.op_type for node in onnx.load(str(plain)).graph.node)
    fp32 = det_build.det_model("fp32", cache_dir=cache_dir)
    hardswishes = collections.Counter(node.op_type for node in onnx.load(str(fp32)).graph.node)["HardSwish"]
    gates = plain_ops["HardSigmoid"]
    assert hardswishes > 0 and gates > hardswishes  # the squeeze-and-excitation blocks gate too
    # Each hardswish of PP-OCRv4 det is followed by a learnable affine: both of its ops are gone.
    assert plain_ops["QLinearMul"] - ops["QLinearMul"] == hardswishes
    # Every gate became one QLinearAdd.
    assert ops["HardSigmoid"] == 0
    assert ops["QLinearAdd"] == plain_ops["QLinearAdd"] - hardswishes + gates
    assert plain_ops["DequantizeLinear"] - ops["DequantizeLinear"] == gates
    # Each rewrite is kept only where it gives the same bytes for every input byte: the same map.
    assert np.array_equal(_detect(built, frame_batch), _detect(plain, frame_batch))


def _quantized_hardswish_graph(
    path: Path,
    a: float,
    b: float,
    y_scale: float,
    y_zero: int,
    product_is_output: bool = False,
    gate_of_another_input: bool = False,
) -> None:
    """uint8 x -> hardswish as the quantizer spells it (QLinearMul(x, Q(HardSigmoid(DQ(x))))) ->
    QLinearMul(a) -> QLinearAdd(b) -> uint8 y (scale `y_scale`, zero point `y_zero`); the
    product's own output is a graph output too with `product_is_output`; with
    `gate_of_another_input` the gate is computed from a second input, so it is no hardswish."""
    from onnx import TensorProto, helper, numpy_helper

    def const(name: str, value: float, dtype: type = np.float32) -> onnx.TensorProto:
        return numpy_helper.from_array(np.array(value, dtype), name)

    h_scale = 0.045
    inits = [
        const("xs", 0.05),
        const("xz", 60, np.uint8),
        const("gs", 1 / 255),
        const("gz", 0, np.uint8),
        const("hs", h_scale),
        const("hz", 12, np.uint8),
        # the constants a and b stored as uint8 with their own scales, as the quantizer stores them
        const("a_q", 255 if a > 0 else 0, np.uint8),
        const("a_s", abs(a) / 255),
        const("a_z", 0 if a > 0 else 255, np.uint8),
        const("ms", h_scale * abs(a)),
        const("mz", 12 if a > 0 else 243, np.uint8),
        const("b_q", 0 if b < 0 else 255, np.uint8),
        const("b_s", abs(b) / 255),
        const("b_z", 255 if b < 0 else 0, np.uint8),
        const("ys", y_scale),
        const("yz", y_zero, np.uint8),
    ]
    ms = "com.microsoft"
    nodes = [
        helper.make_node("DequantizeLinear", ["x2" if gate_of_another_input else "x", "xs", "xz"], ["xf"]),
        helper.make_node("HardSigmoid", ["xf"], ["gf"], alpha=1 / 6, beta=0.5),
        helper.make_node("QuantizeLinear", ["gf", "gs", "gz"], ["g"]),
        helper.make_node("QLinearMul", ["x", "xs", "xz", "g", "gs", "gz", "hs", "hz"], ["h"], domain=ms),
        helper.make_node("QLinearMul", ["h", "hs", "hz", "a_q", "a_s", "a_z", "ms", "mz"], ["m"], domain=ms),
        helper.make_node("QLinearAdd", ["m", "ms", "mz", "b_q", "b_s", "b_z", "ys", "yz"], ["y"], domain=ms),
    ]
    outputs = [helper.make_tensor_value_info("y", TensorProto.UINT8, [1, 256])]
    if product_is_output:
        outputs.append(helper.make_tensor_value_info("h", TensorProto.UINT8, [1, 256]))
    inputs = [helper.make_tensor_value_info("x", TensorProto.UINT8, [1, 256])]
    if gate_of_another_input:
        inputs.append(helper.make_tensor_value_info("x2", TensorProto.UINT8, [1, 256]))
    graph = helper.make_graph(nodes, "quantized-hardswish", inputs, outputs, inits)
    model = helper.make_model(
        graph, opset_imports=[helper.make_opsetid("", 13), helper.make_opsetid("com.microsoft", 1)]
    )
    model.ir_version = 8
    onnx.save(model, str(path))


# Scales as calibration gives them: the affine's output keeps the product's width (a * 0.045), and b
# is a whole number of its steps, so one requantization gives the chain's bytes exactly.
_CALIBRATED = {"a": 0.8, "b": -8 * 0.036, "y_scale": 0.036, "y_zero": 20}


@pytest.mark.parametrize(
    ("case", "folds"),
    [
        (_CALIBRATED, 1),
        ({**_CALIBRATED, "a": 1.25, "b": 5 * 0.05625, "y_scale": 0.05625, "y_zero": 7}, 1),
        # the affine's output has its own scale: rounding once differs from rounding three times
        ({"a": 0.8, "b": -0.3, "y_scale": 0.07, "y_zero": 20}, 0),
        ({**_CALIBRATED, "a": -0.8}, 0),  # a negative scale: no zero point can flip the order
        ({**_CALIBRATED, "b": 240 * 0.036}, 0),  # the zero point would be 260, out of uint8
        ({**_CALIBRATED, "product_is_output": True}, 0),  # the product is read elsewhere
        ({**_CALIBRATED, "gate_of_another_input": True}, 0),  # x times another tensor's gate
    ],
)
def test_fold_of_a_quantized_hardswish_affine_keeps_the_chains_bytes(
    tmp_path: Path, case: dict[str, Any], folds: int
) -> None:
    source, folded_path = tmp_path / "chain.onnx", tmp_path / "folded.onnx"
    _quantized_hardswish_graph(source, **case)
    model = onnx.load(str(source))
    assert det_build.fold_quantized_affines(model.graph) == folds
    onnx.save(model, str(folded_path))
    ops = collections.Counter(node.op_type for node in model.graph.node)
    assert ops["QLinearMul"] == 2 - folds and ops["QLinearAdd"] == 1 - folds
    feeds = {"x": np.arange(256, dtype=np.uint8)[None]}
    if case.get("gate_of_another_input"):
        feeds["x2"] = np.arange(256, dtype=np.uint8)[None, ::-1].copy()
    chain, folded = (
        np.asarray(ort.InferenceSession(str(path), providers=["CPUExecutionProvider"]).run(["y"], feeds)[0])
        for path in (source, folded_path)
    )
    assert np.array_equal(folded, chain)
    if folds:  # and the chain is the hardswish affine it stands for, within a step or two
        x = (np.arange(256) - 60) * 0.05
        exact = case["a"] * x * np.clip(x / 6 + 0.5, 0, 1) + case["b"]
        assert float(np.abs((chain.astype(float) - case["y_zero"]) * case["y_scale"] - exact).max()) < 0.1


def _gate_graph(path: Path, in_scale: float, in_zero: int, alpha: float, shared: bool = False) -> None:
    """uint8 x -> DequantizeLinear -> HardSigmoid(alpha, 0.5) -> QuantizeLinear(1/255, 0) -> y, as
    the quantizer writes the gates; `shared`: the dequantized map is also a graph output."""
    from onnx import TensorProto, helper, numpy_helper

    inits = [
        numpy_helper.from_array(np.array(in_scale, np.float32), "xs"),
        numpy_helper.from_array(np.array(in_zero, np.uint8), "xz"),
        numpy_helper.from_array(np.array(1 / 255, np.float32), "gs"),
        numpy_helper.from_array(np.array(0, np.uint8), "gz"),
    ]
    nodes = [
        helper.make_node("DequantizeLinear", ["x", "xs", "xz"], ["xf"]),
        helper.make_node("HardSigmoid", ["xf"], ["gf"], alpha=alpha, beta=0.5),
        helper.make_node("QuantizeLinear", ["gf", "gs", "gz"], ["y"]),
    ]
    outputs = [helper.make_tensor_value_info("y", TensorProto.UINT8, [1, 256])]
    if shared:
        outputs.append(helper.make_tensor_value_info("xf", TensorProto.FLOAT, [1, 256]))
    graph = helper.make_graph(
        nodes, "gate", [helper.make_tensor_value_info("x", TensorProto.UINT8, [1, 256])], outputs, inits
    )
    model = helper.make_model(
        graph, opset_imports=[helper.make_opsetid("", 13), helper.make_opsetid("com.microsoft", 1)]
    )
    model.ir_version = 8
    onnx.save(model, str(path))


@pytest.mark.parametrize(
    ("in_scale", "in_zero", "alpha"),
    [(0.078, 63, 1 / 6), (0.674, 65, 1 / 6), (0.044, 114, 1 / 6), (0.3, 200, 0.2)],
)
def test_gate_becomes_one_qlinearadd_with_the_same_bytes(
    tmp_path: Path, in_scale: float, in_zero: int, alpha: float
) -> None:
    source, rewritten = tmp_path / "gate.onnx", tmp_path / "gate-add.onnx"
    _gate_graph(source, in_scale, in_zero, alpha)
    model = onnx.load(str(source))
    assert det_build.replace_quantized_gates(model.graph) == 1
    assert [node.op_type for node in model.graph.node] == ["QLinearAdd"]
    onnx.save(model, str(rewritten))
    feeds = {"x": np.arange(256, dtype=np.uint8)[None]}
    before, after = (
        np.asarray(ort.InferenceSession(str(path), providers=["CPUExecutionProvider"]).run(["y"], feeds)[0])
        for path in (source, rewritten)
    )
    assert np.array_equal(before, after)
    assert 0 < int((before > 0).sum()) and int((before < 255).sum()) > 0


@pytest.mark.parametrize(
    ("in_scale", "in_zero", "shared"),
    [
        (0.078, 63, True),  # replaceable bytes, but the float map is also read elsewhere
        # 0.1 / 6 * 255 = 4.25 output steps a byte: exact ties every fourth byte, which the chain
        # rounds one way at the zero point and the other way elsewhere; no line gives those bytes
        (0.1, 120, False),
    ],
)
def test_gate_is_left_alone_where_one_qlinearadd_cannot_stand_in(
    tmp_path: Path, in_scale: float, in_zero: int, shared: bool
) -> None:
    source = tmp_path / "gate.onnx"
    _gate_graph(source, in_scale, in_zero, 1 / 6, shared=shared)
    model = onnx.load(str(source))
    assert det_build.replace_quantized_gates(model.graph) == 0
    ops = [node.op_type for node in model.graph.node]
    assert ops == ["DequantizeLinear", "HardSigmoid", "QuantizeLinear"]


def test_widest_rounded_line_recovers_a_line_and_refuses_what_is_none() -> None:
    x = np.arange(256) - 100
    target = np.clip(np.floor(0.7 * x + 127.27 + 0.5), 0, 255).astype(np.int64)
    found = det_build._widest_rounded_line(target, 100)
    assert found is not None
    slope, offset = found
    assert np.array_equal(np.clip(np.floor(slope * x + offset + 0.5), 0, 255), target)
    inner = (target > 0) & (target < 255)

    def margin(values: np.ndarray) -> float:
        return float((0.5 - np.abs(values - np.round(values)))[inner].min())

    # the widest margin: at least the generating line's, less the search grid's step
    assert margin(0.7 * x + 127.27) > 0.02
    assert margin(slope * x + offset) >= margin(0.7 * x + 127.27) - 2e-3
    # a line that keeps clear of every edge by 0.1 step does not exist here
    assert det_build._widest_rounded_line(target, 100, min_margin=0.1) is None
    broken = target.copy()
    broken[150] = broken[149] - 2  # not monotone: no line rounds to it
    assert det_build._widest_rounded_line(broken, 100) is None
