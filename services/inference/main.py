"""The inference service: FRAMES in, one RawRead per plate out.

Loop: collect up to `batch_size` frames (waiting at most `batch_timeout_ms` after the first one),
decode them (undecodable protobuf, empty or corrupt JPEG -> the frames dead-letter topic with a
reason), recognize the batch in a worker thread (Triton or in-process onnxruntime), produce the
RawReads (key camera_id) and wait for the broker's acknowledgement, and only then commit the batch's
offsets. At-least-once: a crash between produce and commit re-reads the batch, and the normalizer
folds the repeated reads into the same vehicle pass.

A failing backend (Triton down) does not drop frames: the batch is retried with backoff and
readiness reports false until it works again. SIGTERM: the current batch is finished and committed.
"""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass
from typing import Any, Literal

import cv2
import numpy as np
from aiokafka import ConsumerRecord, TopicPartition
from aiokafka.errors import CommitFailedError
from google.protobuf.timestamp_pb2 import Timestamp
from pydantic import Field

from services.common.frames import MAX_FRAME_PIXELS, MAX_ROLL_DEG, frame_size_allowed, roll_in_range
from services.common.health import HealthState
from services.common.imagefiles import UndecodableImage, decode_image, header_size, image_format
from services.common.kafka import DeadLetterError, decode, make_consumer, make_producer, send_dead_letter
from services.common.metrics import MESSAGES_CONSUMED, MESSAGES_PRODUCED, STAGE_LATENCY, observe_consumer_lag
from services.common.pb.platewatch.v1 import common_pb2, frames_pb2, reads_pb2
from services.common.settings import CommonSettings
from services.common.topics import FRAMES, RAW_READS
from services.inference import metrics
from services.inference.det_build import DEFAULT_DET_PRECISION, DetPrecision
from services.inference.engine import (
    DEFAULT_DETECTION,
    DEFAULT_MIN_PLATE_SCORE,
    DEFAULT_RECOGNIZER,
    DESKEW_MIN_DEGREES,
    MODEL_VERSIONS,
    SURE_READING,
    DetectionStrategy,
    InferenceBackend,
    PlateRecognizer,
    PlateResult,
    RecognizerName,
    make_backend,
)
from services.inference.proposals import TwoStageOptions

log = logging.getLogger(__name__)

SERVICE = "inference"
POLL_MS = 200
MAX_RETRY_DELAY_S = 10.0


