"""Builds the Triton model repository for plate_det and plate_rec from the templates in deploy/triton/.

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

import rapidocr_onnxruntime

from services.common.settings import REPO_ROOT
from services.inference import model_io
from services.inference.det_build import DEFAULT_DET_PRECISION, DetPrecision, det_model

TEMPLATES_DIR = REPO_ROOT / "deploy" / "triton"
DEFAULT_REPOSITORY = REPO_ROOT / "var" / "triton" / "models"
WHEEL_MODELS = Path(rapidocr_onnxruntime.__file__).parent / "models"
DET_ONNX = WHEEL_MODELS / "ch_PP-OCRv4_det_infer.onnx"
REC_ONNX = WHEEL_MODELS / "ch_PP-OCRv4_rec_infer.onnx"
CRNN_ONNX = Path(__file__).parent / "models" / "plate_crnn.onnx"
CLS_ONNX = Path(__file__).parent / "models" / "plate_cls.onnx"
MODEL_FILES = {
    "plate_det": DET_ONNX,
    "plate_rec": REC_ONNX,
    "plate_rec_crnn": CRNN_ONNX,
    "plate_cls": CLS_ONNX,
}


@dataclass(frozen=True)
class RepositoryOptions:
    """Knobs rendered into config.pbtxt."""

    det_max_batch_size: int = 4
    rec_max_batch_size: int = 16
    queue_delay_us: int = 2000
    instance_count: int = 1
    # onnxruntime intra-op threads per model instance.
    threads: int = 2
    # Which detector build plate_det serves (services/inference/det_build.py; PLATEWATCH_DET_PRECISION).
    det_precision: DetPrecision = DEFAULT_DET_PRECISION


def prepare_model_repository(
    dest: Path = DEFAULT_REPOSITORY, options: RepositoryOptions | None = None
) -> Path:
    """Write `<dest>/<model>/{config.pbtxt,1/model.py,1/model_io.py,1/model.onnx}` for every model in
    MODEL_FILES and return `dest`. Idempotent: files are overwritten, ONNX copies skipped when
    identical (compared by content: a retrained CRNN has the same size as the old one)."""
    options = options or RepositoryOptions()
    values = {
        "det_max_batch_size": options.det_max_batch_size,
        "rec_max_batch_size": options.rec_max_batch_size,
        "queue_delay_us": options.queue_delay_us,
        "instance_count": options.instance_count,
        "threads": options.threads,
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
        (version_dir / "model.py").write_text(model_source)
        shutil.copyfile(model_io.__file__, version_dir / "model_io.py")
        target = version_dir / "model.onnx"
        if not target.exists() or not filecmp.cmp(target, onnx_path, shallow=False):
            shutil.copyfile(onnx_path, target)
    return dest
