"""`platewatch triton start|stop` (a local tritonserver for the plate models),
`platewatch read IMAGE...` (read plates from image files) and `platewatch bench recognition`
(exact-plate accuracy of the recognizers on the shared dev crops)."""

from __future__ import annotations

import json
import os
import signal
import time
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from services.common.settings import CommonSettings

if TYPE_CHECKING:
    from services.inference.engine import RecognizerName

triton_app = typer.Typer(help="Run a local Triton server with the plate models (CPU, Python backend).")


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
    from services.inference.triton_repo import prepare_model_repository
    from services.inference.triton_server import TritonServer, TritonServerError

    existing = _running_pid()
    if existing is not None:
        typer.echo(f"tritonserver already running (pid {existing})")
        raise typer.Exit(0)
    base = _triton_dir()
    repo = prepare_model_repository(base / "models")
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


def _default_recognizer() -> str:
    from services.inference.main import InferenceSettings

    return InferenceSettings().recognizer


def read_images(paths: list[Path], triton: str = "", recognizer_name: str = "") -> list[dict[str, Any]]:
    """Plates read from each image file: `{"file", "plates": [...]}` or `{"file", "error"}`."""
    import cv2
    import numpy as np

    from services.inference.engine import PlateRecognizer, make_backend

    name = _recognizer_name(recognizer_name or _default_recognizer())
    recognizer = PlateRecognizer(make_backend(triton, recognizer=name))
    reports: list[dict[str, Any]] = []
    try:
        for path in paths:
            report: dict[str, Any] = {"file": str(path)}
            reports.append(report)
            try:
                data = path.read_bytes()
            except OSError as exc:
                report["error"] = f"cannot read file: {exc.strerror or exc}"
                continue
            image = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR) if data else None
            if image is None or image.size == 0:
                report["error"] = "not a decodable image (corrupt or unsupported format)"
                continue
            plates = recognizer.recognize([image])[0]
            report["plates"] = [
                {
                    "text": p.text,
                    "confidence": round(p.confidence, 4),
                    "char_confidences": [round(v, 4) for v in p.candidates[0].char_confidences],
                    "candidates": [
                        {"text": c.text, "confidence": round(c.confidence, 4)} for c in p.candidates
                    ],
                    "box": list(p.box),
                    "detection_confidence": round(p.detection_confidence, 4),
                    "vehicle_color": p.vehicle_color,
                    "vehicle_color_confidence": round(p.vehicle_color_confidence, 3),
                }
                for p in plates
            ]
    finally:
        recognizer.backend.close()
    return reports


def read(
    images: Annotated[list[Path], typer.Argument(help="image files (JPEG, PNG, ...)")],
    triton: Annotated[
        str, typer.Option(help="Triton gRPC address HOST:PORT; default: onnxruntime in this process")
    ] = "",
    as_json: Annotated[bool, typer.Option("--json", help="print one JSON document")] = False,
    recognizer: Annotated[
        str, typer.Option(help="crnn or ppocr; default: PLATEWATCH_RECOGNIZER or the built-in default")
    ] = "",
) -> None:
    """Print the plates read from image files. Exits non-zero only if every file failed."""
    reports = read_images(images, triton, recognizer)
    if as_json:
        typer.echo(json.dumps(reports, indent=2))
    else:
        for report in reports:
            if "error" in report:
                typer.echo(f"{report['file']}: error: {report['error']}", err=True)
            elif not report["plates"]:
                typer.echo(f"{report['file']}: no plate found")
            for plate in report.get("plates", []):
                x, y, w, h = plate["box"]
                typer.echo(
                    f"{report['file']}: {plate['text']} ({plate['confidence']:.2f}) box={x},{y},{w},{h} "
                    f"vehicle={plate['vehicle_color']}"
                )
    if all("error" in r for r in reports):
        raise typer.Exit(1)


def _recognizer_name(value: str) -> RecognizerName:
    from services.inference.engine import RECOGNIZERS

    for name in RECOGNIZERS:
        if value == name:
            return name
    raise typer.BadParameter(f"unknown recognizer {value!r}; choose one of {', '.join(RECOGNIZERS)}")


bench_app = typer.Typer(help="Accuracy benchmarks over the shared dev datasets.")


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
        typer.echo("no dev dataset found under /work/shared/datasets", err=True)
        raise typer.Exit(1)


def register(app: typer.Typer) -> None:
    app.add_typer(triton_app, name="triton")
    app.add_typer(bench_app, name="bench")
    app.command("read")(read)
