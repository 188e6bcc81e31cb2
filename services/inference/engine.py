"""Plate recognition with pluggable backends (frigate-style detectors).

A backend runs only the models, with the tensor contract of `model_io`:
`detect(images)` (UINT8 [N, H, W, 3] -> UINT8 [N, H, W]) and `recognize(crops)`
(UINT8 [N, 48, 320, 3] -> top-k indices and probabilities per CTC step). `OnnxBackend` runs them in
this process with onnxruntime; `TritonBackend` asks a Triton server for `plate_det` / `plate_rec`.
Both run the same wire graphs (`wire_models`: the contract's pre- and post-processing inside the ONNX),
whichever Triton backend serves them, so every path reads with the same graphs.
`classify(cuts)` (UINT8 [N, 32, 128, 3] -> FP32 [N]) is the plate classifier: how likely each
text line is a plate's registration rather than a badge, sign or overlay (`plate_cls`, ours; see
services/inference/models/MODEL_CARD.md). `PlateRecognizer` does everything around them and picks
the plate-like text lines.

Two recognizers (PLATEWATCH_RECOGNIZER): "ppocr" (PP-OCRv4 rec, 48 x 320 BGR crops, `plate_rec`) and
"crnn" (our plate CRNN trained on rendered plates, 32 x 128 grey crops, `plate_rec_crnn`; see
services/inference/models/MODEL_CARD.md). Both answer in the same top-k-per-CTC-step format.
"""

from __future__ import annotations

import functools
import math
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal, Protocol

import numpy as np
import onnxruntime as ort

from services.common.frames import MAX_ROLL_DEG, roll_in_range
from services.inference import (
    decoding,
    det_build,
    model_io,
    postprocess,
    printed_region,
    proposals,
    wire_models,
)
from services.inference.boxes import intersection, iou
from services.inference.det_build import DEFAULT_DET_PRECISION, DetPrecision
from services.inference.postprocess import Candidate
from services.inference.triton_repo import CLS_ONNX, CRNN_ONNX, REC_ONNX
from services.normalizer.grammar import default_grammar

RecognizerName = Literal["ppocr", "crnn"]
# How plates are found in a frame: "full" runs the detector once on the whole frame on the canvas;
# "two_stage" runs it on a small canvas first and then at the full pass's scale (small text in frames
# larger than 1280x720: higher) only around what it proposes (services/inference/proposals.py),
# falling back to "full" where that would not be cheaper.
DetectionStrategy = Literal["full", "two_stage"]
DETECTION_STRATEGIES: tuple[DetectionStrategy, ...] = ("full", "two_stage")
DEFAULT_DETECTION: DetectionStrategy = "two_stage"
RECOGNIZERS: tuple[RecognizerName, ...] = ("ppocr", "crnn")
DEFAULT_RECOGNIZER: RecognizerName = "crnn"
REC_ONNX_FILES: dict[str, Path] = {"ppocr": REC_ONNX, "crnn": CRNN_ONNX}
# Triton model names per recognizer (deploy/triton/<name>/config.pbtxt).
REC_MODEL_NAMES: dict[str, wire_models.WireModelName] = {"ppocr": "plate_rec", "crnn": "plate_rec_crnn"}
MODEL_VERSIONS: dict[str, str] = {
    "ppocr": "pp-ocrv4-det+rec/rapidocr-1.4.4",
    "crnn": "pp-ocrv4-det/rapidocr-1.4.4+plate-crnn",
}
MODEL_VERSION = MODEL_VERSIONS[DEFAULT_RECOGNIZER]
# The detector canvas: every frame is scaled to fit it (by at most DET_MAX_UPSCALE) and padded to it,
# turned upright for a portrait frame (`postprocess.oriented_canvas`; the coarse canvas too).
# With `PlateRecognizer(fit_canvas=True)` the canvas is cut to the scaled frame (rounded up to 32s):
# cheaper for small or non-16:9 images. Defaults keep the fixed 960x544 canvas and the full upscale,
# which read best on the train halves (see `PlateRecognizer`).
DET_CANVAS_WIDTH = 960
DET_CANVAS_HEIGHT = 544
DET_MAX_UPSCALE = float("inf")
DET_MAX_BATCH = 4
REC_MAX_BATCH = 16
# At most this many lines around a plate are read for the words that name its region (a state name
# and a slogan, with stickers and dates around them).
MAX_WORD_LINES = 3
# plate_cls shares plate_rec's max_batch_size in the Triton repository (triton_repo.RepositoryOptions).
CLS_MAX_BATCH = REC_MAX_BATCH
# Lines the plate classifier scores below this are not plates. Chosen on the synthetic validation
# set and the training halves (services/inference/models/MODEL_CARD.md, "plate_cls").
DEFAULT_MIN_PLATE_SCORE = 0.1
# A box split into two rows (`postprocess.merged_rows_shaped`) scores the larger of the classifier on its
# rows side by side and on the box whole. When the rows nearly touch, each row's cut (with the
# classifier's margins) carries more than half the other row, and right readings scored under the
# threshold (about 12 of 150 rendered frames at 0.65 spacing). Chosen on close-row frames of a fresh
# seed (8484, 0.65 and 0.8: 177 -> 188 of 300; the whole box alone 185; cutting the other row out
# of each row's cut lowered it, 163 -> 124 on seed 7373); session 22.
MERGED_ROWS_WHOLE_SCORE = True
# Three-character readings (US plates such as Wyoming's "248" or "T2R") are plates only on the
# classifier's firm word: on the training halves the real ones scored 0.84-1.0 and the strays that
# a 3-character reading let through (dealer frames, stickers) 0.11-0.12 (on the held-out EU photos,
# read once afterwards, one such stray scored 0.74). Without the classifier they are dropped.
SHORT_PLATE_LENGTH = 3
MIN_SHORT_PLATE_SCORE = 0.5


def is_short_reading(text: str) -> bool:
    """A plate reading short enough to need the classifier's firm word (`MIN_SHORT_PLATE_SCORE`)."""
    return len(text) <= SHORT_PLATE_LENGTH


