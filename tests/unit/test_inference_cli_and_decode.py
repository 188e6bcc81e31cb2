"""`platewatch read` per-file errors and exit status; frame decoding's dead-letter reasons."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest
from aiokafka import ConsumerRecord
from typer.testing import CliRunner

from services.cli import app
from services.common.kafka import DeadLetterError
from services.common.pb.platewatch.v1 import frames_pb2
from services.inference.main import decode_frame, thumbnail
from tests.unit.test_inference_postprocess import render_frame


@pytest.fixture
def images(tmp_path: Path) -> dict[str, Path]:
    good = tmp_path / "plate.jpg"
    cv2.imwrite(str(good), render_frame("ABC1234"))
    corrupt = tmp_path / "corrupt.jpg"
    corrupt.write_bytes(b"\xff\xd8\xff\xe0 truncated")
    text = tmp_path / "notes.txt"
    text.write_text("not an image")
    return {"good": good, "corrupt": corrupt, "text": text, "missing": tmp_path / "missing.png"}


def test_read_prints_plates_and_per_file_errors(images: dict[str, Path]) -> None:
    files = [str(images[k]) for k in ("good", "corrupt", "text", "missing")]
    result = CliRunner().invoke(app, ["read", *files])
    assert result.exit_code == 0, result.output
    assert f"{images['good']}: ABC1234" in result.output
    assert f"{images['corrupt']}: error: not a decodable image" in result.output
    assert f"{images['text']}: error: not a decodable image" in result.output
    assert f"{images['missing']}: error: cannot read file" in result.output


def test_read_fails_only_when_every_file_fails(images: dict[str, Path]) -> None:
    result = CliRunner().invoke(app, ["read", str(images["corrupt"]), str(images["missing"])])
    assert result.exit_code == 1


def test_read_json(images: dict[str, Path]) -> None:
    import json

    result = CliRunner().invoke(app, ["read", "--json", str(images["good"])])
    assert result.exit_code == 0
    (report,) = json.loads(result.stdout)
    assert report["plates"][0]["text"] == "ABC1234"
    assert report["plates"][0]["vehicle_color"] == "red"


def _record(value: bytes | None) -> ConsumerRecord:
    return ConsumerRecord("frames", 0, 5, 0, 0, b"cam", value, None, 0, len(value or b""), [])


@pytest.mark.parametrize(
    ("value", "reason"),
    [
        (None, "empty_value"),
        (b"\xff\xff\xff not protobuf", "undecodable"),
        (frames_pb2.Frame(camera_id="cam").SerializeToString(), "empty_jpeg"),
        (frames_pb2.Frame(camera_id="cam", jpeg=b"\xff\xd8junk").SerializeToString(), "undecodable_jpeg"),
    ],
)
def test_decode_frame_dead_letter_reasons(value: bytes | None, reason: str) -> None:
    with pytest.raises(DeadLetterError) as caught:
        decode_frame(_record(value))
    assert caught.value.reason == reason


def test_decode_frame_and_thumbnail() -> None:
    ok, jpeg = cv2.imencode(".jpg", render_frame())
    assert ok
    work = decode_frame(_record(frames_pb2.Frame(camera_id="cam", jpeg=jpeg.tobytes()).SerializeToString()))
    assert work.image.shape == (720, 1280, 3)
    assert thumbnail(work.image, 320).shape == (180, 320, 3)
    small = np.zeros((100, 200, 3), np.uint8)
    assert thumbnail(small, 320) is small
