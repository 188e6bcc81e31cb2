"""A single-node Apache Kafka broker (KRaft) run from jars fetched with Maven.

Used by `platewatch kafka start|stop` (services/deploy_tools/cli.py) and by the test fixture
(tests/fixtures/kafka_broker.py). The jar list is deploy/kafka/pom.xml; the jars are cached in
var/kafka/libs and fetched again only when missing or when the pom changes.
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import hashlib
import json
import logging
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Coroutine, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import IO, Any, TypeVar

from services.common.settings import REPO_ROOT

log = logging.getLogger(__name__)

T = TypeVar("T")

KAFKA_DEPLOY_DIR = REPO_ROOT / "deploy" / "kafka"
KAFKA_POM = KAFKA_DEPLOY_DIR / "pom.xml"
LOG4J_CONFIG = KAFKA_DEPLOY_DIR / "log4j2.properties"
DEFAULT_LIBS_DIR = REPO_ROOT / "var" / "kafka" / "libs"
# Written into the libs dir after a complete fetch: which pom produced it and which jars it holds.
CACHE_STAMP = ".platewatch-cache.json"

# Largest record batch the broker accepts; topics (services/common/topics.py) may not exceed it.
BROKER_MAX_MESSAGE_BYTES = 16_777_216
DEFAULT_HEAP = "512m"
NODE_ID = 1

# Maven colours some lines even in batch mode; keep relayed output plain text.
_ANSI_ESCAPE = re.compile(r"\x1b\[[0-9;]*m")
_STORAGE_TOOL_CLASSES = ("kafka.tools.StorageTool", "org.apache.kafka.tools.StorageTool")


class KafkaBrokerError(RuntimeError):
    """The broker could not be fetched, formatted, started or reached."""


# --------------------------------------------------------------------------------------------- jars


def _pom_digest(pom: Path) -> str:
    return hashlib.sha256(pom.read_bytes()).hexdigest()


def _cached_jars(libs_dir: Path, digest: str) -> list[Path] | None:
    """The cached classpath when the cache is complete and was built from this pom, else None."""
    try:
        stamp = json.loads((libs_dir / CACHE_STAMP).read_text())
    except (OSError, ValueError):
        return None
    if stamp.get("pom_sha256") != digest:
        return None
    jars = [libs_dir / name for name in stamp.get("jars", [])]
    if not jars or not all(jar.is_file() for jar in jars):
        return None
    return jars


@contextlib.contextmanager
def _exclusive_lock(path: Path) -> Iterator[None]:
    """Serialise fetches between processes (parallel test sessions, two engineers) on one cache."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def ensure_kafka_jars(
    libs_dir: Path = DEFAULT_LIBS_DIR,
    *,
    pom: Path = KAFKA_POM,
    mvn: str = "mvn",
    output: IO[str] | None = None,
) -> list[Path]:
    """Return the broker's classpath, fetching it with Maven first when the cache is missing,
    incomplete or was built from a different pom.

    Maven's download progress goes to `output` (default: this process's stderr). The fetch lands in
    a temporary directory that replaces `libs_dir` only once complete, so an interrupted fetch never
    leaves a half-filled cache behind.
    """
    digest = _pom_digest(pom)
    jars = _cached_jars(libs_dir, digest)
    if jars is not None:
        return jars
    with _exclusive_lock(libs_dir.parent / f".{libs_dir.name}.lock"):
        jars = _cached_jars(libs_dir, digest)  # another process may have fetched while we waited
        if jars is not None:
            return jars
        mvn_path = shutil.which(mvn)
        if mvn_path is None:
            raise KafkaBrokerError(f"Maven ({mvn}) not found; install it (apt-get install maven)")
        staging = libs_dir.parent / f"{libs_dir.name}.fetching-{os.getpid()}"
        shutil.rmtree(staging, ignore_errors=True)
        stream = output if output is not None else sys.stderr
        print(f">> fetching Kafka broker jars ({pom}) from Maven Central into {libs_dir}", file=stream)
        stream.flush()
        started = time.monotonic()
        command = [
            mvn_path,
            "--batch-mode",
            "-Dstyle.color=never",
            "-f",
            str(pom),
            "dependency:copy-dependencies",
            f"-DoutputDirectory={staging}",
        ]
        # Relay line by line rather than handing over our stderr: under pytest's capture it may
        # have no file descriptor.
        with subprocess.Popen(
            command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, text=True
        ) as maven:
            assert maven.stdout is not None
            for line in maven.stdout:
                stream.write(_ANSI_ESCAPE.sub("", line))
                stream.flush()
        if maven.returncode != 0:
            shutil.rmtree(staging, ignore_errors=True)
            raise KafkaBrokerError(
                f"fetching Kafka jars failed: {' '.join(command)} exited {maven.returncode}"
            )
        names = sorted(p.name for p in staging.glob("*.jar"))
        if not names:
            raise KafkaBrokerError(f"Maven copied no jars into {staging}")
        (staging / CACHE_STAMP).write_text(json.dumps({"pom_sha256": digest, "jars": names}, indent=1))
        previous = libs_dir.parent / f"{libs_dir.name}.old-{os.getpid()}"
        if libs_dir.exists():
            libs_dir.rename(previous)
        staging.rename(libs_dir)
        shutil.rmtree(previous, ignore_errors=True)
        elapsed = time.monotonic() - started
        print(f">> Kafka jars ready: {len(names)} jars in {elapsed:.1f}s", file=stream)
        stream.flush()
        log.info("kafka jars fetched", extra={"jars": len(names), "seconds": round(elapsed, 1)})
        return [libs_dir / name for name in names]


