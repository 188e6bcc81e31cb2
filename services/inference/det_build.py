"""The plate detector as served: PP-OCRv4 det from the rapidocr wheel, rebuilt for speed.

PP-OCRv4 det (a PPLCNetV3 backbone) as exported by paddle2onnx spells every hardswish as
Add/Clip/Mul/Div and follows most convolutions with a learnable scalar affine (Mul, Add);
onnxruntime fuses neither, so a third of its CPU time went to element-wise passes over the feature
maps. Two builds, both derived from the wheel's file at run time (never committed) and cached under
`$PLATEWATCH_VAR_DIR/models/`, keyed by the source's SHA-256 and `BUILD_VERSION`:

- `fp32`: an exact rewrite. The scalar affine after a convolution is folded into its weights and
  bias, and each hardswish chain becomes one `HardSwish` op (opset 14), which onnxruntime runs as
  two element-wise passes instead of four. Outputs equal the original's to 1e-4
  (`tests/unit/test_det_build.py`).
- `int8`: the fp32 build quantized statically (onnxruntime QOperator format, per-channel int8
  weights, uint8 activations), calibrated on frames of the bundled demo footage at both canvases
  the engine uses (the demo clip is rendered afresh where `deploy/demo/footage` is absent, as in the
Docker image). About half the CPU of the original on x86 with VNNI; on a GPU use `fp32`.
  Two exact rewrites follow the quantization, worth about a quarter of the int8 detector's time
  (one core, least of 15: 960x544 75 -> 53 ms, 480x288 16.5 -> 12.5 ms):
  - the learnable affine after each hardswish (a QLinearMul and a QLinearAdd by scalars) is folded
    into the output scale and zero point of the hardswish's own product (`fold_quantized_affines`);
  - each gate (DequantizeLinear -> HardSigmoid -> QuantizeLinear, in every hardswish and
    squeeze-and-excitation block) becomes one QLinearAdd fitted to the chain's output
    (`replace_quantized_gates`).
  Each rewritten piece is a function of one input byte, and each is kept only where onnxruntime
  gives the same 256 outputs both ways: the map is the unrewritten build's, bit for bit, under the
  onnxruntime that built it (also checked on every detector call the read path made over the
  development sets, session 27). Another onnxruntime (the Triton image's) was not compared; gates
  keep a margin (`GATE_MIN_MARGIN`) so that a kernel rounding in another order still agrees.

Contract: `det_model(precision)` returns the path of a model with the original's input and output
(`x` float [N, 3, H, W] -> sigmoid map [N, 1, H, W]); building is idempotent and safe to race
(each writer renames a complete temporary file into place). The int8 file's name also carries the
calibration source (the footage's hash, or "rendered") and the onnxruntime version.
"""

from __future__ import annotations

import hashlib
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any, Literal

import numpy as np

from services.common.settings import CommonSettings
from services.inference import model_io, postprocess

DetPrecision = Literal["original", "fp32", "int8"]
DET_PRECISIONS: tuple[DetPrecision, ...] = ("original", "fp32", "int8")
DEFAULT_DET_PRECISION: DetPrecision = "int8"
# Bump when the rewrite or the calibration changes: cached builds of another version are ignored.
# 2: the int8 build's two exact rewrites (`fold_quantized_affines`, `replace_quantized_gates`).
BUILD_VERSION = 2
# Calibration: this many demo frames, each letterboxed onto the two landscape canvases the engine uses
# most (the full 960x544 pass and the 480x288 coarse pass and fine windows). Not calibrated on, and
# not re-validated for int8 beyond the session-12 bench runs: the upright canvases of portrait frames
# (544x960, 288x480) and the grown coarse canvases of frames over 1280x720 (the coarse floor, 0.375).
CALIBRATION_FRAMES = 24
CALIBRATION_CANVASES = ((960, 544), (480, 288))
HARDSWISH_OPSET = 14


