"""The local stack: Kafka, Triton and every platewatch service as separate processes.

`python -m services.stack run` (what `make run` calls) starts everything, feeds the demo footage,
puts the demo plate on a hotlist, waits until a read is searchable and an alert has fired, prints
where to look, and stays up until Ctrl-C or `python -m services.stack stop` (`make stop`).

The same `Stack` class starts the pipeline for the end-to-end test, on free ports and a private
var directory, so the test exercises exactly what a user runs.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import signal
import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import grpc
import yaml

from services.common.net import free_ports
from services.common.settings import REPO_ROOT

log = logging.getLogger("platewatch.stack")

DEMO_MANIFEST = REPO_ROOT / "deploy" / "demo" / "manifest.yaml"
DEMO_HOTLIST_ID = "demo-stolen-vehicles"
DEMO_HOTLIST_NAME = "Demo stolen vehicles"
# Searches need a purpose code and a case number (deploy/policies); the demo checks its own footage.
DEMO_PURPOSE = "stolen-vehicle"
DEMO_CASE_NUMBER = "DEMO-0001"


def say(message: str) -> None:
    """Progress for the person at the terminal (logs go to var/logs)."""
    print(f"[platewatch] {message}", flush=True)


def wait_until(check: Callable[[], Any], timeout: float, what: str, interval: float = 0.5) -> Any:
    """Poll `check` until it returns something truthy; raise TimeoutError naming `what`."""
    deadline = time.monotonic() + timeout
    last_error: Exception | None = None
    while time.monotonic() < deadline:
        try:
            result = check()
            if result:
                return result
        except Exception as exc:  # the thing we wait for may not be up yet
            last_error = exc
        time.sleep(interval)
    raise TimeoutError(f"timed out after {timeout:.0f}s waiting for {what} (last error: {last_error})")


def http_ok(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=2) as response:
            return 200 <= int(response.status) < 300
    except OSError:
        return False


@dataclass
class ManagedProcess:
    """One service process: its command, environment, log file and readiness URL."""

    name: str
    argv: list[str]
    env: dict[str, str]
    log_path: Path
    ready_url: str | None = None
    popen: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        with open(self.log_path, "ab") as log_file:
            self.popen = subprocess.Popen(
                self.argv,
                env={**os.environ, **self.env},
                stdout=log_file,
                stderr=subprocess.STDOUT,
                cwd=REPO_ROOT,
                start_new_session=True,  # Ctrl-C reaches the stack, which stops children in order
            )

    @property
    def pid(self) -> int | None:
        return self.popen.pid if self.popen else None

    def running(self) -> bool:
        return self.popen is not None and self.popen.poll() is None

    def ready(self) -> bool:
        if not self.running():
            raise RuntimeError(f"{self.name} exited with {self.exit_code()}; see {self.log_path}")
        return self.ready_url is None or http_ok(self.ready_url)

    def exit_code(self) -> int | None:
        return self.popen.poll() if self.popen else None

    def kill(self) -> None:
        """SIGKILL: for crash tests."""
        if self.popen and self.running():
            self.popen.kill()
            self.popen.wait()

    def stop(self, timeout: float = 20.0) -> None:
        """SIGTERM, wait for the graceful drain, SIGKILL if it does not come."""
        if not self.popen or not self.running():
            return
        self.popen.send_signal(signal.SIGTERM)
        try:
            self.popen.wait(timeout)
        except subprocess.TimeoutExpired:
            log.warning("did not stop in time, killing", extra={"process": self.name})
            self.popen.kill()
            self.popen.wait()


@dataclass
class StackPorts:
    kafka: int = 9092
    kafka_controller: int = 9093
    triton_grpc: int = 8001
    triton_http: int = 8000
    triton_metrics: int = 8002
    search_grpc: int = 50051
    hotlist_grpc: int = 50052
    audit_grpc: int = 50053
    api: int = 8080
    # Prometheus endpoints of the service processes.
    metrics: dict[str, int] = field(
        default_factory=lambda: {
            "storage": 9101,
            "hotlist": 9102,
            "normalizer": 9103,
            "inference": 9104,
            "api": 9105,
            "capture": 9106,
            "notifier": 9107,
        }
    )

    @classmethod
    def free(cls) -> StackPorts:
        """Distinct free ports for every listener of the stack."""
        ports = cls()
        names = [n for n in vars(ports) if n != "metrics"]
        numbers = iter(free_ports(len(names) + len(ports.metrics)))
        for name in names:
            setattr(ports, name, next(numbers))
        ports.metrics = {name: next(numbers) for name in ports.metrics}
        return ports


# Process name -> components it serves. Writer, search, audit and retention share one process because
# the embedded ClickHouse allows one owner per data directory; against a ClickHouse server they can be
# split.
SERVICE_PROCESSES: dict[str, list[str]] = {
    "storage": ["writer", "search", "audit", "retention"],
    "hotlist": ["hotlist"],
    "normalizer": ["normalizer"],
    "inference": ["inference"],
    "api": ["api"],
    "notifier": ["notifier"],
    "capture": ["capture"],
}


class Stack:
    """Starts and stops the whole platform; records pids in var_dir/stack.json for `stop`."""

    def __init__(
        self,
        var_dir: Path,
        ports: StackPorts | None = None,
        topic_prefix: str = "",
        cameras_file: Path | None = None,
        extra_env: dict[str, str] | None = None,
        kafka_bootstrap: str | None = None,
        triton_url: str | None = None,
    ) -> None:
        """`kafka_bootstrap` / `triton_url` point at servers someone else runs (tests share one
        broker and one Triton per session); without them `start_kafka`/`start_triton` start ours."""
        self.var_dir = var_dir
        self.ports = ports or StackPorts()
        self.topic_prefix = topic_prefix
        self.cameras_file = cameras_file or REPO_ROOT / "deploy" / "cameras.yaml"
        self.extra_env = extra_env or {}
        self.kafka: Any = None
        self.triton: Any = None
        self.processes: dict[str, ManagedProcess] = {}
        self._external_bootstrap = kafka_bootstrap
        self._external_triton = triton_url
        self._api_token: str | None = None

    # ---- infrastructure -------------------------------------------------------------------------

    @property
    def bootstrap(self) -> str:
        return self._external_bootstrap or f"127.0.0.1:{self.ports.kafka}"

    @property
    def triton_url(self) -> str:
        return self._external_triton or f"127.0.0.1:{self.ports.triton_grpc}"

    def start_kafka(self) -> None:
        from services.common.kafka_admin import ensure_topics
        from services.deploy_tools.kafka_broker import KafkaBroker, ensure_kafka_jars

        say("fetching Kafka jars with Maven (cached under var/kafka/libs after the first run)")
        ensure_kafka_jars()
        say(f"starting Kafka (KRaft) on {self.bootstrap}")
        self.kafka = KafkaBroker(
            self.var_dir / "kafka" / "data", self.ports.kafka, self.ports.kafka_controller
        )
        self.kafka.start()
        self.kafka.wait_ready(120)
        asyncio.run(ensure_topics(self.bootstrap, self.topic_prefix))
        say("Kafka is up and topics exist")

    def start_triton(self) -> None:
        from services.inference.main import InferenceSettings
        from services.inference.triton_repo import RepositoryOptions, prepare_model_repository
        from services.inference.triton_server import TritonServer

        say("preparing the Triton model repository (PP-OCRv4 detection, plate recognizers)")
        repo = prepare_model_repository(
            self.var_dir / "triton" / "models",
            RepositoryOptions(det_precision=InferenceSettings().det_precision),
        )
        say(f"starting tritonserver (gRPC on 127.0.0.1:{self.ports.triton_grpc})")
        self.triton = TritonServer(
            repo,
            grpc_port=self.ports.triton_grpc,
            http_port=self.ports.triton_http,
            metrics_port=self.ports.triton_metrics,
        )
        self.triton.start()
        self.triton.wait_ready(180)
        say("Triton is serving the models")

    # ---- services -------------------------------------------------------------------------------

    def service_env(self, process: str) -> dict[str, str]:
        env = {
            "PLATEWATCH_KAFKA_BOOTSTRAP": self.bootstrap,
            "PLATEWATCH_TOPIC_PREFIX": self.topic_prefix,
            "PLATEWATCH_VAR_DIR": str(self.var_dir),
            "PLATEWATCH_CAMERAS_FILE": str(self.cameras_file),
            "PLATEWATCH_METRICS_PORT": str(self.ports.metrics[process]),
            "PLATEWATCH_SEARCH_GRPC_PORT": str(self.ports.search_grpc),
            "PLATEWATCH_HOTLIST_GRPC_PORT": str(self.ports.hotlist_grpc),
            "PLATEWATCH_SEARCH_GRPC_TARGET": f"127.0.0.1:{self.ports.search_grpc}",
            "PLATEWATCH_HOTLIST_GRPC_TARGET": f"127.0.0.1:{self.ports.hotlist_grpc}",
            "PLATEWATCH_AUDIT_GRPC_PORT": str(self.ports.audit_grpc),
            "PLATEWATCH_AUDIT_GRPC_TARGET": f"127.0.0.1:{self.ports.audit_grpc}",
            # The console's camera status reads these processes' counters.
            "PLATEWATCH_CONSOLE_METRICS_URLS": ",".join(
                f"http://127.0.0.1:{self.ports.metrics[name]}/metrics" for name in ("capture", "normalizer")
            ),
            "PLATEWATCH_TRITON_URL": self.triton_url,
            "PLATEWATCH_API_PORT": str(self.ports.api),
            "PLATEWATCH_LOOP_FILES": "true",
        }
        env.update(self.extra_env)
        return env

    def make_process(self, name: str) -> ManagedProcess:
        argv = [sys.executable, "-m", "services.cli", "serve", *SERVICE_PROCESSES[name]]
        return ManagedProcess(
            name=name,
            argv=argv,
            env=self.service_env(name),
            log_path=self.var_dir / "logs" / f"{name}.log",
            ready_url=f"http://127.0.0.1:{self.ports.metrics[name]}/readyz",
        )

    def start_service(self, name: str, timeout: float = 120.0) -> ManagedProcess:
        process = self.processes.get(name) or self.make_process(name)
        self.processes[name] = process
        process.start()
        wait_until(process.ready, timeout, f"{name} to be ready")
        return process

    def start_services(self, names: list[str] | None = None) -> None:
        # Downstream first, so nothing produced upstream waits on a consumer that is not there.
        for name in names or list(SERVICE_PROCESSES):
            say(f"starting {name} ({' + '.join(SERVICE_PROCESSES[name])})")
            self.start_service(name)
        self.write_state()

    def write_state(self) -> None:
        state = {
            "stack_pid": os.getpid(),
            "pids": {name: p.pid for name, p in self.processes.items()},
            "kafka_pid": self.kafka.running_pid() if self.kafka else None,
            "triton_pid": self.triton.process.pid if self.triton and self.triton.process else None,
            "api": f"http://127.0.0.1:{self.ports.api}",
        }
        (self.var_dir / "stack.json").write_text(json.dumps(state, indent=2))

    def stop(self) -> None:
        """Stop services in reverse start order (capture first, storage last), then Triton and Kafka."""
        for name in reversed(list(self.processes)):
            say(f"stopping {name}")
            self.processes[name].stop()
        if self.triton is not None:
            say("stopping Triton")
            self.triton.stop()
        if self.kafka is not None:
            say("stopping Kafka")
            self.kafka.stop()
        with contextlib.suppress(FileNotFoundError):
            (self.var_dir / "stack.json").unlink()

    # ---- demo -----------------------------------------------------------------------------------

    def put_demo_plate_on_hotlist(self) -> str:
        """Create the demo hotlist with the manifest's hotlist plate; returns the plate."""
        from services.hotlist.client import HotlistClient

        manifest = yaml.safe_load(DEMO_MANIFEST.read_text())
        plate = str(manifest["hotlist_plate"])
        agency = str(manifest.get("agency_id", "demo-pd"))

        async def create() -> None:
            # Fixed ids make a second `make run` on the same var/ reuse the list instead of adding one.
            client = HotlistClient(f"127.0.0.1:{self.ports.hotlist_grpc}")
            try:
                try:
                    await client.create_hotlist(
                        name=DEMO_HOTLIST_NAME, agency_id=agency, hotlist_id=DEMO_HOTLIST_ID
                    )
                except grpc.aio.AioRpcError as exc:
                    if exc.code() != grpc.StatusCode.ALREADY_EXISTS:
                        raise
                await client.add_entry(
                    DEMO_HOTLIST_ID,
                    plate=plate,
                    reason="stolen_vehicle",
                    priority=1,
                    notes="demo entry created by make run",
                    agency_id=agency,
                    entry_id=f"demo-{plate.lower()}",
                )
            finally:
                await client.close()

        asyncio.run(create())
        return plate

    def demo_reads(self) -> list[dict[str, Any]]:
        """Stored reads of the demo footage's plates (search refuses an all-wildcard pattern)."""
        manifest = yaml.safe_load(DEMO_MANIFEST.read_text())
        found: list[dict[str, Any]] = []
        for vehicle in manifest["vehicles"]:
            found += self.api_get(f"/api/v1/reads?plate={vehicle['plate']}&page_size=5")["reads"]
        return found

    def api_get(self, path: str) -> Any:
        """GET an API path as the demo officer (dev issuer), with the demo case's search purpose."""
        from services.api.auth_routes import auth_headers, dev_login  # the API's deps load only here

        base = f"http://127.0.0.1:{self.ports.api}"
        if self._api_token is None:
            self._api_token = dev_login(base, "officer")
        request = urllib.request.Request(
            f"{base}{path}", headers=auth_headers(self._api_token, DEMO_PURPOSE, DEMO_CASE_NUMBER)
        )
        with urllib.request.urlopen(request, timeout=5) as response:
            return json.loads(response.read())


