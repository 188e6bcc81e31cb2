"""Builds the Triton model repository (plate_det, plate_rec, plate_rec_crnn, plate_cls) from the
templates in deploy/triton/, for one of two Triton backends:

- `python` (default): each model is `model.py` + its wire graph; the Python-backend stub runs the
  graph on onnxruntime's CPU provider. The only backend in the nvidia-pytriton wheel's
  `tritonserver`, so the one this machine and the tests run.
- `onnxruntime`: the wire graph alone, served by Triton's compiled onnxruntime backend on GPUs
  (`instance_kind="gpu"`) or CPUs. What the Triton image (Dockerfile target `triton`) serves.

Either way `model.onnx` is the model's wire graph (services/inference/wire_models.py: model_io's pre-
and post-processing inside the ONNX), the graph the in-process backend runs too, so clients see the
same tensors and the same numbers from every backend.

The ONNX weights are PP-OCRv4 (PaddleOCR, Apache-2.0) as shipped in the rapidocr_onnxruntime wheel;
they are copied from the installed wheel at build time and never committed. The plate CRNN
(plate_rec_crnn) and the plate classifier (plate_cls) are ours, trained here, committed under
services/inference/models/ (a few MB).
"""

from __future__ import annotations

import filecmp
import shutil
from dataclasses import dataclass
from pathlib import Path
from string import Template
from typing import Literal

import rapidocr_onnxruntime

from services.common.settings import REPO_ROOT, CommonSettings
from services.inference import model_io
from services.inference.det_build import DEFAULT_DET_PRECISION, DET_PRECISIONS, DetPrecision, det_model
from services.inference.wire_models import WireModelName, build_wire_model

TEMPLATES_DIR = REPO_ROOT / "deploy" / "triton"
DEFAULT_REPOSITORY = REPO_ROOT / "var" / "triton" / "models"
WHEEL_MODELS = Path(rapidocr_onnxruntime.__file__).parent / "models"
DET_ONNX = WHEEL_MODELS / "ch_PP-OCRv4_det_infer.onnx"
REC_ONNX = WHEEL_MODELS / "ch_PP-OCRv4_rec_infer.onnx"
CRNN_ONNX = Path(__file__).parent / "models" / "plate_crnn.onnx"
CLS_ONNX = Path(__file__).parent / "models" / "plate_cls.onnx"
MODEL_FILES: dict[WireModelName, Path] = {
    "plate_det": DET_ONNX,
    "plate_rec": REC_ONNX,
    "plate_rec_crnn": CRNN_ONNX,
    "plate_cls": CLS_ONNX,
}


ServingBackend = Literal["python", "onnxruntime"]
SERVING_BACKENDS: tuple[ServingBackend, ...] = ("python", "onnxruntime")
InstanceKind = Literal["cpu", "gpu"]
INSTANCE_KINDS: tuple[InstanceKind, ...] = ("cpu", "gpu")


