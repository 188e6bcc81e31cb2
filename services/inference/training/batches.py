"""Training batches of the plate CRNN: rendered plates mixed with the dev sets' training-half crops,
as a function of (seed, step), rendered in the training process or in a pool of worker processes.
No JAX here, so the module can be tested in the product's environment (the workers still import JAX
when the trainer runs as `python -m ...train`: spawn re-imports the main module in each worker)."""

from __future__ import annotations

import multiprocessing
import signal
from concurrent.futures import Future, ProcessPoolExecutor
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from services.inference import model_io, postprocess
from services.inference.training import render

# Labelled real samples: (BGR crop or cut, registration text).
Labelled = list[tuple[np.ndarray, str]]


def to_input(crops: list[np.ndarray]) -> np.ndarray:
    grey = np.stack([postprocess.crnn_input(c) for c in crops])
    return model_io.crnn_input(grey).transpose(0, 2, 3, 1)


def jittered_borders(
    crop: np.ndarray, rng: np.random.Generator, horizontal: tuple[float, float], vertical: tuple[float, float]
) -> np.ndarray:
    """`crop` with each border moved in (positive) or out (negative, edge pixels replicated) by a
    share of its width or height drawn from `horizontal` / `vertical` (left, right, top, bottom)."""
    h, w = crop.shape[:2]
    x0 = int(rng.uniform(*horizontal) * w)
    x1 = w - int(rng.uniform(*horizontal) * w)
    y0 = int(rng.uniform(*vertical) * h)
    y1 = h - int(rng.uniform(*vertical) * h)
    padded = np.pad(crop, ((h, h), (w, w), (0, 0)), mode="edge")
    return padded[h + y0 : h + y1, w + x0 : w + x1]


def real_sample(crop: np.ndarray, label: str, rng: np.random.Generator) -> tuple[np.ndarray, str]:
    """A dev-set training crop with jittered borders and the renderer's photometric damage."""
    jittered = jittered_borders(crop, rng, (-0.05, 0.08), (-0.05, 0.1))
    if rng.random() < 0.7:
        jittered = render.augment(jittered[..., ::-1], rng)[..., ::-1]
    return np.ascontiguousarray(jittered), label


def line_sample(cut: np.ndarray, label: str, rng: np.random.Generator) -> tuple[np.ndarray, str]:
    """A reader's cut of a real line (`collect_lines --for reader`) with borders jittered less than a
    whole crop's (the cut already ends close to the first and last characters) and, half the time,
    the renderer's photometric damage (the cut is already a camera's)."""
    jittered = jittered_borders(cut, rng, (-0.03, 0.03), (-0.05, 0.08))
    if rng.random() < 0.5:
        jittered = render.augment(jittered[..., ::-1], rng)[..., ::-1]
    return np.ascontiguousarray(jittered), label


def render_batch(
    seed: int,
    step: int,
    batch: int,
    real_share: float,
    edge_distractors: float,
    fonts: tuple[Path, ...],
    real_train: Labelled,
    line_share: float = 0.0,
    line_train: Labelled | None = None,
    side_art: float = 0.0,
) -> tuple[np.ndarray, list[str]]:
    """The training batch of `step`: model inputs [batch, 32, 128, 1] and labels. A function of
    (seed, step) alone, so a resumed run, or one rendering in worker processes, sees the same stream.
    A sample is a real line cut (`line_train`) with probability `line_share`, else a dev crop
    (`real_train`) with probability `real_share`, else rendered; without line cuts (or at a share of
    0) the stream is the same as before they existed. `side_art`: render.render_sample's
    side_art_share (above 0 it changes the stream)."""
    rng = np.random.default_rng([seed, step])
    crops, labels = [], []
    for _ in range(batch):
        if line_train and line_share > 0 and rng.random() < line_share:
            crop, label = line_sample(*line_train[int(rng.integers(len(line_train)))], rng)
        elif real_train and rng.random() < real_share:
            crop, label = real_sample(*real_train[int(rng.integers(len(real_train)))], rng)
        else:
            crop, label = render.render_sample(rng, fonts, edge_distractors, side_art)
        crops.append(crop)
        labels.append(label)
    return to_input(crops), labels


