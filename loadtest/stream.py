"""Streaming load benchmark: synthetic raw reads through the real Kafka, normalizer, hotlist and writer.

    python -m loadtest.stream [--rate 1000] [--duration 60] [--normalizers 1|2] [--cameras 200]
                              [--hot-fraction 0.01] [--bootstrap HOST:PORT]

Starts (with `services.stack.Stack`, own var dir `var/loadtest`, free ports) a Kafka broker unless
`--bootstrap` names one, then storage (writer + search), hotlist and 1 or 2 normalizer processes; no
capture, inference or Triton: synthetic `RawRead`s go straight into RAW_READS. It puts `--hotlist-size`
plates on a hotlist through the hotlist gRPC API, produces vehicle passes at `--rate` passes/s for
`--duration` seconds, lets the pipeline drain, stops everything it started (also on Ctrl-C/SIGTERM) and
prints one JSON object as its last line.

Traffic: a "read" is one vehicle pass = 2-3 raw reads of the same plate at one camera 200 ms apart
(boxes moving), so the normalizer collapses them into one `Read`. Plate popularity: `--repeat-fraction`
of passes draw from a Zipf-distributed pool (a few plates very often), the rest are plates seen once;
`--hot-fraction` of passes carry a plate from the hotlist. Each raw read is produced when the wall clock
reaches its `captured_at` (frame 1 when the pass starts, frame 2 200 ms later, ...), as a camera feed
would deliver them, so the harness can time:

* read_to_alert: the first version of each alert arriving on ALERTS (consumed here) minus the
  `last_seen` of the read it carries. For an alert raised from the pass's early read (the normal case)
  that is the raw read that made the pass's text confident (frame 1 if its confidence is >= 0.9, else
  frame 2, which agrees with it), or a later frame when the normalizer, behind, fetched them together
  (then this figure flatters; `..._from_first_raw_...` never does); for an alert from a final read, the
  pass's last raw read.
  `..._from_first_raw_...` is from the pass's first raw read, `..._from_last_raw_...` from its last one
  (negative when the alert came before the last frame), `..._after_emit_...` from the read's
  `normalized_at` (the normalizer emitting it).
* read_to_searchable: ~`--search-samples` passes of once-seen plates are polled through the search gRPC
  API (exact plate + camera) every 250 ms until stored.
* consumer lag per group (normalizer, hotlist, writer): end offsets minus committed offsets, every second.
* peak RSS (VmHWM) and CPU seconds per process, from /proc.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import heapq
import json
import logging
import math
import os
import random
import shutil
import signal
import sys
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import yaml
from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient

from services.common.kafka import make_producer
from services.common.kafka_admin import ensure_topics
from services.common.net import free_port
from services.common.pb.platewatch.v1 import alerts_pb2, common_pb2, hotlist_pb2, reads_pb2
from services.common.settings import REPO_ROOT
from services.common.topics import ALERTS, RAW_READS, READS, READS_EARLY
from services.normalizer.tracking import make_read_id
from services.stack import ManagedProcess, Stack, StackPorts, wait_until

AGENCY = "loadtest"
FRAME_STEP_NS = 200_000_000  # 5 fps sampling: frames of one pass are 200 ms apart
LETTERS = "ABCDEFGHJKLMNPRSTUVWXYZ"  # no I, O, Q: they are look-alike-fixed by the grammar
FRESH_BASE = 50_000_000  # plate numbers of once-seen plates start here; the Zipf pool is below
TICK_S = 0.01
UK_PLATES = 23**5 * 90  # distinct plates uk_plate() can write
HOT_PLATES = 10_000 * 23**4 * 90  # distinct plates hot_plate() can write
SCRAMBLE = 2_654_435_761  # a prime above UK_PLATES: multiplying by it permutes 0..UK_PLATES-1
# Each search is a ClickHouse query in the storage process, which also runs the writer: poll gently,
# and never keep more samples pending than this, or the measurement becomes the load.
SEARCH_POLL_S = 0.25
MAX_PENDING_SAMPLES = 6
DEFAULT_PASS_GAP_S = 2.0  # services.normalizer.settings.NormalizerSettings.pass_gap_s
IDLE_CLOSE_S = 3.0  # ... .idle_close_s


def say(message: str) -> None:
    print(f"[loadtest] {message}", flush=True)


# ---- plates and passes ------------------------------------------------------------------------------


def uk_plate(number: int) -> str:
    """A distinct UK-format plate (AB12CDE) per number; the grammar keeps it as it is. Numbers are
    scrambled first: consecutive plates would be one character apart, which the normalizer rightly
    treats as one vehicle misread when their boxes are close (and real traffic is not sequential)."""
    number = (number * SCRAMBLE) % UK_PLATES
    letters = []
    for _ in range(5):
        number, rest = divmod(number, len(LETTERS))
        letters.append(LETTERS[rest])
    number, digits = divmod(number, 90)
    return f"{letters[0]}{letters[1]}{digits + 10:02d}{letters[2]}{letters[3]}{letters[4]}"


def hot_plate(index: int) -> str:
    """Hotlist plates use the 10-character Indian format (MH12AB1234): no UK plate (7 characters) is one
    look-alike substitution away from one, so every alert belongs to a hot pass. Scrambled like
    uk_plate: consecutive indexes would give plates one character apart, merged into one pass."""
    number, digits = divmod((index * SCRAMBLE) % HOT_PLATES, 10_000)
    letters = []
    for _ in range(4):
        number, rest = divmod(number, len(LETTERS))
        letters.append(LETTERS[rest])
    return f"{letters[0]}{letters[1]}{10 + number % 90:02d}{letters[2]}{letters[3]}{digits:04d}"


@dataclass
class Pass:
    camera: str
    plate: str
    frames: list[bytes]
    # captured_at of the first and last frame; frame i is captured (and produced) FRAME_STEP_NS later
    # than frame i - 1.
    first_ns: int
    last_ns: int
    hot: bool
    once_seen: bool
    read_id: str


class PassGenerator:
    """Builds serialized RawReads for vehicle passes; plate popularity as described in the module doc."""

    def __init__(
        self,
        cameras: list[str],
        hot_plates: list[str],
        hot_fraction: float,
        repeat_fraction: float,
        zipf_a: float,
        crop_bytes: int,
        thumbnail_bytes: int,
        seed: int = 7,
    ) -> None:
        self.cameras = cameras
        self.hot_plates = hot_plates
        self.hot_fraction = hot_fraction
        self.repeat_fraction = repeat_fraction
        self.zipf_a = zipf_a
        self.random = random.Random(seed)
        self.numpy = np.random.default_rng(seed)
        self.crop = os.urandom(crop_bytes)
        self.thumbnail = os.urandom(thumbnail_bytes)
        self.sequence: dict[str, int] = dict.fromkeys(cameras, 0)
        self.fresh = 0
        self._ranks: Iterator[int] = iter(())

    def _zipf_rank(self) -> int:
        rank = next(self._ranks, None)
        if rank is None:
            self._ranks = iter(int(r) for r in self.numpy.zipf(self.zipf_a, 100_000) if r < FRESH_BASE)
            return self._zipf_rank()
        return rank

    def next_pass(self, start_ns: int | None = None) -> Pass:
        """A pass whose first frame is captured at `start_ns` (default: now)."""
        draw = self.random.random()
        hot = bool(self.hot_plates) and draw < self.hot_fraction
        once_seen = False
        if hot:
            plate = self.random.choice(self.hot_plates)
        elif draw < self.hot_fraction + self.repeat_fraction:
            plate = uk_plate(self._zipf_rank())
        else:
            self.fresh += 1
            plate = uk_plate(FRESH_BASE + self.fresh)
            once_seen = True
        camera = self.random.choice(self.cameras)
        frames = 2 + (self.random.random() < 0.5)
        start_ns = time.time_ns() if start_ns is None else start_ns
        x, y = self.random.randint(100, 900), self.random.randint(300, 500)
        serialized = []
        for i in range(frames):
            self.sequence[camera] += 1
            confidence = 0.85 + 0.1 * self.random.random()
            raw = reads_pb2.RawRead(
                camera_id=camera,
                agency_id=AGENCY,
                frame_sequence=self.sequence[camera],
                plate_index=0,
                box=common_pb2.Box(x=x + 25 * i, y=y + 15 * i, width=120 + 4 * i, height=30 + i),
                frame_width=1280,
                frame_height=720,
                detection_confidence=0.95,
                model_version="loadtest",
                crop_jpeg=self.crop,
                frame_thumbnail_jpeg=self.thumbnail,
            )
            raw.candidates.add(text=plate, confidence=confidence, char_confidences=[confidence] * len(plate))
            raw.vehicle.color = "silver"
            captured_ns = start_ns + i * FRAME_STEP_NS
            raw.captured_at.FromNanoseconds(captured_ns)
            raw.inferred_at.FromNanoseconds(captured_ns)
            serialized.append(raw.SerializeToString())
        last_ns = start_ns + (frames - 1) * FRAME_STEP_NS
        read_id = make_read_id(camera, self.sequence[camera] - frames + 1, 0, start_ns)
        return Pass(camera, plate, serialized, start_ns, last_ns, hot, once_seen, read_id)


def generator_cpu_rate(generator: PassGenerator, seconds: float = 1.0) -> float:
    """Passes/s the generator builds and serializes on one core, without Kafka."""
    count, started = 0, time.perf_counter()
    while time.perf_counter() - started < seconds:
        generator.next_pass()
        count += 1
    return count / (time.perf_counter() - started)


# ---- process figures --------------------------------------------------------------------------------


def proc_status_kb(pid: int, field_name: str) -> int | None:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith(field_name + ":"):
                return int(line.split()[1])
    except OSError:
        return None
    return None


def proc_cpu_seconds(pid: int) -> float | None:
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return None
    # utime and stime of the process itself plus its waited-for children (fields 14-17 of stat).
    return sum(int(v) for v in fields[11:15]) / os.sysconf("SC_CLK_TCK")


def percentile(values: list[float], q: float) -> float | None:
    if not values:
        return None
    ordered = sorted(values)
    index = min(len(ordered) - 1, max(0, math.ceil(q / 100 * len(ordered)) - 1))
    return round(ordered[index], 1)


# ---- the run ----------------------------------------------------------------------------------------


@dataclass
class Options:
    rate: float
    duration: float
    normalizers: int
    cameras: int
    hot_fraction: float
    hotlist_size: int
    repeat_fraction: float
    zipf_a: float
    crop_bytes: int
    thumbnail_bytes: int
    search_samples: int
    drain_timeout: float
    bootstrap: str | None
    pass_gap_s: float | None
    log_level: str
    keep_var: bool
    profile_normalizer: bool = False


@dataclass
class Results:
    passes: int = 0
    raw_reads: int = 0
    hot_passes: int = 0
    started: float = 0.0
    produce_seconds: float = 0.0
    alert_latencies_ms: list[float] = field(default_factory=list)
    alert_after_close_ms: list[float] = field(default_factory=list)
    alert_from_first_ms: list[float] = field(default_factory=list)
    alert_from_last_ms: list[float] = field(default_factory=list)
    alert_versions: int = 0
    superseded_alerts: int = 0
    provisional_first: int = 0
    alerts_unknown_pass: int = 0
    searchable_ms: list[float] = field(default_factory=list)
    search_samples_lost: int = 0
    match_kinds: Counter[str] = field(default_factory=Counter)
    search_errors: Counter[str] = field(default_factory=Counter)
    search_rpc_ms: list[float] = field(default_factory=list)
    max_lag: dict[str, int] = field(default_factory=dict)
    lag_series: dict[str, list[tuple[float, int]]] = field(default_factory=dict)
    committed_at_start: dict[str, int] = field(default_factory=dict)
    committed_at_end: dict[str, int] = field(default_factory=dict)


class LoadRun:
    def __init__(self, options: Options, stack: Stack, hot_plates: list[str], cameras: list[str]) -> None:
        self.options = options
        self.stack = stack
        self.prefix = stack.topic_prefix
        self.results = Results()
        self.generator = PassGenerator(
            cameras,
            hot_plates,
            options.hot_fraction,
            options.repeat_fraction,
            options.zipf_a,
            options.crop_bytes,
            options.thumbnail_bytes,
        )
        self.groups = {
            "normalizer": (f"{self.prefix}normalizer", [RAW_READS]),
            "hotlist": (f"{self.prefix}hotlist", [READS, READS_EARLY]),
            "writer": (f"{self.prefix}writer", [READS, ALERTS]),
        }
        self.producing = True
        self.pending_samples: list[tuple[str, str, int]] = []
        self.sample_every = max(1, int(options.rate * options.duration / max(1, options.search_samples)))
        self.seen_alerts: set[str] = set()
        # read_id -> (first, last frame's captured_at ns) of every hot pass produced.
        self.hot_passes: dict[str, tuple[int, int]] = {}
        self.pass_gap_s = options.pass_gap_s if options.pass_gap_s is not None else DEFAULT_PASS_GAP_S

    # -- producing --

    async def produce(self) -> None:
        options = self.options
        producer = make_producer(
            self.stack.bootstrap, linger_ms=10, max_batch_size=512 * 1024, max_request_size=4 * 1024 * 1024
        )
        await producer.start()
        topic = RAW_READS.name(self.prefix)
        results = self.results
        try:
            results.started = time.monotonic()
            deadline = results.started + options.duration
            next_report = results.started + 5
            # Frames not yet captured: (captured_at ns, order, camera, serialized RawRead). Each frame is
            # produced when the wall clock reaches its captured_at, as a camera would deliver it.
            scheduled: list[tuple[int, int, bytes, bytes]] = []
            order = 0
            while (now := time.monotonic()) < deadline or scheduled:
                due = int((now - results.started) * options.rate) - results.passes if now < deadline else 0
                start_ns = time.time_ns()
                for _ in range(due):
                    vehicle = self.generator.next_pass(start_ns)
                    camera = vehicle.camera.encode()
                    for i, frame in enumerate(vehicle.frames):
                        order += 1
                        heapq.heappush(scheduled, (start_ns + i * FRAME_STEP_NS, order, camera, frame))
                    if vehicle.hot:
                        self.hot_passes[vehicle.read_id] = (vehicle.first_ns, vehicle.last_ns)
                    results.passes += 1
                    results.raw_reads += len(vehicle.frames)
                    results.hot_passes += vehicle.hot
                    if (
                        vehicle.once_seen
                        and results.passes % self.sample_every == 0
                        and len(self.pending_samples) < MAX_PENDING_SAMPLES
                    ):
                        self.pending_samples.append((vehicle.plate, vehicle.camera, vehicle.last_ns))
                now_ns = time.time_ns()
                while scheduled and scheduled[0][0] <= now_ns:
                    _, _, camera, frame = heapq.heappop(scheduled)
                    await producer.send(topic, value=frame, key=camera)
                if now >= next_report:
                    next_report += 5
                    self.report_progress(now)
                await asyncio.sleep(TICK_S)
            await producer.flush()
            results.produce_seconds = time.monotonic() - results.started
        finally:
            self.producing = False
            await producer.stop()

    def report_progress(self, now: float) -> None:
        elapsed = now - self.results.started
        lags = " ".join(
            f"{name}={series[-1][1]}" for name, series in self.results.lag_series.items() if series
        )
        say(
            f"t={elapsed:5.0f}s passes/s={self.results.passes / elapsed:7.0f} "
            f"raw/s={self.results.raw_reads / elapsed:7.0f} lag: {lags} "
            f"alerts={len(self.results.alert_latencies_ms)} searchable={len(self.results.searchable_ms)}"
        )

    # -- measuring --

    async def consume_alerts(self, ready: asyncio.Event) -> None:
        consumer = AIOKafkaConsumer(bootstrap_servers=self.stack.bootstrap, auto_offset_reset="latest")
        await consumer.start()
        try:
            topic = ALERTS.name(self.prefix)
            consumer.assign([TopicPartition(topic, p) for p in range(ALERTS.partitions)])
            for tp in consumer.assignment():
                await consumer.seek_to_end(tp)
                await consumer.position(tp)
            ready.set()
            while True:
                batches = await consumer.getmany(timeout_ms=100)
                arrived_ns = time.time_ns()
                for records in batches.values():
                    for record in records:
                        alert = alerts_pb2.Alert.FromString(record.value or b"")
                        if alert.read.camera.agency_id != AGENCY:
                            continue
                        r = self.results
                        r.alert_versions += 1
                        r.superseded_alerts += alert.superseded
                        if alert.alert_id in self.seen_alerts:
                            continue
                        # The first version of an alert: when the operator is told.
                        self.seen_alerts.add(alert.alert_id)
                        r.provisional_first += alert.provisional
                        r.match_kinds[alerts_pb2.MatchKind.Name(alert.match_kind)] += 1
                        # The read's newest frame: for an early read the frame that made its text
                        # confident (or the one after, when both were in one normalizer batch).
                        confident_ns = alert.read.last_seen.ToNanoseconds()
                        normalized_ns = alert.read.normalized_at.ToNanoseconds()
                        r.alert_latencies_ms.append((arrived_ns - confident_ns) / 1e6)
                        r.alert_after_close_ms.append((arrived_ns - normalized_ns) / 1e6)
                        first_last = self.hot_passes.get(alert.read.read_id)
                        if first_last is None:
                            r.alerts_unknown_pass += 1
                            continue
                        r.alert_from_first_ms.append((arrived_ns - first_last[0]) / 1e6)
                        r.alert_from_last_ms.append((arrived_ns - first_last[1]) / 1e6)
        finally:
            await consumer.stop()

    async def poll_searchable(self) -> None:
        from services.search.client import SearchClient

        client = SearchClient(f"127.0.0.1:{self.stack.ports.search_grpc}", timeout=5.0)
        # A pass cannot be stored before it closed: polling earlier would only load the search service.
        earliest_ns = int(self.pass_gap_s * 1e9)
        try:
            while self.producing or self.pending_samples:
                for sample in list(self.pending_samples):
                    plate, camera, last_ns = sample
                    if time.time_ns() - last_ns < earliest_ns:
                        continue
                    rpc_started = time.perf_counter()
                    try:
                        response = await client.search_reads(
                            plate, agency_ids=[AGENCY], camera_ids=[camera], page_size=1
                        )
                        self.results.search_rpc_ms.append((time.perf_counter() - rpc_started) * 1000)
                    except Exception as exc:  # counted and reported: a slow or failing search is a finding
                        self.results.search_errors[type(exc).__name__] += 1
                        continue
                    if response.reads:
                        self.results.searchable_ms.append((time.time_ns() - last_ns) / 1e6)
                        self.pending_samples.remove(sample)
                await asyncio.sleep(SEARCH_POLL_S)
        finally:
            self.results.search_samples_lost = len(self.pending_samples)
            await client.close()

    async def sample_lag(self) -> None:
        admin = AIOKafkaAdminClient(bootstrap_servers=self.stack.bootstrap)
        reader = AIOKafkaConsumer(bootstrap_servers=self.stack.bootstrap, enable_auto_commit=False)
        await admin.start()
        await reader.start()
        partitions = {
            topic: [TopicPartition(topic.name(self.prefix), p) for p in range(topic.partitions)]
            for topic in (RAW_READS, READS, READS_EARLY, ALERTS)
        }
        try:
            while True:
                every_tp = [tp for tps in partitions.values() for tp in tps]
                ends = await reader.end_offsets(every_tp)
                now = time.monotonic()
                for name, (group, topics) in self.groups.items():
                    committed = await admin.list_consumer_group_offsets(group)
                    tps = [tp for topic in topics for tp in partitions[topic]]
                    done = sum(committed[tp].offset for tp in tps if tp in committed)
                    lag = sum(ends[tp] for tp in tps) - done
                    self.results.lag_series.setdefault(name, []).append((now, lag))
                    self.results.max_lag[name] = max(self.results.max_lag.get(name, 0), lag)
                    self.results.committed_at_start.setdefault(name, done)
                    self.results.committed_at_end[name] = done
                await asyncio.sleep(1.0)
        finally:
            await reader.stop()
            await admin.close()

    def lag_now(self) -> dict[str, int]:
        return {name: series[-1][1] for name, series in self.results.lag_series.items() if series}

    async def run(self) -> None:
        alerts_ready = asyncio.Event()
        alerts = asyncio.create_task(self.consume_alerts(alerts_ready))
        lag = asyncio.create_task(self.sample_lag())
        await asyncio.wait_for(alerts_ready.wait(), 30)
        searchable = asyncio.create_task(self.poll_searchable())
        try:
            await self.produce()
            say(f"produced {self.results.passes} passes; draining (up to {self.options.drain_timeout:.0f}s)")
            drain_deadline = time.monotonic() + self.options.drain_timeout
            # Tracks still open when input stops close after the normalizer's idle_close_s (3 s); the
            # offsets of their raw reads are already committed, so lag alone would end the drain early.
            await asyncio.sleep(self.pass_gap_s + IDLE_CLOSE_S + 2)
            alerts_seen, quiet_since = -1, time.monotonic()
            while time.monotonic() < drain_deadline:
                if len(self.seen_alerts) != alerts_seen:
                    alerts_seen, quiet_since = len(self.seen_alerts), time.monotonic()
                settled = all(v <= 8 for v in self.lag_now().values()) and not self.pending_samples
                if settled and time.monotonic() - quiet_since >= 3:
                    break
                await asyncio.sleep(0.5)
        finally:
            for task in (alerts, lag, searchable):
                task.cancel()
            await asyncio.gather(alerts, lag, searchable, return_exceptions=True)


# ---- stack ------------------------------------------------------------------------------------------


def write_cameras(path: Path, count: int) -> list[str]:
    ids = [f"lt-cam-{i:04d}" for i in range(count)]
    cameras = [
        {
            "id": camera_id,
            "agency_id": AGENCY,
            "name": f"Load test camera {i}",
            "site": f"site-{i // 4}",
            "lat": 51.0 + i * 0.001,
            "lon": -1.0 - i * 0.001,
            "heading_deg": (i * 37) % 360,
        }
        for i, camera_id in enumerate(ids)
    ]
    path.write_text(yaml.safe_dump({"cameras": cameras}, sort_keys=False))
    return ids


def profile_normalizer(stack: Stack, path: Path) -> None:
    """Restart the normalizer under cProfile (stats written to `path` when it stops)."""
    process = stack.processes["normalizer"]
    process.stop()
    serve_args = process.argv[process.argv.index("-m") + 1 :]
    # Profiled in CPU time (not wall time, which on a shared machine mostly measures waiting for a core).
    code = (
        "import cProfile, runpy, sys, time\n"
        "profiler = cProfile.Profile(time.process_time)\n"
        "sys.argv = sys.argv[2:]\n"
        "try:\n"
        "    profiler.runcall(runpy.run_module, sys.argv[0], run_name='__main__')\n"
        "except SystemExit:\n"
        "    pass\n"
        f"profiler.dump_stats({str(path)!r})\n"
    )
    process.argv = [sys.executable, "-c", code, "-", *serve_args]
    process.start()
    wait_until(process.ready, 120, "the profiled normalizer to be ready")
    say(f"normalizer runs under cProfile; stats in {path}")


def add_second_normalizer(stack: Stack) -> ManagedProcess:
    """A second normalizer process: own metrics port and instance id (hence its own transactional id)."""
    first = stack.processes["normalizer"]
    port = free_port()
    env = {**first.env, "PLATEWATCH_METRICS_PORT": str(port), "PLATEWATCH_INSTANCE_ID": "loadtest-2"}
    process = ManagedProcess(
        name="normalizer-2",
        argv=list(first.argv),
        env=env,
        log_path=stack.var_dir / "logs" / "normalizer-2.log",
        ready_url=f"http://127.0.0.1:{port}/readyz",
    )
    stack.processes["normalizer-2"] = process
    process.start()
    wait_until(process.ready, 120, "normalizer-2 to be ready")
    wait_until(first.ready, 120, "normalizer to be ready after the rebalance")
    return process


async def create_hotlist(target: str, plates: list[str]) -> None:
    from services.hotlist.client import HotlistClient

    async with HotlistClient(target, timeout_s=60) as client:
        await client.wait_serving(60)
        hotlist = await client.create_hotlist(name="Load test", agency_id=AGENCY)
        for start in range(0, len(plates), 500):
            entries = [
                hotlist_pb2.HotlistEntry(
                    plate=plate, reason=hotlist_pb2.REASON_CODE_STOLEN_VEHICLE, priority=1, source="loadtest"
                )
                for plate in plates[start : start + 500]
            ]
            await client.add_entries(hotlist.hotlist_id, entries)


def process_pids(stack: Stack) -> dict[str, int]:
    pids = {name: p.pid for name, p in stack.processes.items() if p.pid}
    if stack.kafka is not None and stack.kafka.running_pid():
        pids["kafka"] = stack.kafka.running_pid()
    pids["harness"] = os.getpid()
    return pids


def summarize(options: Options, run: LoadRun, rss: dict[str, int], cpu: dict[str, float]) -> dict[str, Any]:
    r = run.results
    seconds = r.produce_seconds or options.duration
    consumed = {
        name: round((r.committed_at_end.get(name, 0) - r.committed_at_start.get(name, 0)) / seconds)
        for name in run.groups
    }
    # Flat lag: in the second half of the run the lag did not grow by more than 2 s of input.
    lag_growth = {}
    for name, series in r.lag_series.items():
        during = [(t, lag) for t, lag in series if t <= r.started + seconds]
        half = [lag for t, lag in during if t >= r.started + seconds / 2]
        lag_growth[name] = (half[-1] - half[0]) if len(half) >= 2 else 0
    per_second_input = {"normalizer": r.raw_reads / seconds, "hotlist": r.passes / seconds}
    per_second_input["writer"] = per_second_input["hotlist"]
    per_second_input["hotlist"] *= 2  # an early and a final read per pass
    flat = all(lag_growth[n] <= 2 * per_second_input[n] for n in lag_growth)
    return {
        "reads_per_s": round(r.passes / seconds),
        "raw_reads_per_s": round(r.raw_reads / seconds),
        "target_reads_per_s": options.rate,
        "duration_s": round(seconds, 1),
        "normalizers": options.normalizers,
        "sustained": flat,
        "lag_growth_second_half": lag_growth,
        # From the raw read that made the pass's text confident (the alerting read's newest frame).
        "read_to_alert_p50_ms": percentile(r.alert_latencies_ms, 50),
        "read_to_alert_p99_ms": percentile(r.alert_latencies_ms, 99),
        # From the pass's first raw read (frame 1), and from its last one (negative: alerted earlier).
        "read_to_alert_from_first_raw_p50_ms": percentile(r.alert_from_first_ms, 50),
        "read_to_alert_from_first_raw_p99_ms": percentile(r.alert_from_first_ms, 99),
        "read_to_alert_from_last_raw_p50_ms": percentile(r.alert_from_last_ms, 50),
        "read_to_alert_from_last_raw_p99_ms": percentile(r.alert_from_last_ms, 99),
        # From the alerting read's emission by the normalizer (normalized_at).
        "read_to_alert_after_emit_p50_ms": percentile(r.alert_after_close_ms, 50),
        "read_to_alert_after_emit_p99_ms": percentile(r.alert_after_close_ms, 99),
        "alerts": len(r.alert_latencies_ms),
        "alerts_first_provisional": r.provisional_first,
        "alert_versions": r.alert_versions,
        "alerts_superseded": r.superseded_alerts,
        "alerts_unknown_pass": r.alerts_unknown_pass,
        "hot_passes": r.hot_passes,
        "read_to_searchable_p50_ms": percentile(r.searchable_ms, 50),
        "read_to_searchable_p99_ms": percentile(r.searchable_ms, 99),
        "searchable_samples": len(r.searchable_ms),
        "searchable_samples_not_found": r.search_samples_lost,
        "search_errors": dict(r.search_errors),
        "search_rpcs": len(r.search_rpc_ms),
        "search_rpc_p50_ms": percentile(r.search_rpc_ms, 50),
        "max_consumer_lag": r.max_lag,
        "consumed_per_s": consumed,
        "peak_rss_mb": {name: round(kb / 1024) for name, kb in rss.items()},
        "cpu_s": {name: round(seconds_used, 1) for name, seconds_used in cpu.items()},
        "pass_gap_s": run.pass_gap_s,
        "alert_match_kinds": dict(r.match_kinds),
    }


def run(options: Options) -> dict[str, Any]:
    var_dir = REPO_ROOT / "var" / "loadtest"
    if var_dir.exists() and not options.keep_var:
        shutil.rmtree(var_dir)  # a fresh broker log and ClickHouse each run: figures are comparable
    var_dir.mkdir(parents=True, exist_ok=True)
    cameras = write_cameras(var_dir / "cameras.yaml", options.cameras)
    extra_env = {"PLATEWATCH_LOG_LEVEL": options.log_level, "PLATEWATCH_INSTANCE_ID": "loadtest-1"}
    if options.pass_gap_s is not None:
        extra_env["PLATEWATCH_PASS_GAP_S"] = str(options.pass_gap_s)
    prefix = f"loadtest-{int(time.time())}-" if options.bootstrap else ""
    stack = Stack(
        var_dir,
        ports=StackPorts.free(),
        topic_prefix=prefix,
        cameras_file=var_dir / "cameras.yaml",
        extra_env=extra_env,
        kafka_bootstrap=options.bootstrap,
        triton_url="127.0.0.1:1",
    )
    stopping = False

    def on_sigterm(_signum: int, _frame: object) -> None:
        nonlocal stopping
        if not stopping:
            stopping = True
            raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, on_sigterm)
    try:
        if options.bootstrap:
            asyncio.run(ensure_topics(options.bootstrap, prefix))
        else:
            stack.start_kafka()
        stack.start_services(["storage", "hotlist", "normalizer"])
        if options.profile_normalizer:
            profile_normalizer(stack, var_dir / "normalizer.prof")
        if options.normalizers == 2:
            say("starting normalizer-2")
            add_second_normalizer(stack)
        hot_plates = [hot_plate(i) for i in range(options.hotlist_size)]
        say(f"creating a hotlist with {len(hot_plates)} plates")
        asyncio.run(create_hotlist(f"127.0.0.1:{stack.ports.hotlist_grpc}", hot_plates))
        load = LoadRun(options, stack, hot_plates, cameras)
        generator_rate = generator_cpu_rate(load.generator)
        say(f"generator builds {generator_rate:.0f} passes/s on one core (without Kafka)")
        pids = process_pids(stack)
        cpu_before = {name: proc_cpu_seconds(pid) or 0.0 for name, pid in pids.items()}
        say(f"producing {options.rate:.0f} passes/s for {options.duration:.0f}s")
        asyncio.run(load.run())
        rss = {name: proc_status_kb(pid, "VmHWM") or 0 for name, pid in pids.items()}
        cpu = {name: (proc_cpu_seconds(pid) or 0.0) - cpu_before[name] for name, pid in pids.items()}
        summary = summarize(options, load, rss, cpu)
        summary["generator_max_reads_per_s"] = round(generator_rate)
        summary["cpus"] = os.cpu_count()
        summary["load_average_1m"] = round(os.getloadavg()[0], 2)
        return summary
    finally:
        signal.signal(signal.SIGTERM, signal.SIG_DFL)
        with contextlib.suppress(KeyboardInterrupt):
            stack.stop()


def parse_args(argv: list[str] | None = None) -> Options:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--rate", type=float, default=1000, help="vehicle passes (reads) per second")
    parser.add_argument("--duration", type=float, default=60, help="seconds of load")
    parser.add_argument("--normalizers", type=int, choices=(1, 2), default=1)
    parser.add_argument("--cameras", type=int, default=200)
    parser.add_argument("--hot-fraction", type=float, default=0.01, help="fraction of passes on a hotlist")
    parser.add_argument("--hotlist-size", type=int, default=1000)
    parser.add_argument("--repeat-fraction", type=float, default=0.2, help="passes from the Zipf pool")
    parser.add_argument("--zipf-a", type=float, default=1.1, help="Zipf exponent of the repeating pool")
    parser.add_argument("--crop-bytes", type=int, default=1000, help="stand-in crop JPEG per raw read")
    parser.add_argument("--thumbnail-bytes", type=int, default=0, help="stand-in frame thumbnail")
    parser.add_argument("--search-samples", type=int, default=200)
    parser.add_argument("--drain-timeout", type=float, default=60)
    parser.add_argument("--bootstrap", default=None, help="use this broker instead of starting one")
    parser.add_argument("--pass-gap", type=float, default=None, help="normalizer PASS_GAP_S (default 2)")
    parser.add_argument("--log-level", default="INFO", help="services' log level")
    parser.add_argument("--keep-var", action="store_true", help="do not wipe var/loadtest first")
    parser.add_argument(
        "--profile-normalizer", action="store_true", help="run the normalizer under cProfile (slower)"
    )
    args = parser.parse_args(argv)
    return Options(
        rate=args.rate,
        duration=args.duration,
        normalizers=args.normalizers,
        cameras=args.cameras,
        hot_fraction=args.hot_fraction,
        hotlist_size=args.hotlist_size,
        repeat_fraction=args.repeat_fraction,
        zipf_a=args.zipf_a,
        crop_bytes=args.crop_bytes,
        thumbnail_bytes=args.thumbnail_bytes,
        search_samples=args.search_samples,
        drain_timeout=args.drain_timeout,
        bootstrap=args.bootstrap,
        pass_gap_s=args.pass_gap,
        log_level=args.log_level,
        keep_var=args.keep_var,
        profile_normalizer=args.profile_normalizer,
    )


def main(argv: list[str] | None = None) -> None:
    options = parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(message)s")
    try:
        summary = run(options)
    except KeyboardInterrupt:
        say("interrupted; everything started was stopped")
        raise SystemExit(130) from None
    print(json.dumps(summary, separators=(", ", ": ")), flush=True)


if __name__ == "__main__":
    main(sys.argv[1:])
