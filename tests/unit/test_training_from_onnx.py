"""Fine-tuning a shipped plate CRNN without its training checkpoint
(`services/inference/training/from_onnx.py`), and the premise of `train --invert-share` (an inverted
crop is the negated model input)."""

from __future__ import annotations

import numpy as np
import onnx
import onnxruntime as ort
from onnx import numpy_helper

from services.inference import model_io, postprocess
from services.inference.training import batches
from services.inference.training.from_onnx import BN_EPS, checkpoint_from_onnx
from services.inference.triton_repo import CRNN_ONNX


def _inputs(count: int, seed: int) -> np.ndarray:
    """Grey noise with a dark bar, as CRNN inputs [N, 1, 32, 128]."""
    rng = np.random.default_rng(seed)
    grey = rng.integers(90, 255, (count, model_io.CRNN_HEIGHT, model_io.CRNN_WIDTH), dtype=np.uint8)
    grey[:, 10:22, 20:100] //= 4
    return model_io.crnn_input(grey)


def _refolded(model: onnx.ModelProto, checkpoint: dict) -> onnx.ModelProto:  # type: ignore[type-arg]
    """`model` with its weights replaced by the checkpoint's, folded as export.fold_batch_norm folds
    them (export.py itself needs jax, which this venv lacks)."""
    folded = {}
    for name, layer in checkpoint["params"].items():
        weight = np.asarray(layer["w"]).transpose(3, 2, 0, 1)  # HWIO -> OIHW
        if "b" in layer:
            folded[name] = (weight, np.asarray(layer["b"]))
            continue
        state = checkpoint["state"][name]
        scale = layer["gamma"] / np.sqrt(state["var"] + BN_EPS)
        folded[name] = (weight * scale[:, None, None, None], layer["beta"] - state["mean"] * scale)
    copy = onnx.ModelProto()
    copy.CopyFrom(model)
    for init in copy.graph.initializer:
        name, _, kind = init.name.rpartition("_")
        if name in folded and kind in ("w", "b"):
            value = folded[name][0 if kind == "w" else 1].astype(np.float32)
            init.CopyFrom(numpy_helper.from_array(value, init.name))
    return copy


def _run(model: onnx.ModelProto, inputs: np.ndarray) -> np.ndarray:
    session = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    return session.run(["probs"], {"input": inputs})[0]


def test_a_checkpoint_made_from_the_shipped_onnx_computes_what_it_computes() -> None:
    model = onnx.load(str(CRNN_ONNX))
    calibration = _inputs(16, 1)
    checkpoint = checkpoint_from_onnx(model, calibration)
    assert checkpoint["step"] == 0 and checkpoint["opt_state"] is None
    first = checkpoint["params"]["c1"]
    assert first["w"].shape[:3] == (3, 3, 1)  # HWIO, as train.init_params
    assert set(checkpoint["state"]) == set(checkpoint["params"]) - {"out"}
    # Batch norm in training mode on the calibration batch keeps each layer's output: the running
    # statistics are the batch's, gamma its standard deviation.
    variance = checkpoint["state"]["c1"]["var"]
    assert np.all(variance > 0)
    np.testing.assert_allclose(first["gamma"], np.sqrt(variance + BN_EPS), rtol=1e-6)
    # The first layer's convolution without bias, computed here (3x3, padding 1, one input channel):
    # its per-channel mean over the calibration batch is the running mean.
    padded = np.pad(calibration[:, 0], ((0, 0), (1, 1), (1, 1)))
    windows = np.lib.stride_tricks.sliding_window_view(padded, (3, 3), axis=(1, 2))  # N, H, W, 3, 3
    convolved = np.einsum("nhwij,ijc->nhwc", windows, first["w"][:, :, 0, :])
    np.testing.assert_allclose(checkpoint["state"]["c1"]["mean"], convolved.mean(axis=(0, 1, 2)), atol=1e-4)
    np.testing.assert_allclose(variance, convolved.var(axis=(0, 1, 2)), rtol=1e-3, atol=1e-5)
    assert checkpoint["args"]["width"] == "1.5"  # gpu-w15: 24 channels in its first layer, 16 at width 1
    # Folded back (as export.py folds), it is the model it came from, on other inputs too.
    others = _inputs(8, 2)
    np.testing.assert_allclose(_run(_refolded(model, checkpoint), others), _run(model, others), atol=1e-5)


def test_an_inverted_crop_is_the_negated_model_input() -> None:
    rng = np.random.default_rng(5)
    crop = rng.integers(0, 255, (40, 150, 3), dtype=np.uint8)
    plain, inverted = batches.to_input([crop, 255 - crop])
    # To within the rounding of the grey conversion and the resize: about one grey level, over the
    # crop's contrast (its standard deviation plus 8).
    contrast = float(np.std(postprocess.crnn_input(crop))) + 8.0
    np.testing.assert_allclose(inverted, -plain, atol=1.01 / contrast)
    assert not np.allclose(inverted, plain, atol=1.01 / contrast)
