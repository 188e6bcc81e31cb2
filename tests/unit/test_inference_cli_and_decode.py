"""Frame decoding's dead-letter reasons (`platewatch recognize` is tested in
test_recognize_and_accuracy.py)."""

from __future__ import annotations

import cv2
import numpy as np
import pytest
from aiokafka import ConsumerRecord

from services.common.kafka import DeadLetterError
from services.common.pb.platewatch.v1 import frames_pb2
from services.inference.main import decode_frame, thumbnail
from tests.unit.test_inference_postprocess import render_frame


def _record(value: bytes | None) -> ConsumerRecord:
    return ConsumerRecord("frames", 0, 5, 0, 0, b"cam", value, None, 0, len(value or b""), [])


@pytest.mark.parametrize(
    ("value", "reason"),
    [
        (None, "empty_value"),
        (b"\xff\xff\xff not protobuf", "undecodable"),
        (frames_pb2.Frame(camera_id="cam").SerializeToString(), "empty_jpeg"),
        (frames_pb2.Frame(camera_id="cam", jpeg=b"\xff\xd8junk").SerializeToString(), "undecodable_jpeg"),
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


def test_decode_frame_and_thumbnail() -> None:
    ok, jpeg = cv2.imencode(".jpg", render_frame())
    assert ok
    frame = frames_pb2.Frame(camera_id="cam", jpeg=jpeg.tobytes(), roll_deg=-45.0)
    work = decode_frame(_record(frame.SerializeToString()))
    assert work.image.shape == (720, 1280, 3) and work.frame.roll_deg == -45.0
    assert thumbnail(work.image, 320).shape == (180, 320, 3)
    small = np.zeros((100, 200, 3), np.uint8)
    assert thumbnail(small, 320) is small
