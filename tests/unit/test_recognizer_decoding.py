"""CTC beam search and the grammar's choice among the model's readings: look-alikes and edge trim
(services/inference/decoding)."""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest

from services.inference import decoding, postprocess
from services.inference.decoding import ScoredCandidate
from services.inference.postprocess import Candidate

CHARS = ["blank", *"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ"]


def _steps(rows: list[list[tuple[str, float]]]) -> tuple[np.ndarray, np.ndarray]:
    """Top-k arrays from per-step (character, probability) lists; "-" is the blank."""
    k = max(len(r) for r in rows)
    indices = np.zeros((len(rows), k), np.int32)
    probs = np.zeros((len(rows), k), np.float32)
    for t, row in enumerate(rows):
        for j, (ch, p) in enumerate(sorted(row, key=lambda cp: -cp[1])):
            indices[t, j] = 0 if ch == "-" else CHARS.index(ch)
            probs[t, j] = p
    return indices, probs


def _scored(text: str, prob: float) -> ScoredCandidate:
    return ScoredCandidate(
        Candidate(text, prob, tuple([prob] * len(text))), math.log(prob), path_log_prob=math.log(prob)
    )


def test_beam_search_collapses_repeats_and_keeps_doubled_letters() -> None:
    indices, probs = _steps([[("A", 0.9)], [("A", 0.9)], [("-", 0.9)], [("A", 0.9)], [("B", 0.9)]])
    best = decoding.beam_search(indices, probs, CHARS)[0]
    assert best.candidate.text == "AAB"
    assert len(best.candidate.char_confidences) == 3


def test_beam_search_ranks_like_greedy_and_sums_alignments() -> None:
    # Greedy takes the blank at every step; "A" has three alignments (A-, -A, AA) that together
    # outweigh it, but the first reading stays the greedy one (faint noise reads as nothing).
    indices, probs = _steps([[("-", 0.4), ("A", 0.35)], [("-", 0.4), ("A", 0.35)]])
    assert postprocess.ctc_decode(indices, probs, CHARS)[0].text == ""
    scored = decoding.beam_search(indices, probs, CHARS)
    assert [s.candidate.text for s in scored] == ["", "A"]
    assert math.isclose(math.exp(scored[1].log_prob), 0.35 * 0.35 + 2 * 0.35 * 0.4, rel_tol=1e-5)
    assert math.isclose(math.exp(scored[1].path_log_prob), 0.35 * 0.4, rel_tol=1e-5)


def test_beam_search_of_all_blank_is_one_empty_reading() -> None:
    indices, probs = _steps([[("-", 1.0)]] * 4)
    assert [s.candidate.text for s in decoding.beam_search(indices, probs, CHARS)] == [""]


def _every_alignment(
    indices: np.ndarray, probs: np.ndarray
) -> dict[str, tuple[float, float, tuple[float, ...]]]:
    """Reference by enumeration: for each reading, the summed probability of its alignments, the
    probability of its most likely one and the per-character confidences along that one (each
    character's highest step probability in its run)."""
    readings: dict[str, tuple[float, float, tuple[float, ...]]] = {}
    for path in itertools.product(range(indices.shape[1]), repeat=len(indices)):
        classes = [int(indices[t, j]) for t, j in enumerate(path)]
        step_probs = [float(probs[t, j]) for t, j in enumerate(path)]
        text, confidences, previous = "", [], 0
        for cls, p in zip(classes, step_probs, strict=True):
            if cls != 0 and cls == previous:
                confidences[-1] = max(confidences[-1], p)
            elif cls != 0:
                text += CHARS[cls]
                confidences.append(p)
            previous = cls
        probability = math.prod(step_probs)
        total, best, best_confidences = readings.get(text, (0.0, 0.0, ()))
        if probability > best:
            best, best_confidences = probability, tuple(confidences)
        readings[text] = (total + probability, best, best_confidences)
    return readings


def test_beam_search_without_pruning_matches_every_alignment_enumerated() -> None:
    rng = np.random.default_rng(7)
    for _ in range(40):
        steps = 6
        indices = np.array(
            [rng.choice([0, 11, 12, 13], size=3, replace=False) for _ in range(steps)], np.int32
        )
        probs = rng.dirichlet(np.ones(3), size=steps).astype(np.float32) * 0.9 + 0.03
        # Steps where only the blank is likely enough to count (the search skips the rest), and a
        # step whose blank is not among the kept classes at all.
        blank_only = rng.random(steps) < 0.4
        for t in np.flatnonzero(blank_only):
            probs[t] = [0.99 if indices[t, j] == 0 else 1e-4 for j in range(3)]
        if rng.random() < 0.3:
            indices[rng.integers(steps)] = [11, 12, 13]
        # Classes under MIN_CLASS_PROB are skipped, so the reference leaves them out too.
        kept = np.where(probs >= decoding.MIN_CLASS_PROB, probs, 0.0).astype(np.float32)
        expected = {text: r for text, r in _every_alignment(indices, kept).items() if r[0] > 0.0}
        scored = decoding.beam_search(indices, probs, CHARS, beam_width=10_000)
        if not expected:
            # No class of some step is likely enough: the one empty reading, as documented.
            assert [(s.candidate.text, s.candidate.confidence) for s in scored] == [("", 0.0)]
            continue
        assert {s.candidate.text for s in scored} == set(expected)
        for item in scored:
            total, best, confidences = expected[item.candidate.text]
            assert math.isclose(math.exp(item.log_prob), total, rel_tol=1e-9)
            assert math.isclose(math.exp(item.path_log_prob), best, rel_tol=1e-9)
            assert item.candidate.char_confidences == pytest.approx(confidences, rel=1e-12)
        ranked = [math.exp(item.path_log_prob) for item in scored]
        assert ranked == sorted(ranked, reverse=True)


