"""ONNX graphs that speak the wire format themselves: what every backend runs.

Triton's compiled backends (onnxruntime, TensorRT) run a graph and nothing else, so the tensor
contract's pre- and post-processing is written into the graph: `wire_model(name, source)` prepends
`model_io`'s input conversion and appends its output conversion to the source graph, giving a graph
whose inputs and outputs are exactly the tensors `model_io`'s docstring lists (uint8 images in; a
uint8 probability map, top-5 classes per CTC step, or one probability per cut out). A server running
it needs no Python and can place the whole graph on a GPU. The Python-backend stub
(deploy/triton/model.py) and the in-process `engine.OnnxBackend` run the same graphs on the CPU, so
every path reads with the graphs the GPU serves.

Contract: for every model, the wire graph's outputs equal `model_io`'s post-processing of the source
graph's outputs on `model_io`'s pre-processing of the same input, up to float rounding (the detector's
uint8 map by at most one level where the probability sits at a rounding boundary; the reader's top-5
order where two probabilities tie). `tests/unit/test_wire_models.py` checks this on onnxruntime.
"""

from __future__ import annotations

import hashlib
import os
import tempfile
from pathlib import Path
from typing import Any, Literal

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

from services.inference import model_io

WireModelName = Literal["plate_det", "plate_rec", "plate_rec_crnn", "plate_cls"]
WIRE_MODEL_NAMES: tuple[WireModelName, ...] = ("plate_det", "plate_rec", "plate_rec_crnn", "plate_cls")
# Bump when a wrapper below changes. Cached wire graphs are also keyed by this module's and model_io's
# source, so an edit rebuilds them even without a bump.
WIRE_VERSION = 1
# Every inner tensor and node this module adds is named with this prefix; the wire inputs and outputs
# carry the Triton names, and a source graph that already uses one of them is refused.
PREFIX = "wire_"
WIRE_TENSOR_NAMES = ("image", "crop", "prob", "top_indices", "top_probs", "plate_prob")


def wire_model(name: WireModelName, source: Path) -> onnx.ModelProto:
    """The source ONNX graph of model `name` with `model_io`'s pre- and post-processing inside it
    (module docstring). Input and output names are the Triton ones (`image` / `crop`; `prob`,
    `top_indices` and `top_probs`, or `plate_prob`); the first dimension is the batch."""
    if name not in WIRE_MODEL_NAMES:
        raise ValueError(f"unknown model {name!r}: expected one of {WIRE_MODEL_NAMES}")
    model = onnx.load(str(source))
    graph = model.graph
    if len(graph.input) != 1 or len(graph.output) != 1:
        counts = f"{len(graph.input)} / {len(graph.output)}"
        raise ValueError(f"{source}: expected one input and one output, got {counts}")
    source_input, source_output = graph.input[0].name, graph.output[0].name
    taken = {t for node in graph.node for t in node.output} | {i.name for i in graph.initializer}
    # The classifier's export already names its output `plate_prob`, which the wire graph keeps.
    kept = {"plate_prob"} if name == "plate_cls" and source_output == "plate_prob" else set()
    clashes = sorted(
        tensor
        for tensor in taken | {source_input}
        if (tensor in WIRE_TENSOR_NAMES and tensor not in kept) or tensor.startswith(PREFIX)
    )
    if clashes:
        raise ValueError(f"{source}: tensor names {clashes} clash with the wire graph's own")
    opset = next(o.version for o in model.opset_import if o.domain in ("", "ai.onnx"))
    builder = _Builder(opset)
    if name == "plate_det":
        wire_input = helper.make_tensor_value_info("image", TensorProto.UINT8, ["N", "H", "W", 3])
        builder.scale_to_unit(wire_input.name, source_input, transpose=True)
        outputs = [helper.make_tensor_value_info("prob", TensorProto.UINT8, ["N", "H", "W"])]
        builder.probability_map(source_output, "prob")
    elif name == "plate_rec":
        shape: list[str | int] = ["N", model_io.REC_HEIGHT, model_io.REC_WIDTH, 3]
        wire_input = helper.make_tensor_value_info("crop", TensorProto.UINT8, shape)
        builder.scale_to_unit(wire_input.name, source_input, transpose=True)
        outputs = builder.top_classes(source_output)
    elif name == "plate_rec_crnn":
        shape = ["N", model_io.CRNN_HEIGHT, model_io.CRNN_WIDTH]
        wire_input = helper.make_tensor_value_info("crop", TensorProto.UINT8, shape)
        standardized = builder.standardize(wire_input.name, axes=[1, 2])
        builder.unsqueeze(standardized, source_input, axis=1)
        outputs = builder.top_classes(source_output)
    else:  # plate_cls
        shape = ["N", model_io.CLS_HEIGHT, model_io.CLS_WIDTH, 3]
        wire_input = helper.make_tensor_value_info("crop", TensorProto.UINT8, shape)
        standardized = builder.standardize(wire_input.name, axes=[1, 2, 3])
        builder.node("Transpose", [standardized], [source_input], perm=[0, 3, 1, 2])
        outputs = [helper.make_tensor_value_info("plate_prob", TensorProto.FLOAT, ["N", 1])]
        builder.identity_output(source_output, "plate_prob")
    # Graphs are topologically sorted: pre-processing before the source's nodes, post-processing after.
    nodes = builder.pre + list(graph.node) + builder.post
    del graph.node[:]
    graph.node.extend(nodes)
    graph.initializer.extend(builder.initializers)
    del graph.input[:]
    graph.input.append(wire_input)
    del graph.output[:]
    graph.output.extend(outputs)
    # The source's value_info may describe its old input or output with shapes the wire tensors do
    # not have; shape inference re-derives what it needs.
    described = [v for v in graph.value_info if v.name not in (source_input, source_output)]
    del graph.value_info[:]
    graph.value_info.extend(described)
    onnx.checker.check_model(model)
    return model


