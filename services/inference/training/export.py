"""Export a plate-CRNN checkpoint (train.py) to ONNX, batch norm folded into the convolutions.

    var/recognizer/venv/bin/python -m services.inference.training.export \
        var/recognizer/run1/best.pkl services/inference/models/plate_crnn.onnx

Graph: `input` float32 [N, 1, 32, 128] (model_io.crnn_input) -> `probs` float32 [N, 32, C]
(softmax per CTC step; class 0 is the blank, then the characters in the `character` metadata
entry, one per line). Opset 13, plain Conv/Relu/MaxPool/Softmax so any onnxruntime runs it.
"""

from __future__ import annotations

import argparse
import json
import pickle
from pathlib import Path

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

from services.inference import model_io
from services.inference.training.train import BN_EPS, CLASSES, LAYERS

OPSET = 13


def fold_batch_norm(params: dict, state: dict) -> tuple[np.ndarray, np.ndarray]:  # type: ignore[type-arg]
    """One conv layer's HWIO weights and its batch norm (train.batch_norm, inference mode) as an OIHW
    convolution weight and bias that compute the same."""
    weight = np.asarray(params["w"], np.float32).transpose(3, 2, 0, 1)  # HWIO -> OIHW
    scale = np.asarray(params["gamma"]) / np.sqrt(np.asarray(state["var"]) + BN_EPS)
    weight = weight * scale[:, None, None, None].astype(np.float32)
    bias = np.asarray(params["beta"]) - np.asarray(state["mean"]) * scale
    return weight, bias


def build_graph(params: dict, state: dict) -> onnx.ModelProto:  # type: ignore[type-arg]
    nodes = []
    initializers = []
    current = "input"
    for name, kh, kw, _, _, ph, pw, pool in LAYERS:
        if name == "out":
            weight = np.asarray(params[name]["w"], np.float32).transpose(3, 2, 0, 1)  # HWIO -> OIHW
            bias = np.asarray(params[name]["b"], np.float32)
        else:
            weight, bias = fold_batch_norm(params[name], state[name])
        initializers.append(numpy_helper.from_array(weight.astype(np.float32), f"{name}_w"))
        initializers.append(numpy_helper.from_array(bias.astype(np.float32), f"{name}_b"))
        conv_out = f"{name}_conv"
        nodes.append(
            helper.make_node(
                "Conv",
                [current, f"{name}_w", f"{name}_b"],
                [conv_out],
                kernel_shape=[kh, kw],
                pads=[ph, pw, ph, pw],
            )
        )
        current = conv_out
        if name == "out":
            break
        nodes.append(helper.make_node("Relu", [current], [f"{name}_relu"]))
        current = f"{name}_relu"
        if pool is not None:
            nodes.append(
                helper.make_node(
                    "MaxPool", [current], [f"{name}_pool"], kernel_shape=list(pool), strides=list(pool)
                )
            )
            current = f"{name}_pool"
    initializers.append(numpy_helper.from_array(np.array([2], np.int64), "squeeze_axes"))
    nodes.append(helper.make_node("Squeeze", [current, "squeeze_axes"], ["logits_nct"]))
    nodes.append(helper.make_node("Transpose", ["logits_nct"], ["logits"], perm=[0, 2, 1]))
    nodes.append(helper.make_node("Softmax", ["logits"], ["probs"], axis=2))
    graph = helper.make_graph(
        nodes,
        "plate_crnn",
        [
            helper.make_tensor_value_info(
                "input", TensorProto.FLOAT, ["N", 1, model_io.CRNN_HEIGHT, model_io.CRNN_WIDTH]
            )
        ],
        [helper.make_tensor_value_info("probs", TensorProto.FLOAT, ["N", model_io.CRNN_STEPS, len(CLASSES)])],
        initializers,
    )
    model = helper.make_model(
        graph, opset_imports=[helper.make_opsetid("", OPSET)], producer_name="platewatch"
    )
    model.ir_version = 8
    helper.set_model_props(model, {"character": "\n".join(CLASSES[1:]), "licence": "Apache-2.0"})
    onnx.checker.check_model(model)
    return model


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("checkpoint", type=Path)
    parser.add_argument("output", type=Path)
    args = parser.parse_args()
    with args.checkpoint.open("rb") as handle:
        ckpt = pickle.load(handle)
    model = build_graph(ckpt["params"], ckpt["state"])
    args.output.parent.mkdir(parents=True, exist_ok=True)
    onnx.save(model, str(args.output))
    print(json.dumps({"output": str(args.output), "bytes": args.output.stat().st_size, "step": ckpt["step"]}))


if __name__ == "__main__":
    main()