def test_a_narrow_beam_keeps_the_most_likely_prefixes() -> None:
    # Two steps of three letters each: nine two-letter readings; a beam of two keeps the two most
    # likely prefixes after the first step (A and B), so no reading starts with C.
    row = [("A", 0.5), ("B", 0.3), ("C", 0.2)]
    indices, probs = _steps([row, row])
    texts = {s.candidate.text for s in decoding.beam_search(indices, probs, CHARS, beam_width=2)}
    assert texts and not any(text.startswith("C") for text in texts)


def test_format_fitting_look_alike_wins_when_the_model_allows_it() -> None:
    # Slovak/French/Italian LL DDD LL: an O read in the digit block loses to its 0 variant.
    chosen = decoding.choose([_scored("RKO03AB", 0.5), _scored("RK003AB", 0.2)])
    assert chosen[0].candidate.text == "RK003AB"
    assert chosen[0].format_known
    assert [c.candidate.text for c in chosen] == ["RK003AB", "RKO03AB"]


def test_unlikely_variant_does_not_win() -> None:
    chosen = decoding.choose([_scored("RKO03AB", 0.5), _scored("RK003AB", 0.01)])
    assert chosen[0].candidate.text == "RKO03AB"


def test_grammar_never_adds_a_character_or_swaps_a_non_look_alike() -> None:
    # "NFFE1" fits a format and "NFFE" does not: a stray edge character may be dropped, none is added.
    assert decoding.choose([_scored("NFFE", 0.5), _scored("NFFE1", 0.4)])[0].candidate.text == "NFFE"
    # V vs 0 is no look-alike pair: the model's reading stands.
    chosen = decoding.choose([_scored("V752ARM", 0.5), _scored("0752ARM", 0.4)])
    assert chosen[0].candidate.text == "V752ARM"


def test_an_edge_character_is_dropped_when_the_rest_fits_a_format() -> None:
    # A Slovak plate's coat-of-arms band read as a leading W: RK 346 AL (LL DDD LL) is the model's
    # own reading without it, likely enough (0.06 / 0.5 >= EDGE_TRIM_RATIO).
    chosen = decoding.choose([_scored("WRK346AL", 0.5), _scored("MRK346AL", 0.3), _scored("RK346AL", 0.06)])
    assert (chosen[0].candidate.text, chosen[0].format_known) == ("RK346AL", True)
    assert [c.candidate.text for c in chosen[1:]] == ["WRK346AL", "MRK346AL"]
    # The same at the other edge.
    assert decoding.choose([_scored("RK346ALI", 0.5), _scored("RK346AL", 0.1)])[0].candidate.text == "RK346AL"


def _top(*texts_and_probs: tuple[str, float], format_ratio: float = decoding.FORMAT_RATIO) -> str:
    scored = [_scored(text, prob) for text, prob in texts_and_probs]
    return decoding.choose(scored, format_ratio=format_ratio)[0].candidate.text


def test_edge_trim_needs_a_likely_enough_reading_at_an_edge() -> None:
    # EDGE_TRIM_RATIO is 0.1: 0.052 / 0.5 is enough, 0.048 / 0.5 is not, whatever `format_ratio` is.
    assert _top(("WRK346AL", 0.5), ("RK346AL", 0.052)) == "RK346AL"
    assert _top(("WRK346AL", 0.5), ("RK346AL", 0.048)) == "WRK346AL"
    assert _top(("WRK346AL", 0.5), ("RK346AL", 0.1), format_ratio=0.5) == "RK346AL"
    # A character inside the plate is never dropped.
    assert (
        decoding.choose([_scored("RKX346AL", 0.5), _scored("RK346AL", 0.4)])[0].candidate.text == "RKX346AL"
    )
    # Nor one of a reading that already fits a format (FR/IT; the trimmed K 346 AB is Dutch sidecode 10).
    assert decoding.choose([_scored("RK346AB", 0.5), _scored("K346AB", 0.4)])[0].candidate.text == "RK346AB"


def test_a_reading_too_long_for_a_plate_may_lose_its_stray_edge_character() -> None:
    # Nine characters are not plate-like; without the band's X it is the Warsaw plate WAB12345.
    chosen = decoding.choose([_scored("XWAB12345", 0.5), _scored("WAB12345", 0.2)])
    assert (chosen[0].candidate.text, chosen[0].format_known) == ("WAB12345", True)