def build_wire_model(name: WireModelName, source: Path, dest_dir: Path) -> Path:
    """Write `wire_model(name, source)` to `dest_dir` once per content of the source, of this module
    and of model_io, and return its path. Safe to race: each writer renames a complete temporary
    file into place."""
    digest = hashlib.sha256()
    for part in (source, Path(__file__), Path(model_io.__file__)):
        digest.update(part.read_bytes())
    target = dest_dir / f"{name}-wire-v{WIRE_VERSION}-{digest.hexdigest()[:16]}.onnx"
    if target.is_file():
        return target
    dest_dir.mkdir(parents=True, exist_ok=True)
    model = wire_model(name, source)
    handle, temporary = tempfile.mkstemp(dir=dest_dir, suffix=".onnx.tmp")
    os.close(handle)
    try:
        onnx.save(model, temporary)
        os.replace(temporary, target)
    finally:
        if os.path.exists(temporary):
            os.unlink(temporary)
    return target


class _Builder:
    """Collects the nodes and constants added around a source graph, spelled for its opset."""

    def __init__(self, opset: int) -> None:
        self.opset = opset
        # Nodes that feed the source graph's input, and nodes that read its output.
        self.pre: list[onnx.NodeProto] = []
        self.post: list[onnx.NodeProto] = []
        self.initializers: list[TensorProto] = []
        self._stage = "pre"
        self._count = 0

    def node(self, op: str, inputs: list[str], outputs: list[str], **attributes: Any) -> str:
        name = f"{PREFIX}{self._stage}_{self._count}_{op}"
        self._count += 1
        stage = self.pre if self._stage == "pre" else self.post
        stage.append(helper.make_node(op, inputs, outputs, name=name, **attributes))
        return outputs[0]

    def constant(self, value: np.ndarray | np.generic) -> str:
        name = f"{PREFIX}const_{len(self.initializers)}"
        self.initializers.append(numpy_helper.from_array(np.asarray(value), name))
        return name

    def temp(self, label: str) -> str:
        return f"{PREFIX}{self._stage}_{self._count}_{label}"

    def scale_to_unit(self, uint8_input: str, output: str, transpose: bool) -> None:
        """model_io.det_input / rec_input: float32(x) * (2/255) - 1, NHWC -> NCHW."""
        as_float = self.node("Cast", [uint8_input], [self.temp("float")], to=TensorProto.FLOAT)
        scaled = self.node("Mul", [as_float, self.constant(np.float32(2.0 / 255.0))], [self.temp("scaled")])
        shifted_name = self.temp("shifted") if transpose else output
        shifted = self.node("Sub", [scaled, self.constant(np.float32(1.0))], [shifted_name])
        if transpose:
            self.node("Transpose", [shifted], [output], perm=[0, 3, 1, 2])

    def standardize(self, uint8_input: str, axes: list[int]) -> str:
        """model_io._standardize: (x - mean) / (std + STANDARDIZE_FLOOR) per input over `axes`
        (population std)."""
        as_float = self.node("Cast", [uint8_input], [self.temp("float")], to=TensorProto.FLOAT)
        mean = self.reduce_mean(as_float, axes)
        centred = self.node("Sub", [as_float, mean], [self.temp("centred")])
        squared = self.node("Mul", [centred, centred], [self.temp("squared")])
        deviation = self.node("Sqrt", [self.reduce_mean(squared, axes)], [self.temp("std")])
        floor = self.constant(np.float32(model_io.STANDARDIZE_FLOOR))
        divisor = self.node("Add", [deviation, floor], [self.temp("divisor")])
        return self.node("Div", [centred, divisor], [self.temp("standardized")])

    def reduce_mean(self, value: str, axes: list[int]) -> str:
        if self.opset >= 18:  # axes became an input in opset 18
            axes_input = self.constant(np.asarray(axes, np.int64))
            return self.node("ReduceMean", [value, axes_input], [self.temp("mean")], keepdims=1)
        return self.node("ReduceMean", [value], [self.temp("mean")], axes=axes, keepdims=1)

    def unsqueeze(self, value: str, output: str, axis: int) -> None:
        if self.opset >= 13:  # axes became an input in opset 13
            self.node("Unsqueeze", [value, self.constant(np.asarray([axis], np.int64))], [output])
        else:
            self.node("Unsqueeze", [value], [output], axes=[axis])

    def squeeze(self, value: str, output: str, axis: int) -> str:
        if self.opset >= 13:  # axes became an input in opset 13
            return self.node("Squeeze", [value, self.constant(np.asarray([axis], np.int64))], [output])
        return self.node("Squeeze", [value], [output], axes=[axis])

    def probability_map(self, source_output: str, output: str) -> None:
        """model_io.det_output: [N, 1, H, W] -> uint8 [N, H, W] of clip(rint(p * 255), 0, 255)."""
        self._stage = "post"
        squeezed = self.squeeze(source_output, self.temp("map"), axis=1)
        scaled = self.node("Mul", [squeezed, self.constant(np.float32(255.0))], [self.temp("scaled")])
        # ONNX Round, like numpy's rint, rounds halves to even.
        rounded = self.node("Round", [scaled], [self.temp("rounded")])
        low, high = self.constant(np.float32(0.0)), self.constant(np.float32(255.0))
        clipped = self.node("Clip", [rounded, low, high], [self.temp("clipped")])
        self.node("Cast", [clipped], [output], to=TensorProto.UINT8)

    def identity_output(self, source_output: str, output: str) -> None:
        """The source's output under the wire name (nothing to add when it already has it)."""
        self._stage = "post"
        if source_output != output:
            self.node("Identity", [source_output], [output])

    def top_classes(self, source_output: str) -> list[onnx.ValueInfoProto]:
        """model_io.rec_output: softmax [N, T, C] -> the TOP_K classes per step, best first."""
        self._stage = "post"
        k = self.constant(np.asarray([model_io.TOP_K], np.int64))
        indices64 = self.temp("indices")
        self.node("TopK", [source_output, k], ["top_probs", indices64], axis=2, largest=1, sorted=1)
        self.node("Cast", [indices64], ["top_indices"], to=TensorProto.INT32)
        return [
            helper.make_tensor_value_info("top_indices", TensorProto.INT32, ["N", "T", model_io.TOP_K]),
            helper.make_tensor_value_info("top_probs", TensorProto.FLOAT, ["N", "T", model_io.TOP_K]),
        ]
