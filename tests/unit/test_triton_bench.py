"""The pure helpers of `platewatch bench triton` (services/inference/triton_bench.py): percentiles,
fitting frames to 1280x720, loading frames from a folder or a video, and reading process memory
from /proc. Nothing here starts Triton."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest

from services.inference import triton_bench
from services.inference.frames import fit_frame, video_frames
from services.inference.triton_bench import (
    folder_frames,
    latency_summary,
    percentile,
    process_memory,
    process_tree,
)


def test_percentile_matches_numpy_linear_interpolation() -> None:
    rng = np.random.default_rng(7)
    values = list(rng.exponential(100.0, size=101))
    for q in (0.0, 0.5, 0.95, 0.99, 1.0):
        assert percentile(values, q) == pytest.approx(float(np.percentile(values, 100 * q)))


def test_percentile_edges() -> None:
    assert percentile([], 0.5) is None
    assert percentile([3.0], 0.99) == 3.0
    assert percentile([4.0, 1.0, 3.0, 2.0], 0.5) == 2.5  # unsorted input, between ranks
    with pytest.raises(ValueError):
        percentile([1.0], 1.5)


def test_latency_summary() -> None:
    summary = latency_summary([10.0, 20.0, 30.0, 40.0, 1000.0])
    assert summary["p50"] == 30.0
    assert summary["max"] == 1000.0
    assert summary["mean"] == 220.0
    assert summary["p99"] is not None and 40.0 < summary["p99"] < 1000.0
    assert latency_summary([]) == {"p50": None, "p95": None, "p99": None, "mean": None, "max": None}


def test_fit_frame_keeps_aspect_and_pads() -> None:
    image = np.full((100, 400, 3), 200, np.uint8)  # 4:1, wider than 16:9
    frame = fit_frame(image)
    assert frame.shape == (720, 1280, 3) and frame.dtype == np.uint8
    rows = np.flatnonzero(frame[:, 640, 0])
    assert len(rows) == 320  # 100 * 1280 / 400, centred
    assert rows[0] == (720 - 320) // 2
    assert frame[:, :, 0].any(axis=0).all()  # full width used
    tall = fit_frame(np.full((720, 360, 3), 9, np.uint8))
    assert np.flatnonzero(tall[360, :, 0]).size == 360
    same = np.zeros((720, 1280, 3), np.uint8)
    assert fit_frame(same) is same


def test_folder_frames_skips_unreadable_and_limits(tmp_path: Path) -> None:
    for name, value in (("a.jpg", 50), ("b.png", 100), ("c.jpg", 150)):
        cv2.imwrite(str(tmp_path / name), np.full((60, 120, 3), value, np.uint8))
    (tmp_path / "broken.jpg").write_bytes(b"not an image")
    (tmp_path / "a.txt").write_text("labels are ignored")
    frames = folder_frames(tmp_path, limit=10)
    assert len(frames) == 3
    assert all(f.shape == (720, 1280, 3) for f in frames)
    assert [int(f[360, 640, 0]) for f in frames] == pytest.approx([50, 100, 150], abs=3)
    assert len(folder_frames(tmp_path, limit=2)) == 2


def test_video_frames_spread_over_the_clip(tmp_path: Path) -> None:
    clip = tmp_path / "clip.avi"
    writer = cv2.VideoWriter(str(clip), cv2.VideoWriter_fourcc(*"MJPG"), 10, (320, 180))  # type: ignore[attr-defined]
    assert writer.isOpened()
    for value in range(0, 250, 25):  # 10 frames, brightness 0..225
        writer.write(np.full((180, 320, 3), value, np.uint8))
    writer.release()
    frames = video_frames(clip, limit=3)
    assert len(frames) == 3 and all(f.shape == (720, 1280, 3) for f in frames)
    assert [int(f[360, 640, 1]) for f in frames] == pytest.approx([0, 100, 225], abs=8)  # frames 0, 4, 9
    assert len(video_frames(clip, limit=50)) == 10


def test_load_frames_rejects_unknown_source() -> None:
    with pytest.raises(ValueError):
        triton_bench.load_frames("webcam", 4)


def test_process_tree_and_memory_of_a_child() -> None:
    child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(30)"])
    try:
        tree = process_tree(os.getpid())
        assert tree[0] == os.getpid()
        assert child.pid in tree
        memory = process_memory(os.getpid())
        assert memory is not None
        assert memory["peak_rss_mb"] >= memory["rss_mb"] > 0
        assert memory["model"] is None
    finally:
        child.kill()
        child.wait()
    assert process_memory(child.pid) is None
