"""The bundled demo clip is what the manifest says, and every plate in it is readable by the
recognizer the pipeline runs (in-process onnxruntime here; Triton serves the same models)."""

from __future__ import annotations

import collections
from pathlib import Path

import cv2
import pytest

from services.demo.render import DEFAULT_MANIFEST, load_manifest, render


@pytest.fixture(scope="module")
def manifest() -> dict:
    return load_manifest(DEFAULT_MANIFEST)


def _frames(path: str) -> list:
    capture = cv2.VideoCapture(path)
    frames = []
    while True:
        ok, frame = capture.read()
        if not ok:
            break
        frames.append(frame)
    capture.release()
    return frames


def test_clip_matches_manifest(manifest: dict) -> None:
    frames = _frames(manifest["footage"])
    assert len(frames) == manifest["frames"]
    assert frames[0].shape == (manifest["height"], manifest["width"], 3)
    plates = [v["plate"] for v in manifest["vehicles"]]
    assert manifest["hotlist_plate"] in plates
    assert len(set(plates)) == len(plates)


def test_every_demo_plate_is_read_exactly_in_several_frames(manifest: dict) -> None:
    from services.inference.engine import OnnxBackend, PlateRecognizer

    recognizer = PlateRecognizer(OnnxBackend(threads=2))
    frames = _frames(manifest["footage"])
    for vehicle in manifest["vehicles"]:
        texts: collections.Counter[str] = collections.Counter()
        # Every second frame of the pass keeps the test quick; capture samples at 5 fps likewise.
        for index in range(vehicle["first_frame"], vehicle["last_frame"] + 1, 2):
            texts.update(result.candidates[0].text for result in recognizer.recognize([frames[index]])[0])
        assert texts[vehicle["plate"]] >= 3, (vehicle["plate"], texts.most_common(5))


def test_render_is_deterministic(tmp_path: Path, manifest: dict) -> None:
    document = render(tmp_path / "demo.mp4", tmp_path / "manifest.yaml")
    assert document["vehicles"] == manifest["vehicles"]
    assert document["frames"] == manifest["frames"]
