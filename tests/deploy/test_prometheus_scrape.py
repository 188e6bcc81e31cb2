"""A real Prometheus (Debian's package) scrapes running platewatch services with the repository's
rules loaded: every target is up, the series the dashboards and alerts are built on exist with real
values, the recording rules produce data and every rule evaluates without error."""

from __future__ import annotations

import asyncio
import json
import subprocess
import time
import urllib.parse
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from google.protobuf.timestamp_pb2 import Timestamp

from services.common.kafka import make_producer
from services.common.net import free_port
from services.common.pb.platewatch.v1 import common_pb2, reads_pb2
from services.common.topics import RAW_READS
from services.stack import Stack, wait_until

pytestmark = pytest.mark.integration

REPO_ROOT = Path(__file__).resolve().parents[2]
RULES_GLOB = str(REPO_ROOT / "deploy" / "prometheus" / "rules" / "*.yml")
DEMO_FOOTAGE = REPO_ROOT / "deploy" / "demo" / "footage" / "demo.mp4"
CAMERA = "cam-prom-1"
PROCESSES = ["storage", "hotlist", "normalizer", "capture"]


def _cameras_yaml() -> str:
    camera = {
        "id": CAMERA,
        "agency_id": "agency-a",
        "name": "Prometheus test camera",
        "site": "test-site",
        "lat": 51.5,
        "lon": -0.12,
        "heading_deg": 0,
        "source": str(DEMO_FOOTAGE),
        "sample_fps": 2,
    }
    return yaml.safe_dump({"cameras": [camera]})


def _raw_reads(passes: int) -> list[reads_pb2.RawRead]:
    """Two frames per vehicle pass, passes 10 s apart so each becomes one read."""
    base_ms = int(time.time() * 1000) - passes * 10_000
    reads = []
    for index in range(passes):
        for frame in range(2):
            at = Timestamp()
            at.FromMilliseconds(base_ms + index * 10_000 + frame * 200)
            reads.append(
                reads_pb2.RawRead(
                    camera_id=CAMERA,
                    agency_id="agency-a",
                    frame_sequence=index * 10 + frame,
                    captured_at=at,
                    plate_index=0,
                    box=common_pb2.Box(x=100, y=400 - frame * 40, width=160, height=40),
                    frame_width=1280,
                    frame_height=720,
                    candidates=[common_pb2.TextCandidate(text=f"PR{index:04d}", confidence=0.95)],
                    detection_confidence=0.9,
                    crop_jpeg=b"\xff\xd8\xff\xd9",
                )
            )
    return reads


async def _send(bootstrap: str, topic: str, reads: list[reads_pb2.RawRead]) -> None:
    producer = make_producer(bootstrap)
    await producer.start()
    try:
        for read in reads:
            await producer.send(topic, read.SerializeToString(), key=read.camera_id.encode())
        await producer.flush()
    finally:
        await producer.stop()