# Each render worker's fonts and real crops, handed over once when the worker starts.
_WORKER_DATA: dict[str, Any] = {}


def _start_worker(
    fonts: tuple[Path, ...],
    real_train: Labelled,
    line_train: Labelled,
) -> None:
    cv2.setNumThreads(1)  # one process per core already
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C stops the trainer, which stops the pool
    _WORKER_DATA.update(fonts=fonts, real_train=real_train, line_train=line_train)


def _worker_batch(
    seed: int,
    step: int,
    batch: int,
    real_share: float,
    edge_distractors: float,
    line_share: float,
    side_art: float,
) -> tuple[np.ndarray, list[str]]:
    return render_batch(
        seed,
        step,
        batch,
        real_share=real_share,
        edge_distractors=edge_distractors,
        fonts=_WORKER_DATA["fonts"],
        real_train=_WORKER_DATA["real_train"],
        line_share=line_share,
        line_train=_WORKER_DATA["line_train"],
        side_art=side_art,
    )


class BatchStream:
    """Training batches by step, rendered in this process (`workers=0`) or by a pool of worker
    processes a few steps ahead (bounded, so a slow trainer does not pile up rendered batches).
    The batches are the same either way; steps must be asked for in order. A worker that dies
    fails the run (BrokenProcessPool) rather than leaving it waiting for a batch."""

    def __init__(
        self,
        *,
        seed: int,
        batch: int,
        real_share: float,
        edge_distractors: float,
        steps: int,
        fonts: tuple[Path, ...],
        real_train: Labelled,
        workers: int = 0,
        line_share: float = 0.0,
        line_train: Labelled | None = None,
        side_art: float = 0.0,
    ) -> None:
        self._render = (seed, batch, real_share, edge_distractors, line_share, side_art)
        self._steps, self._workers = steps, workers
        self._fonts, self._real_train, self._line_train = fonts, real_train, line_train or []
        self._pool: ProcessPoolExecutor | None = None
        self._pending: dict[int, Future[tuple[np.ndarray, list[str]]]] = {}
        self._next = 0
        if workers > 0:
            # spawn, not fork: the trainer holds an initialized JAX runtime.
            self._pool = ProcessPoolExecutor(
                workers,
                mp_context=multiprocessing.get_context("spawn"),
                initializer=_start_worker,
                initargs=(fonts, real_train, self._line_train),
            )

    def batch(self, step: int) -> tuple[np.ndarray, list[str]]:
        """The model inputs [batch, 32, 128, 1] and labels of `step`."""
        seed, batch, real_share, edge_distractors, line_share, side_art = self._render
        if self._pool is None:
            return render_batch(
                seed,
                step,
                batch,
                real_share=real_share,
                edge_distractors=edge_distractors,
                fonts=self._fonts,
                real_train=self._real_train,
                line_share=line_share,
                line_train=self._line_train,
                side_art=side_art,
            )
        if step >= self._steps:
            raise ValueError(f"step {step} is past the stream's {self._steps} steps")
        if step < self._next and step not in self._pending:
            raise ValueError(f"step {step} asked for out of order (next is {self._next})")
        self._next = max(self._next, step)
        while self._next < min(step + 4 * self._workers, self._steps):
            self._pending[self._next] = self._pool.submit(
                _worker_batch, seed, self._next, batch, real_share, edge_distractors, line_share, side_art
            )
            self._next += 1
        return self._pending.pop(step).result()

    def close(self) -> None:
        """Stop the workers (batches rendered ahead are dropped)."""
        if self._pool is not None:
            self._pool.shutdown(wait=False, cancel_futures=True)
            self._pool = None
