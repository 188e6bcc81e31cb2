"""`platewatch triton start|stop|repository` (a local tritonserver for the plate models, or a model
repository for another Triton), `platewatch recognize
IMAGE...` (read plates from image files, services/inference/recognize.py), `platewatch bench
accuracy DIR` (the whole read path on a labelled folder, services/inference/accuracy.py) and
`platewatch bench recognition` (exact-plate accuracy of the recognizers on the shared dev crops)."""

from __future__ import annotations

import json
import os
import signal
import time
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from services.common.settings import CommonSettings
from services.inference.accuracy import accuracy
from services.inference.recognize import recognize
from services.inference.triton_bench import triton_bench

if TYPE_CHECKING:
    from services.inference.engine import RecognizerName

triton_app = typer.Typer(
    help="Run a local Triton server with the plate models (CPU, Python backend), or render a model "
    "repository for any Triton (GPU: --backend onnxruntime --instance-kind gpu)."
)


def _triton_dir() -> Path:
    return CommonSettings().var_dir / "triton"


def _pid_file() -> Path:
    return _triton_dir() / "tritonserver.pid"


def _running_pid() -> int | None:
    """The pid in the pid file when that process is still a tritonserver, else None."""
    try:
        pid = int(_pid_file().read_text().strip())
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
    except (OSError, ValueError):
        return None
    return pid if b"tritonserver" in cmdline else None


@triton_app.command("start")
def triton_start(
    grpc_port: Annotated[int, typer.Option(help="gRPC port (what PLATEWATCH_TRITON_URL points at)")] = 8001,
    http_port: Annotated[int, typer.Option()] = 8000,
    metrics_port: Annotated[int, typer.Option()] = 8002,
    timeout: Annotated[float, typer.Option(help="seconds to wait for the models to be ready")] = 120.0,
) -> None:
    """Build the model repository under var/triton/models and start tritonserver in the background."""
    from services.inference.main import InferenceSettings
    from services.inference.triton_repo import RepositoryOptions, prepare_model_repository
    from services.inference.triton_server import TritonServer, TritonServerError

    existing = _running_pid()
    if existing is not None:
        typer.echo(f"tritonserver already running (pid {existing})")
        raise typer.Exit(0)
    base = _triton_dir()
    repo = prepare_model_repository(
        base / "models", RepositoryOptions(det_precision=InferenceSettings().det_precision)
    )
    server = TritonServer(repo, grpc_port, http_port, metrics_port, log_file=base / "tritonserver.log")
    pid = server.start(detached=True)
    _pid_file().write_text(f"{pid}\n")
    try:
        server.wait_ready(timeout)
    except TritonServerError as exc:
        typer.echo(f"tritonserver failed to become ready: {exc}", err=True)
        server.stop()
        _pid_file().unlink(missing_ok=True)
        raise typer.Exit(1) from exc
    typer.echo(f"tritonserver ready: pid {pid}, grpc localhost:{grpc_port}, log {server.log_file}")


@triton_app.command("repository")
def triton_repository(
    dest: Annotated[Path, typer.Argument(help="directory to write the model repository into")],
    backend: Annotated[
        str,
        typer.Option(
            help="python (Python-backend stubs, CPU) or onnxruntime (wire graphs, Triton's ORT backend)"
        ),
    ] = "python",
    instance_kind: Annotated[str, typer.Option(help="cpu or gpu (gpu needs --backend onnxruntime)")] = "cpu",
    det_precision: Annotated[
        str | None,
        typer.Option(help="detector build: int8 (CPU default), fp32 (exact; the GPU default) or original"),
    ] = None,
    threads: Annotated[int, typer.Option(min=1, help="onnxruntime intra-op threads per CPU instance")] = 1,
    instance_count: Annotated[
        int, typer.Option(min=1, help="reader and classifier instances per device")
    ] = 1,
    det_instance_count: Annotated[int, typer.Option(min=1, help="detector instances per device")] = 2,
) -> None:
    """Write the Triton model repository (config.pbtxt and model files of plate_det, plate_rec,
    plate_rec_crnn and plate_cls) to DEST; the Triton image builds its repository with this."""
    from typing import cast

    from services.inference.det_build import DEFAULT_DET_PRECISION, DetPrecision
    from services.inference.triton_repo import (
        InstanceKind,
        RepositoryOptions,
        ServingBackend,
        prepare_model_repository,
    )

    if det_precision is None:
        det_precision = "fp32" if instance_kind == "gpu" else DEFAULT_DET_PRECISION
    try:
        options = RepositoryOptions(
            backend=cast(ServingBackend, backend),
            instance_kind=cast(InstanceKind, instance_kind),
            det_precision=cast(DetPrecision, det_precision),
            threads=threads,
            instance_count=instance_count,
            det_instance_count=det_instance_count,
        )
    except ValueError as exc:
        raise typer.BadParameter(str(exc)) from exc
    repo = prepare_model_repository(dest, options)
    typer.echo(
        f"model repository written to {repo} (backend {backend}, {instance_kind} instances, "
        f"{det_precision} detector)"
    )


