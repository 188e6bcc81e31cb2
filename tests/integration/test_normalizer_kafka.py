"""The normalizer against a real Kafka broker, run as `platewatch serve normalizer` subprocesses:
one read per vehicle pass, dead letters, and exactly-once across repeated SIGKILLs."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
import urllib.request
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient

from services.common.net import free_port
from services.common.pb.platewatch.v1 import common_pb2, reads_pb2
from services.common.topics import RAW_READS, READS, READS_EARLY
from services.normalizer.tracking import make_read_id, ns_timestamp

CAMERAS = ["cam-north", "cam-east", "cam-south", "cam-west"]
FRAME_NS = 100_000_000
PASS_SPACING_NS = 3_500_000_000  # > pass_gap_s (2 s) between passes of one camera


@dataclass(frozen=True)
class Pass:
    camera: str
    plate: str
    first_frame: int
    start_ns: int
    frames: int

    @property
    def read_id(self) -> str:
        return make_read_id(self.camera, self.first_frame, 0, self.start_ns)

    def raw_reads(self) -> list[reads_pb2.RawRead]:
        out = []
        for i in range(self.frames):
            # One misread frame per pass: the consensus must vote it away.
            text = self.plate[:3] + "8" + self.plate[4:] if i == 1 else self.plate
            read = reads_pb2.RawRead(
                camera_id=self.camera,
                agency_id="test-agency",
                frame_sequence=self.first_frame + i,
                captured_at=ns_timestamp(self.start_ns + i * FRAME_NS),
                plate_index=0,
                box=common_pb2.Box(x=600, y=600 - 25 * i, width=120, height=40),
                frame_width=1280,
                frame_height=720,
                detection_confidence=0.9,
                crop_jpeg=b"\xff\xd8" + bytes(2000),
                model_version="test",
            )
            read.candidates.add(text=text, confidence=0.6 if i == 1 else 0.9)
            out.append(read)
        return out


def make_passes(per_camera: int, frames: int = 5) -> list[Pass]:
    """Passes in send order: round-robin over cameras, each camera's passes 3.5 s apart in event time."""
    base_ns = time.time_ns() - 3600 * 1_000_000_000
    passes = []
    for n in range(per_camera):
        for c, camera in enumerate(CAMERAS):
            plate = f"{(n + c) % 9 + 1}ABC{n:03d}"  # California format 1LLL DDD
            passes.append(Pass(camera, plate, n * 1000, base_ns + n * PASS_SPACING_NS + c, frames))
    return passes


@pytest.fixture
def cameras_file(tmp_path: Path) -> Path:
    path = tmp_path / "cameras.yaml"
    lines = ["cameras:"]
    for i, camera in enumerate(CAMERAS):
        lines += [
            f"  - id: {camera}",
            "    agency_id: test-agency",
            f"    name: {camera}",
            "    site: test-site",
            "    lat: 52.0",
            "    lon: 4.0",
            f"    heading_deg: {i * 90}",
        ]
    path.write_text("\n".join(lines) + "\n")
    return path


class NormalizerProcess:
    """`platewatch serve normalizer` as a subprocess, with a fixed instance id across restarts."""

    def __init__(self, env: dict[str, str], log_dir: Path) -> None:
        self.env = env
        self.log_dir = log_dir
        self.port = free_port()
        self.process: subprocess.Popen[bytes] | None = None
        self.starts = 0

    def start(self) -> None:
        self.starts += 1
        log = (self.log_dir / f"normalizer-{self.starts}.log").open("wb")
        env = {**os.environ, **self.env, "PLATEWATCH_METRICS_PORT": str(self.port)}
        self.process = subprocess.Popen(
            [sys.executable, "-m", "services.cli", "serve", "normalizer"],
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )

    def _get(self, path: str) -> str | None:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{self.port}{path}", timeout=2) as response:
                return str(response.read().decode())
        except OSError:
            return None

    def ready(self) -> bool:
        assert self.process is not None
        assert self.process.poll() is None, f"normalizer exited with {self.process.returncode}"
        return self._get("/readyz") is not None

    def counter(self, name: str) -> float | None:
        text = self._get("/metrics") or ""
        for line in text.splitlines():
            if line.startswith(f"{name} "):
                return float(line.split()[1])
        return None

    def open_tracks(self) -> float | None:
        return self.counter("platewatch_normalizer_open_tracks")

    def kill(self) -> None:
        assert self.process is not None
        self.process.send_signal(signal.SIGKILL)
        self.process.wait(timeout=30)

    def terminate(self) -> int:
        assert self.process is not None
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        return int(self.process.returncode)