class InferenceSettings(CommonSettings):
    """Env: PLATEWATCH_TRITON_URL, PLATEWATCH_RECOGNIZER, PLATEWATCH_BATCH_SIZE, ..."""

    # Triton gRPC address; empty runs the models in this process with onnxruntime.
    triton_url: str = "localhost:8001"
    # Which text recognizer reads the plate lines: "crnn" (ours) or "ppocr" (PP-OCRv4 rec).
    recognizer: RecognizerName = DEFAULT_RECOGNIZER
    # Which detector build runs (services/inference/det_build.py), in this process and in the Triton
    # model repository: "int8" (CPU default, about half the CPU), "fp32" (exact; for GPUs) or
    # "original" (the wheel's file as is).
    det_precision: DetPrecision = DEFAULT_DET_PRECISION
    # How plates are found in frames larger than the detector canvas: "two_stage" (coarse pass, then
    # windows around what it proposes, at the full pass's scale or higher for small text) or "full"
    # (one pass over the whole frame: finds more small plates in busy scenes, about 1.5x the CPU;
    # README, Recognition).
    detection: DetectionStrategy = DEFAULT_DETECTION
    # Two-stage only: plate-shaped edge clusters proposed as windows (at most this many), when the
    # coarse pass proposes nothing or, with edge_always, on every frame (small plates beside other text).
    edge_proposals: int = TwoStageOptions.edge_proposals
    edge_always: bool = TwoStageOptions.edge_always
    # Two-stage only: a frame whose coarse map proposed text and whose windows gave no plate is
    # searched again by the full pass (costs a full pass on frames with text but no plate, e.g. a
    # sign always in view) or, when that is off (the default), by windows around up to
    # edge_windows_when_no_plate plate-shaped edge clusters its first windows did not hold.
    full_pass_when_no_plate: bool = TwoStageOptions.full_pass_when_no_plate
    edge_windows_when_no_plate: int = Field(default=TwoStageOptions.edge_windows_when_no_plate, ge=0)
    # Two-stage only, frames larger than 1280x720: the coarse pass looks at least at this scale, and
    # small text gets windows at least at min_fine_scale (proposals.TwoStageOptions). The default
    # coarse floor, 0.375, reads more small plates in 1080p frames than 0.25 at about 1.4x the CPU.
    min_coarse_scale: float = Field(default=TwoStageOptions.min_coarse_scale, ge=0.0, le=1.0)
    min_fine_scale: float = Field(default=TwoStageOptions.min_fine_scale, ge=0.0, le=1.0)
    # The plate classifier (plate_cls): lines it scores under min_plate_score (badges, signs,
    # burned-in overlays) are dropped before they are read. Off: every line that reads like a plate
    # is kept.
    plate_classifier: bool = True
    min_plate_score: float = Field(default=DEFAULT_MIN_PLATE_SCORE, ge=0.0, le=1.0)
    # Plate CRNN: a line whose plain reading has every character at least this confident is not read
    # again as the other crop variants (about half the reading time); above 1, every line is.
    sure_reading: float = Field(default=SURE_READING, ge=0.0)
    # Plate CRNN (not PP-OCRv4 rec, which reads no variants): an unsure line is also read
    # inverted, and read so when that is clearly surer (light letters on a dark plate;
    # engine.INVERTED_READING_MARGIN, which says why it is off by default).
    read_inverted: bool = False
    # A small plate-shaped image (a plate crop rather than a frame) is also read whole, as one line.
    read_crops_whole: bool = True
    # Two detected lines that are the rows of one plate (motorcycles', square plates) are also read
    # as one line, the rows side by side (postprocess.stacked_rows).
    read_two_rows: bool = True
    # The small lines around each plate (a US state's name or slogan, "BRASIL") are read with
    # PP-OCRv4 rec and name the plate's region (services/inference/printed_region.py): formats alone
    # rarely tell US states apart. "auto": on with Triton, off in this process, where each of up to
    # 3 lines a plate costs about 17 ms of one core and would break the 100 ms frame budget. With a
    # CPU-only Triton (the compose default) it costs CPU there too (on 2 cores, EU photos at
    # concurrency 8: 38.5-38.8 -> 36.9-37.5 frames/s; more with US plates): set "off" where CPU is
    # short. The GPU cost was not measured.
    printed_region: Literal["auto", "on", "off"] = "auto"
    # A frame whose text lines lean at least this many degrees (a camera with roll, a turned photo)
    # is read again turned upright; 0: never (engine.DESKEW_MIN_DEGREES).
    deskew_min_degrees: float = Field(default=DESKEW_MIN_DEGREES, ge=0.0)
    batch_size: int = 4
    batch_timeout_ms: int = 50
    inference_consumer_group: str = "inference"
    # onnxruntime intra-op threads for the in-process backend.
    onnx_threads: int = 2
    thumbnail_width: int = 320
    # Own name: capture has its own PLATEWATCH_JPEG_QUALITY for whole frames.
    crop_jpeg_quality: int = 90

    def backend(self, triton_url: str, threads: int) -> InferenceBackend:
        """Triton at `triton_url` when given, else in-process onnxruntime with `threads` threads,
        running this configuration's recognizer and detector build (`engine.make_backend`)."""
        words = self.printed_region == "on" or (self.printed_region == "auto" and bool(triton_url))
        return make_backend(
            triton_url, threads, self.recognizer, self.det_precision, self.plate_classifier, words
        )

    def plate_recognizer(self, backend: InferenceBackend) -> PlateRecognizer:
        """The recognizer these settings describe, around `backend` (which reads printed regions when
        it was built with the word reader: `backend`)."""
        options = TwoStageOptions(
            edge_proposals=self.edge_proposals,
            edge_always=self.edge_always,
            full_pass_when_no_plate=self.full_pass_when_no_plate,
            edge_windows_when_no_plate=self.edge_windows_when_no_plate,
            min_coarse_scale=self.min_coarse_scale,
            min_fine_scale=self.min_fine_scale,
        )
        return PlateRecognizer(
            backend,
            detection=self.detection,
            two_stage=options,
            plate_classifier=self.plate_classifier,
            min_plate_score=self.min_plate_score,
            sure_reading=self.sure_reading,
            read_crops_whole=self.read_crops_whole,
            deskew_min_degrees=self.deskew_min_degrees,
            read_inverted=self.read_inverted,
            read_two_rows=self.read_two_rows,
            printed_region=backend.words,
        )


