"""The validation folds of the dev sets' train half (`datasets.fold_of`): fixed by the file name,
spread evenly, and independent of the train / held-out split."""

from __future__ import annotations

from collections import Counter

import pytest

from services.inference.training.datasets import fold_of, split_of

NAMES = [f"plate{i:04d}.png" for i in range(4000)]


def test_folds_are_fixed_by_the_name_and_in_range() -> None:
    assert [fold_of(n, 4) for n in NAMES[:50]] == [fold_of(n, 4) for n in NAMES[:50]]
    assert {fold_of(n, 4) for n in NAMES} == {0, 1, 2, 3}


def test_folds_cut_the_train_half_evenly() -> None:
    train = [n for n in NAMES if split_of(n) == "train"]
    counts = Counter(fold_of(n, 4) for n in train)
    # 256 is a multiple of 4, so each fold is a quarter up to sampling noise (~2000 names).
    assert all(abs(c - len(train) / 4) < 0.1 * len(train) / 4 for c in counts.values())
    # Independent of the split: the held-out half is cut just as evenly (not all in one fold).
    heldout = Counter(fold_of(n, 4) for n in NAMES if split_of(n) == "heldout")
    assert len(heldout) == 4 and min(heldout.values()) > 0.2 * sum(heldout.values())


def test_fewer_than_two_folds_is_an_error() -> None:
    with pytest.raises(ValueError):
        fold_of("a.png", 1)