async def wait_for(check: Callable[[], Any], within_s: float, what: str, interval: float = 0.2) -> Any:
    deadline = time.monotonic() + within_s
    while time.monotonic() < deadline:
        result = check()
        if asyncio.iscoroutine(result):
            result = await result
        if result:
            return result
        await asyncio.sleep(interval)
    raise TimeoutError(f"timed out after {within_s:.0f}s waiting for {what}")


@pytest.fixture
def normalizer(
    kafka_bootstrap: str, topic_prefix: str, cameras_file: Path, tmp_path: Path
) -> Iterator[NormalizerProcess]:
    env = {
        "PLATEWATCH_KAFKA_BOOTSTRAP": kafka_bootstrap,
        "PLATEWATCH_TOPIC_PREFIX": topic_prefix,
        "PLATEWATCH_CAMERAS_FILE": str(cameras_file),
        "PLATEWATCH_INSTANCE_ID": f"test-{uuid.uuid4().hex[:6]}",
        "PLATEWATCH_LOG_LEVEL": "INFO",
    }
    process = NormalizerProcess(env, tmp_path)
    yield process
    if process.process is not None:
        process.terminate()


async def send_raw(bootstrap: str, prefix: str, passes: list[Pass], pause_s: float = 0.0) -> None:
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all", enable_idempotence=True)
    await producer.start()
    try:
        for p in passes:
            for raw in p.raw_reads():
                await producer.send(
                    RAW_READS.name(prefix), key=raw.camera_id.encode(), value=raw.SerializeToString()
                )
            # Each pass goes out as one burst, so a pause never splits a pass across idle_close_s.
            await producer.flush()
            if pause_s:
                await asyncio.sleep(pause_s)
    finally:
        await producer.stop()


async def raw_lag(bootstrap: str, prefix: str) -> int:
    """Raw reads not yet committed by the normalizer group."""
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, isolation_level="read_committed")
    await admin.start()
    await consumer.start()
    try:
        committed = await admin.list_consumer_group_offsets(f"{prefix}normalizer")
        partitions = [TopicPartition(RAW_READS.name(prefix), p) for p in range(RAW_READS.partitions)]
        ends = await consumer.end_offsets(partitions)
        return sum(end - (committed[tp].offset if tp in committed else 0) for tp, end in ends.items())
    finally:
        await consumer.stop()
        await admin.close()


async def read_all(
    bootstrap: str, topic: str, partitions: int
) -> list[tuple[bytes | None, bytes | None, dict]]:
    """Every committed message on a topic: (key, value, headers)."""
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, isolation_level="read_committed")
    await consumer.start()
    try:
        tps = [TopicPartition(topic, p) for p in range(partitions)]
        consumer.assign(tps)
        await consumer.seek_to_beginning(*tps)
        ends = await consumer.end_offsets(tps)
        out = []
        deadline = time.monotonic() + 60
        for tp in tps:
            while await consumer.position(tp) < ends[tp]:
                assert time.monotonic() < deadline, "reading the topic took too long"
                batch = await consumer.getmany(tp, timeout_ms=500)
                for record in batch.get(tp, []):
                    out.append((record.key, record.value, dict(record.headers)))
        return out
    finally:
        await consumer.stop()


async def wait_drained(bootstrap: str, prefix: str, process: NormalizerProcess, within_s: float) -> None:
    """Every raw read committed by the normalizer and no pass left open."""

    async def drained() -> bool:
        return await raw_lag(bootstrap, prefix) == 0 and process.open_tracks() == 0

    await wait_for(drained, within_s, "normalizer to commit every raw read and close every pass", 0.5)