# Weight of each frame with text in a camera's running mean lean: about the last 20 such frames count.
LEAN_WEIGHT = 0.05


@dataclass
class _Work:
    record: ConsumerRecord
    frame: frames_pb2.Frame
    image: np.ndarray


def decode_frame(record: ConsumerRecord) -> _Work:
    """Parse a FRAMES record and its JPEG; DeadLetterError when either cannot be decoded, the roll is
    not a number within +-`MAX_ROLL_DEG`, or the JPEG's header claims more than `MAX_FRAME_PIXELS`
    (`frame_too_large`, refused before any pixel is decoded)."""
    frame = decode(FRAMES, record.value)
    assert isinstance(frame, frames_pb2.Frame)
    if not frame.jpeg:
        raise DeadLetterError("empty_jpeg", f"camera {frame.camera_id} sequence {frame.sequence}")
    if not roll_in_range(frame.roll_deg):
        raise DeadLetterError(
            "bad_roll_deg",
            f"camera {frame.camera_id} sequence {frame.sequence}: roll_deg {frame.roll_deg} is not within"
            f" +-{MAX_ROLL_DEG:g}",
        )
    where = f"camera {frame.camera_id} sequence {frame.sequence}"
    # The size is checked from the header before decoding (see MAX_FRAME_PIXELS).
    size = header_size(frame.jpeg) if image_format(frame.jpeg) == "jpeg" else None
    if size is None:
        raise DeadLetterError("undecodable_jpeg", f"{where}: no JPEG header with a frame size")
    if not frame_size_allowed(*size):
        raise DeadLetterError(
            "frame_too_large" if size[0] * size[1] else "undecodable_jpeg",
            f"{where}: {size[0]}x{size[1]} pixels (at most {MAX_FRAME_PIXELS}, none empty)",
        )
    try:
        image = decode_image(frame.jpeg)
    except UndecodableImage as exc:
        raise DeadLetterError("undecodable_jpeg", f"{where}: {exc}") from exc
    return _Work(record, frame, image)


def _jpeg(image: np.ndarray, quality: int) -> bytes:
    ok, data = cv2.imencode(".jpg", image, [cv2.IMWRITE_JPEG_QUALITY, quality])
    if not ok:
        raise RuntimeError("JPEG encoding failed")
    return data.tobytes()


def thumbnail(image: np.ndarray, width: int) -> np.ndarray:
    """The frame scaled down to `width` pixels wide (never up)."""
    h, w = image.shape[:2]
    if w <= width:
        return image
    return cv2.resize(image, (width, max(1, round(h * width / w))), interpolation=cv2.INTER_AREA)