def det_model(
    precision: DetPrecision = DEFAULT_DET_PRECISION,
    source: Path | None = None,
    cache_dir: Path | None = None,
) -> Path:
    """The detector ONNX file for `precision` built from `source` (default: the wheel's PP-OCRv4 det)
    on first use into `cache_dir` (default: `models/` under PLATEWATCH_VAR_DIR); see the module
    docstring."""
    cache_dir = cache_dir or CommonSettings().var_dir / "models"
    if source is None:
        from services.inference import triton_repo

        source = triton_repo.DET_ONNX
    if precision not in DET_PRECISIONS:
        raise ValueError(f"detector precision must be one of {', '.join(DET_PRECISIONS)}: {precision!r}")
    if precision == "original":
        return source
    digest = hashlib.sha256(source.read_bytes()).hexdigest()[:16]
    if precision == "int8":
        digest += f"-{calibration_key()}"
    target = cache_dir / f"plate_det-{precision}-v{BUILD_VERSION}-{digest}.onnx"
    if target.is_file():
        return target
    cache_dir.mkdir(parents=True, exist_ok=True)
    fused = det_model("fp32", source, cache_dir) if precision == "int8" else None
    with tempfile.TemporaryDirectory(dir=cache_dir, prefix=".build-") as tmp:
        built = Path(tmp) / target.name
        if fused is None:
            fuse_det(source, built)
        else:
            quantize_det(fused, built, Path(tmp))
        os.replace(built, target)
    return target


def fuse_det(source: Path, dest: Path) -> tuple[int, int]:
    """Write the exact rewrite of `source` to `dest`; returns (affines folded, hardswish fused)."""
    import onnx
    from onnx import version_converter

    model = version_converter.convert_version(onnx.load(str(source)), HARDSWISH_OPSET)
    graph = model.graph
    folded = _fold_conv_affines(graph)
    fused = _fuse_hardswish(graph)
    _prune(graph)
    onnx.checker.check_model(model)
    onnx.save(model, str(dest))
    return folded, fused


class _Graph:
    """Look-ups over an ONNX graph's nodes: constant values, producers and consumers of tensors."""

    def __init__(self, graph: Any) -> None:
        from onnx import numpy_helper

        self.constants = {
            node.output[0]: numpy_helper.to_array(node.attribute[0].t)
            for node in graph.node
            if node.op_type == "Constant" and node.attribute and node.attribute[0].name == "value"
        }
        self.constants.update({init.name: numpy_helper.to_array(init) for init in graph.initializer})
        self.outputs = {output.name for output in graph.output}
        self.producers = {name: node for node in graph.node for name in node.output}
        self.consumers: dict[str, list[Any]] = {}
        for node in graph.node:
            for name in node.input:
                self.consumers.setdefault(name, []).append(node)

    def scalar(self, name: str | None) -> float | None:
        """The value of a one-element constant that broadcasts without changing a 4-D map's rank."""
        found = self.constants.get(name) if name else None
        if found is None or found.size != 1 or found.ndim > 4:
            return None
        return float(found.reshape(-1)[0])

    def sole_consumer(self, name: str, op_type: str) -> Any | None:
        """The one node reading `name` when it is an `op_type` (and `name` is no graph output)."""
        found = self.consumers.get(name, [])
        if len(found) == 1 and name not in self.outputs and found[0].op_type == op_type:
            return found[0]
        return None

    def producer(self, name: str, op_type: str) -> Any | None:
        """The `op_type` node writing `name`, when `name` is read by one node only."""
        found = self.producers.get(name)
        if found is None or found.op_type != op_type or len(self.consumers.get(name, [])) != 1:
            return None
        return None if name in self.outputs else found

    @staticmethod
    def other_input(node: Any, name: str) -> str | None:
        rest = [i for i in node.input if i != name]
        return rest[0] if len(rest) == 1 else None


def _remove_nodes(graph: Any, removed: set[int]) -> None:
    kept = [node for node in graph.node if id(node) not in removed]
    del graph.node[:]
    graph.node.extend(kept)