async def committed_reads(bootstrap: str, prefix: str) -> list[reads_pb2.Read]:
    records = await read_all(bootstrap, READS.name(prefix), READS.partitions)
    reads = [reads_pb2.Read.FromString(value or b"") for _, value, _ in records]
    assert all(key == read.read_id.encode() for (key, _, _), read in zip(records, reads, strict=True))
    return reads


async def test_one_read_per_pass_and_dead_letters(
    kafka_bootstrap: str, topic_prefix: str, normalizer: NormalizerProcess
) -> None:
    passes = make_passes(per_camera=3)
    normalizer.start()
    await wait_for(normalizer.ready, 120, "normalizer ready")
    await send_raw(kafka_bootstrap, topic_prefix, passes)
    producer = AIOKafkaProducer(bootstrap_servers=kafka_bootstrap)
    await producer.start()
    try:
        stranger = passes[0].raw_reads()[0]
        stranger.camera_id = "cam-unregistered"
        await producer.send_and_wait(
            RAW_READS.name(topic_prefix), key=b"cam-unregistered", value=stranger.SerializeToString()
        )
        await producer.send_and_wait(
            RAW_READS.name(topic_prefix), key=b"cam-north", value=b"\xff\xff not protobuf"
        )
    finally:
        await producer.stop()
    await wait_drained(kafka_bootstrap, topic_prefix, normalizer, within_s=120)

    reads = await committed_reads(kafka_bootstrap, topic_prefix)
    by_id = {read.read_id: read for read in reads}
    assert len(by_id) == len(reads), "duplicate read ids"
    assert set(by_id) == {p.read_id for p in passes}
    for p in passes:
        read = by_id[p.read_id]
        assert read.plate == p.plate  # the misread frame was voted away
        assert read.frames == p.frames
        assert read.region == "US-CA" and read.format_known
        assert read.camera.camera_id == p.camera and read.camera.site == "test-site"
        assert read.first_seen == ns_timestamp(p.start_ns)
        assert read.crop_jpeg.startswith(b"\xff\xd8")
    # Boxes move up the image: away from the camera, i.e. along its heading.
    assert by_id[passes[0].read_id].direction == "northbound"
    assert by_id[passes[1].read_id].direction == "eastbound"

    dead = await read_all(kafka_bootstrap, RAW_READS.dead_letter.name(topic_prefix), 1)  # type: ignore[union-attr]
    assert sorted(headers["reason"].decode() for _, _, headers in dead) == ["undecodable", "unknown_camera"]

    # Early reads: at most one per pass (no failure here), under its final read_id, never on READS. A
    # pass that closed in the batch that opened it has none (its final read went out as soon).
    early = [
        reads_pb2.Read.FromString(value or b"")
        for _, value, _ in await read_all(
            kafka_bootstrap, READS_EARLY.name(topic_prefix), READS_EARLY.partitions
        )
    ]
    early_by_id = {read.read_id: read for read in early}
    assert len(early_by_id) == len(early) >= len(CAMERAS)  # at least each camera's last pass
    assert set(early_by_id) <= set(by_id)
    assert not any(read.provisional for read in reads)
    for read_id, read in early_by_id.items():
        assert read.provisional and read.plate == by_id[read_id].plate and read.format_known
        assert by_id[read_id].provisional_plate == read.plate
    assert all(not read.provisional_plate for read_id, read in by_id.items() if read_id not in early_by_id)
    assert normalizer.terminate() == 0


async def test_sigkill_repeatedly_gives_exactly_once(
    kafka_bootstrap: str, topic_prefix: str, normalizer: NormalizerProcess
) -> None:
    passes = make_passes(per_camera=30)
    normalizer.start()
    await wait_for(normalizer.ready, 120, "normalizer ready")
    sender = asyncio.create_task(send_raw(kafka_bootstrap, topic_prefix, passes, pause_s=0.12))
    kills = 0
    while not sender.done() or kills < 3:
        # Let it run a moment with a transaction likely in flight, then kill it without warning.
        await wait_for(normalizer.ready, 120, "normalizer ready after restart")
        await asyncio.sleep(1.0 + 0.37 * kills)  # vary the phase of the kill; not a wait for a result
        normalizer.kill()
        kills += 1
        normalizer.start()
    await sender
    await wait_for(normalizer.ready, 120, "normalizer ready after the last restart")
    await wait_drained(kafka_bootstrap, topic_prefix, normalizer, within_s=180)

    reads = await committed_reads(kafka_bootstrap, topic_prefix)
    ids = [read.read_id for read in reads]
    assert len(ids) == len(set(ids)), f"{len(ids) - len(set(ids))} duplicate reads after {kills} kills"
    assert set(ids) == {p.read_id for p in passes}
    assert {read.plate for read in reads} == {p.plate for p in passes}
    assert all(read.frames == 5 for read in reads)
    assert normalizer.terminate() == 0


