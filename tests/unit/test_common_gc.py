"""collect_garbage_less_often: the one switch the normalizer and the writer tune the collector with."""

from __future__ import annotations

import gc
from collections.abc import Iterator

import pytest

from services.common.service import collect_garbage_less_often


@pytest.fixture
def restore_gc() -> Iterator[None]:
    thresholds = gc.get_threshold()
    yield
    gc.unfreeze()
    gc.set_threshold(*thresholds)


@pytest.mark.usefixtures("restore_gc")
def test_raises_the_young_threshold_and_freezes_what_exists() -> None:
    _, gen1, gen2 = gc.get_threshold()
    gc.unfreeze()
    collect_garbage_less_often(50_000)
    assert gc.get_threshold() == (50_000, gen1, gen2)
    assert gc.get_freeze_count() > 0


@pytest.mark.usefixtures("restore_gc")
def test_zero_leaves_the_interpreter_alone() -> None:
    gc.unfreeze()
    before = gc.get_threshold()
    collect_garbage_less_often(0)
    assert gc.get_threshold() == before
    assert gc.get_freeze_count() == 0
