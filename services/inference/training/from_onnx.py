"""A training checkpoint (train.py's `latest.pkl`) from an exported plate-CRNN ONNX, so that a shipped
model can be fine-tuned where its training checkpoint is gone (gpu-w15's stayed on the lent GPU).

    var/recognizer/venv/bin/python -m services.inference.training.from_onnx \
        services/inference/models/plate_crnn.onnx var/recognizer/ft1/latest.pkl

export.py folds each layer's batch norm into its convolution (weight W, bias b). Here each layer gets
back W as its weight and a batch norm that computes the same: the running mean and variance are
the statistics of the layer's convolution (without bias) over a calibration batch of rendered
plates, gamma is that standard deviation and beta that mean plus b. So in inference mode the
checkpoint computes exactly what the ONNX does, and in training mode, where batch norm uses each
batch's own statistics, it computes about the same on batches like the calibration one.

The checkpoint starts at step 0 with a fresh optimizer: resume it with `train --out <its folder>`,
with a new `--seed` so that the batches differ from those the model was trained on.
Needs numpy, onnx and onnxruntime only (both venvs have them); the renderer for the calibration batch.
"""

from __future__ import annotations

import argparse
import json
import pickle
from pathlib import Path
from typing import Any

import numpy as np
import onnx
import onnxruntime as ort
from onnx import helper, numpy_helper

# train.BN_EPS and the first of train.LAYERS' channel counts (not imported: train.py needs jax, which
# the product venv does not have).
BN_EPS = 1e-5
FIRST_LAYER_CHANNELS = 16
CALIBRATION_SEED = 20261205
CALIBRATION_SIZE = 256


def _conv_names(model: onnx.ModelProto) -> list[str]:
    """The layer names, in order, of the Conv nodes export.build_graph writes (`<name>_conv`)."""
    return [node.output[0].removesuffix("_conv") for node in model.graph.node if node.op_type == "Conv"]


def layer_statistics(model: onnx.ModelProto, inputs: np.ndarray) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """{hidden layer: (mean, variance) per channel over N, H, W} of each hidden convolution's output
    (its bias included, as the graph computes it), for `inputs` (float32 [N, 1, 32, 128],
    model_io.crnn_input)."""
    hidden = _conv_names(model)[:-1]
    probe = onnx.ModelProto()
    probe.CopyFrom(model)
    for name in hidden:
        probe.graph.output.append(helper.make_tensor_value_info(f"{name}_conv", onnx.TensorProto.FLOAT, None))
    session = ort.InferenceSession(probe.SerializeToString(), providers=["CPUExecutionProvider"])
    outputs = session.run([f"{name}_conv" for name in hidden], {"input": inputs})
    return {
        name: (output.mean(axis=(0, 2, 3)), output.var(axis=(0, 2, 3)))
        for name, output in zip(hidden, outputs, strict=True)
    }


def checkpoint_from_onnx(model: onnx.ModelProto, inputs: np.ndarray) -> dict[str, Any]:
    """train.py's checkpoint dict (params, state, step 0, no optimizer state, the width in args)
    computing what `model` computes in inference mode, its batch norms calibrated on `inputs` (see
    the module docstring)."""
    weights = {init.name: numpy_helper.to_array(init) for init in model.graph.initializer}
    statistics = layer_statistics(model, inputs)
    params: dict[str, Any] = {}
    state: dict[str, Any] = {}
    for name in _conv_names(model):
        weight = weights[f"{name}_w"].transpose(2, 3, 1, 0).astype(np.float32)  # OIHW -> HWIO
        bias = weights[f"{name}_b"].astype(np.float32)
        if name not in statistics:  # the output layer: no batch norm
            params[name] = {"w": weight, "b": bias}
            continue
        # The graph's output is the convolution plus the bias: the convolution alone has the same
        # variance and its mean less the bias, and the batch norm adds the bias back in beta.
        mean, variance = (value.astype(np.float32) for value in statistics[name])
        params[name] = {"w": weight, "gamma": np.sqrt(variance + BN_EPS), "beta": mean}
        state[name] = {"mean": mean - bias, "var": variance}
    # train.py's --width of a fresh model, which its resume message compares with its own --width.
    width = params["c1"]["w"].shape[-1] / FIRST_LAYER_CHANNELS
    return {
        "params": params,
        "state": state,
        "opt_state": None,
        "step": 0,
        "best_acc": -1.0,
        "args": {"width": f"{width:g}"},
    }


def calibration_inputs(count: int = CALIBRATION_SIZE, seed: int = CALIBRATION_SEED) -> np.ndarray:
    """`count` rendered training crops (render.render_sample) as CRNN inputs [N, 1, 32, 128]: the
    training batches' own input (batches.to_input, channels last) with channels first, as ONNX takes."""
    from services.inference.training import batches, render

    rng = np.random.default_rng(seed)
    fonts = render.find_fonts()
    crops = [render.render_sample(rng, fonts)[0] for _ in range(count)]
    return np.ascontiguousarray(batches.to_input(crops).transpose(0, 3, 1, 2))


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("onnx_model", type=Path)
    parser.add_argument("checkpoint", type=Path, help="where to write the checkpoint (e.g. <run>/latest.pkl)")
    args = parser.parse_args()
    if args.checkpoint.exists():
        parser.error(f"{args.checkpoint} exists: a run there would resume it")
    checkpoint = checkpoint_from_onnx(onnx.load(str(args.onnx_model)), calibration_inputs())
    checkpoint["args"]["from_onnx"] = str(args.onnx_model)
    args.checkpoint.parent.mkdir(parents=True, exist_ok=True)
    with args.checkpoint.open("wb") as handle:
        pickle.dump(checkpoint, handle)
    print(json.dumps({"checkpoint": str(args.checkpoint), "layers": len(checkpoint["params"])}))


if __name__ == "__main__":
    main()