def build_raw_reads(
    work: _Work, plates: list[PlateResult], settings: InferenceSettings, inferred_at: Timestamp
) -> list[reads_pb2.RawRead]:
    """One RawRead per plate of one frame (the thumbnail is encoded once and shared)."""
    if not plates:
        return []
    thumb = _jpeg(thumbnail(work.image, settings.thumbnail_width), 80)
    frame = work.frame
    height, width = work.image.shape[:2]
    reads = []
    for index, plate in enumerate(plates):
        x, y, w, h = plate.box
        reads.append(
            reads_pb2.RawRead(
                camera_id=frame.camera_id,
                agency_id=frame.agency_id,
                frame_sequence=frame.sequence,
                captured_at=frame.captured_at,
                plate_index=index,
                box=common_pb2.Box(x=x, y=y, width=w, height=h),
                frame_width=width,
                frame_height=height,
                candidates=[
                    common_pb2.TextCandidate(
                        text=c.text, confidence=c.confidence, char_confidences=list(c.char_confidences)
                    )
                    for c in plate.candidates
                ],
                detection_confidence=plate.detection_confidence,
                crop_jpeg=_jpeg(plate.crop, settings.crop_jpeg_quality),
                frame_thumbnail_jpeg=thumb,
                vehicle=common_pb2.Vehicle(
                    color=plate.vehicle_color, color_confidence=plate.vehicle_color_confidence
                ),
                model_version=MODEL_VERSIONS[settings.recognizer],
                inferred_at=inferred_at,
                printed_region=plate.printed_region or "",
            )
        )
    return reads


