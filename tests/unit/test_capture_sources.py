"""Frame sources and the reader thread: folders, sampled video files, real-time pacing, reconnect
backoff against a closed port, and a local HTTP MJPEG stream."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import cv2
import numpy as np
import pytest

from services.capture import sources
from services.capture.pipeline import CameraStats
from services.capture.sources import (
    Backoff,
    CameraReader,
    CapturedFrame,
    SourceError,
    iter_folder_frames,
    iter_video_frames,
)

WAIT_S = 20.0


def wait_until(condition: Callable[[], bool], timeout_s: float = WAIT_S) -> bool:
    deadline = time.monotonic() + timeout_s
    while not condition():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.01)  # poll interval
    return True


class Collector(CameraStats):
    def __init__(self) -> None:
        super().__init__("test-cam")
        self.frames: list[CapturedFrame] = []

    def on_frame(self, frame: CapturedFrame) -> None:
        self.frames.append(frame)


def solid(value: int, width: int = 64, height: int = 48) -> np.ndarray:
    return np.full((height, width, 3), value, np.uint8)


def write_video(path: Path, frames: int, fps: float) -> None:
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter.fourcc(*"MJPG"), fps, (64, 48))
    assert writer.isOpened()
    for i in range(frames):
        writer.write(solid(i * 10 % 256))
    writer.release()


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture
def reader_factory() -> Iterator[Callable[..., CameraReader]]:
    readers: list[CameraReader] = []

    def make(source: str, listener: Collector, **options: object) -> CameraReader:
        options.setdefault("sample_fps", 5.0)
        sample_fps = float(options.pop("sample_fps"))  # type: ignore[arg-type]
        reader = CameraReader("test-cam", source, sample_fps, listener, **options)  # type: ignore[arg-type]
        readers.append(reader)
        reader.start()
        return reader

    yield make
    for reader in readers:
        reader.stop()
    for reader in readers:
        reader.join(10)
        assert not reader.is_alive()


def test_folder_frames_come_in_name_order(tmp_path: Path) -> None:
    for name, value in [("frame_003.png", 30), ("frame_001.jpg", 10), ("frame_002.png", 20)]:
        cv2.imwrite(str(tmp_path / name), solid(value))
    (tmp_path / "notes.txt").write_text("not an image")
    frames = list(iter_folder_frames(tmp_path, sample_fps=4))
    assert [t for t, _ in frames] == [0.0, 0.25, 0.5]
    assert [round(float(image.mean()) / 10) for _, image in frames] == [1, 2, 3]


def test_folder_images_are_held_to_the_frame_contract(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A small limit stands in for MAX_FRAME_PIXELS (8K): same rule, small files.
    monkeypatch.setattr(sources, "MAX_FRAME_PIXELS", 2_000)
    cv2.imwrite(str(tmp_path / "a_fits.png"), solid(10, 40, 50))  # 2,000 pixels: as it is
    cv2.imwrite(str(tmp_path / "b_big.jpg"), solid(20, 120, 60))  # 7,200: JPEG decoded at 1/2
    cv2.imwrite(str(tmp_path / "c_big.png"), solid(30, 120, 60))  # 7,200: PNG decodes whole, skipped
    # A PNG header claiming 40000x40000 and no data: skipped from its header, nothing allocated.
    ihdr = b"IHDR" + (40_000).to_bytes(4, "big") * 2 + bytes([8, 2, 0, 0, 0])
    (tmp_path / "d_bomb.png").write_bytes(b"\x89PNG\r\n\x1a\n" + (13).to_bytes(4, "big") + ihdr + bytes(4))
    (tmp_path / "e_text.jpg").write_text("not an image")
    cv2.imwrite(str(tmp_path / "f_fits.jpg"), solid(60, 50, 40))
    frames = [image for _, image in iter_folder_frames(tmp_path, sample_fps=1)]
    assert [image.shape for image in frames] == [(50, 40, 3), (30, 60, 3), (40, 50, 3)]
    assert [round(float(image.mean()) / 10) for image in frames] == [1, 2, 6]


def test_empty_folder_is_a_source_error(tmp_path: Path) -> None:
    with pytest.raises(SourceError, match="no image files"):
        list(iter_folder_frames(tmp_path, 5))


def test_video_is_sampled_down_by_media_time(tmp_path: Path) -> None:
    path = tmp_path / "clip.avi"
    write_video(path, frames=20, fps=10)
    frames = list(iter_video_frames(path, sample_fps=5))
    times = [t for t, _ in frames]
    assert len(frames) == 10
    assert times == pytest.approx([i * 0.2 for i in range(10)])
    # Every other source frame: values 0, 20, 40, ... (JPEG-ish codec, so approximately).
    assert [round(float(image.mean()) / 20) for _, image in frames] == list(range(10))
    assert len(list(iter_video_frames(path, sample_fps=30))) == 20  # never more than the file has


def test_reader_plays_file_at_real_time_pace_then_stops(tmp_path: Path, reader_factory) -> None:
    path = tmp_path / "clip.avi"
    write_video(path, frames=10, fps=10)  # 1 s of video
    collector = Collector()
    reader = reader_factory(str(path), collector, sample_fps=5)
    assert reader.finished.wait(WAIT_S)
    assert len(collector.frames) == 5
    # Paced at 0.2 s (0.8 s first to last), not decoded in a burst; a late first frame may shorten it.
    span = collector.frames[-1].captured_at - collector.frames[0].captured_at
    assert span >= 0.5, span
    assert reader.opened_once.is_set() and not collector.connected


def test_reader_loops_files_when_asked(tmp_path: Path, reader_factory) -> None:
    cv2.imwrite(str(tmp_path / "a.png"), solid(1))
    cv2.imwrite(str(tmp_path / "b.png"), solid(2))
    collector = Collector()
    reader = reader_factory(str(tmp_path), collector, sample_fps=50, loop_files=True)
    assert wait_until(lambda: len(collector.frames) >= 5)
    assert not reader.finished.is_set()
    assert collector.connected


def test_backoff_doubles_up_to_the_cap_with_jitter() -> None:
    backoff = Backoff(0.5, 4.0, jitter=0.2)
    delays = [backoff.next_delay() for _ in range(6)]
    for delay, base in zip(delays, [0.5, 1, 2, 4, 4, 4], strict=True):
        assert 0.8 * base <= delay <= base
    backoff.reset()
    assert backoff.next_delay() <= 0.5


def test_unreachable_stream_reconnects_with_growing_delays(reader_factory) -> None:
    collector = Collector()
    url = f"http://127.0.0.1:{closed_port()}/stream"
    reader = reader_factory(url, collector, reconnect_initial_s=0.05, reconnect_max_s=1.0)
    assert wait_until(lambda: collector.reconnects >= 3)
    delays = collector.retry_delays[:3]
    assert delays[0] < delays[1] < delays[2], delays
    assert not reader.opened_once.is_set()
    assert not collector.connected and "cannot open stream" in collector.last_error


class _MjpegHandler(BaseHTTPRequestHandler):
    stop: threading.Event

    def do_GET(self) -> None:
        self.send_response(200)
        self.send_header("Content-Type", "multipart/x-mixed-replace; boundary=frame")
        self.end_headers()
        value = 0
        try:
            while not self.stop.is_set():
                ok, jpeg = cv2.imencode(".jpg", solid(value, 160, 120))
                assert ok
                data = jpeg.tobytes()
                self.wfile.write(
                    b"--frame\r\nContent-Type: image/jpeg\r\n"
                    + f"Content-Length: {len(data)}\r\n\r\n".encode()
                    + data
                    + b"\r\n"
                )
                self.wfile.flush()
                value = (value + 25) % 250
                self.stop.wait(0.02)  # the camera's frame rate (50 fps)
        except (BrokenPipeError, ConnectionResetError):
            pass

    def log_message(self, format: str, *args: object) -> None:
        return


@pytest.fixture
def mjpeg_url() -> Iterator[str]:
    stop = threading.Event()
    handler = type("Handler", (_MjpegHandler,), {"stop": stop})
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}/stream"
    stop.set()
    server.shutdown()
    server.server_close()


def test_http_mjpeg_stream_yields_frames_sampled_by_wall_clock(mjpeg_url: str, reader_factory) -> None:
    collector = Collector()
    reader = reader_factory(mjpeg_url, collector, sample_fps=10)
    assert wait_until(lambda: len(collector.frames) >= 4)
    assert reader.opened_once.is_set() and collector.connected
    frame = collector.frames[0]
    assert frame.image.shape == (120, 160, 3) and frame.media_time_s is None
    # 50 fps in, 10 fps out: four samples span about 0.3 s (a burst of frames would span 0.06 s).
    span = collector.frames[3].captured_at - collector.frames[0].captured_at
    assert span >= 0.2, span
