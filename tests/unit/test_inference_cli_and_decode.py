"""Frame decoding's dead-letter reasons and what the service hands the recognizer with each frame
(`platewatch recognize` is tested in test_recognize_and_accuracy.py)."""

from __future__ import annotations

import struct
from types import SimpleNamespace
from typing import Any

import cv2
import numpy as np
import pytest
from aiokafka import ConsumerRecord

from services.common.health import HealthState
from services.common.kafka import DeadLetterError
from services.common.pb.platewatch.v1 import frames_pb2
from services.inference.main import InferenceService, InferenceSettings, _Work, decode_frame, thumbnail
from tests.unit.test_inference_postprocess import render_frame


def _jpeg_claiming(width: int, height: int) -> bytes:
    """A 16x16 JPEG whose frame header claims `width` x `height` (the scan data stays 16x16)."""
    ok, encoded = cv2.imencode(".jpg", np.zeros((16, 16, 3), np.uint8))
    assert ok
    data = bytearray(encoded.tobytes())
    sof = data.index(b"\xff\xc0")
    data[sof + 5 : sof + 9] = struct.pack(">HH", height, width)
    return bytes(data)


def _png() -> bytes:
    ok, encoded = cv2.imencode(".png", np.zeros((16, 16, 3), np.uint8))
    assert ok
    return encoded.tobytes()


def _record(value: bytes | None) -> ConsumerRecord:
    return ConsumerRecord("frames", 0, 5, 0, 0, b"cam", value, None, 0, len(value or b""), [])


@pytest.mark.parametrize(
    ("value", "reason"),
    [
        (None, "empty_value"),
        (b"\xff\xff\xff not protobuf", "undecodable"),
        (frames_pb2.Frame(camera_id="cam").SerializeToString(), "empty_jpeg"),
        (frames_pb2.Frame(camera_id="cam", jpeg=b"\xff\xd8junk").SerializeToString(), "undecodable_jpeg"),
        # Refused from the header, before OpenCV allocates the claimed bitmap: one pixel past 8K.
        (
            frames_pb2.Frame(camera_id="cam", jpeg=_jpeg_claiming(7681, 4320)).SerializeToString(),
            "frame_too_large",
        ),
        (
            frames_pb2.Frame(camera_id="cam", jpeg=_jpeg_claiming(30000, 30000)).SerializeToString(),
            "frame_too_large",
        ),
        (
            frames_pb2.Frame(camera_id="cam", jpeg=_jpeg_claiming(640, 0)).SerializeToString(),
            "undecodable_jpeg",
        ),
        # The contract's field is a JPEG: a PNG OpenCV could decode is not taken on trust.
        (frames_pb2.Frame(camera_id="cam", jpeg=_png()).SerializeToString(), "undecodable_jpeg"),
        (
            frames_pb2.Frame(camera_id="cam", jpeg=b"\xff\xd8", roll_deg=46.0).SerializeToString(),
            "bad_roll_deg",
        ),
        (
            frames_pb2.Frame(camera_id="cam", jpeg=b"\xff\xd8", roll_deg=-90.0).SerializeToString(),
            "bad_roll_deg",
        ),
        (
            frames_pb2.Frame(camera_id="cam", jpeg=b"\xff\xd8", roll_deg=float("nan")).SerializeToString(),
            "bad_roll_deg",
        ),
    ],
)
def test_decode_frame_dead_letter_reasons(value: bytes | None, reason: str) -> None:
    with pytest.raises(DeadLetterError) as caught:
        decode_frame(_record(value))
    assert caught.value.reason == reason


def test_a_frame_at_the_size_limit_is_decoded() -> None:
    # The limit is inclusive; OpenCV fills the missing scan data of this 16x16 JPEG with grey.
    frame = frames_pb2.Frame(camera_id="cam", jpeg=_jpeg_claiming(7680, 4320))
    assert decode_frame(_record(frame.SerializeToString())).image.shape == (4320, 7680, 3)


def test_decode_frame_and_thumbnail() -> None:
    ok, jpeg = cv2.imencode(".jpg", render_frame())
    assert ok
    frame = frames_pb2.Frame(camera_id="cam", jpeg=jpeg.tobytes(), roll_deg=-45.0)
    work = decode_frame(_record(frame.SerializeToString()))
    assert work.image.shape == (720, 1280, 3) and work.frame.roll_deg == -45.0
    assert thumbnail(work.image, 320).shape == (180, 320, 3)
    small = np.zeros((100, 200, 3), np.uint8)
    assert thumbnail(small, 320) is small


class _RecordingRecognizer:
    """Stands in for `PlateRecognizer`: records what each `recognize` call got, finds no plate, and
    reports the given leans (one per frame, in turn)."""

    last_rejected = 0

    def __init__(self, leans: list[float | None] | None = None) -> None:
        self.calls: list[tuple[int, Any, Any]] = []
        self.leans = list(leans or [])
        self.last_leans: list[float | None] = []

    def recognize(
        self, frames: list[np.ndarray], region_hints: Any = None, rolls: Any = None
    ) -> list[list[Any]]:
        self.calls.append((len(frames), region_hints, rolls))
        self.last_leans = [self.leans.pop(0) if self.leans else None for _ in frames]
        return [[] for _ in frames]


def _service(recognizer: _RecordingRecognizer) -> InferenceService:
    service = InferenceService.__new__(InferenceService)
    service.settings, service.health = InferenceSettings(), HealthState()
    service.backend = SimpleNamespace(name="fake")  # type: ignore[assignment]
    service.recognizer = recognizer  # type: ignore[assignment]
    service.camera_leans = {}
    return service


def test_the_service_reads_each_frame_with_its_cameras_region_and_roll() -> None:
    recognizer = _RecordingRecognizer()
    service = _service(recognizer)
    image = np.zeros((72, 128, 3), np.uint8)
    work = [
        _Work(_record(b"x"), frames_pb2.Frame(camera_id="a", region="us-ia", roll_deg=-6.5), image),
        _Work(_record(b"x"), frames_pb2.Frame(camera_id="b"), image),
    ]
    assert service._recognize(work) == []
    assert recognizer.calls == [(2, ["us-ia", None], [-6.5, 0.0])]


def test_each_cameras_lean_is_a_running_mean_of_its_frames_with_text() -> None:
    from prometheus_client import REGISTRY

    from services.inference.main import LEAN_WEIGHT

    recognizer = _RecordingRecognizer([10.0, None, 20.0, -4.0])
    service = _service(recognizer)
    image = np.zeros((72, 128, 3), np.uint8)

    def work(camera: str) -> _Work:
        return _Work(_record(b"x"), frames_pb2.Frame(camera_id=camera), image)

    service._recognize([work("lean-a"), work("lean-a")])  # 10, then a frame without text lines
    service._recognize([work("lean-a"), work("lean-b")])  # 20 for a, -4 for b

    def gauge(camera: str) -> float | None:
        return REGISTRY.get_sample_value("platewatch_inference_camera_lean_degrees", {"camera": camera})

    assert gauge("lean-a") == pytest.approx(10 + LEAN_WEIGHT * (20 - 10), abs=0.01)
    assert gauge("lean-b") == pytest.approx(-4.0)