class InferenceService:
    def __init__(self, settings: InferenceSettings, health: HealthState) -> None:
        self.settings = settings
        self.health = health
        self.frames_topic = FRAMES.name(settings.topic_prefix)
        self.raw_topic = RAW_READS.name(settings.topic_prefix)
        self.backend = settings.backend(settings.triton_url, settings.onnx_threads)
        self.recognizer = settings.plate_recognizer(self.backend)
        # Per camera, the running mean of its frames' lean (`_observe_lean`).
        self.camera_leans: dict[str, float] = {}
        self.backend_ok = False
        self.producer = make_producer(settings.kafka_bootstrap)
        self.consumer = make_consumer(
            settings.kafka_bootstrap,
            settings.inference_consumer_group,
            self.frames_topic,
            max_poll_interval_ms=600_000,
        )

    async def run(self, stop: asyncio.Event) -> None:
        self.health.set_ready(SERVICE, False)
        self.health.add_check(f"{SERVICE}-backend", self._backend_ready)
        await self.producer.start()
        try:
            await self.consumer.start()
            self.health.set_ready(SERVICE, True)
            log.info(
                "inference started",
                extra={"backend": self.backend.name, "triton_url": self.settings.triton_url},
            )
            while not stop.is_set():
                records = await self._collect_batch(stop)
                if records:
                    await self._process(records, stop)
        finally:
            self.health.set_ready(SERVICE, False)
            await self.consumer.stop()
            await self.producer.stop()
            self.backend.close()
            log.info("inference stopped")

    def _backend_ready(self) -> bool:
        """Triton reachable with both models ready (always true in-process)."""
        self.backend_ok = self.backend.is_ready()
        return self.backend_ok

    async def _collect_batch(self, stop: asyncio.Event) -> list[ConsumerRecord]:
        """Up to batch_size records, waiting at most batch_timeout_ms after the first arrives."""
        limit = self.settings.batch_size
        records: list[ConsumerRecord] = []
        deadline: float | None = None
        while len(records) < limit and not stop.is_set():
            if deadline is None:
                timeout_ms = POLL_MS
            else:
                timeout_ms = int((deadline - time.monotonic()) * 1000)
                if timeout_ms <= 0:
                    break
            fetched = await self.consumer.getmany(timeout_ms=timeout_ms, max_records=limit - len(records))
            for partition_records in fetched.values():
                records.extend(partition_records)
            if records and deadline is None:
                deadline = time.monotonic() + self.settings.batch_timeout_ms / 1000
            if not records:
                break  # nothing within a poll: let the caller check `stop`
        return records

    async def _process(self, records: list[ConsumerRecord], stop: asyncio.Event) -> None:
        MESSAGES_CONSUMED.labels(SERVICE, FRAMES.logical).inc(len(records))
        await observe_consumer_lag(self.consumer, SERVICE, self.settings.topic_prefix)
        work: list[_Work] = []
        for record in records:
            try:
                work.append(decode_frame(record))
            except DeadLetterError as error:
                await send_dead_letter(
                    self.producer, FRAMES, record, error, service=SERVICE, prefix=self.settings.topic_prefix
                )
        if work:
            reads = await self._recognize_with_retry(work, stop)
            if reads is None:
                return  # stopping while the backend is down: leave the batch uncommitted
            futures = [
                await self.producer.send(self.raw_topic, r.SerializeToString(), key=r.camera_id.encode())
                for r in reads
            ]
            await asyncio.gather(*futures)
            MESSAGES_PRODUCED.labels(SERVICE, RAW_READS.logical).inc(len(reads))
        await self._commit(records)

    async def _recognize_with_retry(
        self, work: list[_Work], stop: asyncio.Event
    ) -> list[reads_pb2.RawRead] | None:
        delay = 0.5
        while True:
            try:
                return await asyncio.to_thread(self._recognize, work)
            except Exception:
                metrics.BACKEND_ERRORS.labels(self.backend.name).inc()
                log.exception("recognition failed; retrying the batch", extra={"retry_in_s": delay})
                self.health.set_ready(f"{SERVICE}-recognition", False)
            try:
                await asyncio.wait_for(stop.wait(), delay)
                return None
            except TimeoutError:
                delay = min(delay * 2, MAX_RETRY_DELAY_S)

    def _recognize(self, work: list[_Work]) -> list[reads_pb2.RawRead]:
        """Worker thread: recognition and JPEG encoding (all the CPU work of a batch)."""
        started = time.perf_counter()
        results = self.recognizer.recognize(
            [w.image for w in work], [w.frame.region or None for w in work], [w.frame.roll_deg for w in work]
        )
        for item, lean in zip(work, self.recognizer.last_leans, strict=True):
            if lean is not None:
                self._observe_lean(item.frame.camera_id, lean)
        metrics.INFERENCE_LATENCY.labels(self.backend.name).observe(time.perf_counter() - started)
        metrics.LINES_REJECTED.inc(self.recognizer.last_rejected)
        metrics.BATCH_SIZE.observe(len(work))
        self.health.set_ready(f"{SERVICE}-recognition", True)
        inferred_at = Timestamp()
        inferred_at.GetCurrentTime()
        reads: list[reads_pb2.RawRead] = []
        for item, plates in zip(work, results, strict=True):
            reads.extend(build_raw_reads(item, plates, self.settings, inferred_at))
            if item.frame.HasField("captured_at"):
                captured = item.frame.captured_at.ToNanoseconds() / 1e9
                STAGE_LATENCY.labels(SERVICE).observe(max(0.0, time.time() - captured))
        metrics.FRAMES_PROCESSED.inc(len(work))
        metrics.PLATES_FOUND.inc(len(reads))
        return reads

    def _observe_lean(self, camera_id: str, lean: float) -> None:
        """Fold one frame's lean into its camera's running mean (`metrics.CAMERA_LEAN`)."""
        previous = self.camera_leans.get(camera_id)
        mean = lean if previous is None else previous + LEAN_WEIGHT * (lean - previous)
        self.camera_leans[camera_id] = mean
        metrics.CAMERA_LEAN.labels(camera_id).set(round(mean, 2))

    async def _commit(self, records: list[ConsumerRecord]) -> None:
        offsets: dict[TopicPartition, int] = {}
        for record in records:
            tp = TopicPartition(record.topic, record.partition)
            offsets[tp] = max(offsets.get(tp, 0), record.offset + 1)
        try:
            await self.consumer.commit(offsets)
        except CommitFailedError:
            # Partitions moved in a rebalance: their new owner re-reads from the last commit.
            log.warning("offset commit failed after a rebalance; batch will be re-read", exc_info=True)


async def serve(stop: asyncio.Event, health: HealthState, **overrides: Any) -> None:
    """Run the inference service until `stop` is set (see module docstring)."""
    settings = InferenceSettings(**overrides)
    await InferenceService(settings, health).run(stop)
