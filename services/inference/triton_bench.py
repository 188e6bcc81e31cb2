"""`platewatch bench triton`: frames/s of the whole read path through Triton at a given concurrency.

It starts a local tritonserver with the plate models (a fresh repository in a temporary folder, free
ports; `services.inference.triton_server` sets the environment the Python-backend stub needs) unless
`--url` names a running one, then `--concurrency` client threads each read 1280x720 frames one at
a time with their own recognizer, built from the `PLATEWATCH_*` settings as the inference service
builds it (detection + recognizer over Triton gRPC, plus the client-side post-processing the
service does; with Triton that includes reading the words around plates,
`PLATEWATCH_PRINTED_REGION`) for `--warmup` seconds (discarded) and `--duration` seconds
(measured). Printed as one JSON object: frames/s, plates read, per-frame latency p50/p95/p99, the
server's peak memory (VmHWM of tritonserver and of its Python-backend stub children, from /proc)
and each model file's size, then the same read path in-process with onnxruntime on 1 thread and 1
worker for comparison (after the server it started is stopped).

Why threads and not one asyncio client: `PlateRecognizer` is the synchronous code the inference
service runs in its worker threads; its gRPC calls release the GIL while they wait, so N threads put
up to N frames in flight at Triton as N camera workers would. An asyncio client would need a second,
async implementation of the read path, which is not what ships.

Frames (`--source`): `openalpr` is the openalpr-eu photos under the shared datasets folder,
letterboxed (aspect kept, padded) to 1280x720; `demo` is the bundled demo clip (1280x720); `rendered`
renders that clip afresh into a temporary folder (`services.demo.render`); `auto` takes the first that
is available in that order. Load averages before and after are in the output: the figures mean
little on a machine that something else is loading.
"""

from __future__ import annotations

import json
import os
import signal
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import numpy as np
import typer

from services.inference.accuracy import IMAGE_SUFFIXES, percentile
from services.inference.det_build import DEFAULT_DET_PRECISION, DetPrecision
from services.inference.frames import FRAME_HEIGHT, FRAME_WIDTH, fit_frame, rendered_frames, video_frames

if TYPE_CHECKING:  # the models load on use, not when the CLI starts
    from services.inference.engine import InferenceBackend, PlateRecognizer, RecognizerName

SOURCES = ("auto", "openalpr", "demo", "rendered")


# --- pure helpers ---------------------------------------------------------------------------------


def latency_summary(latencies_ms: list[float]) -> dict[str, float | None]:
    """p50/p95/p99/mean/max in milliseconds, rounded to 0.1 ms (None when there are no samples)."""

    def rounded(value: float | None) -> float | None:
        return None if value is None else round(value, 1)

    return {
        "p50": rounded(percentile(latencies_ms, 0.50)),
        "p95": rounded(percentile(latencies_ms, 0.95)),
        "p99": rounded(percentile(latencies_ms, 0.99)),
        "mean": rounded(sum(latencies_ms) / len(latencies_ms)) if latencies_ms else None,
        "max": rounded(max(latencies_ms)) if latencies_ms else None,
    }


def folder_frames(directory: Path, limit: int) -> list[np.ndarray]:
    """Up to `limit` images of `directory` (sorted by name; unreadable files skipped), fitted to
    1280x720."""
    from services.inference.images import ImageError, load_image

    frames: list[np.ndarray] = []
    for path in sorted(p for p in directory.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES):
        if len(frames) >= limit:
            break
        try:
            frames.append(fit_frame(load_image(path).image))
        except ImageError:
            continue
    return frames


