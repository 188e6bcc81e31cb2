"""Runs the `tritonserver` binary shipped in the nvidia-pytriton wheel as a subprocess (CPU, Python
backend only), the way pytriton itself launches it."""

from __future__ import annotations

import logging
import os
import signal
import site
import subprocess
import sys
import sysconfig
import time
from pathlib import Path

import tritonclient.grpc as grpcclient

log = logging.getLogger(__name__)


def _pytriton_dir() -> Path:
    # The optional `triton` extra: readiness probing below works without it, running a server not.
    try:
        import pytriton
    except ImportError:
        return Path("/nonexistent/pytriton (pip install 'platewatch[triton]')")
    return Path(pytriton.__file__).parent


PYTRITON_DIR = _pytriton_dir()
TRITON_HOME = PYTRITON_DIR / "tritonserver"
TRITON_BINARY = TRITON_HOME / "bin" / "tritonserver"
# Shared libraries the binary and the Python-backend stub were linked against (auditwheel-vendored).
TRITON_LIBS = PYTRITON_DIR.parent / "nvidia_pytriton.libs"
MODEL_NAMES = ("plate_det", "plate_rec", "plate_rec_crnn", "plate_cls")


class TritonServerError(RuntimeError):
    """tritonserver exited or did not become ready."""


def prepare_backend_directory(dest: Path) -> Path:
    """Lay out `<dest>/python/` with the Python backend and the stub built for this interpreter's
    Python version (pytriton ships one per version; the backend expects it next to itself)."""
    python_dir = dest / "python"
    python_dir.mkdir(parents=True, exist_ok=True)
    version = f"{sys.version_info.major}.{sys.version_info.minor}"
    backend = TRITON_HOME / "backends" / "python"
    stubs = TRITON_HOME / "python_backend_stubs"
    links = {
        "libtriton_python.so": backend / "libtriton_python.so",
        "triton_python_backend_utils.py": backend / "triton_python_backend_utils.py",
        "triton_python_backend_stub": stubs / version / "triton_python_backend_stub",
    }
    for name, source in links.items():
        if not source.exists():
            raise TritonServerError(f"{source} missing: is nvidia-pytriton installed for Python {version}?")
        link = python_dir / name
        if link.is_symlink() or link.exists():
            link.unlink()
        link.symlink_to(source)
    return dest


def server_environment() -> dict[str, str]:
    """Environment for tritonserver. The stub links libpython by soname, so this interpreter's
    LIBDIR must come first (not the system one); PYTHONPATH gives model.py our site-packages."""
    env = os.environ.copy()
    lib_dirs = [str(sysconfig.get_config_var("LIBDIR")), str(TRITON_LIBS)]
    if env.get("LD_LIBRARY_PATH"):
        lib_dirs.append(env["LD_LIBRARY_PATH"])
    env["LD_LIBRARY_PATH"] = ":".join(lib_dirs)
    paths = [*site.getsitepackages(), *(p for p in sys.path if p.endswith("site-packages"))]
    if env.get("PYTHONPATH"):
        paths.append(env["PYTHONPATH"])
    env["PYTHONPATH"] = ":".join(dict.fromkeys(paths))
    env["PATH"] = f"{Path(sys.executable).parent}:{env.get('PATH', '')}"
    # One BLAS/OpenMP thread per session thread: intra-op threads are set per model in config.pbtxt.
    env.setdefault("OMP_NUM_THREADS", "1")
    return env