def _fold_conv_affines(graph: Any) -> int:
    """Conv -> Mul(a) [-> Add(b)]  ==>  one Conv with weights a*W and bias a*B + b."""
    from onnx import numpy_helper

    index = _Graph(graph)
    removed: set[int] = set()
    folded = 0
    for conv in graph.node:
        mul = index.sole_consumer(conv.output[0], "Mul") if conv.op_type == "Conv" else None
        factor = index.scalar(index.other_input(mul, conv.output[0])) if mul is not None else None
        if mul is None or factor is None:
            continue
        weights = index.constants.get(conv.input[1])
        bias_name = conv.input[2] if len(conv.input) > 2 else ""  # "" is an omitted optional input
        if weights is None or (bias_name and bias_name not in index.constants):
            continue  # weights or bias computed at run time: nothing to fold into
        last, offset = mul, 0.0
        add = index.sole_consumer(mul.output[0], "Add")
        if add is not None and (shift := index.scalar(index.other_input(add, mul.output[0]))) is not None:
            last, offset = add, shift
        bias = index.constants[bias_name] if bias_name else np.zeros(weights.shape[0], np.float32)
        names = (f"{conv.output[0]}.folded_w", f"{conv.output[0]}.folded_b")
        graph.initializer.extend(
            [
                numpy_helper.from_array((weights * factor).astype(np.float32), names[0]),
                numpy_helper.from_array((bias * factor + offset).astype(np.float32), names[1]),
            ]
        )
        source_input, output = conv.input[0], last.output[0]
        del conv.input[:]
        conv.input.extend([source_input, *names])
        del conv.output[:]
        conv.output.append(output)
        removed.update({id(mul), id(last)})
        folded += 1
    _remove_nodes(graph, removed)
    return folded


def _fuse_hardswish(graph: Any) -> int:
    """x -> Add(3) -> Clip(0, 6) -> Mul(x, .) -> Div(6)  ==>  HardSwish(x) (paddle2onnx's spelling)."""
    index = _Graph(graph)
    removed: set[int] = set()
    fused = 0
    for div in graph.node:
        if div.op_type != "Div" or index.scalar(div.input[1]) != 6.0:
            continue
        mul = index.producer(div.input[0], "Mul")
        if mul is None:
            continue
        for x_name, clip_name in ((mul.input[0], mul.input[1]), (mul.input[1], mul.input[0])):
            clip = index.producer(clip_name, "Clip")
            if clip is None or len(clip.input) < 3:
                continue
            if index.scalar(clip.input[1]) != 0.0 or index.scalar(clip.input[2]) != 6.0:
                continue
            plus = index.producer(clip.input[0], "Add")
            if (
                plus is None
                or x_name not in plus.input
                or index.scalar(index.other_input(plus, x_name)) != 3.0
            ):
                continue
            removed.update({id(plus), id(clip), id(mul)})
            div.op_type = "HardSwish"
            del div.input[:]
            div.input.append(x_name)
            fused += 1
            break
    _remove_nodes(graph, removed)
    return fused


def calibration_inputs(frames: list[np.ndarray]) -> Iterator[dict[str, np.ndarray]]:
    """Detector inputs for calibration: each frame letterboxed onto each calibration canvas."""
    for frame in frames:
        for width, height in CALIBRATION_CANVASES:
            canvas, _ = postprocess.letterbox(frame, width, height)
            yield {"x": model_io.det_input(canvas[None])}


def calibration_key() -> str:
    """Names what the int8 calibration depends on besides the source model: the footage (its hash,
    or "rendered" when it is absent and the clip is rendered afresh) and the onnxruntime version."""
    import onnxruntime

    from services.demo.render import DEFAULT_FOOTAGE

    footage = (
        hashlib.sha256(DEFAULT_FOOTAGE.read_bytes()).hexdigest()[:12]
        if DEFAULT_FOOTAGE.is_file()
        else "rendered"
    )
    return f"{footage}-ort{onnxruntime.__version__}"