async def test_throughput(kafka_bootstrap: str, topic_prefix: str, normalizer: NormalizerProcess) -> None:
    """Raw reads/s on this machine over a preloaded backlog, timed by the normalizer's own counter
    from its first consumed batch (printed; run with -s to see it)."""
    passes = make_passes(per_camera=500, frames=5)
    total = 5 * len(passes)
    await send_raw(kafka_bootstrap, topic_prefix, passes)
    normalizer.start()
    first: tuple[float, float] | None = None
    last = (0.0, 0.0)
    deadline = time.monotonic() + 300
    while last[1] < total:
        assert time.monotonic() < deadline, f"only {last[1]:.0f} of {total} raw reads consumed"
        count = normalizer.counter("platewatch_normalizer_raw_reads_total") or 0.0
        last = (time.monotonic(), count)
        if first is None and count > 0:
            first = last
        await asyncio.sleep(0.05)
    assert first is not None
    rate = (last[1] - first[1]) / max(last[0] - first[0], 1e-3)
    print(f"\nnormalizer throughput: {total} raw reads, {rate:.0f} raw reads/s after the first batch")
    await wait_drained(kafka_bootstrap, topic_prefix, normalizer, within_s=60)
    reads = await committed_reads(kafka_bootstrap, topic_prefix)
    assert len(reads) == len(passes)
    assert rate > 50


async def test_sigterm_keeps_open_pass_for_the_next_run(
    kafka_bootstrap: str, topic_prefix: str, normalizer: NormalizerProcess
) -> None:
    """SIGTERM closes nothing early: the half-seen pass continues after a restart as one read."""
    normalizer.env["PLATEWATCH_IDLE_CLOSE_S"] = "600"
    (first, later) = make_passes(per_camera=2)[::4][:2]  # cam-north's two passes, 3.5 s apart
    frames = first.raw_reads()
    normalizer.start()
    await wait_for(normalizer.ready, 120, "normalizer ready")

    async def send(reads: list[reads_pb2.RawRead]) -> None:
        producer = AIOKafkaProducer(bootstrap_servers=kafka_bootstrap, acks="all")
        await producer.start()
        try:
            for raw in reads:
                await producer.send(
                    RAW_READS.name(topic_prefix), key=raw.camera_id.encode(), value=raw.SerializeToString()
                )
            await producer.flush()
        finally:
            await producer.stop()

    async def committed_with_one_open() -> bool:
        return await raw_lag(kafka_bootstrap, topic_prefix) == 0 and normalizer.open_tracks() == 1

    await send(frames[:3])
    await wait_for(committed_with_one_open, 60, "first frames committed, pass still open")
    assert normalizer.terminate() == 0
    assert await committed_reads(kafka_bootstrap, topic_prefix) == []

    normalizer.start()
    await wait_for(normalizer.ready, 120, "normalizer ready after restart")
    await wait_for(lambda: normalizer.open_tracks() == 1, 30, "open pass restored")
    # The rest of the pass, then the next pass whose event time closes it.
    await send(frames[3:] + later.raw_reads()[:1])

    async def one_read() -> list[reads_pb2.Read]:
        return await committed_reads(kafka_bootstrap, topic_prefix)

    (read,) = await wait_for(one_read, 60, "the pass's read")
    assert read.read_id == first.read_id
    assert read.frames == first.frames
    assert read.plate == first.plate
    assert read.crop_jpeg.startswith(b"\xff\xd8")  # best frame re-fetched by offset after the restore