class TritonServer:
    """One tritonserver process serving `model_repo` on the given ports (0 is not allowed: Triton
    does not report the port it picked). Logs go to `log_file` (default `<model_repo>/../triton.log`)."""

    def __init__(
        self,
        model_repo: Path,
        grpc_port: int,
        http_port: int,
        metrics_port: int,
        *,
        log_file: Path | None = None,
        work_dir: Path | None = None,
    ) -> None:
        self.model_repo = Path(model_repo)
        self.grpc_port = grpc_port
        self.http_port = http_port
        self.metrics_port = metrics_port
        self.work_dir = work_dir or self.model_repo.parent / "server"
        self.log_file = log_file or self.model_repo.parent / "triton.log"
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def grpc_url(self) -> str:
        return f"localhost:{self.grpc_port}"

    def command(self) -> list[str]:
        backends = prepare_backend_directory(self.work_dir / "backends")
        return [
            str(TRITON_BINARY),
            f"--model-repository={self.model_repo}",
            f"--backend-directory={backends}",
            f"--grpc-port={self.grpc_port}",
            f"--http-port={self.http_port}",
            f"--metrics-port={self.metrics_port}",
            "--allow-gpu-metrics=false",
            "--allow-cpu-metrics=false",
            "--exit-on-error=true",
            "--strict-readiness=true",
            # Shared memory between server and stub: small start, grow on demand (as pytriton does).
            "--backend-config=python,shm-default-byte-size=4194304",
            "--backend-config=python,shm-growth-byte-size=1048576",
            "--log-verbose=0",
        ]

    def start(self, *, detached: bool = False) -> int:
        """Start the process and return its pid. `detached` puts it in its own session so it
        outlives the caller (used by `platewatch triton start`)."""
        if self.process is not None and self.process.poll() is None:
            raise TritonServerError(f"already running (pid {self.process.pid})")
        self.log_file.parent.mkdir(parents=True, exist_ok=True)
        with open(self.log_file, "ab") as log_handle:
            self.process = subprocess.Popen(
                self.command(),
                stdout=log_handle,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                env=server_environment(),
                start_new_session=detached,
            )
        log.info(
            "tritonserver started",
            extra={"pid": self.process.pid, "grpc_port": self.grpc_port, "log_file": str(self.log_file)},
        )
        return self.process.pid

    def wait_ready(self, timeout: float = 120.0, models: tuple[str, ...] = MODEL_NAMES) -> None:
        """Poll the server over gRPC until it and `models` report ready; raises TritonServerError on
        timeout or when the process exits first (the log tail is in the message)."""
        wait_until_ready(self.grpc_url, timeout, models, process=self.process, log_file=self.log_file)

    def stop(self, timeout: float = 20.0) -> None:
        """SIGTERM (Triton drains in-flight requests), then SIGKILL after `timeout`."""
        if self.process is None:
            return
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout)
            except subprocess.TimeoutExpired:
                log.warning("tritonserver ignored SIGTERM, killing", extra={"pid": self.process.pid})
                self.process.kill()
                self.process.wait(5)
        self.process = None


def wait_until_ready(
    url: str,
    timeout: float,
    models: tuple[str, ...] = MODEL_NAMES,
    *,
    process: subprocess.Popen[bytes] | None = None,
    log_file: Path | None = None,
) -> None:
    """Block until the server at `url` is ready with every model in `models`."""
    deadline = time.monotonic() + timeout
    client = grpcclient.InferenceServerClient(url)
    try:
        while True:
            if process is not None and process.poll() is not None:
                raise TritonServerError(f"tritonserver exited with {process.returncode}: {_tail(log_file)}")
            if is_ready(client, models):
                return
            if time.monotonic() > deadline:
                raise TritonServerError(f"{url} not ready after {timeout}s: {_tail(log_file)}")
            time.sleep(0.25)  # poll interval, not a guess at readiness
    finally:
        client.close()


def is_ready(client: grpcclient.InferenceServerClient, models: tuple[str, ...] = MODEL_NAMES) -> bool:
    """True when the server answers and every model is loaded and ready."""
    try:
        return bool(client.is_server_ready(client_timeout=2)) and all(
            client.is_model_ready(m, client_timeout=2) for m in models
        )
    except Exception:
        return False


def _tail(log_file: Path | None, lines: int = 20) -> str:
    if log_file is None or not log_file.exists():
        return "(no log)"
    return "\n".join(log_file.read_text(errors="replace").splitlines()[-lines:])