def calibration_frames() -> list[np.ndarray]:
    """Frames of the bundled demo footage (rendered afresh when the file is missing)."""
    from services.demo.render import DEFAULT_FOOTAGE
    from services.inference.frames import rendered_frames, video_frames

    frames = video_frames(DEFAULT_FOOTAGE, CALIBRATION_FRAMES) if DEFAULT_FOOTAGE.is_file() else []
    return frames or rendered_frames(CALIBRATION_FRAMES)


def quantize_det(fused: Path, dest: Path, workdir: Path, rewrite: bool = True) -> None:
    """Write the static int8 quantization of the fused detector `fused` to `dest`, with the exact
    rewrites (`fold_quantized_affines`, `replace_quantized_gates`) unless `rewrite` is false."""
    from onnxruntime.quantization import (
        CalibrationDataReader,
        CalibrationMethod,
        QuantFormat,
        QuantType,
        quantize_static,
    )
    from onnxruntime.quantization.shape_inference import quant_pre_process

    class _Frames(CalibrationDataReader):  # type: ignore[misc]
        def __init__(self, inputs: Iterator[dict[str, np.ndarray]]) -> None:
            self._inputs = inputs

        def get_next(self) -> dict[str, np.ndarray] | None:
            return next(self._inputs, None)

    prepared = workdir / "prepared.onnx"
    quant_pre_process(str(fused), str(prepared), skip_symbolic_shape=True)
    quantize_static(
        str(prepared),
        str(dest),
        _Frames(calibration_inputs(calibration_frames())),
        quant_format=QuantFormat.QOperator,
        per_channel=True,
        activation_type=QuantType.QUInt8,
        weight_type=QuantType.QInt8,
        calibrate_method=CalibrationMethod.MinMax,
    )
    if not rewrite:
        return
    import onnx

    quantized = onnx.load(str(dest))
    fold_quantized_affines(quantized.graph)
    replace_quantized_gates(quantized.graph)
    onnx.checker.check_model(quantized)
    onnx.save(quantized, str(dest))


# A gate is replaced only by a line that keeps at least this many output steps from every rounding
# edge, so that a kernel computing in another order (another CPU, another onnxruntime, as in the
# Triton image) still rounds the same way. The detector's 34 gates keep at least 0.005.
GATE_MIN_MARGIN = 1e-3

# QLinearMul's and QLinearAdd's inputs: A, A_scale, A_zero_point, B, B_scale, B_zero_point,
# C_scale, C_zero_point.
_QLINEAR_OPERANDS = (0, 3)
_QLINEAR_OUT_SCALE, _QLINEAR_OUT_ZERO = 6, 7