def load_frames(source: str, limit: int) -> tuple[str, list[np.ndarray]]:
    """(the source used, the frames) for `--source` (see the module docstring)."""
    from services.demo.render import DEFAULT_FOOTAGE
    from services.inference.training.datasets import DATASETS_DIR

    if source not in SOURCES:
        raise ValueError(f"unknown source {source!r}; choose one of {', '.join(SOURCES)}")
    openalpr_dir = DATASETS_DIR / "openalpr-eu"
    if source in ("auto", "openalpr") and openalpr_dir.is_dir():
        frames = folder_frames(openalpr_dir, limit)
        if frames:
            return "openalpr-eu", frames
    if source == "openalpr":
        raise FileNotFoundError(f"no readable image under {openalpr_dir}")
    if source in ("auto", "demo") and DEFAULT_FOOTAGE.is_file():
        frames = video_frames(DEFAULT_FOOTAGE, limit)
        if frames:
            return "demo", frames
    if source == "demo":
        raise FileNotFoundError(f"{DEFAULT_FOOTAGE} missing or unreadable (platewatch demo render)")
    return "rendered", rendered_frames(limit)


def process_tree(pid: int) -> list[int]:
    """`pid` and all its descendants (by the parent pid in /proc/<pid>/stat), `pid` first."""
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        # The command name is in parentheses and may contain spaces: the ppid follows the last ')'.
        ppid = int(stat.rsplit(")", 1)[1].split()[1])
        children.setdefault(ppid, []).append(int(entry.name))
    tree, pending = [], [pid]
    while pending:
        current = pending.pop(0)
        tree.append(current)
        pending.extend(sorted(children.get(current, [])))
    return tree


def process_memory(pid: int) -> dict[str, Any] | None:
    """{"pid", "name", "peak_rss_mb" (VmHWM), "rss_mb" (VmRSS)} of a live process, None if gone."""
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return None
    fields = dict(line.split(":", 1) for line in status.splitlines() if ":" in line)

    def mb(name: str) -> float | None:
        value = fields.get(name, "").split()
        return round(int(value[0]) / 1024, 1) if value else None

    return {
        "pid": pid,
        "name": fields.get("Name", "").strip(),
        "model": _stub_model(pid),
        "peak_rss_mb": mb("VmHWM"),
        "rss_mb": mb("VmRSS"),
    }


def _stub_model(pid: int) -> str | None:
    """The model a Python-backend stub serves (its command line names `<repo>/<model>/<version>/model.py`),
    None for other processes."""
    try:
        argv = Path(f"/proc/{pid}/cmdline").read_bytes().decode(errors="replace").split("\0")
    except OSError:
        return None
    script = next((a for a in argv[1:] if a.endswith("/model.py")), None)
    return Path(script).parent.parent.name if script else None


def server_memory(pid: int) -> dict[str, Any]:
    """Peak RSS of a server process and its children (the Python backend runs one stub process per
    model instance). `peak_rss_mb_sum` adds the peaks: an upper bound on the peak together (peaks need
    not coincide, and shared pages count once per process)."""
    processes = [m for p in process_tree(pid) if (m := process_memory(p)) is not None]
    return {
        "peak_rss_mb_sum": round(sum(p["peak_rss_mb"] or 0.0 for p in processes), 1),
        "rss_mb_sum": round(sum(p["rss_mb"] or 0.0 for p in processes), 1),
        "processes": processes,
    }


def model_file_sizes(det_precision: DetPrecision) -> dict[str, dict[str, Any]]:
    """Each Triton model's ONNX file (the `det_precision` detector build): name and size."""
    from services.inference.det_build import det_model
    from services.inference.triton_repo import MODEL_FILES

    files = {**MODEL_FILES, "plate_det": det_model(det_precision)}
    return {
        name: {
            "file": path.name,
            "bytes": path.stat().st_size if path.is_file() else None,
            "mb": round(path.stat().st_size / 1e6, 2) if path.is_file() else None,
        }
        for name, path in files.items()
    }


def load_average() -> list[float]:
    return [round(v, 2) for v in os.getloadavg()]


# --- the measurement ------------------------------------------------------------------------------


@dataclass
class RunResult:
    """What the workers recorded inside the measured window."""

    latencies_ms: list[float] = field(default_factory=list)
    plates: int = 0
    frames_with_plates: int = 0
    errors: int = 0
    first_error: str | None = None
    lock: threading.Lock = field(default_factory=threading.Lock)

    def summary(self, duration_s: float, concurrency: int) -> dict[str, Any]:
        frames = len(self.latencies_ms)
        return {
            "concurrency": concurrency,
            "measured_s": round(duration_s, 2),
            "frames": frames,
            "frames_per_s": round(frames / duration_s, 2) if duration_s > 0 else None,
            "plates_read": self.plates,
            "frames_with_plates": self.frames_with_plates,
            "latency_ms": latency_summary(self.latencies_ms),
            "errors": self.errors,
            "first_error": self.first_error,
        }