def _storage_tool_class(classpath: list[Path]) -> str:
    """The StorageTool main class in these jars (it has moved between Kafka releases)."""
    import zipfile

    wanted = {name.replace(".", "/") + ".class": name for name in _STORAGE_TOOL_CLASSES}
    for jar in classpath:
        if not (jar.name.startswith("kafka_") or jar.name.startswith("kafka-")):
            continue
        with zipfile.ZipFile(jar) as archive:
            for entry, class_name in wanted.items():
                with contextlib.suppress(KeyError):
                    archive.getinfo(entry)
                    return class_name
    raise KafkaBrokerError(f"no StorageTool ({' or '.join(_STORAGE_TOOL_CLASSES)}) on the classpath")


# ------------------------------------------------------------------------------------------ helpers


def run_coroutine_sync(factory: Callable[[], Coroutine[Any, Any, T]]) -> T:
    """Run a coroutine to completion from synchronous code, even when this thread already runs an
    event loop (pytest-asyncio, typer inside an async app): it gets its own loop in a worker thread."""
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="kafka-sync") as pool:
        return pool.submit(lambda: asyncio.run(factory())).result()


def _port_open(host: str, port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.settimeout(0.5)
        return sock.connect_ex((host, port)) == 0


async def probe_broker(bootstrap: str, timeout_s: float = 5.0) -> int:
    """Ask the cluster for its metadata; returns how many brokers it reports (raises on failure)."""
    from aiokafka.admin import AIOKafkaAdminClient

    admin = AIOKafkaAdminClient(
        bootstrap_servers=bootstrap, request_timeout_ms=int(timeout_s * 1000), retry_backoff_ms=100
    )
    try:
        async with asyncio.timeout(timeout_s):
            await admin.start()
            cluster = await admin.describe_cluster()
    finally:
        await admin.close()
    return len(cluster.get("brokers", []))


def _is_kafka_process(pid: int, properties: Path) -> bool:
    """True when `pid` is alive and is the broker started with this properties file (guards against
    a stale pid file pointing at a recycled pid)."""
    try:
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
        status = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return False
    if "\nState:\tZ" in status:
        return False
    return b"kafka.Kafka" in cmdline and str(properties).encode() in cmdline


def _set_parent_death_signal() -> None:
    """In the child before exec: get SIGTERM when the parent dies, so a crashed test run does not
    leave a broker behind (Linux only; harmless elsewhere)."""
    with contextlib.suppress(Exception):
        import ctypes

        pr_set_pdeathsig = 1
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(pr_set_pdeathsig, signal.SIGTERM)


# ------------------------------------------------------------------------------------------- broker


class KafkaBroker:
    """One KRaft node acting as broker and controller, its state in `data_dir`.

    Layout of `data_dir`: server.properties, log/ (Kafka's data, formatted once), broker.log (the
    JVM's output), broker.pid (so `stop()` works from another process).
    """

    def __init__(
        self,
        data_dir: Path,
        port: int = 9092,
        controller_port: int = 9093,
        *,
        classpath: list[Path] | None = None,
        heap: str = DEFAULT_HEAP,
        java: str = "java",
        host: str = "127.0.0.1",
    ) -> None:
        self.data_dir = Path(data_dir).resolve()
        self.port = port
        self.controller_port = controller_port
        self.host = host
        self.heap = heap
        self.java = java
        self._classpath = classpath
        self._process: subprocess.Popen[bytes] | None = None

    # Paths -----------------------------------------------------------------------------------
    @property
    def bootstrap(self) -> str:
        return f"{self.host}:{self.port}"

    @property
    def properties_file(self) -> Path:
        return self.data_dir / "server.properties"

    @property
    def log_dir(self) -> Path:
        return self.data_dir / "log"

    @property
    def log_file(self) -> Path:
        return self.data_dir / "broker.log"

    @property
    def pid_file(self) -> Path:
        return self.data_dir / "broker.pid"

    @property
    def classpath(self) -> list[Path]:
        if self._classpath is None:
            self._classpath = ensure_kafka_jars()
        return self._classpath

    # Configuration ---------------------------------------------------------------------------
    def server_properties(self) -> dict[str, str]:
        """Broker configuration: one node, replication factor 1 everywhere, sized for a laptop."""
        return {
            "process.roles": "broker,controller",
            "node.id": str(NODE_ID),
            # Static quorum: the voter set lives in this file, not in the formatted log, so the
            # controller port may change between runs on the same data directory.
            "controller.quorum.voters": f"{NODE_ID}@{self.host}:{self.controller_port}",
            "listeners": f"PLAINTEXT://{self.host}:{self.port},CONTROLLER://{self.host}:{self.controller_port}",
            "advertised.listeners": f"PLAINTEXT://{self.host}:{self.port}",
            "controller.listener.names": "CONTROLLER",
            "inter.broker.listener.name": "PLAINTEXT",
            "listener.security.protocol.map": "PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT",
            "log.dirs": str(self.log_dir),
            # Topics come only from the registry (services/common/topics.py) via ensure_topics().
            "auto.create.topics.enable": "false",
            "message.max.bytes": str(BROKER_MAX_MESSAGE_BYTES),
            "replica.fetch.max.bytes": str(BROKER_MAX_MESSAGE_BYTES),
            "default.replication.factor": "1",
            "min.insync.replicas": "1",
            "offsets.topic.replication.factor": "1",
            "transaction.state.log.replication.factor": "1",
            "transaction.state.log.min.isr": "1",
            "share.coordinator.state.topic.replication.factor": "1",
            "share.coordinator.state.topic.min.isr": "1",
            # Defaults are 50 partitions each: creating them on first use costs seconds on 2 cores.
            "offsets.topic.num.partitions": "4",
            "transaction.state.log.num.partitions": "4",
            # Consumers in tests and the dev stack join alone; don't wait 3 s for company.
            "group.initial.rebalance.delay.ms": "0",
            # Small machine: few threads, and a cleaner buffer that fits in a 512 MB heap.
            "num.network.threads": "2",
            "num.io.threads": "4",
            "background.threads": "4",
            "num.recovery.threads.per.data.dir": "1",
            "log.cleaner.threads": "1",
            "log.cleaner.dedupe.buffer.size": str(16 * 1024 * 1024),
            "num.partitions": "1",
        }

    def write_properties(self) -> None:
        lines = [f"{key}={value}" for key, value in self.server_properties().items()]
        self.data_dir.mkdir(parents=True, exist_ok=True)
        self.properties_file.write_text(
            "# Written by services/deploy_tools/kafka_broker.py\n" + "\n".join(lines) + "\n"
        )

    def _java_command(self, main_class: str, *args: str) -> list[str]:
        return [
            self.java,
            f"-Xmx{self.heap}",
            "-Xms128m",
            "-XX:+UseG1GC",
            "-XX:MaxGCPauseMillis=20",
            "-Djava.awt.headless=true",
            f"-Dlog4j2.configurationFile={LOG4J_CONFIG}",
            "-cp",
            os.pathsep.join(str(jar) for jar in self.classpath),
            main_class,
            *args,
        ]

    @property
    def formatted(self) -> bool:
        return (self.log_dir / "meta.properties").is_file()

    def format_storage(self) -> None:
        """Format the KRaft log directory with a fresh cluster id (only if not formatted yet)."""
        if self.formatted:
            return
        cluster_id = _random_cluster_id()
        command = self._java_command(
            _storage_tool_class(self.classpath),
            "format",
            "--config",
            str(self.properties_file),
            "--cluster-id",
            cluster_id,
            "--ignore-formatted",
        )
        result = subprocess.run(command, capture_output=True, text=True, check=False)
        if result.returncode != 0:
            raise KafkaBrokerError(
                f"kafka storage format failed ({result.returncode}):\n{result.stdout}{result.stderr}"
            )
        log.info("kafka storage formatted", extra={"cluster_id": cluster_id, "log_dir": str(self.log_dir)})

    # Lifecycle -------------------------------------------------------------------------------
    def running_pid(self) -> int | None:
        """Pid of this data directory's broker if one is running (from this or another process)."""
        if self._process is not None and self._process.poll() is None:
            return self._process.pid
        try:
            pid = int(self.pid_file.read_text().strip())
        except (OSError, ValueError):
            return None
        return pid if _is_kafka_process(pid, self.properties_file) else None

    def start(self, *, detach: bool = False) -> None:
        """Write the configuration, format storage on first use and launch the JVM.

        Returns once the process is launched; call `wait_ready()` to wait until it serves requests.
        With `detach=True` the broker gets its own session and outlives this process (the CLI);
        otherwise it is tied to this process and gets SIGTERM if this process dies (tests).
        """
        if self.running_pid() is not None:
            raise KafkaBrokerError(
                f"a broker is already running for {self.data_dir} (pid {self.running_pid()})"
            )
        # Otherwise wait_ready() could be answered by whatever already holds the port.
        for port in (self.port, self.controller_port):
            if _port_open(self.host, port):
                raise KafkaBrokerError(
                    f"port {self.host}:{port} is already in use; is another broker running?"
                )
        self.write_properties()
        self.format_storage()
        command = self._java_command("kafka.Kafka", str(self.properties_file))
        with self.log_file.open("ab") as log_handle:
            log_handle.write(
                f"\n==== starting broker at {time.strftime('%Y-%m-%dT%H:%M:%S')} ====\n".encode()
            )
            log_handle.flush()
            self._process = subprocess.Popen(
                command,
                stdin=subprocess.DEVNULL,
                stdout=log_handle,
                stderr=subprocess.STDOUT,
                cwd=self.data_dir,
                start_new_session=detach,
                preexec_fn=None if detach else _set_parent_death_signal,
            )
        self.pid_file.write_text(f"{self._process.pid}\n")
        log.info(
            "kafka broker launched",
            extra={"pid": self._process.pid, "bootstrap": self.bootstrap, "log": str(self.log_file)},
        )

    def configured_bootstrap(self) -> str | None:
        """The client address in this data directory's server.properties (what a running broker,
        possibly started by another process with other ports, actually serves)."""
        try:
            lines = self.properties_file.read_text().splitlines()
        except OSError:
            return None
        for line in lines:
            key, _, value = line.partition("=")
            if key.strip() == "advertised.listeners":
                return value.strip().split(",")[0].removeprefix("PLAINTEXT://")
        return None

    def log_tail(self, lines: int = 40) -> str:
        try:
            return "\n".join(self.log_file.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return "(no broker log)"

    def wait_ready(self, timeout: float = 60.0) -> float:
        """Block until the broker answers a metadata request listing itself; returns seconds waited.

        Raises KafkaBrokerError if the JVM exits or the timeout passes first (with the log's tail).
        """
        started = time.monotonic()
        deadline = started + timeout
        last_error: BaseException | None = None
        while time.monotonic() < deadline:
            if self._process is not None and self._process.poll() is not None:
                raise KafkaBrokerError(
                    f"kafka broker exited with {self._process.returncode} during startup; "
                    f"log {self.log_file}:\n{self.log_tail()}"
                )
            if self._process is None and self.running_pid() is None:
                raise KafkaBrokerError(f"no kafka broker running for {self.data_dir}")
            if _port_open(self.host, self.port):
                try:
                    if run_coroutine_sync(lambda: probe_broker(self.bootstrap, timeout_s=5.0)) >= 1:
                        return time.monotonic() - started
                except Exception as exc:  # not serving yet: keep polling until the deadline
                    last_error = exc
            time.sleep(0.2)
        raise KafkaBrokerError(
            f"kafka broker at {self.bootstrap} not ready after {timeout:.0f}s (last error: {last_error!r}); "
            f"log {self.log_file}:\n{self.log_tail()}"
        )

    def stop(self, timeout: float = 30.0) -> bool:
        """SIGTERM the broker (found via the pid file if started elsewhere), SIGKILL it if it has not
        exited after `timeout` seconds. Returns False when no broker was running."""
        pid = self.running_pid()
        if pid is None:
            self.pid_file.unlink(missing_ok=True)
            return False
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGTERM)
        if not self._wait_exit(pid, timeout):
            log.warning("kafka broker ignored SIGTERM; killing it", extra={"pid": pid})
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
            self._wait_exit(pid, 10.0)
        self.pid_file.unlink(missing_ok=True)
        self._process = None
        log.info("kafka broker stopped", extra={"pid": pid})
        return True

    def _wait_exit(self, pid: int, timeout: float) -> bool:
        if self._process is not None and self._process.pid == pid:
            try:
                self._process.wait(timeout)
                return True
            except subprocess.TimeoutExpired:
                return False
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if not _is_kafka_process(pid, self.properties_file):
                return True
            time.sleep(0.1)
        return False


def _random_cluster_id() -> str:
    """Kafka cluster ids are 16 random bytes in URL-safe base64 without padding (22 chars); like
    Kafka's own generator, skip ids starting with '-', which the tool would parse as an option."""
    import base64

    while True:
        cluster_id = base64.urlsafe_b64encode(uuid.uuid4().bytes).decode().rstrip("=")
        if not cluster_id.startswith("-"):
            return cluster_id