def test_a_too_long_reading_with_a_space_may_lose_its_stray_edge_character() -> None:
    # PP-OCR reads separators: the head keeps its space (not plate-like, 9 characters), the
    # candidates are compared without it.
    chosen = decoding.choose([_scored("XWAB 12345", 0.5), _scored("WAB12345", 0.2)])
    assert (chosen[0].candidate.text, chosen[0].format_known) == ("WAB12345", True)


def test_a_look_alike_variant_comes_before_an_edge_trim() -> None:
    # Both fit Germany's format; the same-length look-alike reading wins though less likely.
    chosen = decoding.choose([_scored("MAB123Z", 0.5), _scored("MAB123", 0.3), _scored("MAB1232", 0.2)])
    assert chosen[0].candidate.text == "MAB1232"


def test_best_reading_is_never_rewritten_in_place() -> None:
    # 800002 fits no format exactly; the grammar could force "BO0002" (Germany) but must not.
    chosen = decoding.choose([_scored("800002", 0.9)])
    assert [c.candidate.text for c in chosen] == ["800002"]
    assert not chosen[0].format_known


def test_non_plate_text_passes_through() -> None:
    chosen = decoding.choose([_scored("", 0.9), _scored("ABC1234", 0.01)])
    assert chosen[0].candidate.text == ""


def test_a_state_name_is_not_swapped_for_a_plate_like_look_alike() -> None:
    # "TEXAS" is no plate (NOT_PLATES); "TEXA5" fits a German format, and is likely enough to win
    # over a plate-like head that fits none. A sign's reading stays a sign, and the line is dropped.
    assert postprocess.plate_text("TEXAS") is None
    assert decoding.exact_fit("TEXA5") is not None
    chosen = decoding.choose([_scored("TEXAS", 0.6), _scored("TEXA5", 0.3)])
    assert [c.candidate.text for c in chosen] == ["TEXAS", "TEXA5"]


def test_under_a_closed_region_a_foreign_plate_read_exactly_keeps_its_characters() -> None:
    # "EHBB432" fits a German format as read; under a Brazilian hint the grammar could fix it into
    # Brazil's format ("EHB8432"), but the reading still fits a format exactly, so the reading one
    # character shorter at an edge does not win (nor would it without the hint).
    assert decoding.exact_fit("EHBB432") == "DE"
    assert decoding.exact_fit("EHBB432", "br") == "DE"
    assert decoding.exact_fit("EHB8432", "br") == "BR"
    for hint in (None, "br"):
        chosen = decoding.choose([_scored("EHBB432", 0.6), _scored("EHBB43", 0.3)], region_hint=hint)
        assert chosen[0].candidate.text == "EHBB432"
    # The hinted region's own reading still wins when the model offers it.
    chosen = decoding.choose([_scored("EHBB432", 0.6), _scored("EHB8432", 0.3)], region_hint="br")
    assert chosen[0].candidate.text == "EHB8432"


def test_look_alike_variant() -> None:
    assert decoding.look_alike_variant("3550CT", "355OCT")
    assert decoding.look_alike_variant("DCG66Z4", "DCG6624")
    assert not decoding.look_alike_variant("ABC", "ABC")
    assert not decoding.look_alike_variant("V752", "0752")
    assert not decoding.look_alike_variant("ABC", "ABCD")


def test_read_line_returns_top_k_candidates() -> None:
    rows = [[("1", 0.9)], [("-", 0.9)], [("A", 0.6), ("4", 0.3)], [("B", 0.9)], [("C", 0.9)]]
    rows += [[("1", 0.9)], [("2", 0.9)], [("3", 0.9)]]
    indices, probs = _steps(rows)
    candidates = decoding.read_line(indices, probs, CHARS, top_k=2)
    assert [c.text for c in candidates] == ["1ABC123", "14BC123"]
    assert all(len(c.char_confidences) == 7 for c in candidates)


def test_reading_variants_cut_and_pad_each_side() -> None:
    crop = np.zeros((50, 200, 3), np.uint8)
    shapes = [
        v.shape
        for v in postprocess.reading_variants(crop, ((0.0, 0.0), (0.04, 0.0), (-0.04, 0.0), (0.0, 0.06)))
    ]
    assert shapes == [(50, 200, 3), (50, 184, 3), (50, 216, 3), (44, 200, 3)]
    # A cut that would leave almost nothing keeps the crop as given.
    assert postprocess.reading_variants(np.zeros((5, 5), np.uint8), ((0.3, 0.3),))[0].shape == (5, 5)


def test_variants_vote_on_the_reading() -> None:
    original = [_scored("ABC123", 0.5), _scored("ABC1234", 0.4)]
    narrower = [_scored("ABC1234", 0.6)]
    trimmed = [_scored("ABC1234", 0.5), _scored("ABC123", 0.1)]
    combined = decoding.combine_variants([original, narrower, trimmed])
    assert [c.candidate.text for c in combined] == ["ABC1234", "ABC123"]
    assert math.isclose(math.exp(combined[0].path_log_prob), (0.4 + 0.6 + 0.5) / 3, rel_tol=1e-6)
    assert decoding.combine_variants([original]) == original