def drive(
    make: Callable[[], PlateRecognizer],
    frames: list[np.ndarray],
    concurrency: int,
    warmup_s: float,
    duration_s: float,
) -> dict[str, Any]:
    """Run `concurrency` worker threads, each with its own recognizer (and backend) from `make()`,
    reading one frame at a time (frames handed out round-robin) until the window
    ends. Only frames started after the warm-up and finished inside the window count."""
    result = RunResult()
    stop = threading.Event()
    window: dict[str, float] = {"start": float("inf"), "end": float("inf")}
    counter = iter(range(1 << 62))
    counter_lock = threading.Lock()

    # Built here, before any thread starts, so that a broken setup fails at once rather than
    # leaving dead workers and an empty window (TritonBackend opens its gRPC client per thread).
    recognizers = [make() for _ in range(concurrency)]

    def worker(recognizer: PlateRecognizer) -> None:
        backend: InferenceBackend = recognizer.backend
        try:
            while not stop.is_set():
                with counter_lock:
                    index = next(counter) % len(frames)
                started = time.perf_counter()
                try:
                    plates = recognizer.recognize([frames[index]])[0]
                except Exception as exc:  # counted and reported, the run goes on
                    with result.lock:
                        result.errors += 1
                        result.first_error = result.first_error or f"{type(exc).__name__}: {exc}"
                    time.sleep(0.05)  # do not spin on a dead server
                    continue
                finished = time.perf_counter()
                if started >= window["start"] and finished <= window["end"]:
                    with result.lock:
                        result.latencies_ms.append((finished - started) * 1000)
                        result.plates += len(plates)
                        result.frames_with_plates += bool(plates)
        finally:
            backend.close()

    threads = [
        threading.Thread(target=worker, args=(r,), name=f"bench-{i}", daemon=True)
        for i, r in enumerate(recognizers)
    ]
    for thread in threads:
        thread.start()
    try:
        time.sleep(warmup_s)
        window["start"] = time.perf_counter()
        window["end"] = window["start"] + duration_s
        time.sleep(duration_s)
    finally:
        stop.set()
        for thread in threads:
            thread.join(timeout=60)
    return result.summary(duration_s, concurrency)


@contextmanager
def local_server(
    model_threads: int,
    timeout: float,
    det_instances: int,
    det_precision: DetPrecision = DEFAULT_DET_PRECISION,
) -> Iterator[tuple[str, int]]:
    """A tritonserver with the plate models on free ports, stopped on exit (also on Ctrl-C/errors);
    yields (gRPC url, pid)."""
    from services.common.net import free_ports
    from services.inference.triton_repo import RepositoryOptions, prepare_model_repository
    from services.inference.triton_server import TritonServer

    with tempfile.TemporaryDirectory(prefix="platewatch-triton-bench-") as tmp:
        repo = prepare_model_repository(
            Path(tmp) / "models",
            RepositoryOptions(
                threads=model_threads, det_precision=det_precision, det_instance_count=det_instances
            ),
        )
        grpc_port, http_port, metrics_port = free_ports(3)
        server = TritonServer(repo, grpc_port, http_port, metrics_port, log_file=Path(tmp) / "triton.log")
        pid = server.start()
        try:
            server.wait_ready(timeout)
            yield server.grpc_url, pid
        finally:
            server.stop()


def _raise_on_sigterm(signum: int, frame: object) -> None:
    raise KeyboardInterrupt(f"signal {signum}")