@dataclass(frozen=True)
class RepositoryOptions:
    """Knobs rendered into config.pbtxt."""

    det_max_batch_size: int = 4
    rec_max_batch_size: int = 16
    queue_delay_us: int = 2000
    # Model instances per device: the readers and classifier, and the detector, which does most of
    # the work (two instances overlap two frames' detection).
    instance_count: int = 1
    det_instance_count: int = 2
    # onnxruntime intra-op threads per model instance (CPU instances only). One: parallelism comes
    # from instances and concurrent requests. On the 2-core machine, `bench triton --concurrency 8`
    # read 11.65 frames/s with 2 threads and one detector instance, 20.2 with 1 thread, and 25.95
    # with 1 thread and two detector instances (session 17; README, "Through Triton").
    threads: int = 1
    # Which detector build plate_det serves (services/inference/det_build.py; PLATEWATCH_DET_PRECISION).
    # On GPUs use fp32: the int8 build's quantized operators are onnxruntime CPU kernels.
    det_precision: DetPrecision = DEFAULT_DET_PRECISION
    backend: ServingBackend = "python"
    # Where the model instances run. The python backend runs onnxruntime's CPU provider only.
    instance_kind: InstanceKind = "cpu"

    def __post_init__(self) -> None:
        if min(self.threads, self.instance_count, self.det_instance_count) < 1:
            raise ValueError("threads and instance counts must be at least 1")
        if self.det_precision not in DET_PRECISIONS:
            raise ValueError(f"det_precision {self.det_precision!r}: expected one of {DET_PRECISIONS}")
        if self.backend not in SERVING_BACKENDS:
            raise ValueError(f"backend {self.backend!r}: expected one of {SERVING_BACKENDS}")
        if self.instance_kind not in INSTANCE_KINDS:
            raise ValueError(f"instance_kind {self.instance_kind!r}: expected one of {INSTANCE_KINDS}")
        if self.backend == "python" and self.instance_kind == "gpu":
            raise ValueError(
                "the python backend's models run on the CPU: serve GPUs with backend='onnxruntime'"
            )
        if self.instance_kind == "gpu" and self.det_precision == "int8":
            raise ValueError(
                "the int8 detector build runs on onnxruntime's CPU kernels: use det_precision='fp32' on GPUs"
            )

    def parameters(self) -> str:
        """The config's `parameters` block: onnxruntime threads for CPU instances (the two backends
        name the key differently), none for GPU ones."""
        if self.instance_kind == "gpu":
            return ""
        key = "intra_op_num_threads" if self.backend == "python" else "intra_op_thread_count"
        return f'parameters: {{\n  key: "{key}"\n  value: {{ string_value: "{self.threads}" }}\n}}'


def prepare_model_repository(
    dest: Path = DEFAULT_REPOSITORY, options: RepositoryOptions | None = None
) -> Path:
    """Write every model of MODEL_FILES under `dest` and return `dest`: `<model>/config.pbtxt`,
    `<model>/1/model.onnx` (the wire graph, built once per source under the var directory's
    `models/`), and `1/model.py` for the python backend. Idempotent: files are overwritten, ONNX
    copies skipped when identical (compared by content: a retrained CRNN has the same size as the old
    one)."""
    options = options or RepositoryOptions()
    values = {
        "det_max_batch_size": options.det_max_batch_size,
        "rec_max_batch_size": options.rec_max_batch_size,
        "queue_delay_us": options.queue_delay_us,
        "instance_count": options.instance_count,
        "det_instance_count": options.det_instance_count,
        "backend": options.backend,
        "instance_kind": f"KIND_{options.instance_kind.upper()}",
        "parameters": options.parameters(),
        "top_k": model_io.TOP_K,
    }
    model_source = (TEMPLATES_DIR / "model.py").read_text()
    for name, onnx_path in MODEL_FILES.items():
        if not onnx_path.is_file():
            raise FileNotFoundError(f"{onnx_path} missing: is rapidocr-onnxruntime==1.4.4 installed?")
        if name == "plate_det":
            onnx_path = det_model(options.det_precision)
        version_dir = dest / name / "1"
        version_dir.mkdir(parents=True, exist_ok=True)
        template = Template((TEMPLATES_DIR / name / "config.pbtxt").read_text())
        (dest / name / "config.pbtxt").write_text(template.substitute(values))
        # Left by repositories rendered before the stubs ran wire graphs.
        (version_dir / "model_io.py").unlink(missing_ok=True)
        if options.backend == "python":
            (version_dir / "model.py").write_text(model_source)
        else:
            (version_dir / "model.py").unlink(missing_ok=True)
        onnx_path = build_wire_model(name, onnx_path, CommonSettings().var_dir / "models")
        target = version_dir / "model.onnx"
        if not target.exists() or not filecmp.cmp(target, onnx_path, shallow=False):
            shutil.copyfile(onnx_path, target)
    return dest
