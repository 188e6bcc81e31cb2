"""Model-side tensor contracts: what crosses the process boundary, and the numpy reference of the
conversions between it and each model's own float tensors.

Every backend (in-process onnxruntime, Triton's Python or onnxruntime backend) runs the models as
their wire graphs (services/inference/wire_models.py), which hold these conversions inside the ONNX;
tests/unit/test_wire_models.py checks the graphs against the functions here. Training and the
detector's int8 calibration feed the source graphs through these functions directly.

Wire format (what crosses the process boundary, kept small on purpose):
- plate_det: in `image` UINT8 [N, H, W, 3] BGR (H, W multiples of 32, equal within a batch);
  out `prob` UINT8 [N, H, W], the DB text probability map scaled to 0..255.
- plate_rec: in `crop` UINT8 [N, 48, 320, 3] BGR, text left-aligned and padded with grey 128;
  out `top_indices` INT32 [N, T, K] and `top_probs` FP32 [N, T, K], the K most likely classes per
  CTC time step (T = 320 / 8 = 40), best first. Class 0 is the CTC blank.
- plate_rec_crnn: in `crop` UINT8 [N, 32, 128] grey; out `top_indices` INT32 and `top_probs` FP32
  [N, 32, K], as plate_rec's.
- plate_cls: in `crop` UINT8 [N, 32, 128, 3] BGR; out `plate_prob` FP32 [N, 1].
"""

from __future__ import annotations

import numpy as np

REC_HEIGHT = 48
REC_WIDTH = 320
REC_PAD_VALUE = 128
TOP_K = 5


def det_input(images: np.ndarray) -> np.ndarray:
    """UINT8 NHWC BGR -> the float NCHW tensor PP-OCRv4 det expects ((x/255 - 0.5) / 0.5)."""
    tensor = images.astype(np.float32) * (2.0 / 255.0) - 1.0
    return np.ascontiguousarray(tensor.transpose(0, 3, 1, 2))


def det_output(prob: np.ndarray) -> np.ndarray:
    """Float [N, 1, H, W] probability map -> UINT8 [N, H, W] (a 4x smaller reply)."""
    return np.clip(np.rint(prob[:, 0] * 255.0), 0, 255).astype(np.uint8)


def rec_input(crops: np.ndarray) -> np.ndarray:
    """UINT8 NHWC BGR crops -> the float NCHW tensor PP-OCRv4 rec expects."""
    tensor = crops.astype(np.float32) * (2.0 / 255.0) - 1.0
    return np.ascontiguousarray(tensor.transpose(0, 3, 1, 2))


def rec_output(probs: np.ndarray, k: int = TOP_K) -> tuple[np.ndarray, np.ndarray]:
    """Softmax [N, T, C] -> (INT32 indices, FP32 probs) of the top k classes per step, best first."""
    top = np.argpartition(-probs, k - 1, axis=2)[:, :, :k]
    top_probs = np.take_along_axis(probs, top, axis=2)
    order = np.argsort(-top_probs, axis=2, kind="stable")
    indices = np.take_along_axis(top, order, axis=2).astype(np.int32)
    return indices, np.take_along_axis(top_probs, order, axis=2).astype(np.float32)


# The plate CRNN (services/inference/training): grey crops squeezed to a fixed 32 x 128, each
# normalized by its own mean and contrast (robust to night and glare); 32 CTC steps out.
CRNN_HEIGHT = 32
CRNN_WIDTH = 128
CRNN_STEPS = 32


def crnn_input(crops: np.ndarray) -> np.ndarray:
    """UINT8 [N, 32, 128] grey crops -> float32 [N, 1, 32, 128], zero mean and unit contrast each."""
    return np.ascontiguousarray(_standardize(crops, (1, 2))[:, None])


# Added to a cut's standard deviation before dividing by it: keeps flat, textureless inputs from
# being blown up into noise.
STANDARDIZE_FLOOR = 8.0


def _standardize(images: np.ndarray, axes: tuple[int, ...]) -> np.ndarray:
    """Float32 `images`, each with zero mean and unit contrast over `axes` (std + STANDARDIZE_FLOOR)."""
    tensor = images.astype(np.float32)
    mean = tensor.mean(axis=axes, keepdims=True)
    std = tensor.std(axis=axes, keepdims=True)
    return (tensor - mean) / (std + STANDARDIZE_FLOOR)


# The plate classifier (services/inference/training/classifier.py): is a text line a plate's
# registration, or a badge, sign, sticker or overlay? Colour cuts of the line with its surroundings
# (postprocess.CLASSIFIER_MARGINS) squeezed to 32 x 128; one probability out per cut.
CLS_HEIGHT = 32
CLS_WIDTH = 128


def cls_input(crops: np.ndarray) -> np.ndarray:
    """UINT8 [N, 32, 128, 3] BGR cuts -> float32 [N, 3, 32, 128], zero mean and unit contrast each
    (over all three channels, so colour differences survive)."""
    return np.ascontiguousarray(_standardize(crops, (1, 2, 3)).transpose(0, 3, 1, 2))


def cls_output(probs: np.ndarray) -> np.ndarray:
    """The ONNX's [N, 1] probabilities -> FP32 [N]."""
    return np.ascontiguousarray(probs.reshape(-1).astype(np.float32))