@triton_app.command("stop")
def triton_stop(timeout: Annotated[float, typer.Option()] = 30.0) -> None:
    """Stop the tritonserver started by `platewatch triton start` (SIGTERM, then SIGKILL)."""
    pid = _running_pid()
    if pid is None:
        typer.echo("tritonserver not running")
        _pid_file().unlink(missing_ok=True)
        return
    os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + timeout
    while _process_exists(pid) and time.monotonic() < deadline:
        time.sleep(0.2)  # poll for exit
    if _process_exists(pid):
        os.kill(pid, signal.SIGKILL)
    _pid_file().unlink(missing_ok=True)
    typer.echo(f"tritonserver stopped (pid {pid})")


def _process_exists(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # A zombie still answers signal 0; it is gone for our purposes.
    try:
        return Path(f"/proc/{pid}/stat").read_text().split()[2] != "Z"
    except OSError:
        return False


def _recognizer_name(value: str) -> RecognizerName:
    from services.inference.engine import RECOGNIZERS

    for name in RECOGNIZERS:
        if value == name:
            return name
    raise typer.BadParameter(f"unknown recognizer {value!r}; choose one of {', '.join(RECOGNIZERS)}")


bench_app = typer.Typer(help="Accuracy benchmarks over the shared dev datasets.")
bench_app.command("accuracy")(accuracy)
bench_app.command("triton")(triton_bench)


@bench_app.command("recognition")
def bench_recognition(
    recognizers: Annotated[str, typer.Option(help="comma-separated: crnn,ppocr")] = "crnn,ppocr",
    mode: Annotated[
        str, typer.Option(help="crop: the recognizer on the labelled crop; pipeline: detect + read the crop")
    ] = "crop",
    limit: Annotated[int, typer.Option(help="at most this many crops per dataset (0: all)")] = 0,
    threads: Annotated[int, typer.Option(help="onnxruntime intra-op threads")] = 1,
    heldout_only: Annotated[
        bool, typer.Option(help="read only the held-out half (half the time; 'all' is then that half)")
    ] = False,
    crnn_model: Annotated[
        Path | None,
        typer.Option(help="a plate-CRNN ONNX to measure instead of the shipped one (e.g. a new export)"),
    ] = None,
) -> None:
    """Print a JSON summary: exact-plate accuracy (top-1 and truth among the top 3) per dataset and
    recognizer, over all crops and over the held-out half (the CRNN may be fine-tuned on the other
    half; see services/inference/training/datasets.py). Skips datasets that are absent."""
    from services.inference.bench import recognition_accuracy
    from services.inference.training.datasets import DATASETS_DIR

    names = [_recognizer_name(n.strip()) for n in recognizers.split(",") if n.strip()]
    if mode not in ("crop", "pipeline"):
        raise typer.BadParameter("mode must be crop or pipeline")
    if crnn_model is not None and not crnn_model.is_file():
        raise typer.BadParameter(f"{crnn_model} is not a file")
    summary = recognition_accuracy(
        names, mode=mode, limit=limit, threads=threads, crnn_onnx=crnn_model, heldout_only=heldout_only
    )
    typer.echo(json.dumps(summary, indent=2))
    if not summary["datasets"]:
        typer.echo(f"no dev dataset found under {DATASETS_DIR}", err=True)
        raise typer.Exit(1)


def register(app: typer.Typer) -> None:
    app.add_typer(triton_app, name="triton")
    app.add_typer(bench_app, name="bench")
    app.command("recognize")(recognize)