class InferenceBackend(Protocol):
    """Runs the det and rec models; see the module docstring for the tensor contract."""

    name: str
    recognizer: RecognizerName
    # Built with the word reader (`read_words`).
    words: bool

    def detect(self, images: np.ndarray) -> np.ndarray: ...

    def recognize(self, crops: np.ndarray) -> tuple[np.ndarray, np.ndarray]: ...

    def classify(self, cuts: np.ndarray) -> np.ndarray: ...

    def read_words(self, crops: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """PP-OCRv4 rec (plate_rec) on `rec_batch("ppocr", ...)` crops, whatever reads the plates:
        the words printed around them (`PlateRecognizer(printed_region=True)`)."""
        ...

    def is_ready(self) -> bool: ...

    def close(self) -> None: ...


def _onnx_dictionary(rec_onnx: Path) -> list[str]:
    options = ort.SessionOptions()
    options.intra_op_num_threads = 1
    session = ort.InferenceSession(str(rec_onnx), options, providers=["CPUExecutionProvider"])
    return list(session.get_modelmeta().custom_metadata_map["character"].splitlines())


@functools.lru_cache(maxsize=1)
def rec_characters(rec_onnx: Path = REC_ONNX) -> list[str]:
    """The PP-OCRv4 rec model's classes: blank, the dictionary in the ONNX metadata, then space."""
    return ["blank", *_onnx_dictionary(rec_onnx), " "]


@functools.lru_cache(maxsize=2)
def recognizer_characters(recognizer: RecognizerName) -> list[str]:
    """Class list of a recognizer's CTC output (index 0 is the blank)."""
    if recognizer == "crnn":
        return ["blank", *_onnx_dictionary(CRNN_ONNX)]
    return rec_characters()


def rec_batch(recognizer: RecognizerName, crops: list[np.ndarray]) -> np.ndarray:
    """BGR crops of any size as one UINT8 rec batch in the recognizer's wire format."""
    prepare = postprocess.crnn_input if recognizer == "crnn" else postprocess.rec_input
    return np.stack([prepare(c) for c in crops])


# onnxruntime session option: may intra-op worker threads busy-wait for work ("1", the default) or not.
SPINNING_CONFIG_KEY = "session.intra_op.allow_spinning"


class OnnxBackend:
    """The models in this process (onnxruntime, CPU), each as its wire graph (`wire_models`), the
    graph Triton serves. Thread-safe: onnxruntime sessions allow concurrent `run` calls."""

    name = "onnxruntime"

    def __init__(
        self,
        threads: int = 2,
        det_onnx: Path | None = None,
        rec_onnx: Path | None = None,
        recognizer: RecognizerName = DEFAULT_RECOGNIZER,
        det_precision: DetPrecision = DEFAULT_DET_PRECISION,
        cls_onnx: Path | None = CLS_ONNX,
        words: bool = False,
    ) -> None:
        """`words`: also load PP-OCRv4 rec for `read_words` (the same session when it reads the
        plates). `det_onnx` overrides the detector `det_precision` selects (`det_build.det_model`);
        `rec_onnx` the recognizer's model file. Each is a source graph (float input, as exported),
        wrapped into its wire graph here, so it must have one input and one output, opset 11 or
        later, and no tensor named like a wire tensor (`wire_models.wire_model` refuses others);
        inputs to `detect`, `recognize` and `classify` must be uint8. `cls_onnx` None loads no plate
        classifier (`classify` then fails)."""
        self.recognizer = recognizer
        det_onnx = det_onnx or det_build.det_model(det_precision)
        rec_onnx = rec_onnx or REC_ONNX_FILES[recognizer]
        options = ort.SessionOptions()
        options.intra_op_num_threads = threads
        options.inter_op_num_threads = 1
        if threads > 1:
            # onnxruntime's workers spin between operators by default. Beside OpenCV's threads on the
            # same cores that tripled the CPU a frame and nearly doubled its wall time (EU training
            # photos at 1280x720, 2 threads: 85-98 ms wall, 164-193 ms CPU; not spinning: 42-51 ms
            # wall, 65-77 ms CPU; 1 thread: 52-55 / 58-63 ms; session 17, same reads).
            options.add_session_config_entry(SPINNING_CONFIG_KEY, "0")

        def session(name: wire_models.WireModelName, source: Path) -> ort.InferenceSession:
            graph = wire_models.wire_model(name, source).SerializeToString()
            return ort.InferenceSession(graph, options, providers=["CPUExecutionProvider"])

        self._det = session("plate_det", det_onnx)
        self._rec = session(REC_MODEL_NAMES[recognizer], rec_onnx)
        self._cls = None if cls_onnx is None else session("plate_cls", cls_onnx)
        self.words = words
        self._words = None
        if words:
            self._words = self._rec if recognizer == "ppocr" else session("plate_rec", REC_ONNX)

    def detect(self, images: np.ndarray) -> np.ndarray:
        return np.asarray(self._det.run(None, {"image": images})[0])

    def read_words(self, crops: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        if self._words is None:
            raise RuntimeError("this backend was built without the word reader (words=False)")
        indices, probs = self._words.run(None, {"crop": crops})
        return np.asarray(indices), np.asarray(probs)

    def recognize(self, crops: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        indices, probs = self._rec.run(None, {"crop": crops})
        return np.asarray(indices), np.asarray(probs)

    def classify(self, cuts: np.ndarray) -> np.ndarray:
        if self._cls is None:
            raise RuntimeError("this backend was built without the plate classifier")
        return model_io.cls_output(np.asarray(self._cls.run(None, {"crop": cuts})[0]))

    def is_ready(self) -> bool:
        return True

    def close(self) -> None:
        return None


class TritonBackend:
    """The models on a Triton server (gRPC, `host:port`). Calls block; the service runs them in a
    worker thread. One client per thread, since tritonclient's gRPC client is not shared safely."""

    name = "triton"

    def __init__(
        self,
        url: str,
        timeout_s: float = 30.0,
        recognizer: RecognizerName = DEFAULT_RECOGNIZER,
        classifier: bool = True,
        words: bool = False,
    ) -> None:
        """`classifier`: plate_cls is used, so readiness waits for it too (a model repository built
        before it existed still serves with PLATEWATCH_PLATE_CLASSIFIER=false). `words`: plate_rec
        reads the words around plates (`read_words`), so readiness waits for it too."""
        self.url = url
        self.classifier = classifier
        self.words = words
        self.recognizer = recognizer
        self._rec_model = REC_MODEL_NAMES[recognizer]
        self.timeout_s = timeout_s
        self._local = threading.local()
        self._clients: list[object] = []
        self._lock = threading.Lock()
        self._probe_client: object | None = None

    def _client(self):  # type: ignore[no-untyped-def]
        import tritonclient.grpc as grpcclient

        client = getattr(self._local, "client", None)
        if client is None:
            client = grpcclient.InferenceServerClient(self.url)
            self._local.client = client
            with self._lock:
                self._clients.append(client)
        return client

    def _infer(self, model: str, input_name: str, array: np.ndarray, outputs: list[str]) -> list[np.ndarray]:
        import tritonclient.grpc as grpcclient

        tensor = grpcclient.InferInput(input_name, list(array.shape), "UINT8")
        tensor.set_data_from_numpy(np.ascontiguousarray(array))
        requested = [grpcclient.InferRequestedOutput(name) for name in outputs]
        result = self._client().infer(model, [tensor], outputs=requested, client_timeout=self.timeout_s)
        return [result.as_numpy(name) for name in outputs]

    def detect(self, images: np.ndarray) -> np.ndarray:
        return self._infer("plate_det", "image", images, ["prob"])[0]

    def recognize(self, crops: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        indices, probs = self._infer(self._rec_model, "crop", crops, ["top_indices", "top_probs"])
        return indices, probs

    def classify(self, cuts: np.ndarray) -> np.ndarray:
        return model_io.cls_output(self._infer("plate_cls", "crop", cuts, ["plate_prob"])[0])

    def read_words(self, crops: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        indices, probs = self._infer(REC_MODEL_NAMES["ppocr"], "crop", crops, ["top_indices", "top_probs"])
        return indices, probs

    def is_ready(self) -> bool:
        """Server up with the models it uses ready. Uses one shared client: health probes arrive on a new
        thread each time and must not each open a connection."""
        import tritonclient.grpc as grpcclient

        from services.inference.triton_server import is_ready

        with self._lock:
            if self._probe_client is None:
                self._probe_client = grpcclient.InferenceServerClient(self.url)
                self._clients.append(self._probe_client)
            models = (
                "plate_det",
                self._rec_model,
                *(("plate_cls",) if self.classifier else ()),
                *((REC_MODEL_NAMES["ppocr"],) if self.words else ()),
            )
            return is_ready(self._probe_client, models)

    def close(self) -> None:
        with self._lock:
            for client in self._clients:
                client.close()  # type: ignore[attr-defined]
            self._clients.clear()
            self._probe_client = None
        self._local = threading.local()


def make_backend(
    triton_url: str,
    threads: int = 2,
    recognizer: RecognizerName = DEFAULT_RECOGNIZER,
    det_precision: DetPrecision = DEFAULT_DET_PRECISION,
    classifier: bool = True,
    words: bool = False,
) -> InferenceBackend:
    """Triton when an address is given (its model repository fixes the detector), else in-process
    onnxruntime with the `det_precision` detector; `classifier`: with the plate classifier;
    `words`: with the word reader (`read_words`)."""
    if triton_url:
        return TritonBackend(triton_url, recognizer=recognizer, classifier=classifier, words=words)
    return OnnxBackend(
        threads=threads,
        recognizer=recognizer,
        det_precision=det_precision,
        cls_onnx=CLS_ONNX if classifier else None,
        words=words,
    )


@dataclass
class PlateResult:
    """One plate found in a frame. `box` is (x, y, width, height) in frame pixels around the text
    line; `candidates` are best first (at least one)."""

    box: tuple[int, int, int, int]
    candidates: list[Candidate]
    detection_confidence: float
    crop: np.ndarray = field(repr=False)
    vehicle_color: str = "unknown"
    vehicle_color_confidence: float = 0.0
    # The plate classifier's probability that the line is a registration (None: not asked).
    plate_score: float | None = None
    # The region the words printed around the registration name (a state's name or slogan:
    # `printed_region.region_of_words`), in the grammar's spelling ("US-NM"); None when they name
    # none or were not read (`PlateRecognizer(printed_region=False)`).
    printed_region: str | None = None

    @property
    def text(self) -> str:
        return self.candidates[0].text

    @property
    def confidence(self) -> float:
        """How sure the plate is a registration read right: the best reading's confidence times the
        plate classifier's score (when it was asked). A sign or badge read surely but scored low by
        the classifier ranks below a plate; on the training halves and the synthetic frames this
        made the top plate right in 1 more of 52 EU photos at 1280x720 and 2 more of 150 frames."""
        reading = self.candidates[0].confidence
        return reading if self.plate_score is None else reading * self.plate_score


@dataclass
class _Line:
    frame_index: int
    quad: np.ndarray
    score: float
    # The line cut with each of the recognizer's margins (a box split into rows: at each of
    # `postprocess.MERGED_ROWS_SPLITS` too); the first is kept, and is read first (when that reading
    # is not sure, all of them are read and vote: PlateRecognizer.read_cuts).
    cuts: list[np.ndarray]
    # The whole of a plate-shaped image (`read_crops_whole`), not a detected text line.
    whole_image: bool = False
    # A two-row plate (`postprocess.stacked_rows`): the quads of its upper and lower rows (a box split
    # into rows: its halves). `quad` is then the quad around both, and `cuts` the rows laid side by
    # side (`postprocess.side_by_side`).
    rows: tuple[np.ndarray, np.ndarray] | None = None
    # The rows are the parts of one detected box (`postprocess.split_rows`), not two detected lines.
    merged_rows: bool = False

    @property
    def crop(self) -> np.ndarray:
        return self.cuts[0]


@dataclass
class _Detection:
    """What `PlateRecognizer._detect` found in a batch of frames."""

    lines: list[_Line]
    # Per frame: "full", "fine", "coarse" or "empty" (`recognize` may add "+full" or "+edges" to
    # "fine": see `PlateRecognizer.last_paths`).
    paths: list[str]
    # Frames whose coarse map proposed text (two-stage detection; not only the edge proposer).
    coarse_proposed: set[int]
    # The fine windows (frame pixels) of each frame that was read from windows, with the scale each
    # was detected at (a coarse pass that ran at the full pass's scale counts as the whole frame).
    windows: dict[int, list[tuple[proposals.Region, float]]]
    # Frames whose coarse pass ran at the full pass's scale: their full pass's boxes, for reuse.
    full_pass: dict[int, list[tuple[np.ndarray, float]]]


# Two boxes are one piece of text seen at two scales when they share more than this of the smaller one.
SAME_TEXT_OVERLAP = 0.5

# A line whose plain reading has every character at least this confident is not read again as the
# other `postprocess.READING_VARIANTS`. Chosen without the held-out half: on the 1,419-plate synthetic
# validation crops 0.9 read a line 1.46 times on average instead of 4 (exact 1,314 -> 1,317), but
# through detection it lost one of 150 synthetic frames and one of 52 training-half EU photos at
# 1280x720; 0.98 loses neither (crops: 1.77 reads a line, exact 1,314) and saves about 5-10 ms of
# CPU a frame with gpu-w15 (README, Recognition).
SURE_READING = 0.98

# Light letters on a dark plate (old black European plates, Vermont's green, many specialty plates):
# the plate CRNN reads the synthetic validation crops inverted far worse than as rendered (1,117 vs
# 1,311 of 1,419). So a line the cascade finds unsure (`SURE_READING`) is also read inverted, once,
# and when that reading's least confident character beats the plain reading's by more than this
# margin, all of the line's variants are read inverted. Chosen without the held-out half, on those
# synthetic crops as rendered and inverted (margin 0: -12 / +170 plates; 0.2: -3 / +143; 0.3: -2 /
# +111; 0.4: +1 / +84; 0.5: +1 / +52): the smallest margin that loses no plate as rendered. Off by
# default (`read_inverted`): the held-out US crops, read once after that choice, lost two plates to it
# (`778AOS` read with a 0 for the O, `SQUAW` with a 0 for the Q) and won one (336 -> 335 of 376; EU
# crops 50 both ways). For cameras that see many light-on-dark plates.
INVERTED_READING_MARGIN = 0.4

# A frame whose detected lines lean by at least this many degrees (their median; lines at least
# DESKEW_MIN_ASPECT times as long as high) is read again turned upright (`PlateRecognizer.recognize`).
# The detector's box of a leaning line is taller than the text, so the rectified cut shows the plate
# small, among more of its surroundings, and the plate classifier doubts it (a Maryland plate turned
# 12.5 degrees: 0.80 upright, 0.04 as cut). Chosen without the held-out half (README, Recognition,
# "Tilted frames"): on the 150 synthetic frames and the training-half EU photos turned 5-15 degrees,
# upright frames nearly never lean this much (1 of 150 and 2 of 52), and detected angles of level
# text stay within about a degree.
DESKEW_MIN_DEGREES = 3.0
DESKEW_MIN_ASPECT = 2.0
# A leaning frame whose best plate is already this confident (reading x plate score) is not turned:
# on the same choosing sets 0.99 read as many plates as always turning and saved half of the second
# passes (73 of 149 tilted synthetic frames, 27 of 52 tilted EU photos); 0.98 lost one EU photo.
DESKEW_SURE_PLATE = 0.99
# The two readings of a turned frame are merged (`_merged`), not one dropped for the other: the surer
# one's plates stay; a plate of the other that shares at least SAME_PLATE_OVERLAP of the smaller box
# with one of them is the same plate and replaces it when more confident and boxed alike (IoU at least
# SAME_PLATE_IOU, so neither a piece of the plate nor a box over two plates replaces anything); one
# that overlaps none (a second car the winning pass missed) is added only at DESKEW_ADD_FLOOR or
# above, as a plate only one pass found has no second reading to back it. Chosen without the held-out
# half (README, "Tilted frames"): on two-car frames turned 5-15 degrees (26 of training-half EU
# photos, 75 of synthetic frames) 3 more of 202 plates found, strays unchanged; a merge without the
# floor found 4 more but added 3 strays; the single-plate choosing sets read the same.
SAME_PLATE_OVERLAP = 0.5
SAME_PLATE_IOU = 0.5
DESKEW_ADD_FLOOR = 0.5
# Deskew's second reading of a frame larger than the canvas is detected in windows around its first
# lines only (`PlateRecognizer._read_turned`), not by a new coarse-then-fine search of the turned frame.
DESKEW_IN_WINDOWS = True


# A camera's known roll (`recognize(rolls=...)`, the registry's `roll_deg`) is at most
# `MAX_ROLL_DEG` (the Frame contract's bound, services.common.frames) either way. A known roll trades
# a little reading for CPU (README, "Tilted frames"): frames rolled 10 degrees read with it at about
# 55-80 % of the CPU that leaving it unset (deskew's two passes) costs, and 2 fewer of 142 synthetic
# frames (the same 46 of 52 training-half EU photos); turned on a grown canvas, as deskew's second
# pass is, it read 3 and 6 fewer, since the detector then sees the frame smaller.
class PlateRecognizer:
    """Finds and reads plates: det on a fixed canvas (or, by default for frames larger than it,
    coarse-then-fine: `detection`, services/inference/proposals.py), DB boxes, geometric pre-filter,
    rec on the crops of all frames at once, CTC decode, plate-likeness filter (text, then the plate
    classifier), vehicle colour."""

    def __init__(
        self,
        backend: InferenceBackend,
        *,
        canvas: tuple[int, int] = (DET_CANVAS_WIDTH, DET_CANVAS_HEIGHT),
        max_upscale: float = DET_MAX_UPSCALE,
        fit_canvas: bool = False,
        top_k: int = 3,
        min_text_confidence: float = 0.5,
        read_variants: bool | None = None,
        crop_margins: tuple[tuple[float, float], ...] = postprocess.LINE_CROP_MARGINS,
        detection: DetectionStrategy = DEFAULT_DETECTION,
        two_stage: proposals.TwoStageOptions | None = None,
        plate_classifier: bool = True,
        min_plate_score: float = DEFAULT_MIN_PLATE_SCORE,
        sure_reading: float = SURE_READING,
        read_crops_whole: bool = True,
        deskew_min_degrees: float = DESKEW_MIN_DEGREES,
        read_inverted: bool = False,
        read_two_rows: bool = True,
        printed_region: bool = False,
    ) -> None:
        """`plate_classifier`: ask the backend's classifier about every line before it is read and
        drop those it scores under `min_plate_score` (badges, signs, overlays). `sure_reading`:
        a line whose first cut, read as given, has every character at least this confident is not
        read again as the other variants and cuts (above 1: every line is). `read_crops_whole`: a
        small plate-shaped image (`postprocess.plate_crop_shaped`) is also read whole as one line,
        which replaces the plates read from its detected lines when `whole_reading_wins`.
        `deskew_min_degrees`: a frame whose lines lean at least this much is read again turned
        upright (`recognize`; 0: never). `read_inverted`: an unsure line may be read inverted, as
        light letters on a dark plate (`INVERTED_READING_MARGIN`; only with reading variants, which
        are on for the plate CRNN only by default). `read_two_rows`: two lines that are the rows of
        one plate (`postprocess.stacked_rows`) are also read as one line, the rows side by side; when
        that line is a plate, its rows are not plates of their own, unless a row fits a plate format
        and the two-row reading does not (`_settle_two_rows`); a box shaped like both rows of one
        plate (`postprocess.merged_rows_shaped`) is read so too, cut at its middle and a little above and
        below (`postprocess.MERGED_ROWS_SPLITS`). `printed_region`: the small lines around each plate
        (state name, slogan) are read with the backend's word reader (`read_words`, which the backend
        must then have), and the region they name is the plate's `printed_region`
        (`_name_printed_regions`)."""
        if deskew_min_degrees < 0:
            raise ValueError(f"deskew_min_degrees must be at least 0: {deskew_min_degrees}")
        self.deskew_min_degrees = deskew_min_degrees
        self.backend = backend
        self.read_crops_whole = read_crops_whole
        self.sure_reading = sure_reading
        self.plate_classifier = plate_classifier
        self.min_plate_score = min_plate_score
        if detection not in DETECTION_STRATEGIES:
            raise ValueError(f"detection must be one of {', '.join(DETECTION_STRATEGIES)}: {detection!r}")
        self.detection = detection
        self.two_stage = two_stage or proposals.TwoStageOptions()
        # What the last `detect_lines` or `recognize` did per frame ("full", "fine", "coarse",
        # "empty", and after `recognize` also "fine+full" or "fine+edges": searched again, or any of
        # them + "+turned": read again turned upright and that reading led the merge, and "rolled+"
        # before any of them: turned by the camera's known roll first), for
        # benchmarks and tests (with concurrent calls, whichever finished last).
        self.last_paths: list[str] = []
        # Lines the last `recognize` dropped on the plate classifier's word, read or not (same caveat).
        # A frame read twice (deskew) counts the leading reading's drops only, so that a sign seen
        # upright and turned is counted once.
        self.last_rejected = 0
        # How much each frame of the last `recognize` leant, in `postprocess.line_angle` degrees: its
        # known roll plus the median angle of the lines of plate proportions found in it after that
        # turn; None for a frame without such lines (same caveat). What a camera's `roll_deg` should
        # be, once averaged over many frames (the inference service's lean gauge).
        self.last_leans: list[float | None] = []
        # Several variants of each crop are read only by the plate CRNN (0.5 ms a read); PP-OCRv4 rec
        # costs ~40 ms a read. None: on for the CRNN.
        self.read_variants = backend.recognizer == "crnn" if read_variants is None else read_variants
        self.read_inverted = read_inverted and self.read_variants
        self.read_two_rows = read_two_rows
        self.printed_region = printed_region
        if canvas[0] % postprocess.DET_STRIDE or canvas[1] % postprocess.DET_STRIDE:
            raise ValueError(f"canvas sides must be multiples of {postprocess.DET_STRIDE}: {canvas}")
        self.canvas = canvas
        # Measured on the train halves (exact top-1, EU photos / US crops / synthetic plate crops),
        # fixed canvas 94.2 / 94.9 / 83.3%; fit_canvas 96.2 / 94.9 / 81.0; fit_canvas with
        # max_upscale 1.0 88.5 / 90.4 / 84.8 (crops 8x cheaper), 2.0 96.2 / 90.4 / 83.5. Small plate
        # crops read best blown up to the full canvas, hence the defaults.
        self.max_upscale = max_upscale
        self.fit_canvas = fit_canvas
        if not crop_margins:
            raise ValueError("at least one crop margin is needed")
        self.crop_margins = crop_margins
        self.top_k = top_k
        self.min_text_confidence = min_text_confidence
        self.characters = recognizer_characters(backend.recognizer)

    @property
    def model_version(self) -> str:
        return MODEL_VERSIONS[self.backend.recognizer]

    def detect_lines(self, frames: list[np.ndarray]) -> list[_Line]:
        """Text lines with plate-like geometry in every frame, each with its rectified cuts, and
        (`read_two_rows`) a line for each pair of lines that are the two rows of one plate and for
        each box shaped like both rows of one (`rows` set, its cuts the rows side by side)."""
        detection = self._detect(frames)
        self.last_paths = detection.paths
        return [line for line in detection.lines if not line.whole_image]

    def _detect(self, frames: list[np.ndarray]) -> _Detection:
        """`detect_lines`'s lines with what the detection did per frame (`_Detection`)."""
        windows: dict[int, list[tuple[proposals.Region, float]]] = {}
        full_pass: dict[int, list[tuple[np.ndarray, float]]] = {}
        if self.detection == "two_stage":
            per_frame, paths, coarse_proposed, windows, full_pass = self._two_stage_boxes(frames)
        else:
            per_frame, paths, coarse_proposed = self._full_pass_boxes(frames), ["full"] * len(frames), set()
        lines: list[_Line] = []
        for index, (frame, boxes) in enumerate(zip(frames, per_frame, strict=True)):
            detected = self._lines_from_boxes(index, frame, boxes)
            lines.extend(detected)
            if self.read_crops_whole and postprocess.plate_crop_shaped(frame.shape[1], frame.shape[0]):
                lines.append(_whole_image_line(index, frame, detected))
        return _Detection(lines, paths, coarse_proposed, windows, full_pass)

    def _full_scale_and_canvas(self, frame: np.ndarray) -> tuple[float, tuple[int, int]]:
        """The scale the full pass detects `frame` at and the canvas it needs on its own (the canvas
        turned to the frame's orientation)."""
        height, width = frame.shape[:2]
        canvas = postprocess.oriented_canvas(self.canvas, width, height)
        scale, size = postprocess.det_canvas(width, height, *canvas, self.max_upscale)
        return scale, size if self.fit_canvas else canvas

    def _full_pass_boxes(self, frames: list[np.ndarray]) -> list[list[tuple[np.ndarray, float]]]:
        """DB boxes (frame pixels) of each frame detected whole on the canvas, in batches of at most
        `DET_MAX_BATCH` frames that need the same canvas (landscape with landscape, portrait with
        portrait)."""
        sized = [self._full_scale_and_canvas(f) for f in frames]
        boxes: list[list[tuple[np.ndarray, float]]] = [[] for _ in frames]
        for chunk in _batches_by_canvas([size for _, size in sized]):
            canvas = sized[chunk[0]][1]  # the same for the whole batch
            fitted = [postprocess.letterbox(frames[i], *canvas, sized[i][0]) for i in chunk]
            probs = self.backend.detect(np.stack([canvas for canvas, _ in fitted]))
            for i, (_, placement), prob in zip(chunk, fitted, probs, strict=True):
                boxes[i] = postprocess.db_boxes(prob, placement)
        return boxes

    def _two_stage_boxes(
        self, frames: list[np.ndarray]
    ) -> tuple[
        list[list[tuple[np.ndarray, float]]],
        list[str],
        set[int],
        dict[int, list[tuple[proposals.Region, float]]],
        dict[int, list[tuple[np.ndarray, float]]],
    ]:
        """DB boxes (frame pixels) of each frame by the coarse-then-fine detection
        (`services.inference.proposals`): a coarse pass proposes regions, which are detected in
        windows at the full pass's scale (small text in frames larger than 1280x720: higher);
        frames whose windows would cost more than the full pass take it. Also each frame's path, the
        frames whose coarse map proposed text, the windows of each frame that took them with their
        scales, and the full pass's boxes of frames whose coarse pass was it (see `_Detection`)."""
        options = self.two_stage
        windows: dict[int, list[tuple[proposals.Region, float]]] = {}
        boxes: list[list[tuple[np.ndarray, float]]] = [[] for _ in frames]
        paths = ["empty"] * len(frames)
        full: list[int] = []
        # (frame index, region, scale) of every window to detect.
        fine: list[tuple[int, proposals.Region, float]] = []
        # Frames whose coarse map proposed text (not only the edge proposer).
        coarse_proposed: set[int] = set()
        # Frames whose coarse pass ran at the full pass's scale (where the coarse floor reaches it:
        # with the default 0.375, frames whose full pass's scale is at most that, from 2560x1440 or
        # 2048x1536 up): its boxes are the full pass's, which is never run again for them, and only
        # small text gets windows.
        known_full: dict[int, list[tuple[np.ndarray, float]]] = {}
        # Only frames that the full pass would shrink (camera frames, larger than the canvas) are
        # staged. Smaller images (plate crops, thumbnails, small photos) go straight to the full
        # pass: it blows them up to the canvas, which is what reads their small text, and for a crop
        # the plate fills the image, so a coarse pass would only add to the full one.
        sized = [self._full_scale_and_canvas(frame) for frame in frames]
        staged = [index for index, (full_scale, _) in enumerate(sized) if full_scale < 1.0]
        full.extend(index for index, (full_scale, _) in enumerate(sized) if full_scale >= 1.0)
        coarse = {index: self._coarse_scale_and_canvas(frames[index], sized[index][0]) for index in staged}
        for chunk in _batches_by_canvas([coarse[index][1] for index in staged]):
            chunk_indices = [staged[i] for i in chunk]
            batch_canvas = coarse[chunk_indices[0]][1]  # the same for the whole batch
            fitted = [
                postprocess.letterbox(frames[index], *batch_canvas, coarse[index][0])
                for index in chunk_indices
            ]
            probs = self.backend.detect(np.stack([canvas for canvas, _ in fitted]))
            for index, (_, placement), prob in zip(chunk_indices, fitted, probs, strict=True):
                frame = frames[index]
                full_scale, full_canvas = sized[index]
                if placement.scale >= full_scale:
                    known_full[index] = postprocess.db_boxes(prob, placement)
                    boxes[index] = known_full[index]
                    paths[index] = "coarse"
                    # The coarse pass saw the whole frame at the full pass's scale (second search).
                    windows[index] = [((0, 0, frame.shape[1], frame.shape[0]), full_scale)]
                found = proposals.coarse_regions(
                    prob, placement, options.proposal_thresh, options.min_proposal_pixels
                )
                if found:
                    coarse_proposed.add(index)
                if options.edge_proposals and (options.edge_always or not found):
                    found += proposals.edge_regions(frame, options.edge_proposals)
                if index in known_full:
                    # Text the full pass's scale suits was detected already.
                    found = [r for r in found if self._proposal_scale(r, full_scale) > full_scale]
                if not found:
                    if options.full_pass_when_empty and index not in known_full:
                        full.append(index)
                    continue
                scaled = self._windows_around(frame, found, full_scale)
                if not self._windows_pay(scaled, full_canvas):
                    if index not in known_full:
                        full.append(index)
                    continue
                fine.extend((index, region, scale) for region, scale in scaled)
                windows[index] = [*windows.get(index, []), *scaled]
        for index, frame_boxes in self._window_boxes(frames, fine).items():
            paths[index] = "fine"
            if index in known_full:
                boxes[index] = _closer_boxes_first(known_full[index], frame_boxes)
                continue
            boxes[index] = frame_boxes
            if not frame_boxes and options.full_pass_when_fine_empty and index in coarse_proposed:
                full.append(index)
        full.sort()
        for index, frame_boxes in zip(full, self._full_pass_boxes([frames[i] for i in full]), strict=True):
            boxes[index] = frame_boxes
            paths[index] = "full"
            windows.pop(index, None)
        return boxes, paths, coarse_proposed, windows, known_full

    def _windows_pay(
        self, scaled: list[tuple[proposals.Region, float]], full_canvas: tuple[int, int]
    ) -> bool:
        """Whether detecting the windows `scaled` costs less than the full pass on `full_canvas`:
        at most `two_stage.max_regions` of them, summing to at most `two_stage.max_cost_share` of its
        pixels (the detector's cost is about linear in canvas pixels)."""
        options = self.two_stage
        cost = sum(w * h for w, h in (proposals.region_canvas(r, scale) for r, scale in scaled))
        return len(scaled) <= options.max_regions and cost <= options.max_cost_share * (
            full_canvas[0] * full_canvas[1]
        )

    def _coarse_scale_and_canvas(self, frame: np.ndarray, full_scale: float) -> tuple[float, tuple[int, int]]:
        """The coarse pass's scale and the canvas it needs for `frame`: fitted into the coarse canvas
        (turned to the frame) and never above the full pass's scale, but at least
        `two_stage.min_coarse_scale` (or the full scale, if lower), the canvas grown to fit then."""
        options = self.two_stage
        height, width = frame.shape[:2]
        canvas = postprocess.oriented_canvas(options.coarse_canvas, width, height)
        scale = postprocess.det_scale(width, height, *canvas, full_scale)
        floor = min(options.min_coarse_scale, full_scale)
        if scale >= floor:
            return scale, canvas
        return floor, proposals.region_canvas((0, 0, width, height), floor)

    def _fine_scale(self, full_scale: float) -> float:
        """The scale windows are detected at: the full pass's, but at least
        `two_stage.min_fine_scale` (at most 1)."""
        return max(full_scale, min(1.0, self.two_stage.min_fine_scale))

    def _windows_around(
        self, frame: np.ndarray, found: list[proposals.Region], full_scale: float
    ) -> list[tuple[proposals.Region, float]]:
        """The fine windows (frame pixels) that cover the proposals `found`, each with the scale it
        is detected at: proposals whose text is at least `two_stage.small_text_px` high at the full
        pass's scale are detected at that scale, smaller ones at `_fine_scale` (higher on frames larger
        than 1280x720). Each proposal is grown by the margins of `two_stage`, and a window
        is at least the fine canvas at its scale (the whole frame pixels that fit in it)."""
        options = self.two_stage
        height, width = frame.shape[:2]
        by_scale: dict[float, list[proposals.Region]] = {}
        for region in found:
            by_scale.setdefault(self._proposal_scale(region, full_scale), []).append(region)
        scaled: list[tuple[proposals.Region, float]] = []
        for scale, regions in by_scale.items():
            grown = [self._grown(region, scale, width, height) for region in regions]
            # Whole frame pixels that fit the fine canvas at this scale: rounded up, a window would
            # need the next canvas (530 x 318 pixels at 0.9067 are 480.5 x 288.3: 512 x 320).
            window = (
                math.floor(options.fine_canvas[0] / scale + 1e-6),
                math.floor(options.fine_canvas[1] / scale + 1e-6),
            )
            scaled.extend((w, scale) for w in proposals.cover_regions(grown, window, width, height))
        return scaled

    @staticmethod
    def _held(
        box: tuple[float, float, float, float],
        windows: list[tuple[proposals.Region, float]],
        scale: float,
        width: int,
        height: int,
    ) -> bool:
        """Whether one of a frame's `windows` detected at `scale` or finer held `box` (x0, y0, x1,
        y1, inclusive) whole (`proposals.held_by_window`): a coarser window may have missed small
        text in it."""
        return any(
            window_scale >= scale and proposals.held_by_window(box, window, width, height)
            for window, window_scale in windows
        )

    def _proposal_scale(self, region: tuple[float, float, float, float], full_scale: float) -> float:
        """The scale a proposal's window is detected at (see `_windows_around`)."""
        if (region[3] - region[1]) * full_scale >= self.two_stage.small_text_px:
            return full_scale
        return self._fine_scale(full_scale)

    def _grown(self, region: proposals.Region, scale: float, width: int, height: int) -> proposals.Region:
        """A proposal grown by the windows' margins (`two_stage`, canvas pixels at the windows'
        `scale`), clipped to a width x height frame."""
        options = self.two_stage
        return proposals.grow_region(
            region,
            options.margin_along,
            options.margin_across,
            options.min_margin_px / scale,
            width,
            height,
        )

    def _window_boxes(
        self, frames: list[np.ndarray], fine: list[tuple[int, proposals.Region, float]]
    ) -> dict[int, list[tuple[np.ndarray, float]]]:
        """DB boxes (frame pixels) found in the windows `fine` ((frame index, window, scale) each),
        windows batched on shared canvases, per frame that has a window; boxes cut by a window's edge
        are dropped and a line two windows found is kept once."""
        found: dict[int, list[tuple[np.ndarray, float]]] = {index: [] for index, _, _ in fine}
        sizes = [proposals.region_canvas(region, scale) for _, region, scale in fine]
        for members, canvas in proposals.pack_regions(sizes, DET_MAX_BATCH):
            cuts = [proposals.cut_region(frames[fine[i][0]], fine[i][1], fine[i][2], canvas) for i in members]
            probs = self.backend.detect(np.stack([cut for cut, _ in cuts]))
            for i, (_, placement), prob in zip(members, cuts, probs, strict=True):
                index, region, _ = fine[i]
                frame_boxes = proposals.shift_boxes(postprocess.db_boxes(prob, placement), region)
                height, width = frames[index].shape[:2]
                found[index].extend(proposals.inner_boxes(frame_boxes, region, width, height))
        return {index: proposals.dedupe_boxes(frame_boxes) for index, frame_boxes in found.items()}

    def _edge_window_boxes(
        self,
        frames: list[np.ndarray],
        indices: list[int],
        windows: dict[int, list[tuple[proposals.Region, float]]],
    ) -> dict[int, list[tuple[np.ndarray, float]]]:
        """DB boxes of the frames `indices` from fine windows around their plate-shaped clusters of
        vertical edges (`proposals.edge_regions`, at most `two_stage.edge_windows_when_no_plate` a
        frame) that no window in `windows` (the frame's first round) already held."""
        limit = self.two_stage.edge_windows_when_no_plate
        fine: list[tuple[int, proposals.Region, float]] = []
        for index in indices:
            frame = frames[index]
            height, width = frame.shape[:2]
            full_scale = self._full_scale_and_canvas(frame)[0]
            seen = windows.get(index, [])
            fresh: list[proposals.Region] = []
            # Every cluster, densest first: one first window may hold several (a sign's lines).
            for region in proposals.edge_regions(frame, None):
                if len(fresh) == limit:
                    break
                # Held: the cluster with the windows' margins lies clear of the inner edges of a
                # first window detected at the scale the cluster calls for (or finer), so that
                # window saw it whole (a line found there was kept). Stricter than the first round's
                # own cover test: a very large cluster may take a slot and a window again, but its
                # lines are not read twice (the line test in `recognize`).
                scale = self._proposal_scale(region, full_scale)
                grown = self._grown(region, scale, width, height)
                if not self._held(
                    (grown[0], grown[1], grown[2] - 1, grown[3] - 1), seen, scale, width, height
                ):
                    fresh.append(region)
            fine.extend(
                (index, region, scale) for region, scale in self._windows_around(frame, fresh, full_scale)
            )
        return self._window_boxes(frames, fine)

    def frame_lines(
        self, frame_index: int, frame: np.ndarray, prob: np.ndarray, placement: postprocess.Letterbox
    ) -> list[_Line]:
        """The plate-like text lines of one frame from its DB map: the DB boxes, with the pieces of a
        split line merged into one (`postprocess.merge_line_pieces`), kept when their geometry is
        plate-like, each cut out (rectified) with each of `crop_margins`; and two-row lines as in
        `detect_lines`."""
        return self._lines_from_boxes(frame_index, frame, postprocess.db_boxes(prob, placement))

    def _lines_from_boxes(
        self, frame_index: int, frame: np.ndarray, db_boxes: list[tuple[np.ndarray, float]]
    ) -> list[_Line]:
        """The lines of plate-like geometry among a frame's DB boxes (pieces of one line merged), and
        with `read_two_rows` a line for each pair of boxes that are the two rows of one plate and for
        each box shaped like both rows of one (`postprocess.merged_rows_shaped`: rows set close together)."""
        boxes = postprocess.merge_line_pieces(db_boxes)
        # Each box's cuts, made once: a row of a two-row plate is often a line of its own too.
        cuts_of: dict[int, list[np.ndarray]] = {}

        def cuts(index: int) -> list[np.ndarray]:
            if index not in cuts_of:
                cuts_of[index] = self._cuts(frame, boxes[index][0])
            return cuts_of[index]

        lines = [
            _Line(frame_index, quad, score, cuts(index))
            for index, (quad, score) in enumerate(boxes)
            if postprocess.plate_like_geometry(*postprocess.quad_size(quad))
        ]
        if self.read_two_rows:
            pairs = postprocess.stacked_pairs([quad for quad, _ in boxes])
            for upper, lower in pairs:
                (upper_quad, upper_score), (lower_quad, lower_score) = boxes[upper], boxes[lower]
                union = postprocess.stacked_union(upper_quad, lower_quad)
                side_by_side = _rows_side_by_side(cuts(upper), cuts(lower))
                score = (upper_score + lower_score) / 2
                lines.append(_Line(frame_index, union, score, side_by_side, rows=(upper_quad, lower_quad)))
            in_pairs = {index for pair in pairs for index in pair}
            # A box shaped like both rows is cut at each of the split positions (the middle first:
            # `rows`), all read as cuts. Without reading variants (PP-OCRv4's recognizer) there is no
            # cascade, so every cut would always be read: the middle one only (the positions were
            # chosen on the CRNN).
            positions = postprocess.MERGED_ROWS_SPLITS[: None if self.read_variants else 1]
            for index, (quad, score) in enumerate(boxes):
                # A row of a pair is one row (a short one can be shaped like both).
                if index in in_pairs or not postprocess.merged_rows_shaped(quad):
                    continue
                halves = [postprocess.split_rows(quad, at) for at in positions]
                side_by_side = [
                    cut
                    for upper, lower in halves
                    for cut in _rows_side_by_side(self._cuts(frame, upper), self._cuts(frame, lower))
                ]
                lines.append(_Line(frame_index, quad, score, side_by_side, rows=halves[0], merged_rows=True))
        return lines

    def _cuts(self, frame: np.ndarray, quad: np.ndarray) -> list[np.ndarray]:
        """The line `quad` of `frame` cut (rectified) with each of `crop_margins`."""
        return [
            postprocess.crop_quad(frame, postprocess.pad_quad(quad, along, across, frame.shape))
            for along, across in self.crop_margins
        ]

    def read_lines(
        self, crops: list[np.ndarray], region_hints: list[str | None] | None = None
    ) -> list[list[Candidate]]:
        """Candidates for each crop, best first: each crop is read as given and, when that reading is
        not sure (`sure_reading`), as a few variants (`postprocess.reading_variants`, plate CRNN only:
        it is cheap) whose CTC beam readings vote, all of them inverted when the crop reads better so
        (`read_inverted`), then the region grammar (with each crop's region hint, if any) chooses
        among look-alike readings (`services.inference.decoding`)."""
        return self.read_cuts([[crop] for crop in crops], region_hints)

    def read_cuts(
        self,
        cuts: list[list[np.ndarray]],
        region_hints: list[str | None] | None = None,
        min_first_chars: list[int] | None = None,
    ) -> list[list[Candidate]]:
        """Like `read_lines` for lines given as several cuts each (the same line cut with different
        margins): the first cut is read as given, and when that reading is not sure, the reading
        variants of all the cuts of the line vote together; with `read_inverted`, the first cut is
        then also read inverted, and when that reading's least confident character beats the plain
        reading's by more than `INVERTED_READING_MARGIN`, the line's variants are all read inverted.
        `region_hints`: one per line (see `recognize`). `min_first_chars`: one per line; with the
        cascade, a line whose first reading (its first cut as given, or inverted when that polarity
        was kept) holds fewer characters is not read again, and that reading is its result (None:
        any line may be read again)."""
        if region_hints is not None and len(region_hints) != len(cuts):
            raise ValueError(f"{len(region_hints)} region hints for {len(cuts)} lines")
        if min_first_chars is not None and len(min_first_chars) != len(cuts):
            raise ValueError(f"{len(min_first_chars)} character counts for {len(cuts)} lines")
        variants = postprocess.READING_VARIANTS if self.read_variants else ((0.0, 0.0),)
        hints = region_hints or [None] * len(cuts)
        # variant_crops[line][cut][variant]; the first variant is the cut as given.
        variant_crops = [[postprocess.reading_variants(crop, variants) for crop in line] for line in cuts]
        outputs: list[list[list[tuple[np.ndarray, np.ndarray] | None]]] = [
            [[None] * len(variants) for _ in line] for line in cuts
        ]

        def read(jobs: list[tuple[int, int, int]]) -> None:
            crops = [variant_crops[line][cut][variant] for line, cut, variant in jobs]
            for job, output in zip(jobs, self._recognize(crops), strict=True):
                outputs[job[0]][job[1]][job[2]] = output

        def decode(line: int, variant_count: int) -> list[Candidate]:
            line_outputs = [
                output
                for cut_outputs in outputs[line]
                for output in cut_outputs[:variant_count]
                if output is not None
            ]
            return decoding.read_variants(line_outputs, self.characters, self.top_k, region_hint=hints[line])

        def first_length(candidates: list[Candidate]) -> int:
            return len(candidates[0].text) if candidates else 0

        def least_confidence(candidates: list[Candidate]) -> float:
            return min(candidates[0].char_confidences, default=0.0) if candidates else 0.0

        lines = range(len(cuts))
        readings: list[list[Candidate]] = [[] for _ in lines]
        unsure = list(lines)
        cascade = len(variants) > 1 and self.sure_reading <= 1.0
        if cascade or self.read_inverted:
            # Cascade: read each line's first cut as given; a line whose reading is sure is done, the
            # others read every variant of every cut (all of them vote). Without the cascade
            # (sure_reading above 1) no line is sure, but the first reading still decides polarity.
            unsure = [line for line in lines if cuts[line]]
            read([(line, 0, 0) for line in unsure])
            readings = [decode(line, 1) for line in lines]
            unsure = [line for line in unsure if least_confidence(readings[line]) < self.sure_reading]
        if self.read_inverted and unsure:
            first_cuts = [variant_crops[line][0][0] for line in unsure]
            inverted_outputs = self._recognize([255 - crop for crop in first_cuts])
            for line, output in zip(unsure, inverted_outputs, strict=True):
                inverted = decoding.read_variants(
                    [output], self.characters, self.top_k, region_hint=hints[line]
                )
                if least_confidence(inverted) > least_confidence(readings[line]) + INVERTED_READING_MARGIN:
                    # Light letters on a dark plate: every variant of every cut is read inverted.
                    variant_crops[line] = [[255 - crop for crop in cut] for cut in variant_crops[line]]
                    outputs[line] = [[None] * len(variants) for _ in cuts[line]]
                    outputs[line][0][0] = output
                    readings[line] = inverted
        if cascade and min_first_chars is not None:
            # A line whose first reading (in the polarity kept) is too short is not read again.
            unsure = [line for line in unsure if first_length(readings[line]) >= min_first_chars[line]]
        read(
            [
                (line, cut, v)
                for line in unsure
                for cut in range(len(cuts[line]))
                for v in range(len(variants))
                if outputs[line][cut][v] is None
            ]
        )
        for line in unsure:
            readings[line] = decode(line, len(variants))
        return readings

    def _recognize(self, crops: list[np.ndarray]) -> list[tuple[np.ndarray, np.ndarray]]:
        """The backend's (top-k indices, probabilities) for each crop, in batches."""
        outputs: list[tuple[np.ndarray, np.ndarray]] = []
        for start in range(0, len(crops), REC_MAX_BATCH):
            batch = rec_batch(self.backend.recognizer, crops[start : start + REC_MAX_BATCH])
            indices, probs = self.backend.recognize(batch)
            outputs.extend(zip(indices, probs, strict=True))
        return outputs

    def recognize(
        self,
        frames: list[np.ndarray],
        region_hints: list[str | None] | None = None,
        rolls: list[float] | None = None,
    ) -> list[list[PlateResult]]:
        """Plates per frame (BGR uint8 images of any size), in the order of `frames`; within a frame,
        most confident first. `region_hints` (one per frame, None: unknown) are the cameras'
        regions, whose plate formats decide between look-alike readings (`decoding.choose`).
        `rolls` (one per frame, degrees as `postprocess.line_angle` measures them; 0: level) are the
        cameras' known roll: such a frame is turned upright by it about its centre, on a canvas of
        its own size (the corners cut; the detector sees it at a level frame's scale), before
        anything is read, so a fixed camera with roll does not pay a leaning first pass and a
        turned second one on every frame (the known-roll note above this class); its boxes are mapped
        back to the frame ("rolled+" in `last_paths`), its crops are the upright ones.
        Two-stage detection: a frame whose coarse map proposed text and whose windows gave lines
        but no plate is searched again, by the full pass (`TwoStageOptions.full_pass_when_no_plate`;
        its `last_paths` entry is then "fine+full") or by windows around plate-shaped edge clusters
        its first windows did not hold (`TwoStageOptions.edge_windows_when_no_plate`; "fine+edges").
        A frame whose text leans (`deskew_min_degrees`) and whose best plate is not already sure
        (`DESKEW_SURE_PLATE`) is read again turned upright, and the two readings are merged
        (`_merged`): the one whose best plate is more confident leads ("+turned" when that is the
        turned one), the other's plates replace the same plates when surer and add plates it alone
        found at `DESKEW_ADD_FLOOR` or above. Turned boxes are mapped back to the frame; turned
        crops are the upright ones."""
        self.last_rejected = 0
        if not frames:
            self.last_paths, self.last_leans = [], []
            return []
        if region_hints is not None and len(region_hints) != len(frames):
            raise ValueError(f"{len(region_hints)} region hints for {len(frames)} frames")
        if rolls is not None and len(rolls) != len(frames):
            raise ValueError(f"{len(rolls)} rolls for {len(frames)} frames")
        if rolls is not None and not all(roll_in_range(roll) for roll in rolls):
            raise ValueError(f"a roll is not within +-{MAX_ROLL_DEG:g} degrees: {rolls}")
        rolled = [
            postprocess.turned_upright(frame, roll, grow=False) if roll else None
            for frame, roll in zip(frames, rolls or [0.0] * len(frames), strict=True)
        ]
        level = [frame if turn is None else turn[0] for frame, turn in zip(frames, rolled, strict=True)]
        results, paths, rejected, angles = self._read_deskewed(level, region_hints)
        for i, turn in enumerate(rolled):
            if turn is not None:
                _boxes_back(results[i], turn[1], frames[i])
                paths[i] = f"rolled+{paths[i]}"
        self.last_paths = paths
        self.last_rejected = sum(rejected)
        self.last_leans = [
            None if np.isnan(angle) else angle + (rolls[i] if rolls else 0.0)
            for i, angle in enumerate(angles)
        ]
        return results

    def _read_deskewed(
        self, frames: list[np.ndarray], region_hints: list[str | None] | None
    ) -> tuple[list[list[PlateResult]], list[str], list[int], list[float]]:
        """`recognize` of frames without a known roll: the plates of each frame, its path, how many
        of its lines the classifier dropped and the median angle of its lines as first read (NaN:
        none), a leaning frame read again turned upright."""
        results, paths, rejected, angles, quads = self._recognize_once(frames, region_hints)
        leaning = [
            i
            for i, angle in enumerate(angles)
            if self.deskew_min_degrees
            and abs(angle) >= self.deskew_min_degrees
            and not (results[i] and results[i][0].confidence >= DESKEW_SURE_PLATE)
        ]
        if leaning:
            turned = [postprocess.turned_upright(frames[i], angles[i]) for i in leaning]
            second, second_paths, second_rejected = self._read_turned(
                [frames[i] for i in leaning],
                turned,
                [quads[i] for i in leaning],
                None if region_hints is None else [region_hints[i] for i in leaning],
            )
            for i, (_, back), plates, path, dropped in zip(
                leaning, turned, second, second_paths, second_rejected, strict=True
            ):
                _boxes_back(plates, back, frames[i])
                if plates and (not results[i] or plates[0].confidence > results[i][0].confidence):
                    results[i], paths[i], rejected[i] = _merged(plates, results[i]), f"{path}+turned", dropped
                else:
                    results[i] = _merged(results[i], plates)
        return results, paths, rejected, angles

    def _read_turned(
        self,
        frames: list[np.ndarray],
        turned: list[tuple[np.ndarray, np.ndarray]],
        quads: list[list[np.ndarray]],
        region_hints: list[str | None] | None,
    ) -> tuple[list[list[PlateResult]], list[str], list[int]]:
        """Deskew's second reading of leaning `frames`, each given `turned` upright
        (`postprocess.turned_upright`) with the quads of the lines its first pass detected: the
        plates of each turned image (boxes in its pixels, sorted), its path and how many of its lines
        the classifier dropped. Under two-stage detection, a frame larger than the canvas (full-pass
        scale under 1) is detected only in windows around those lines turned with it, each at the
        scale the frame's own windows would take for text that high (`_windows_around` with the
        frame's full-pass scale; `DESKEW_IN_WINDOWS`; path "fine"): no coarse pass over the grown
        turned image, which saw the frame smaller, no edge proposals, and no second search or full
        pass when the windows find nothing. The others, and any whose windows would cost more than
        the full pass, are searched anew (`_recognize_once`)."""
        images = [image for image, _ in turned]
        windows: dict[int, list[tuple[proposals.Region, float]]] = {}
        if DESKEW_IN_WINDOWS and self.detection == "two_stage":
            for k, (frame, (image, back), frame_quads) in enumerate(zip(frames, turned, quads, strict=True)):
                if not frame_quads:
                    continue
                full_scale, full_canvas = self._full_scale_and_canvas(frame)
                if full_scale >= 1.0:
                    continue
                forward = postprocess.inverse_affine(back)
                height, width = image.shape[:2]
                regions = [
                    proposals.clip_region(postprocess.points_extent_through(quad, forward), width, height)
                    for quad in frame_quads
                ]
                scaled = self._windows_around(image, regions, full_scale)
                if self._windows_pay(scaled, full_canvas):
                    windows[k] = scaled
        results: list[list[PlateResult]] = [[] for _ in frames]
        paths = ["fine"] * len(frames)
        rejected = [0] * len(frames)
        if windows:
            fine = [(k, region, scale) for k, scaled in windows.items() for region, scale in scaled]
            lines = [
                line
                for k, boxes in self._window_boxes(images, fine).items()
                for line in self._lines_from_boxes(k, images[k], boxes)
            ]
            rejected = self._read_lines_into(results, images, lines, region_hints)
            for plates in results:
                plates.sort(key=lambda plate: plate.confidence, reverse=True)
        rest = [k for k in range(len(frames)) if k not in windows]
        if rest:
            hints = None if region_hints is None else [region_hints[k] for k in rest]
            again, again_paths, again_rejected, _, _ = self._recognize_once([images[k] for k in rest], hints)
            for k, plates, path, dropped in zip(rest, again, again_paths, again_rejected, strict=True):
                results[k], paths[k], rejected[k] = plates, path, dropped
        return results, paths, rejected

    def _recognize_once(
        self, frames: list[np.ndarray], region_hints: list[str | None] | None
    ) -> tuple[list[list[PlateResult]], list[str], list[int], list[float], list[list[np.ndarray]]]:
        """`recognize` without turning leaning frames: the plates of each frame (sorted), its path,
        how many of its lines the classifier dropped, the median `line_angle` of its detected
        lines of plate proportions (NaN when it has none; the first search's lines), and the quads
        of every line it detected (second searches' too; whole-image lines not)."""
        results: list[list[PlateResult]] = [[] for _ in frames]
        detection = self._detect(frames)
        paths = detection.paths
        rejected = self._read_lines_into(results, frames, detection.lines, region_hints)
        # Every line detected, second searches' included (their quads go to deskew's windows).
        searched = list(detection.lines)
        options = self.two_stage
        if self.detection == "two_stage" and (
            options.full_pass_when_no_plate or options.edge_windows_when_no_plate
        ):
            # Frames whose coarse map proposed text, whose windows gave lines, and no plate.
            with_lines = {line.frame_index for line in detection.lines}
            retry = [
                i
                for i in sorted(detection.coarse_proposed & with_lines)
                if (paths[i] == "fine" or i in detection.full_pass) and not results[i]
            ]
            if retry and options.full_pass_when_no_plate:
                # Frames whose coarse pass was the full pass have its boxes already.
                to_run = [i for i in retry if i not in detection.full_pass]
                per_frame = dict(zip(to_run, self._full_pass_boxes([frames[i] for i in to_run]), strict=True))
                per_frame.update((i, detection.full_pass[i]) for i in retry if i in detection.full_pass)
                lines = [
                    line
                    for index, boxes in per_frame.items()
                    for line in self._lines_from_boxes(index, frames[index], boxes)
                ]
                second = self._read_lines_into(results, frames, lines, region_hints)
                searched.extend(lines)
                for index in retry:
                    # The full pass looked at the whole frame again: its rejections replace the
                    # windows' (the same sign is not counted twice).
                    rejected[index] = second[index]
                    paths[index] = "fine+full"
            elif retry:
                per_frame = self._edge_window_boxes(frames, retry, detection.windows)
                # Lines the first round found were read there already.
                first_round: dict[int, list[tuple[int, int, int, int]]] = {}
                for line in detection.lines:
                    if not line.whole_image:
                        first_round.setdefault(line.frame_index, []).append(
                            postprocess.quad_to_box(line.quad)
                        )
                lines = [
                    line
                    for index, boxes in per_frame.items()
                    for line in self._lines_from_boxes(index, frames[index], boxes)
                    if not any(
                        iou(postprocess.quad_to_box(line.quad), seen) > proposals.SAME_LINE_IOU
                        for seen in first_round.get(index, [])
                    )
                ]
                # The first round's lines of these frames (no plate among them) may be the words
                # around a plate found now: they name its region.
                context = [line for line in detection.lines if line.frame_index in per_frame]
                second = self._read_lines_into(results, frames, lines, region_hints, context)
                searched.extend(lines)
                for index in per_frame:
                    rejected[index] += second[index]
                    paths[index] = "fine+edges"
        for plates_of_frame in results:
            plates_of_frame.sort(key=lambda plate: plate.confidence, reverse=True)
        quads: list[list[np.ndarray]] = [[] for _ in frames]
        for line in searched:
            # A pair's rows are lines of their own; a split box's halves are not.
            if not line.whole_image and (line.rows is None or line.merged_rows):
                quads[line.frame_index].append(line.quad)
        return results, paths, rejected, _median_line_angles(detection.lines, len(frames)), quads

    def _read_lines_into(
        self,
        results: list[list[PlateResult]],
        frames: list[np.ndarray],
        lines: list[_Line],
        region_hints: list[str | None] | None,
        context: list[_Line] | None = None,
    ) -> list[int]:
        """Read `lines` (of `frames`), keep the plates (text filter, plate classifier, accessory
        text) and append them to their frame's list in `results` (unsorted). Returns how many lines
        of each frame the classifier dropped. The classifier sees every line before it is read: a
        line it scores under `min_plate_score` would be dropped whatever it read, so it is not read
        (signs and badges: most of the reads on busy frames). `context`: lines of the same frames
        that an earlier round found and this one does not read again; with `printed_region` they
        may still be the words around a plate found here."""
        rejected = [0] * len(frames)
        if not lines:
            return rejected
        detected = [*lines, *(context or [])]
        scores: list[float | None] = [None] * len(lines)
        if self.plate_classifier:
            classified, lines, scores = lines, [], []
            for line, plate_score in zip(
                classified, self.plate_scores(frames, classified).tolist(), strict=True
            ):
                if not plate_score >= self.min_plate_score:  # NaN included
                    # Only one-row lines count: a pair's rows are counted as lines of their own, and a
                    # box split into rows was too square to be a line.
                    rejected[line.frame_index] += line.rows is None
                else:
                    lines.append(line)
                    scores.append(plate_score)
        readings = self.read_cuts(
            [line.cuts for line in lines],
            None if region_hints is None else [region_hints[line.frame_index] for line in lines],
            [postprocess.MERGED_ROWS_MIN_FIRST_CHARS if line.merged_rows else 0 for line in lines],
        )
        found: list[tuple[_Line, list[Candidate], float | None]] = []
        for line, candidates, score in zip(lines, readings, scores, strict=True):
            plates = self._plate_candidates(candidates)
            if not plates or (
                line.rows is not None and not postprocess.two_row_text(plates[0].text, line.merged_rows)
            ):
                continue
            if score is None:
                if is_short_reading(plates[0].text):
                    continue  # without the classifier's firm word a short reading is not a plate
            elif not score >= self.required_plate_score(plates[0].text):  # NaN included
                rejected[line.frame_index] += line.rows is None
                continue
            found.append((line, plates, score))
        if self.read_two_rows:
            found = _settle_two_rows(found, region_hints)
        whole_images: list[tuple[_Line, list[Candidate], float | None]] = []
        kept: list[tuple[PlateResult, _Line]] = []
        # Lines read as plates but dropped as text around another plate: words, for its region.
        accessories: set[int] = set()
        for line, plates, score in found:
            if line.whole_image:
                whole_images.append((line, plates, score))
                continue
            if any(
                other.frame_index == line.frame_index
                and not other.whole_image
                and not is_short_reading(other_plates[0].text)
                and postprocess.accessory_of(line.quad, other.quad)
                for other, other_plates, _ in found
            ):
                # Smaller text on or around a plate (state name, slogan, sticker) is not a plate. A
                # short reading (a big fleet or dealer number) does not make what it surrounds accessory.
                accessories.add(id(line))
                continue
            result = _plate_result(frames[line.frame_index], line, plates, score)
            results[line.frame_index].append(result)
            kept.append((result, line))
        for line, plates, score in whole_images:
            # A plate crop holds one plate: its whole reading or what was read from the lines in it.
            if whole_reading_wins(plates[0].text, results[line.frame_index]):
                result = _plate_result(frames[line.frame_index], line, plates, score)
                results[line.frame_index] = [result]
                kept.append((result, line))
        if self.printed_region:
            plate_lines = {id(line) for line, _, _ in found} - accessories
            # A two-row plate's rows are lines of their own too: not words around it.
            rows = {
                _quad_key(row)
                for line, _, _ in found
                if line.rows is not None and id(line) not in accessories
                for row in line.rows
            }
            words = [
                other
                for other in detected
                if id(other) not in plate_lines and _quad_key(other.quad) not in rows
            ]
            final = {id(result) for frame_results in results for result in frame_results}
            survivors = [(result, line) for result, line in kept if id(result) in final]
            self._name_printed_regions(survivors, words)
            self._read_again_under_printed_regions(survivors, region_hints)
        return rejected

    def _read_again_under_printed_regions(
        self, plates: list[tuple[PlateResult, _Line]], region_hints: list[str | None] | None
    ) -> None:
        """A one-row plate whose printed region is named, in a frame without a camera region, and
        whose text fits none of that region's formats, is read again with the printed region as its
        region hint (`decoding.choose`'s rules under a camera region: a look-alike variant, then an
        edge trim, among the model's own readings); its candidates are replaced when that reading
        is still a plate."""
        grammar = default_grammar()
        again = [
            (result, line)
            for result, line in plates
            if result.printed_region
            and line.rows is None
            and not (region_hints and region_hints[line.frame_index])
            and not grammar.fits_region(result.text, result.printed_region)
        ]
        if not again:
            return
        readings = self.read_cuts(
            [line.cuts for _, line in again], [result.printed_region for result, _ in again]
        )
        for (result, _), candidates in zip(again, readings, strict=True):
            plates_read = self._plate_candidates(candidates)
            if plates_read:
                result.candidates = plates_read

    def _name_printed_regions(self, plates: list[tuple[PlateResult, _Line]], words: list[_Line]) -> None:
        """Sets each plate's `printed_region` from the lines of `words` (detected lines that are not
        plates) that are accessory text of its line (`postprocess.accessory_of`: smaller text on and
        just around it), at most `MAX_WORD_LINES` of them, nearest first, read in one batch by the
        word reader."""
        jobs: list[tuple[int, np.ndarray]] = []
        for n, (_, line) in enumerate(plates):
            centre = line.quad.mean(axis=0)
            around = [
                other
                for other in words
                if other.frame_index == line.frame_index
                and other.rows is None
                and not other.whole_image
                and postprocess.accessory_of(other.quad, line.quad)
            ]
            around.sort(key=lambda other: float(np.linalg.norm(other.quad.mean(axis=0) - centre)))
            jobs.extend((n, other.crop) for other in around[:MAX_WORD_LINES])
        if not jobs:
            return
        texts: list[list[str]] = [[] for _ in plates]
        characters = rec_characters()
        for start in range(0, len(jobs), REC_MAX_BATCH):
            batch = jobs[start : start + REC_MAX_BATCH]
            indices, probs = self.backend.read_words(rec_batch("ppocr", [crop for _, crop in batch]))
            for (n, _), line_indices, line_probs in zip(batch, indices, probs, strict=True):
                texts[n].append(postprocess.ctc_decode(line_indices, line_probs, characters, top_k=1)[0].text)
        for (result, _), read in zip(plates, texts, strict=True):
            result.printed_region = printed_region.region_of_words(read)

    def required_plate_score(self, text: str) -> float:
        """The plate classifier's score a line read as plate text `text` needs to be kept: the
        threshold, and at least `MIN_SHORT_PLATE_SCORE` for a short reading."""
        if is_short_reading(text):
            return max(self.min_plate_score, MIN_SHORT_PLATE_SCORE)
        return self.min_plate_score

    def plate_scores(self, frames: list[np.ndarray], lines: list[_Line]) -> np.ndarray:
        """The plate classifier's probability for each line (cut from its frame with the
        classifier's margins) that it is a registration; for a box split into rows, the larger of
        its rows' and its own (`MERGED_ROWS_WHOLE_SCORE`)."""

        # The rows of a pair are lines of their own too: their cuts are made once. Other cuts are
        # not kept (a batch of 4K frames holds many lines).
        def key(frame_index: int, quad: np.ndarray) -> tuple[int, bytes]:
            return frame_index, _quad_key(quad)

        shared = {
            key(line.frame_index, row)
            for line in lines
            if line.rows is not None and not line.merged_rows
            for row in line.rows
        }
        cut_quads: dict[tuple[int, bytes], np.ndarray] = {}

        def cut_once(frame_index: int, quad: np.ndarray) -> np.ndarray:
            quad_key = key(frame_index, quad)
            if quad_key not in shared:
                return postprocess.classifier_cut(frames[frame_index], quad)
            if quad_key not in cut_quads:
                cut_quads[quad_key] = postprocess.classifier_cut(frames[frame_index], quad)
            return cut_quads[quad_key]

        cuts = [
            postprocess.classifier_input(
                _classifier_cut(frames[line.frame_index], line, functools.partial(cut_once, line.frame_index))
            )
            for line in lines
        ]
        # A box split into rows is also scored whole (see `MERGED_ROWS_WHOLE_SCORE`).
        merged = [n for n, line in enumerate(lines) if line.merged_rows] if MERGED_ROWS_WHOLE_SCORE else []
        for n in merged:
            whole = postprocess.classifier_cut(frames[lines[n].frame_index], lines[n].quad)
            cuts.append(postprocess.classifier_input(whole))
        batches = [
            self.backend.classify(np.stack(cuts[start : start + CLS_MAX_BATCH]))
            for start in range(0, len(cuts), CLS_MAX_BATCH)
        ]
        scores = np.concatenate(batches) if batches else np.zeros(0, np.float32)
        line_scores = scores[: len(lines)]
        for n, whole in zip(merged, scores[len(lines) :], strict=True):
            line_scores[n] = np.fmax(line_scores[n], whole)  # NaN only when both are
        return line_scores

    def _plate_candidates(self, candidates: list[Candidate]) -> list[Candidate]:
        """Keep the readings that look like plates, normalized (no separators, upper case); the
        line is dropped when its best reading is not a plate or is too unsure."""
        best = candidates[0]
        if best.confidence < self.min_text_confidence or postprocess.plate_text(best.text) is None:
            return []
        kept: list[Candidate] = []
        for candidate in candidates:
            text = postprocess.plate_text(candidate.text)
            if text is None or any(k.text == text for k in kept):
                continue
            confidences = _drop_separator_confidences(candidate)
            kept.append(Candidate(text, candidate.confidence, confidences))
        return kept


def _quad_key(quad: np.ndarray) -> bytes:
    """A hashable key for a quad's exact coordinates (the same line found once, held twice)."""
    return np.ascontiguousarray(quad, np.float32).tobytes()


def _boxes_back(plates: list[PlateResult], back: np.ndarray, frame: np.ndarray) -> None:
    """Map the boxes of plates read in a turned copy of `frame` back into `frame`'s pixels through the
    affine `back` (`postprocess.turned_upright`'s second value)."""
    height, width = frame.shape[:2]
    for plate in plates:
        plate.box = postprocess.box_through(plate.box, back, width, height)


def _merged(winner: list[PlateResult], other: list[PlateResult]) -> list[PlateResult]:
    """The plates of two readings of one frame: `winner`'s, where a plate of `other` that overlaps one
    of them (sharing at least `SAME_PLATE_OVERLAP` of the smaller box) is taken for the same plate:
    it replaces that one when it is more confident and their boxes match (IoU at least
    `SAME_PLATE_IOU`: not a piece of it, nor a box over several), and is dropped otherwise; a plate
    of `other` that overlaps none is added at `DESKEW_ADD_FLOOR` or above; a replacing plate keeps the
    replaced one's `printed_region` when it has none. Most confident first."""
    kept = list(winner)
    for plate in other:
        same = [k for k, mine in enumerate(kept) if _overlapping(plate.box, mine.box)]
        if not same:
            if plate.confidence >= DESKEW_ADD_FLOOR:
                kept.append(plate)
        elif (
            len(same) == 1
            and plate.confidence > kept[same[0]].confidence
            and iou(plate.box, kept[same[0]].box) >= SAME_PLATE_IOU
        ):
            # The same plate: what its words said stands where the surer reading found none.
            plate.printed_region = plate.printed_region or kept[same[0]].printed_region
            kept[same[0]] = plate
    return sorted(kept, key=lambda p: p.confidence, reverse=True)


def _overlapping(a: tuple[int, int, int, int], b: tuple[int, int, int, int]) -> bool:
    """Whether two (x, y, w, h) boxes share at least `SAME_PLATE_OVERLAP` of the smaller one."""
    return intersection(a, b) >= SAME_PLATE_OVERLAP * min(a[2] * a[3], b[2] * b[3])


def _median_line_angles(lines: list[_Line], frame_count: int) -> list[float]:
    """Per frame, the median `postprocess.line_angle` of its detected lines at least
    `DESKEW_MIN_ASPECT` times as long as high (plates, signs, badges: on a camera with roll, or a
    turned photo, they all lean alike), NaN when it has none (never leaning, for deskew)."""
    angles: list[list[float]] = [[] for _ in range(frame_count)]
    for line in lines:
        width, height = postprocess.quad_size(line.quad)
        if not line.whole_image and line.rows is None and width >= DESKEW_MIN_ASPECT * height:
            angles[line.frame_index].append(postprocess.line_angle(line.quad))
    return [float(np.median(a)) if a else float("nan") for a in angles]


# A two-row plate's evidence crop: the quad around both rows grown by this share of its height on every
# side (about a quarter of a row), cut upright however tall it is.
TWO_ROW_EVIDENCE_MARGIN = 0.1


def _plate_result(
    frame: np.ndarray, line: _Line, plates: list[Candidate], plate_score: float | None
) -> PlateResult:
    """The plate read from `line` of `frame`, with the vehicle colour around it. Its crop (the read's
    evidence) is the line's first cut, or for a two-row plate the plate as the frame shows it."""
    box = postprocess.quad_to_box(line.quad)
    colour, colour_confidence = postprocess.vehicle_colour(frame, box)
    crop = line.crop
    if line.rows is not None:
        margin = TWO_ROW_EVIDENCE_MARGIN
        crop = postprocess.crop_quad(
            frame, postprocess.pad_quad(line.quad, margin, margin, frame.shape), turn_tall=False
        )
    return PlateResult(box, plates, line.score, crop, colour, colour_confidence, plate_score)


def _settle_two_rows(
    found: list[tuple[_Line, list[Candidate], float | None]], region_hints: list[str | None] | None
) -> list[tuple[_Line, list[Candidate], float | None]]:
    """`found` (line, its plate readings, its plate score) with each two-row plate or its rows left
    out: a row read alone is not the plate when its two-row reading is, and the two-row reading is
    not the plate when it fits no plate format exactly (`decoding.exact_fit`, with the frame's region
    hint) while one of its rows, read alone as a plate, fits one (a short one-row plate with a
    similar line under it: `AB123` over `XYZ` is not `AB123XYZ`)."""
    dropped: set[int] = set()
    for line, plates, _ in found:
        if line.rows is None:
            continue
        hint = None if region_hints is None else region_hints[line.frame_index]
        rows = [
            (row, row_plates)
            for row, row_plates, _ in found
            if row.frame_index == line.frame_index
            and row.rows is None
            and any(np.array_equal(row.quad, quad) for quad in line.rows)
        ]
        if decoding.exact_fit(plates[0].text, hint) is None and any(
            decoding.exact_fit(row_plates[0].text, hint) is not None for _, row_plates in rows
        ):
            dropped.add(id(line))
        else:
            dropped.update(id(row) for row, _ in rows)
    return [entry for entry in found if id(entry[0]) not in dropped]


def _rows_side_by_side(upper_cuts: list[np.ndarray], lower_cuts: list[np.ndarray]) -> list[np.ndarray]:
    """A two-row plate's line cuts: each margin's cut of its upper row with that of its lower row on
    its right (`postprocess.side_by_side`)."""
    return [postprocess.side_by_side(top, bottom) for top, bottom in zip(upper_cuts, lower_cuts, strict=True)]


def _classifier_cut(
    frame: np.ndarray, line: _Line, cut_quad: Callable[[np.ndarray], np.ndarray] | None = None
) -> np.ndarray:
    """What the plate classifier sees of `line`: its classifier cut, or a two-row plate's rows' cuts
    side by side (the classifier learnt one-row plates; since run11 also rendered two-row ones cut
    so); `cut_quad(quad)` cuts one quad of `frame` (default: `postprocess.classifier_cut`)."""
    if cut_quad is None:
        cut_quad = functools.partial(postprocess.classifier_cut, frame)
    if line.rows is None:
        return cut_quad(line.quad)
    upper, lower = line.rows
    return postprocess.side_by_side(cut_quad(upper), cut_quad(lower))


def _closer_boxes_first(
    coarse: list[tuple[np.ndarray, float]], closer: list[tuple[np.ndarray, float]]
) -> list[tuple[np.ndarray, float]]:
    """A frame's boxes from a pass at a coarse scale and from windows at a closer one: each window box,
    and each coarse box that no window box covers by more than `SAME_TEXT_OVERLAP` of the smaller
    of the two (the window saw that text closer; where a window found nothing, or text beside what
    it found, the coarse box stays)."""
    window_boxes = [postprocess.quad_to_box(quad) for quad, _ in closer]
    kept = []
    for quad, score in coarse:
        box = postprocess.quad_to_box(quad)
        if not any(
            intersection(box, other) > SAME_TEXT_OVERLAP * min(box[2] * box[3], other[2] * other[3])
            for other in window_boxes
        ):
            kept.append((quad, score))
    return [*closer, *kept]


def _batches_by_canvas(canvases: list[tuple[int, int]]) -> list[list[int]]:
    """Positions of `canvases` in detector batches of at most `DET_MAX_BATCH` whose members all need
    the same canvas, in order of first appearance: a batch shares one canvas, so a portrait frame
    among landscape ones (or a 4K frame's grown coarse canvas among 1080p ones; a Kafka batch mixes
    cameras) would otherwise make every member pay for the largest."""
    groups: dict[tuple[int, int], list[int]] = {}
    for position, canvas in enumerate(canvases):
        groups.setdefault(canvas, []).append(position)
    return [
        members[start : start + DET_MAX_BATCH]
        for members in groups.values()
        for start in range(0, len(members), DET_MAX_BATCH)
    ]


def _whole_image_line(frame_index: int, frame: np.ndarray, detected: list[_Line]) -> _Line:
    """The whole of a plate-shaped image as one line, cut as it is (the image is the plate crop). Its
    score is the best of the lines detected in it (0.0: the detector saw no text there)."""
    height, width = frame.shape[:2]
    quad = np.array([[0, 0], [width - 1, 0], [width - 1, height - 1], [0, height - 1]], np.float32)
    return _Line(frame_index, quad, max((line.score for line in detected), default=0.0), [frame], True)


def whole_reading_wins(whole_text: str, detected: list[PlateResult]) -> bool:
    """Whether a plate-shaped image's whole reading replaces the plates read from the lines detected
    in it: when none was, or when it is longer and contains the most confident one (the detector cut
    characters off at an edge: a small crop's left characters, a Wyoming county number beside the
    emblem). Otherwise the detected lines read better (a loosely cut image reads worse whole)."""
    if not detected:
        return True
    best = max(detected, key=lambda plate: plate.confidence).text
    return len(whole_text) > len(best) and best in whole_text


def _drop_separator_confidences(candidate: Candidate) -> tuple[float, ...]:
    """Per-character confidences aligned with the normalized text (separators removed)."""
    if len(candidate.char_confidences) != len(candidate.text):
        return ()
    return tuple(
        conf
        for ch, conf in zip(candidate.text, candidate.char_confidences, strict=True)
        if postprocess._SEPARATORS.sub("", ch)
    )