def run() -> None:
    var_dir = Path(os.environ.get("PLATEWATCH_VAR_DIR", REPO_ROOT / "var"))
    var_dir.mkdir(parents=True, exist_ok=True)
    if (var_dir / "stack.json").exists():
        say("a stack seems to be running already (var/stack.json); run `make stop` first")
        raise SystemExit(1)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    stack = Stack(var_dir)
    stopping = False

    def on_signal(signum: int, _frame: object) -> None:
        nonlocal stopping
        if not stopping:
            stopping = True
            raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, on_signal)
    try:
        stack.start_kafka()
        stack.start_triton()
        stack.start_services(["storage", "hotlist", "normalizer", "inference", "api", "notifier"])
        plate = stack.put_demo_plate_on_hotlist()
        say(f"demo hotlist created: plate {plate} is flagged as a stolen vehicle")
        stack.start_services(["capture"])
        api = f"http://127.0.0.1:{stack.ports.api}"
        say(f"feeding the demo footage; open {api}/ (API docs at {api}/docs)")
        first = wait_until(stack.demo_reads, 120, "a read of a demo plate")
        say(f"first searchable read: {first[0]['plate']} at camera {first[0]['camera_id']}")
        alerts = wait_until(lambda: stack.api_get("/api/v1/alerts")["alerts"], 120, "an alert")
        say(f"live alert: {alerts[0]['plate']} on hotlist '{alerts[0]['hotlist_name']}'")
        say(f"stack is running. Web console: {api}/console/  Ctrl-C or `make stop` to shut down")
        say("development sign-in: officer / platewatch-dev, code 123456 (searches ask for a purpose)")
        while all(p.running() for p in stack.processes.values()):
            time.sleep(1)
        crashed = [name for name, p in stack.processes.items() if not p.running()]
        say(f"process(es) exited unexpectedly: {crashed}; see var/logs/")
    except KeyboardInterrupt:
        say("shutting down")
    except Exception as exc:
        say(f"start-up failed: {exc}")
        stack.stop()
        raise SystemExit(1) from exc
    stack.stop()
    say("stopped cleanly")


def stop() -> None:
    """Signal a running `make run` (or its leftovers) to shut down."""
    var_dir = Path(os.environ.get("PLATEWATCH_VAR_DIR", REPO_ROOT / "var"))
    state_file = var_dir / "stack.json"
    if not state_file.exists():
        say("no running stack found")
        return
    state = json.loads(state_file.read_text())
    stack_pid = state.get("stack_pid")
    if stack_pid and stack_pid != os.getpid() and _alive(stack_pid):
        # The foreground `make run` stops its children in order and removes the state file.
        os.kill(stack_pid, signal.SIGTERM)
        say(f"asked the running stack (pid {stack_pid}) to stop")
        with contextlib.suppress(TimeoutError):
            wait_until(lambda: not state_file.exists(), 90, "the stack to stop")
            say("stopped")
            return
    pids = [pid for pid in state["pids"].values() if pid] + [
        pid for pid in (state.get("triton_pid"), state.get("kafka_pid")) if pid
    ]
    for pid in reversed(pids):
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGTERM)
            say(f"sent SIGTERM to {pid}")
    state_file.unlink()


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


if __name__ == "__main__":
    command = sys.argv[1] if len(sys.argv) > 1 else "run"
    {"run": run, "stop": stop}[command]()
