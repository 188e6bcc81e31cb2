"""`collect_lines --for reader`: the read path's own cuts of real registrations, labelled with the
truth of the plate they lie on, for the plate CRNN (`train --real-lines`); `--for rows`: every cut
of the two-row lines of rendered frames, labelled so too."""

from __future__ import annotations

import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import pytest

from services.inference import postprocess
from services.inference.postprocess import Candidate
from services.inference.training import collect_lines, datasets
from services.inference.training.collect_lines import collect, reader_lines


@dataclass
class _FakeLine:
    quad: np.ndarray
    cuts: list[np.ndarray]
    rows: tuple[np.ndarray, np.ndarray] | None = None
    merged_rows: bool = False

    @property
    def crop(self) -> np.ndarray:
        return self.cuts[0]


def _quad(x: int, y: int, w: int, h: int) -> np.ndarray:
    return np.array([[x, y], [x + w, y], [x + w, y + h], [x, y + h]], np.float32)


class _FakeRecognizer:
    """Finds the given lines in every frame and reads each as given (the detector and reader are
    not what is tested here)."""

    def __init__(
        self,
        lines: list[tuple[tuple[int, int, int, int], str]],
        two_row: frozenset[int] = frozenset(),
        merged: frozenset[int] = frozenset(),
    ) -> None:
        """`two_row`: the indices of the lines that are two-row lines (three cuts each, the rows
        set: the line's upper and lower halves), of which `merged` are boxes split into rows; the
        others are one-row lines with one cut."""
        self._lines = lines
        self._two_row = two_row
        self._merged = merged

    def detect_lines(self, frames: list[np.ndarray]) -> list[_FakeLine]:
        frame = frames[0]
        lines = []
        for index, (box, _) in enumerate(self._lines):
            cut = frame[box[1] : box[1] + box[3], box[0] : box[0] + box[2]].copy()
            if index in self._two_row:
                x, y, w, h = box
                rows = (_quad(x, y, w, h // 2), _quad(x, y + h // 2, w, h - h // 2))
                cuts = [cut, cut[:, 1:], cut[:, 2:]]
                lines.append(_FakeLine(_quad(*box), cuts, rows=rows, merged_rows=index in self._merged))
            else:
                lines.append(_FakeLine(_quad(*box), [cut]))
        return lines

    def read_cuts(self, cuts: list[list[np.ndarray]]) -> list[list[Candidate]]:
        return [[Candidate(text, 0.9)] for _, text in self._lines]


def _photo(directory: Path, name: str) -> None:
    frame = np.full((200, 400, 3), 128, np.uint8)
    frame[40:70, 20:140] = 255  # the first plate's pixels, to tell its cut by
    cv2.imwrite(str(directory / name), frame)
    (directory / f"{Path(name).stem}.txt").write_text(
        f"{name}\t20\t40\t120\t30\tAB123CD\n{name}\t250\t140\t120\t30\tXY987ZZ\n"
    )


def test_registration_cuts_are_labelled_with_the_plate_they_lie_on(tmp_path: Path) -> None:
    train_name = next(n for n in ("a.jpg", "b.jpg", "c.jpg") if datasets.split_of(n) == "train")
    _photo(tmp_path, train_name)
    recognizer: Any = _FakeRecognizer(
        [
            ((22, 42, 116, 26), "AB128CD"),  # on the first plate, one edit off: kept, with the label
            ((252, 142, 116, 26), "XY"),  # on the second plate, far from its label: dropped
            ((150, 100, 60, 20), "AB123CD"),  # on no plate, whatever it reads: dropped
            ((255, 141, 110, 28), "XY987Z2"),  # on the second plate, one edit off: kept
        ]
    )
    data = reader_lines([tmp_path], "train", recognizer)
    assert data["for"] == "reader"  # what `train --real-lines` checks
    assert data["labels"] == ["AB123CD", "XY987ZZ"]
    assert data["readings"] == ["AB128CD", "XY987Z2"]
    assert data["sources"] == [train_name, train_name]
    # The cut is the reader's own (the line's first cut), not the classifier's wider one.
    assert data["cuts"][0].shape[:2] == (26, 116) and data["cuts"][0].min() >= 245  # JPEG


def test_only_the_asked_half_is_collected(tmp_path: Path) -> None:
    heldout_name = next(n for n in ("d.jpg", "f.jpg", "g.jpg") if datasets.split_of(n) == "heldout")
    _photo(tmp_path, heldout_name)
    recognizer: Any = _FakeRecognizer([((22, 42, 116, 26), "AB123CD")])
    assert reader_lines([tmp_path], "train", recognizer)["labels"] == []
    assert reader_lines([tmp_path], "heldout", recognizer)["labels"] == ["AB123CD"]


def test_rows_takes_every_cut_of_the_two_row_lines_of_every_rendered_frame(tmp_path: Path) -> None:
    train_name = next(n for n in ("a.jpg", "b.jpg", "c.jpg") if datasets.split_of(n) == "train")
    heldout_name = next(n for n in ("d.jpg", "f.jpg", "g.jpg") if datasets.split_of(n) == "heldout")
    for name in (train_name, heldout_name):
        _photo(tmp_path, name)
    recognizer: Any = _FakeRecognizer(
        [
            ((22, 42, 116, 26), "AB123CD"),  # a one-row line on the first plate: not taken
            ((22, 42, 116, 26), "AB12BCD"),  # a two-row line on it, one edit off: its 3 cuts kept
            ((252, 142, 116, 26), "XY9"),  # a two-row line on the second plate, far off: dropped
            ((150, 100, 60, 20), "AB123CD"),  # a two-row line on no plate: dropped
        ],
        two_row=frozenset({1, 2, 3}),
    )
    data = reader_lines([tmp_path], "rendered", recognizer, two_rows=True)
    assert data["for"] == "rows"  # what `train --real-lines` checks, with the split "rendered"
    # Both halves: rendered frames are not the dev sets, so none is held out.
    assert sorted(data["sources"]) == sorted([train_name] * 3 + [heldout_name] * 3)
    assert data["labels"] == ["AB123CD"] * 6
    assert [cut.shape[1] for cut in data["cuts"][:3]] == [116, 115, 114]


def test_the_classifier_takes_two_row_plates_as_the_engine_scores_them(tmp_path: Path) -> None:
    name = next(n for n in ("a.jpg", "b.jpg", "c.jpg") if datasets.split_of(n) == "train")
    _photo(tmp_path, name)
    recognizer: Any = _FakeRecognizer(
        [
            ((22, 42, 116, 26), "AB12BCD"),  # two rows on the first plate, one edit off: 1
            ((252, 142, 116, 26), "XY987ZZ"),  # a split box on the second plate: 1, twice
            ((255, 141, 110, 28), "XY9"),  # two rows on the second plate, far off: left out
            ((150, 100, 60, 20), "KLM1234"),  # a one-row line on no plate, registration-like: left out
            ((150, 10, 80, 20), "EXIT"),  # a one-row line on no plate: 0
        ],
        two_row=frozenset({0, 1, 2}),
        merged=frozenset({1}),
    )
    data = collect([tmp_path], "rendered", recognizer)
    assert data["labels"] == [1, 1, 1, 0]
    assert data["readings"] == ["AB12BCD", "XY987ZZ", "XY987ZZ", "EXIT"]
    frame = cv2.imread(str(tmp_path / name))
    upper, lower = _quad(22, 42, 116, 13), _quad(22, 55, 116, 13)
    rows_cut = postprocess.side_by_side(
        postprocess.classifier_cut(frame, upper), postprocess.classifier_cut(frame, lower)
    )
    assert np.array_equal(data["cuts"][0], rows_cut)
    # The split box: its rows side by side, then the box whole (`engine.MERGED_ROWS_WHOLE_SCORE`).
    split_rows_cut = postprocess.side_by_side(
        postprocess.classifier_cut(frame, _quad(252, 142, 116, 13)),
        postprocess.classifier_cut(frame, _quad(252, 155, 116, 13)),
    )
    assert np.array_equal(data["cuts"][1], split_rows_cut)
    assert np.array_equal(data["cuts"][2], postprocess.classifier_cut(frame, _quad(252, 142, 116, 26)))


@pytest.mark.parametrize(
    "arguments",
    [
        ["--for", "rows", "--split", "train"],  # two-row cuts come from rendered frames only
        ["--for", "reader", "--split", "rendered"],  # the reader's real lines come from the dev sets
        ["--for", "rows", "--split", "rendered"],  # a dev-named photo among "rendered" frames
        ["--for", "classifier", "--split", "rendered"],
    ],
)
def test_main_refuses_rendered_frames_mixed_up_with_dev_photos(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], arguments: list[str]
) -> None:
    _photo(tmp_path, "a.jpg")  # named as a dev photo (and its variants) is, not as rendered frames
    out = tmp_path / "lines.pkl"
    argv = ["collect_lines", *arguments, "--out", str(out), "--datasets", str(tmp_path)]
    monkeypatch.setattr(sys, "argv", argv)
    with pytest.raises(SystemExit) as exited:
        collect_lines.main()
    assert exited.value.code == 2
    assert "--split" in capsys.readouterr().err
    assert not out.exists()