def fold_quantized_affines(graph: Any) -> int:
    """In a QOperator int8 graph, hardswish(x) * a + b  ==>  hardswish(x) with its output requantized
    straight to the affine's output parameters; returns how many were folded.

    The quantizer spells hardswish as QLinearMul(x, Q(HardSigmoid(DQ(x)))), and the affine after it
    as QLinearMul(., a) -> QLinearAdd(., b) with scalar constants. For a > 0 a value h stored with
    scale s and zero point z stands for a*h + b when stored with scale s/a and zero point
    z + b/s (s, z: the QLinearAdd's output parameters), so the product can write the QLinearAdd's
    output itself. The product's result is then rounded once where the chain rounded it three
    times, which can differ by a step: the whole chain is a function of x's byte alone, so a fold is
    kept only where onnxruntime gives the same 256 outputs both ways (`_same_on_all_bytes`)."""
    from onnx import numpy_helper

    index = _Graph(graph)
    removed: set[int] = set()
    added = []
    folded = 0
    for product in graph.node:
        gate_chain = _gate_chain(index, product) if product.op_type == "QLinearMul" else []
        if not gate_chain:
            continue
        scale_node = index.sole_consumer(product.output[0], "QLinearMul")
        if scale_node is None:
            continue
        shift_node = index.sole_consumer(scale_node.output[0], "QLinearAdd")
        if shift_node is None:
            continue
        a = _scalar_operand(index, scale_node, product.output[0])
        b = _scalar_operand(index, shift_node, scale_node.output[0])
        if a is None or b is None or a <= 0:
            continue  # a negative scale would flip the stored order: no zero point can do that
        out_scale = index.scalar(shift_node.input[_QLINEAR_OUT_SCALE])
        out_zero = index.constants.get(shift_node.input[_QLINEAR_OUT_ZERO])
        if out_scale is None or out_zero is None or out_zero.size != 1:
            continue
        zero_type = out_zero.dtype
        bounds = np.iinfo(zero_type)
        zero = round(int(out_zero.reshape(-1)[0]) + b / out_scale)
        if not bounds.min <= zero <= bounds.max:
            continue  # b moves zero out of the stored range: the product's own range cannot hold it
        names = (f"{shift_node.output[0]}.folded_scale", f"{shift_node.output[0]}.folded_zero_point")
        params = [
            numpy_helper.from_array(np.array(out_scale / a, np.float32), names[0]),
            numpy_helper.from_array(np.array(zero, zero_type), names[1]),
        ]
        folded_product = _node_copy(product)
        folded_product.input[_QLINEAR_OUT_SCALE], folded_product.input[_QLINEAR_OUT_ZERO] = names
        folded_product.output[0] = shift_node.output[0]
        if not _same_on_all_bytes(
            index, [*gate_chain, product, scale_node, shift_node], [*gate_chain, folded_product], params
        ):
            continue
        added += params
        product.CopyFrom(folded_product)
        removed.update({id(scale_node), id(shift_node)})
        folded += 1
    _apply(graph, added, removed)
    return folded


def replace_quantized_gates(graph: Any) -> int:
    """In a QOperator int8 graph, each DequantizeLinear -> HardSigmoid -> QuantizeLinear gate becomes
    one QLinearAdd(x, c) that writes the same uint8 tensor; returns how many were replaced.

    On uint8 in and out the gate is a clamped, rounded line of the stored value, which a QLinearAdd
    by a constant computes in one pass (the chain makes three, two of them over float32 maps). The
    line's slope, offset and zero point are fitted to the chain's own 256 outputs as onnxruntime
    computes them, with the widest margin from every rounding edge, and a gate is replaced only
    where onnxruntime's QLinearAdd then gives the same 256 outputs: the map does not change."""
    from onnx import helper, numpy_helper

    index = _Graph(graph)
    removed: set[int] = set()
    added = []
    replaced = 0
    for gate in list(graph.node):
        if gate.op_type != "HardSigmoid":
            continue
        dequantize = index.producer(gate.input[0], "DequantizeLinear")
        quantize = index.sole_consumer(gate.output[0], "QuantizeLinear")
        if dequantize is None or quantize is None or len(dequantize.input) < 3 or len(quantize.input) < 3:
            continue
        stored = [index.constants.get(name) for name in (*dequantize.input[1:3], *quantize.input[1:3])]
        if (
            any(value is None or value.size != 1 for value in stored)
            or any(
                value.dtype != np.uint8  # type: ignore[union-attr]
                for value in stored[1::2]
            )
        ):
            continue  # per-channel or int8 parameters: not the pattern the quantizer writes here
        in_scale, in_zero = (float(stored[0].reshape(-1)[0]), int(stored[1].reshape(-1)[0]))  # type: ignore[union-attr]
        chain = [dequantize, gate, quantize]
        line = _widest_rounded_line(_bytes_through(index, chain), in_zero, min_margin=GATE_MIN_MARGIN)
        if line is None:
            continue
        slope, offset = line
        zero = int(np.clip(round(offset), 0, 255))
        add_scale = np.float32(in_scale / slope)
        # the constant c, in the output's units offset - zero, stored as one uint8 at 0 or 255
        constant = (offset - zero) * float(add_scale)
        const_q, const_scale, const_zero = (
            (0, 1.0, 0)
            if constant == 0
            else ((255, constant / 255, 0) if constant > 0 else (0, -constant / 255, 255))
        )
        prefix = quantize.output[0]
        names = [f"{prefix}.gate_{suffix}" for suffix in ("c", "c_scale", "c_zero", "scale", "zero")]
        params = [
            numpy_helper.from_array(np.array(const_q, np.uint8), names[0]),
            numpy_helper.from_array(np.array(const_scale, np.float32), names[1]),
            numpy_helper.from_array(np.array(const_zero, np.uint8), names[2]),
            numpy_helper.from_array(np.array(add_scale, np.float32), names[3]),
            numpy_helper.from_array(np.array(zero, np.uint8), names[4]),
        ]
        inputs = [dequantize.input[0], dequantize.input[1], dequantize.input[2], *names]
        add = helper.make_node("QLinearAdd", inputs, [prefix], name=f"{prefix}.gate", domain="com.microsoft")
        if not _same_on_all_bytes(index, chain, [add], params):
            continue
        added += params
        graph.node.insert(list(graph.node).index(gate), add)
        removed.update({id(dequantize), id(gate), id(quantize)})
        replaced += 1
    _apply(graph, added, removed)
    return replaced


