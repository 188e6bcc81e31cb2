"""Frame sources and the per-camera reader thread (OpenCV blocks, so each camera reads on its own thread).

- Video files play at real-time pace (the reader sleeps to the file's frame timing) and are sampled down
  to `sample_fps` by media time; a folder of images plays its sorted files at `sample_fps`. At the end
  the camera stops, or starts over with `loop_files`.
- Live streams (`http(s)://` MJPEG, `rtsp://`) are read as fast as they deliver and sampled by wall clock.
  Open or read failures reconnect with capped, jittered exponential backoff (the same goes for a file
  or folder that cannot be opened, which may appear later).

The reader hands each sampled frame to `on_frame` on its own thread; the service forwards it into the
event loop with `loop.call_soon_threadsafe`.
"""

from __future__ import annotations

import logging
import random
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np

from services.common.frames import MAX_FRAME_PIXELS
from services.common.imagefiles import (
    UndecodableImage,
    decode_image,
    header_size,
    image_format,
    reduced_read_flag,
)

log = logging.getLogger(__name__)

IMAGE_EXTENSIONS = frozenset({".jpg", ".jpeg", ".png", ".bmp", ".webp"})
STREAM_PREFIXES = ("http://", "https://", "rtsp://", "rtsps://")
# A folder image's file is read whole into memory; a larger one is skipped (an 8K BMP is 100 MB).
MAX_IMAGE_FILE_BYTES = 128 * 1024 * 1024
# A file that reports no usable frame rate is played at this rate.
FALLBACK_FILE_FPS = 25.0
STREAM_OPEN_TIMEOUT_MS = 5000
STREAM_READ_TIMEOUT_MS = 5000


class SourceError(RuntimeError):
    """A source could not be opened or read."""


@dataclass(frozen=True)
class CapturedFrame:
    image: np.ndarray
    # Wall clock (time.time()) when the frame was read.
    captured_at: float
    # Position in the file or folder (None for live streams).
    media_time_s: float | None = None


def is_stream(source: str) -> bool:
    return source.lower().startswith(STREAM_PREFIXES)


def list_image_files(folder: Path) -> list[Path]:
    """Image files of a folder (not recursive), sorted by name."""
    return sorted(p for p in folder.iterdir() if p.is_file() and p.suffix.lower() in IMAGE_EXTENSIONS)


def iter_folder_frames(folder: Path, sample_fps: float) -> Iterator[tuple[float, np.ndarray]]:
    """(media time, image) for each readable image of the folder in name order, one per 1/sample_fps."""
    files = list_image_files(folder)
    if not files:
        raise SourceError(f"no image files in {folder}")
    index = 0
    for path in files:
        image = read_folder_image(path)
        if image is None:
            continue
        yield index / sample_fps, image
        index += 1


def read_folder_image(path: Path) -> np.ndarray | None:
    """The image at `path` (BGR) within the Frame contract's `MAX_FRAME_PIXELS`, or None, with a
    warning logged, when it cannot be read or decoded, its header names no size, or it is too large.
    The size is read from the header before decoding (a small file can claim gigapixels); a larger
    JPEG is decoded at 1/2, 1/4 or 1/8 scale inside its decoder, other formats only when they fit."""
    try:
        if path.stat().st_size > MAX_IMAGE_FILE_BYTES:
            log.warning("skipping image file over the size limit", extra={"path": str(path)})
            return None
        data = path.read_bytes()
    except OSError as exc:
        log.warning("skipping unreadable image", extra={"path": str(path), "error": str(exc)})
        return None
    size = header_size(data)
    if size is None:
        log.warning("skipping image without a size in its header", extra={"path": str(path)})
        return None
    flag = reduced_read_flag(*size, MAX_FRAME_PIXELS)
    if flag is None or (flag != cv2.IMREAD_COLOR and image_format(data) != "jpeg"):
        log.warning("skipping image too large for a frame", extra={"path": str(path), "size": list(size)})
        return None
    try:
        return decode_image(data, flag)
    except UndecodableImage as exc:
        log.warning("skipping undecodable image", extra={"path": str(path), "error": str(exc)})
        return None


def iter_video_frames(path: Path, sample_fps: float) -> Iterator[tuple[float, np.ndarray]]:
    """(media time, image) of a video file sampled down to `sample_fps` by the file's frame timing.

    Frames that are not sampled are only grabbed, never converted, to save CPU."""
    capture = cv2.VideoCapture(str(path))
    try:
        if not capture.isOpened():
            raise SourceError(f"cannot open video file {path}")
        fps = capture.get(cv2.CAP_PROP_FPS)
        if not fps or fps <= 0 or fps > 1000:
            fps = FALLBACK_FILE_FPS
        interval = 1.0 / sample_fps
        next_sample_t = 0.0
        index = 0
        while capture.grab():
            media_t = index / fps
            index += 1
            if media_t + 1e-6 < next_sample_t:
                continue
            ok, image = capture.retrieve()
            if not ok or image is None:
                continue
            while next_sample_t <= media_t + 1e-6:
                next_sample_t += interval
            yield media_t, image
        if index == 0:
            raise SourceError(f"video file {path} has no readable frames")
    finally:
        capture.release()