class PrometheusServer:
    """`prometheus` on a free port with a rendered scrape config; stopped by `stop()`."""

    def __init__(self, bin_dir: Path, workdir: Path, targets: dict[str, int]) -> None:
        self.port = free_port()
        config = {
            "global": {"scrape_interval": "1s", "evaluation_interval": "1s"},
            "rule_files": [RULES_GLOB],
            "scrape_configs": [
                {
                    "job_name": "platewatch",
                    "static_configs": [
                        {"targets": [f"127.0.0.1:{port}"], "labels": {"component": name}}
                        for name, port in targets.items()
                    ],
                }
            ],
        }
        config_file = workdir / "prometheus.yml"
        config_file.write_text(yaml.safe_dump(config))
        checked = subprocess.run(
            [str(bin_dir / "promtool"), "check", "config", str(config_file)], capture_output=True, text=True
        )
        assert checked.returncode == 0, checked.stdout + checked.stderr
        self.log = (workdir / "prometheus.log").open("w")
        self.process = subprocess.Popen(
            [
                str(bin_dir / "prometheus"),
                f"--config.file={config_file}",
                f"--storage.tsdb.path={workdir / 'tsdb'}",
                f"--web.listen-address=127.0.0.1:{self.port}",
            ],
            stdout=self.log,
            stderr=subprocess.STDOUT,
        )
        wait_until(self._ready, 60, "Prometheus to be ready")

    def _ready(self) -> bool:
        assert self.process.poll() is None, "prometheus exited; see prometheus.log"
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{self.port}/-/ready", timeout=2) as reply:
                return bool(reply.status == 200)
        except OSError:
            return False

    def api(self, path: str, **params: str) -> Any:
        url = f"http://127.0.0.1:{self.port}/api/v1/{path}?{urllib.parse.urlencode(params)}"
        with urllib.request.urlopen(url, timeout=10) as reply:
            body = json.load(reply)
        assert body["status"] == "success", body
        return body["data"]

    def query(self, expr: str) -> list[dict[str, Any]]:
        data = self.api("query", query=expr)
        result: list[dict[str, Any]] = data["result"]
        return result

    def value(self, expr: str) -> float:
        """The single sample of an instant query, or -1 when there is none yet."""
        result = self.query(expr)
        return float(result[0]["value"][1]) if result else -1.0

    def stop(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        self.log.close()


@pytest.fixture
def prometheus_factory(
    prometheus_bin: Path, tmp_path: Path
) -> Iterator[Callable[[dict[str, int]], PrometheusServer]]:
    started: list[PrometheusServer] = []

    def start(targets: dict[str, int]) -> PrometheusServer:
        workdir = tmp_path / f"prometheus{len(started)}"
        workdir.mkdir()
        server = PrometheusServer(prometheus_bin, workdir, targets)
        started.append(server)
        return server

    yield start
    for server in started:
        server.stop()


def test_prometheus_scrapes_the_key_series_from_running_services(
    stack_factory: Callable[..., Stack],
    prometheus_factory: Callable[[dict[str, int]], PrometheusServer],
    kafka_bootstrap: str,
    topic_prefix: str,
    tmp_path: Path,
) -> None:
    if not DEMO_FOOTAGE.exists():
        pytest.fail(f"demo footage missing: {DEMO_FOOTAGE}")
    cameras = tmp_path / "cameras.yaml"
    cameras.write_text(_cameras_yaml())
    stack = stack_factory(
        cameras_file=cameras,
        extra_env={"PLATEWATCH_IDLE_CLOSE_S": "1", "PLATEWATCH_BATCH_MAX_SECONDS": "0.3"},
    )
    stack.start_services(PROCESSES)
    prometheus = prometheus_factory({name: stack.ports.metrics[name] for name in PROCESSES})

    passes = 5
    asyncio.run(_send(kafka_bootstrap, RAW_READS.name(topic_prefix), _raw_reads(passes)))

    wait_until(
        lambda: prometheus.value('count(up{job="platewatch"} == 1)') == len(PROCESSES), 60, "all targets up"
    )
    # The pipeline's own counters, scraped with real values.
    key_series = {
        "platewatch_normalizer_raw_reads_total": 2 * passes,
        'platewatch_writer_rows_inserted_total{table="reads"}': passes,
        "platewatch_hotlist_reads_checked_total": passes,
        f'platewatch_capture_frames_total{{camera="{CAMERA}", outcome="published"}}': 1,
    }
    for expr, at_least in key_series.items():
        wait_until(
            lambda e=expr, n=at_least: prometheus.value(f"sum({e})") >= n, 120, f"{expr} >= {at_least}"
        )
    assert prometheus.value(f'platewatch_capture_camera_connected{{camera="{CAMERA}"}}') == 1
    last_frame = prometheus.value(f'platewatch_capture_last_frame_timestamp_seconds{{camera="{CAMERA}"}}')
    assert last_frame > time.time() - 120
    consumed = prometheus.query("sum by (service, topic) (platewatch_messages_consumed_total)")
    assert {(s["metric"]["service"], s["metric"]["topic"]) for s in consumed} >= {
        ("normalizer", RAW_READS.logical),
        ("writer", "platewatch.reads.v1"),
        ("hotlist", "platewatch.reads.v1"),
    }
    # Unlabelled series the dashboards chart (labelled ones appear only once observed).
    names = set(prometheus.api("label/__name__/values"))
    assert {
        "platewatch_writer_insert_seconds_bucket",
        "platewatch_writer_batch_messages_bucket",
        "platewatch_hotlist_match_seconds_bucket",
        "platewatch_hotlist_lists",
        "platewatch_normalizer_open_tracks",
        "platewatch_normalizer_transactions_total",
    } <= names

    # The repository's rules are loaded, evaluate cleanly, and the recording rules produce series.
    wait_until(
        lambda: prometheus.value(f'platewatch:capture_frames:rate1m{{camera="{CAMERA}"}}') > 0,
        60,
        "recorded fps",
    )
    groups = prometheus.api("rules")["groups"]
    rules = [rule for group in groups for rule in group["rules"]]
    assert {g["name"] for g in groups} == {"platewatch.recording", "platewatch.alerts"}
    wait_until(
        lambda: all(r.get("lastEvaluation", "").startswith("20") for r in _rules(prometheus)), 30, "rules run"
    )
    unhealthy = [(r["name"], r.get("lastError")) for r in _rules(prometheus) if r["health"] != "ok"]
    assert unhealthy == []
    # A healthy stack has no camera-offline or service-down alert, not even pending.
    active = {a["labels"]["alertname"] for a in prometheus.api("alerts")["alerts"]}
    assert not active & {"PlatewatchServiceDown", "PlatewatchCameraOffline"}
    assert len(rules) >= 10


def _rules(prometheus: PrometheusServer) -> list[dict[str, Any]]:
    return [rule for group in prometheus.api("rules")["groups"] for rule in group["rules"]]