def _apply(graph: Any, added: list[Any], removed: set[int]) -> None:
    """Finish a rewrite: add its initializers, drop the nodes it replaced and whatever they alone used."""
    graph.initializer.extend(added)
    _remove_nodes(graph, removed)
    _prune(graph)


def _prune(graph: Any) -> None:
    """Drop Constant nodes, initializers and value_info entries that no node or graph output uses."""
    used = {name for node in graph.node for name in node.input} | {output.name for output in graph.output}
    nodes = [node for node in graph.node if node.op_type != "Constant" or node.output[0] in used]
    del graph.node[:]
    graph.node.extend(nodes)
    produced = {name for node in graph.node for name in node.output}
    kept = [init for init in graph.initializer if init.name in used]
    del graph.initializer[:]
    graph.initializer.extend(kept)
    infos = [info for info in graph.value_info if info.name in used | produced]
    del graph.value_info[:]
    graph.value_info.extend(infos)


def _run_on_all_bytes(nodes: list[Any], initializers: list[Any]) -> np.ndarray:
    """Run a graph from uint8 `x` [256] to uint8 `y` [256] on every byte value."""
    import onnx
    import onnxruntime
    from onnx import TensorProto, helper

    graph = helper.make_graph(
        nodes,
        "gate",
        [helper.make_tensor_value_info("x", TensorProto.UINT8, [256])],
        [helper.make_tensor_value_info("y", TensorProto.UINT8, [256])],
        initializers,
    )
    model = helper.make_model(
        graph, opset_imports=[helper.make_opsetid("", 13), helper.make_opsetid("com.microsoft", 1)]
    )
    model.ir_version = 8
    onnx.checker.check_model(model)
    session = onnxruntime.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    return np.asarray(session.run(None, {"x": np.arange(256, dtype=np.uint8)})[0]).astype(np.int64)