def open_stream(url: str) -> cv2.VideoCapture:
    """A capture for a live stream with bounded open and read timeouts (so stop is never stuck)."""
    return cv2.VideoCapture(
        url,
        cv2.CAP_FFMPEG,
        [
            cv2.CAP_PROP_OPEN_TIMEOUT_MSEC,
            STREAM_OPEN_TIMEOUT_MS,
            cv2.CAP_PROP_READ_TIMEOUT_MSEC,
            STREAM_READ_TIMEOUT_MS,
        ],
    )


@dataclass
class Backoff:
    """Capped exponential backoff with jitter: the n-th delay is initial * 2**n (capped at maximum),
    shortened by up to `jitter` (a fraction) at random so many cameras do not retry in step."""

    initial_s: float
    maximum_s: float
    jitter: float = 0.2
    rng: random.Random = field(default_factory=random.Random)
    attempts: int = 0

    def next_delay(self) -> float:
        base = min(self.maximum_s, self.initial_s * (2**self.attempts))
        self.attempts += 1
        return base * (1.0 - self.jitter * self.rng.random())

    def reset(self) -> None:
        self.attempts = 0


class ReaderListener:
    """Callbacks from the reader thread. Implementations must be thread-safe; these defaults do nothing."""

    def on_frame(self, frame: CapturedFrame) -> None:
        """A sampled frame."""

    def on_connected(self, connected: bool, error: str = "") -> None:
        """The source opened (True) or failed/ended (False, with the error if any)."""

    def on_reconnect(self, delay_s: float, error: str) -> None:
        """The reader will try to open the source again after `delay_s`."""


class CameraReader(threading.Thread):
    """Reads one camera's source on a daemon thread until `stop()` (see module docstring)."""

    def __init__(
        self,
        camera_id: str,
        source: str,
        sample_fps: float,
        listener: ReaderListener,
        *,
        loop_files: bool = False,
        reconnect_initial_s: float = 0.5,
        reconnect_max_s: float = 30.0,
        realtime: bool = True,
    ) -> None:
        super().__init__(name=f"capture-{camera_id}", daemon=True)
        self.camera_id = camera_id
        self.source = source
        self.sample_fps = sample_fps
        self.listener = listener
        self.loop_files = loop_files
        # False plays files as fast as they decode (tests); live streams are unaffected.
        self.realtime = realtime
        self.backoff = Backoff(reconnect_initial_s, reconnect_max_s)
        self.opened_once = threading.Event()
        self.finished = threading.Event()
        self._stop_event = threading.Event()

    def stop(self) -> None:
        self._stop_event.set()

    @property
    def stopping(self) -> bool:
        return self._stop_event.is_set()

    def run(self) -> None:
        try:
            while not self.stopping:
                try:
                    if is_stream(self.source):
                        self._read_stream()
                    else:
                        ended = self._play_file_once()
                        if ended and not self.loop_files:
                            log.info("source ended", extra={"camera": self.camera_id})
                            self.listener.on_connected(False, "")
                            return
                        continue
                except SourceError as exc:
                    error = str(exc)
                except Exception as exc:  # keep the thread alive through anything OpenCV throws
                    log.exception("camera reader failed", extra={"camera": self.camera_id})
                    error = f"{type(exc).__name__}: {exc}"
                if self.stopping:
                    break
                self.listener.on_connected(False, error)
                delay = self.backoff.next_delay()
                log.warning(
                    "camera source down; reconnecting",
                    extra={"camera": self.camera_id, "error": error, "retry_in_s": round(delay, 3)},
                )
                self.listener.on_reconnect(delay, error)
                self._stop_event.wait(delay)
        finally:
            self.finished.set()

    def _opened(self) -> None:
        self.opened_once.set()
        self.listener.on_connected(True)

    def _play_file_once(self) -> bool:
        """Play the file or folder once at real-time pace. True at its end, False when stopped."""
        path = Path(self.source)
        frames = iter_folder_frames(path, self.sample_fps) if path.is_dir() else None
        if frames is None:
            if not path.exists():
                raise SourceError(f"source not found: {path}")
            frames = iter_video_frames(path, self.sample_fps)
        started = time.monotonic()
        first = True
        for media_t, image in frames:
            if first:
                self._opened()
                first = False
            if self.realtime:
                delay = started + media_t - time.monotonic()
                if delay > 0 and self._stop_event.wait(delay):
                    return False
            if self.stopping:
                return False
            self.listener.on_frame(CapturedFrame(image, time.time(), media_t))
            self.backoff.reset()
        return True

    def _read_stream(self) -> None:
        """Read a live stream until stop (returns) or failure (raises SourceError)."""
        capture = open_stream(self.source)
        try:
            if not capture.isOpened():
                raise SourceError(f"cannot open stream {self.source}")
            self._opened()
            interval = 1.0 / self.sample_fps
            next_sample = time.monotonic()
            while not self.stopping:
                if not capture.grab():
                    raise SourceError(f"stream read failed: {self.source}")
                now = time.monotonic()
                if now < next_sample:
                    continue
                ok, image = capture.retrieve()
                if not ok or image is None:
                    raise SourceError(f"stream decode failed: {self.source}")
                next_sample += interval
                if next_sample <= now:  # fell behind: sample from now on rather than catch up in a burst
                    next_sample = now + interval
                self.listener.on_frame(CapturedFrame(image, time.time()))
                self.backoff.reset()
        finally:
            capture.release()
