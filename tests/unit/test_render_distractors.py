"""The training renderer's edge distractors (`render.render_sample(..., edge_distractor_share)`):
off by default without touching the random stream, drawn only past the line's end when on."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from services.inference.training import render

# Hershey faces: no font files needed.
FONTS = (Path("hershey-simplex"), Path("hershey-duplex"))


def test_share_zero_keeps_the_random_stream() -> None:
    for seed in range(8):
        before, label_before = render.render_sample(np.random.default_rng(seed), FONTS)
        after, label_after = render.render_sample(np.random.default_rng(seed), FONTS, 0.0)
        assert label_before == label_after
        assert np.array_equal(before, after)


def test_distractor_is_drawn_past_one_end_of_the_line_only() -> None:
    text_box = (100.0, 40.0, 200.0, 40.0)  # x, y, w, h
    for seed, left in ((1, True), (2, False), (3, True), (4, False)):
        surround = np.full((120, 400, 3), 230, np.uint8)
        reach = render._edge_distractor(surround, np.random.default_rng(seed), text_box, left)
        changed = np.argwhere((surround != 230).any(axis=2))
        assert len(changed) > 0 and reach > 0
        columns = changed[:, 1]
        if left:
            assert columns.max() < 100 and columns.min() >= 100 - reach - 1
        else:
            assert columns.min() >= 300 and columns.max() <= 300 + reach + 1


def test_labels_are_unchanged_by_distractors() -> None:
    # The same seed with distractors on: the registration (label) never changes, only the crop.
    differing = 0
    for seed in range(40):
        plain, label = render.render_sample(np.random.default_rng(seed), FONTS)
        with_symbol, label_on = render.render_sample(np.random.default_rng(seed), FONTS, 1.0)
        assert label_on == label
        differing += plain.shape != with_symbol.shape or not np.array_equal(plain, with_symbol)
    assert differing > 5