def _widest_rounded_line(
    target: np.ndarray, zero: int, search: float = 0.02, steps: int = 4001, min_margin: float = 0.0
) -> tuple[float, float] | None:
    """(slope, offset) such that clamp(round(slope * (q - zero) + offset), 0, 255) == target[q] for
    every byte q, with the widest margin from the rounding edges; None when no line within `search`
    (relative) of the least-squares slope fits with at least `min_margin` (output steps) to spare."""
    x = np.arange(256, dtype=np.float64) - zero
    inner = (target > 0) & (target < 255)
    if inner.sum() < 2:
        return None
    slopes = np.polyfit(x[inner], target[inner], 1)[0] * (1 + np.linspace(-search, search, steps))
    # Bounds on the offset for each slope (rows) and byte (columns); saturated bytes bound one side.
    low = np.where(inner, target - 0.5, np.where(target == 0, -np.inf, 254.5))
    high = np.where(inner, target + 0.5, np.where(target == 0, 0.5, np.inf))
    lows = (low[None, :] - slopes[:, None] * x[None, :]).max(axis=1)
    highs = (high[None, :] - slopes[:, None] * x[None, :]).min(axis=1)
    best = int(np.argmax(highs - lows))
    if highs[best] - lows[best] <= max(0.0, 2 * min_margin):
        return None
    return float(slopes[best]), float((lows[best] + highs[best]) / 2)


def _gate_chain(index: _Graph, product: Any) -> list[Any]:
    """[DequantizeLinear, HardSigmoid, QuantizeLinear] when the QLinearMul `product` multiplies a
    per-tensor x by the gate computed from that same x (a hardswish), else []."""
    for operand, other in (_QLINEAR_OPERANDS, _QLINEAR_OPERANDS[::-1]):
        quantize = index.producers.get(product.input[operand])
        gate = index.producers.get(quantize.input[0]) if quantize is not None else None
        dequantize = index.producers.get(gate.input[0]) if gate is not None else None
        if (
            quantize is not None
            and quantize.op_type == "QuantizeLinear"
            and gate is not None
            and gate.op_type == "HardSigmoid"
            and dequantize is not None
            and dequantize.op_type == "DequantizeLinear"
            and dequantize.input[0] == product.input[other]
            and index.scalar(product.input[other + 1]) is not None
        ):
            return [dequantize, gate, quantize]
    return []


def _node_copy(node: Any) -> Any:
    from onnx import NodeProto

    copy = NodeProto()
    copy.CopyFrom(node)
    return copy


def _bytes_through(index: _Graph, nodes: list[Any], added: list[Any] | None = None) -> np.ndarray:
    """What a subgraph of the graph `index` describes, from a uint8 tensor (the first node's first
    input) to the last node's output, gives for each of the 256 byte values under onnxruntime;
    `added`: initializers the subgraph reads that the graph does not hold yet."""
    from onnx import numpy_helper

    source, result = nodes[0].input[0], nodes[-1].output[0]
    constants = sorted({name for node in nodes for name in node.input if name in index.constants})
    initializers = [numpy_helper.from_array(index.constants[name], name) for name in constants]
    renamed = []
    for node in nodes:
        node = _node_copy(node)
        for i, name in enumerate(node.input):
            node.input[i] = "x" if name == source else name
        if node.output[0] == result:
            node.output[0] = "y"
        renamed.append(node)
    return _run_on_all_bytes(renamed, initializers + (added or []))


def _same_on_all_bytes(index: _Graph, chain: list[Any], rewritten: list[Any], added: list[Any]) -> bool:
    """Whether two subgraphs from the same uint8 tensor to the same output give the same bytes for
    all 256 input values (`_bytes_through`); `added`: initializers only `rewritten` reads."""
    return bool(np.array_equal(_bytes_through(index, chain), _bytes_through(index, rewritten, added)))


def _scalar_operand(index: _Graph, node: Any, tensor: str) -> float | None:
    """The real value of the one-element constant operand of a QLinearMul/QLinearAdd `node` whose
    other operand is `tensor`."""
    for operand in _QLINEAR_OPERANDS:
        name = node.input[operand]
        stored = index.constants.get(name)
        if name == tensor or stored is None or stored.size != 1:
            continue
        scale = index.scalar(node.input[operand + 1])
        zero = index.constants.get(node.input[operand + 2])
        if scale is None or zero is None or zero.size != 1:
            return None
        return scale * (int(stored.reshape(-1)[0]) - int(zero.reshape(-1)[0]))
    return None
