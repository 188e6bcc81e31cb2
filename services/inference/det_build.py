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
BUILD_VERSION = 1
# Calibration: this many demo frames, each letterboxed onto the two landscape canvases the engine uses
# most (the full 960x544 pass and the 480x288 coarse pass and fine windows). Not calibrated on, and
# not re-validated for int8 beyond the session-12 bench runs: the upright canvases of portrait frames
# (544x960, 288x480) and the grown coarse canvases of frames over 1920x1080.
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
    used = {name for node in graph.node for name in node.input} | {output.name for output in graph.output}
    kept = [node for node in graph.node if node.op_type != "Constant" or node.output[0] in used]
    initializers = [init for init in graph.initializer if init.name in used]
    del graph.node[:]
    graph.node.extend(kept)
    del graph.initializer[:]
    graph.initializer.extend(initializers)
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


def quantize_det(fused: Path, dest: Path, workdir: Path) -> None:
    """Write the static int8 quantization of the fused detector `fused` to `dest`."""
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
