"""The capture service against a real Kafka broker: an image-folder camera's frames arrive on FRAMES
(key camera_id, decodable JPEGs, increasing sequence, the registry's region and roll), heartbeats on
CAMERA_STATUS, readiness goes true, and stop returns cleanly with every frame acknowledged."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import cv2
import numpy as np
import pytest

from services.capture import main as capture
from services.common.health import HealthState
from services.common.pb.platewatch.v1 import frames_pb2
from services.common.topics import CAMERA_STATUS, FRAMES
from tests.kafka_io import wait_for_records

TIMEOUT_S = 60.0
IMAGES = 6


@pytest.fixture
def camera_folder(tmp_path: Path) -> Path:
    folder = tmp_path / "frames"
    folder.mkdir()
    for i in range(IMAGES):
        image = np.full((120, 160, 3), 90, np.uint8)
        x = 10 + 20 * i  # a "vehicle" moving right, so every frame passes the motion gate
        image[40:80, x : x + 30] = (20, 200, 240)
        cv2.imwrite(str(folder / f"frame_{i:03d}.png"), image)
    return folder


async def test_capture_publishes_frames_and_heartbeats(
    kafka_bootstrap: str,
    topic_prefix: str,
    camera_folder: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    cameras = tmp_path / "cameras.yaml"
    cameras.write_text(
        "cameras:\n"
        "  - id: folder-cam\n"
        "    agency_id: test-pd\n"
        "    name: Folder camera\n"
        "    site: lab\n"
        "    lat: 52.0\n"
        "    lon: 4.0\n"
        "    heading_deg: 180\n"
        f"    source: {camera_folder}\n"
        "    sample_fps: 10\n"
        "    region: US-IA\n"
        "    roll_deg: -4.5\n"
        "  - id: disabled-cam\n"
        "    agency_id: test-pd\n"
        "    lat: 52.0\n"
        "    lon: 4.0\n"
        "    heading_deg: 0\n"
        "    source: http://127.0.0.1:9/never\n"
        "    enabled: false\n"
    )
    monkeypatch.setenv("PLATEWATCH_KAFKA_BOOTSTRAP", kafka_bootstrap)
    monkeypatch.setenv("PLATEWATCH_TOPIC_PREFIX", topic_prefix)
    monkeypatch.setenv("PLATEWATCH_CAMERAS_FILE", str(cameras))
    monkeypatch.setenv("PLATEWATCH_METRICS_PORT", "0")
    monkeypatch.setenv("PLATEWATCH_HEARTBEAT_INTERVAL_S", "0.5")

    stop = asyncio.Event()
    health = HealthState()
    service = asyncio.create_task(capture.serve(stop, health))
    try:
        frames = await wait_for_records(kafka_bootstrap, FRAMES, topic_prefix, IMAGES)
        heartbeats = await wait_for_records(kafka_bootstrap, CAMERA_STATUS, topic_prefix, 2)
        assert health.readiness().get("capture") is True
    finally:
        stop.set()
        await asyncio.wait_for(service, 30)
    assert not service.exception()
    assert health.readiness().get("capture") is False

    assert len(frames) == IMAGES  # the folder played once (loop_files is off), nothing lost or repeated
    messages = []
    for record in frames:
        assert record.key == b"folder-cam"
        frame = frames_pb2.Frame.FromString(record.value)
        image = cv2.imdecode(np.frombuffer(frame.jpeg, np.uint8), cv2.IMREAD_COLOR)
        assert image is not None and image.shape == (120, 160, 3)
        assert (frame.width, frame.height) == (160, 120)
        assert (frame.camera_id, frame.agency_id) == ("folder-cam", "test-pd")
        assert (frame.region, frame.roll_deg) == ("us-ia", -4.5)  # the registry's, for the recognizer
        assert frame.source == str(camera_folder)
        assert abs(frame.captured_at.ToNanoseconds() / 1e9 - time.time()) < TIMEOUT_S
        messages.append(frame)
    assert sorted(f.sequence for f in messages) == list(range(1, IMAGES + 1))

    assert all(record.key == b"folder-cam" for record in heartbeats)
    beat = frames_pb2.CameraHeartbeat.FromString(heartbeats[-1].value)
    assert beat.camera_id == "folder-cam" and beat.agency_id == "test-pd"
    assert beat.frames_captured >= 1