def triton_bench(
    url: Annotated[
        str, typer.Option(help="gRPC HOST:PORT of a running Triton; default: start one here for the run")
    ] = "",
    concurrency: Annotated[int, typer.Option(min=1, help="client worker threads (frames in flight)")] = 8,
    duration: Annotated[float, typer.Option(min=1.0, help="measured seconds")] = 30.0,
    warmup: Annotated[float, typer.Option(min=0.0, help="seconds read and discarded first")] = 5.0,
    source: Annotated[str, typer.Option(help="frames: auto, openalpr, demo or rendered")] = "auto",
    frames: Annotated[int, typer.Option(min=1, help="at most this many distinct frames")] = 48,
    model_threads: Annotated[
        int, typer.Option(min=1, help="onnxruntime threads per model instance in the server it starts")
    ] = 1,
    det_instances: Annotated[
        int, typer.Option(min=1, help="plate_det instances in the server it starts")
    ] = 2,
    server_pid: Annotated[
        int, typer.Option(help="with --url: the tritonserver pid, to report its memory (0: none)")
    ] = 0,
    onnx_duration: Annotated[
        float, typer.Option(min=0.0, help="seconds of the in-process onnxruntime comparison (0: skip)")
    ] = 10.0,
    ready_timeout: Annotated[float, typer.Option(help="seconds to wait for the server's models")] = 180.0,
) -> None:
    """Print one JSON object: frames/s, plates read and per-frame latency p50/p95/p99 of the whole
    read path through Triton with N concurrent clients, the server's peak RSS, the model file sizes,
    and in-process onnxruntime (1 thread) frames/s for comparison."""
    from services.inference.main import InferenceSettings
    from services.inference.triton_server import TritonServerError

    settings = InferenceSettings()
    recognizer: RecognizerName = settings.recognizer
    try:
        used_source, loaded = load_frames(source, frames)
    except (ValueError, FileNotFoundError) as exc:
        raise typer.BadParameter(str(exc)) from exc
    report: dict[str, Any] = {
        "source": used_source,
        "frames": len(loaded),
        "frame_size": [FRAME_WIDTH, FRAME_HEIGHT],
        "recognizer": recognizer,
        "det_precision": settings.det_precision,
        "printed_region": settings.printed_region,
        "cpus": os.cpu_count(),
        "load_average_before": load_average(),
    }
    previous = signal.signal(signal.SIGTERM, _raise_on_sigterm)
    try:
        with _server(url, model_threads, ready_timeout, settings.det_precision, det_instances) as (
            grpc_url,
            pid,
        ):
            report["server"] = {
                "url": grpc_url,
                "started_here": not url,
                "model_threads": model_threads if not url else None,
                "det_instances": det_instances if not url else None,
            }
            # The product's settings (PLATEWATCH_*), as the inference service builds its recognizer.
            triton = drive(
                lambda: settings.plate_recognizer(settings.backend(grpc_url, 1)),
                loaded,
                concurrency,
                warmup,
                duration,
            )
            report["triton"] = triton
            pid = pid or server_pid
            report["server_memory"] = server_memory(pid) if pid else None
        report["model_files"] = model_file_sizes(settings.det_precision)
        if onnx_duration > 0:
            report["onnxruntime_1_thread"] = drive(
                lambda: settings.plate_recognizer(settings.backend("", 1)),
                loaded,
                1,
                min(warmup, 2.0),
                onnx_duration,
            )
    except KeyboardInterrupt:
        typer.echo("interrupted; server stopped", err=True)
        raise typer.Exit(130) from None
    except TritonServerError as exc:
        typer.echo(f"tritonserver not ready: {exc}", err=True)
        raise typer.Exit(1) from exc
    finally:
        signal.signal(signal.SIGTERM, previous)
    report["load_average_after"] = load_average()
    typer.echo(json.dumps(report, indent=2))
    if not report["triton"]["frames"]:
        typer.echo(f"no frame was read through Triton: {report['triton']['first_error']}", err=True)
        raise typer.Exit(1)


@contextmanager
def _server(
    url: str, model_threads: int, timeout: float, det_precision: DetPrecision, det_instances: int
) -> Iterator[tuple[str, int]]:
    """(url, pid) of the given server (pid 0: unknown) or of one started here for the run."""
    if url:
        from services.inference.triton_server import wait_until_ready

        wait_until_ready(url, timeout)
        yield url, 0
        return
    with local_server(model_threads, timeout, det_instances, det_precision) as started:
        yield started
