"""The plate models on a GPU: their outputs against onnxruntime on the CPU, and their throughput.

Not part of the product or of CI: it needs PyTorch with CUDA and onnx2torch (Apache-2.0), which the
product does not depend on. It ran once on an NVIDIA H200 lent to one session (README, "GPUs per
thousand cameras"):

    python3 -m loadtest.gpu_models --det var/models/plate_det-fp32-v1-<hash>.onnx --out gpu.json

The three ONNX graphs the product serves (the exact fp32 detector build, `det_build`; the plate CRNN;
the plate classifier) are converted to PyTorch modules with onnx2torch and run on the GPU in float32
and under float16 autocast. Inputs are the bundled demo clip's frames on the 960x544 detector canvas
(`postprocess.letterbox`) and crops cut from them, uploaded as uint8 and normalized on the GPU the
way `model_io` does on the CPU. Printed (and written to --out): the largest difference from
onnxruntime's CPU output for each model and precision (for the detector also the share of DB-map
pixels that fall on the other side of the box threshold), and items per second at several batch
sizes, timed with CUDA synchronization after warm-up.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import onnx
import onnxruntime as ort
import torch
from onnx2torch import convert

from services.inference import model_io, postprocess

REPO_ROOT = Path(__file__).resolve().parents[1]
DEMO_CLIP = REPO_ROOT / "deploy" / "demo" / "footage" / "demo.mp4"
MODELS = REPO_ROOT / "services" / "inference" / "models"
DB_THRESHOLD = 0.3


def for_onnx2torch(path: Path) -> onnx.ModelProto:
    """The model as onnx2torch can take it: Constant nodes turned into initializers (paddle2onnx wrote
    PP-OCRv4's weights as Constant nodes, and onnx2torch looks for convolution weights among the
    initializers) and GlobalMaxPool spelled as ReduceMax over the spatial axes."""
    model = onnx.load(str(path))
    kept = []
    for node in model.graph.node:
        value = next((a.t for a in node.attribute if a.name == "value"), None)
        if node.op_type == "Constant" and value is not None:
            tensor = onnx.TensorProto()
            tensor.CopyFrom(value)
            tensor.name = node.output[0]
            model.graph.initializer.append(tensor)
            continue
        if node.op_type == "GlobalMaxPool":  # onnx2torch 1.5 has no converter for it
            node.op_type = "ReduceMax"
            node.attribute.extend([onnx.helper.make_attribute("axes", [2, 3])])
            node.attribute.extend([onnx.helper.make_attribute("keepdims", 1)])
        kept.append(node)
    del model.graph.node[:]
    model.graph.node.extend(kept)
    return model


def demo_canvases(limit: int) -> np.ndarray:
    """Up to `limit` frames of the demo clip on the 960x544 detector canvas, UINT8 [N, 544, 960, 3]."""
    capture = cv2.VideoCapture(str(DEMO_CLIP))
    frames = []
    while len(frames) < limit:
        ok, frame = capture.read()
        if not ok:
            break
        frames.append(postprocess.letterbox(frame, 960, 544)[0])
    capture.release()
    return np.stack(frames)


def crops_of(canvases: np.ndarray, count: int, seed: int = 0) -> np.ndarray:
    """`count` BGR 32x128 windows cut from the canvases at random."""
    rng = np.random.default_rng(seed)
    out = np.empty((count, 32, 128, 3), np.uint8)
    for i in range(count):
        frame = canvases[int(rng.integers(len(canvases)))]
        y, x = int(rng.integers(0, frame.shape[0] - 64)), int(rng.integers(0, frame.shape[1] - 256))
        out[i] = cv2.resize(frame[y : y + 64, x : x + 256], (128, 32), interpolation=cv2.INTER_AREA)
    return out


def on_gpu_det(images: torch.Tensor) -> torch.Tensor:
    """model_io.det_input on the GPU: UINT8 NHWC -> float NCHW in [-1, 1]."""
    return (images.float() * (2.0 / 255.0) - 1.0).permute(0, 3, 1, 2).contiguous()


def _standardized(images: torch.Tensor, dims: tuple[int, ...]) -> torch.Tensor:
    """model_io._standardize on the GPU: each image to zero mean and unit contrast over `dims`."""
    x = images.float()
    mean = x.mean(dim=dims, keepdim=True)
    std = x.std(dim=dims, keepdim=True, unbiased=False)
    return (x - mean) / (std + 8.0)


def on_gpu_crnn(grey: torch.Tensor) -> torch.Tensor:
    """model_io.crnn_input on the GPU: UINT8 [N, 32, 128] -> float [N, 1, 32, 128]."""
    return _standardized(grey, (1, 2))[:, None]


def on_gpu_cls(cuts: torch.Tensor) -> torch.Tensor:
    """model_io.cls_input on the GPU: UINT8 [N, 32, 128, 3] -> float [N, 3, 32, 128]."""
    return _standardized(cuts, (1, 2, 3)).permute(0, 3, 1, 2).contiguous()


def throughput(module: torch.nn.Module, prepare: Any, batch: np.ndarray, half: bool, repeats: int) -> float:
    """Items per second for uint8 `batch` (upload, normalization and the model), after warm-up."""

    def once() -> None:
        with torch.inference_mode(), torch.autocast("cuda", dtype=torch.float16, enabled=half):
            module(prepare(torch.from_numpy(batch).cuda(non_blocking=True)))

    for _ in range(3):
        once()
    torch.cuda.synchronize()
    started = time.perf_counter()
    for _ in range(repeats):
        once()
    torch.cuda.synchronize()
    return round(len(batch) * repeats / (time.perf_counter() - started), 1)


def compare(
    name: str,
    onnx_path: Path,
    prepare_cpu: Any,
    prepare_gpu: Any,
    sample: np.ndarray,
    batches: dict[int, np.ndarray],
) -> dict[str, Any]:
    session = ort.InferenceSession(str(onnx_path), providers=["CPUExecutionProvider"])
    reference = session.run(None, {session.get_inputs()[0].name: prepare_cpu(sample)})[0]
    module = convert(for_onnx2torch(onnx_path)).cuda().eval()
    result: dict[str, Any] = {"model": name, "file": onnx_path.name}
    for label, half in (("fp32", False), ("fp16", True)):
        with torch.inference_mode(), torch.autocast("cuda", dtype=torch.float16, enabled=half):
            out = module(prepare_gpu(torch.from_numpy(sample).cuda())).float().cpu().numpy()
        entry: dict[str, Any] = {"max_abs_diff": float(np.abs(out - reference).max())}
        if name == "plate_det":
            entry["db_pixels_flipped"] = float(((out > DB_THRESHOLD) != (reference > DB_THRESHOLD)).mean())
        if name == "plate_rec_crnn":
            entry["argmax_agreement"] = float((out.argmax(-1) == reference.argmax(-1)).mean())
        entry["items_per_s"] = {
            str(size): throughput(module, prepare_gpu, batch, half, repeats=20 if size <= 32 else 10)
            for size, batch in batches.items()
        }
        result[label] = entry
    print(json.dumps(result), flush=True)
    return result


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--det", type=Path, required=True, help="the fp32 detector build (det_build)")
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args()
    # Strict float32: no TF32 in convolutions or matrix products (PyTorch's default for convolutions).
    torch.backends.cudnn.allow_tf32 = torch.backends.cuda.matmul.allow_tf32 = False
    canvases = demo_canvases(64)
    crops = crops_of(canvases, 1024)
    grey = np.stack([cv2.cvtColor(c, cv2.COLOR_BGR2GRAY) for c in crops])
    report: dict[str, Any] = {
        "gpu": torch.cuda.get_device_name(0),
        "torch": torch.__version__,
        "onnxruntime_reference": ort.__version__,
        "frames": len(canvases),
        "models": [
            compare(
                "plate_det",
                args.det,
                model_io.det_input,
                on_gpu_det,
                canvases[:2],
                {n: canvases[:n] for n in (1, 8, 32, 64) if n <= len(canvases)},
            ),
            compare(
                "plate_rec_crnn",
                MODELS / "plate_crnn.onnx",
                model_io.crnn_input,
                on_gpu_crnn,
                grey[:64],
                {n: grey[:n] for n in (16, 256, 1024)},
            ),
            compare(
                "plate_cls",
                MODELS / "plate_cls.onnx",
                model_io.cls_input,
                on_gpu_cls,
                crops[:64],
                {n: crops[:n] for n in (16, 256, 1024)},
            ),
        ],
    }
    if args.out is not None:
        args.out.write_text(json.dumps(report, indent=1))


if __name__ == "__main__":
    main()
