"""Reading a plate from the recognizer's top-k-per-step CTC output: candidate generation by a CTC
prefix beam search, then a choice among the candidates guided by the region grammar.

The grammar is the normalizer's (`services.normalizer.grammar`, formats as data in
`services/normalizer/grammars.yaml`): one set of formats for the whole product, so what the
recognizer prefers here is what the normalizer would accept downstream.

Contract of `read_plate`:
- candidates come from a prefix beam search over the K classes kept per step (the probability mass
  outside the top K is ignored), ranked by their most likely single alignment (so the first one is
  the greedy reading); each candidate's `confidence` is the mean of its per-character confidences
  (each character's best step probability on that alignment), as before;
- the grammar is consulted for exact fits only: when the best reading is plate-like
  (`postprocess.plate_text`: not a state name or sign word) and fits no known format, the first
  candidate that fits one exactly and differs from it only in look-alike characters (O/0, I/1, B/8,
  S/5, Z/2, D/0, G/6) wins, provided its alignment is at least `format_ratio` times as likely;
- when no such look-alike variant wins, the first candidate that is the best reading without its
  first or its last character and fits a format exactly wins, provided its alignment is at least
  `EDGE_TRIM_RATIO` times as likely (a national band, coat of arms or bolt at a plate's edge read as
  one more character; the best reading may then be too long to be plate-like, 9 characters);
  otherwise the best reading is kept as read (an unknown format is still returned, marked
  `format_known=False`);
- with the camera's region hint ("us-ia", "de"), the formats of that region decide first: when the
  best reading fits none of them (even if it fits another region's), the first plate-like look-alike
  variant, then edge trim, that fits one wins (same ratios); when none does, the rules above apply.
  The grammar only chooses among the model's own readings: it never rewrites a character the model
  did not offer, never adds one, and drops at most one, at an edge.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from services.inference.postprocess import Candidate, compact_text, plate_text
from services.normalizer.grammar import DIGIT_TO_LETTER, LETTER_TO_DIGIT, PlateGrammar, default_grammar

BEAM_WIDTH = 10
MIN_CLASS_PROB = 1e-3
# A known-format candidate may win over a better-scoring unknown one only when it is at least this
# likely relative to it: the grammar is a prior, not a veto (vanity plates exist).
FORMAT_RATIO = 0.1
# The same for a reading one edge character shorter. Chosen on training-half and synthetic sets
# (0.01, 0.03 and 0.1 read alike there: Slovak plates turned a few degrees read "WRK576AH" for
# "RK576AH", the W their coat-of-arms band); the largest, the most cautious, was kept.
EDGE_TRIM_RATIO = 0.1
# Character pairs a format may decide between (both directions), as the normalizer's grammar fixes them.
LOOK_ALIKES = frozenset(
    {*DIGIT_TO_LETTER.items(), *LETTER_TO_DIGIT.items()}
    | {(b, a) for a, b in (*DIGIT_TO_LETTER.items(), *LETTER_TO_DIGIT.items())}
)


@dataclass(frozen=True)
class ScoredCandidate:
    """One reading with its CTC log-probability and, after the grammar, its format status."""

    candidate: Candidate
    log_prob: float
    region: str = ""
    format_known: bool = False
    # Log-probability of the single most likely alignment (what greedy decoding maximizes).
    path_log_prob: float = 0.0


# A prefix's beam: [p_blank, p_char, best_blank, conf_blank, best_char, conf_char], indexed by the
# names below. p_blank and p_char are the summed probabilities of the prefix's alignments that end in
# a blank and in its last character; best_blank and best_char are the probabilities of the most
# likely single alignment of each kind, with the per-character confidences along it. The two kinds
# are kept apart because they continue differently: the last character once more extends only an
# alignment that ends in it ("A" + "A" stays "A"), and doubles the character after a blank ("A-" +
# "A" reads "AA"). Plain lists, since the search runs for every line read and object attribute
# access dominated its cost.
_BeamState = list[Any]
_P_BLANK, _P_CHAR, _BEST_BLANK, _CONF_BLANK, _BEST_CHAR, _CONF_CHAR = range(6)


def beam_search(
    indices: np.ndarray, probs: np.ndarray, characters: Sequence[str], beam_width: int = BEAM_WIDTH
) -> list[ScoredCandidate]:
    """CTC prefix beam search over the per-step top-k classes ([T, K], class 0 the blank). Returns
    the surviving prefixes, the one with the most likely single alignment first, each with its total
    and best-alignment log-probabilities and the per-character confidences along that alignment."""
    beams: dict[tuple[int, ...], _BeamState] = {(): [1.0, 0.0, 1.0, (), 0.0, ()]}
    class_count = len(characters)
    for step_all_classes, step_all_probs in zip(indices.tolist(), probs.tolist(), strict=True):
        # Classes this unlikely cannot lift a prefix into the beam; skipping them keeps it fast.
        blank_prob = 0.0
        step_chars: list[tuple[int, float]] = []
        for cls, p in zip(step_all_classes, step_all_probs, strict=True):
            if p < MIN_CLASS_PROB:
                continue
            if cls == 0:
                if blank_prob == 0.0:
                    blank_prob = p
            elif cls < class_count and p > 0.0:
                step_chars.append((cls, p))
        if not step_chars:
            # Only the blank (most steps): every prefix stays, scaled alike, so the ranking holds.
            following: dict[tuple[int, ...], _BeamState] = {}
            if blank_prob > 0.0:
                for prefix, beam in beams.items():
                    best, confidences = _best_alignment(beam)
                    following[prefix] = [
                        (beam[_P_BLANK] + beam[_P_CHAR]) * blank_prob,
                        0.0,
                        best * blank_prob,
                        confidences,
                        0.0,
                        (),
                    ]
            beams = following
            continue
        following = {}
        for prefix, beam in beams.items():
            p_blank, p_char, best_blank, conf_blank, best_char, conf_char = beam
            total = p_blank + p_char
            best, confidences = _best_alignment(beam)
            # Blank: the prefix stays.
            if blank_prob > 0.0:
                _extend(following, prefix, total * blank_prob, 0.0, best * blank_prob, confidences, True)
            last = prefix[-1] if prefix else None
            for cls, p in step_chars:
                if cls == last:
                    # The same character again without a blank between: the prefix stays...
                    _extend(
                        following,
                        prefix,
                        0.0,
                        p_char * p,
                        best_char * p,
                        (*conf_char[:-1], max(conf_char[-1], p)) if conf_char else (),
                        False,
                    )
                    # ...unless a blank separated them: a doubled character.
                    if p_blank > 0.0:
                        _extend(
                            following,
                            (*prefix, cls),
                            0.0,
                            p_blank * p,
                            best_blank * p,
                            (*conf_blank, p),
                            False,
                        )
                    continue
                _extend(following, (*prefix, cls), 0.0, total * p, best * p, (*confidences, p), False)
        ranked = sorted(
            following.items(), key=lambda item: item[1][_P_BLANK] + item[1][_P_CHAR], reverse=True
        )
        beams = dict(ranked[:beam_width])
    results: list[ScoredCandidate] = []
    # Ranked by the best single alignment, the criterion of greedy decoding: the top reading is the
    # greedy one whenever that survives the beam (a blank crop with faint characters spread over many
    # steps reads as nothing, as before), and the beam adds the alternatives.
    finished = [
        (prefix, beam[_P_BLANK] + beam[_P_CHAR], *_best_alignment(beam)) for prefix, beam in beams.items()
    ]
    for prefix, total, best_path, confidences in sorted(finished, key=lambda item: item[2], reverse=True):
        if total <= 0.0:
            continue
        text = "".join(characters[c] for c in prefix)
        confidence = float(np.mean(confidences)) if confidences else 0.0
        results.append(
            ScoredCandidate(
                Candidate(text, confidence, confidences),
                math.log(total),
                path_log_prob=math.log(best_path) if best_path > 0.0 else -math.inf,
            )
        )
    return results or [ScoredCandidate(Candidate("", 0.0), 0.0)]


def _best_alignment(beam: _BeamState) -> tuple[float, tuple[float, ...]]:
    """The probability of a beam's most likely single alignment, whichever way it ends, and the
    per-character confidences along it."""
    if beam[_BEST_CHAR] > beam[_BEST_BLANK]:
        return beam[_BEST_CHAR], beam[_CONF_CHAR]
    return beam[_BEST_BLANK], beam[_CONF_BLANK]


def _extend(
    following: dict[tuple[int, ...], _BeamState],
    prefix: tuple[int, ...],
    blank_mass: float,
    char_mass: float,
    path_prob: float,
    confidences: tuple[float, ...],
    ends_in_blank: bool,
) -> None:
    """Add probability mass to `prefix`'s beam for the next step (created empty on first use) and
    keep the most likely single alignment that ends in a blank (`ends_in_blank`) or in the prefix's
    last character, with its per-character confidences."""
    target = following.get(prefix)
    if target is None:
        target = following[prefix] = [0.0, 0.0, 0.0, (), 0.0, ()]
    target[_P_BLANK] += blank_mass
    target[_P_CHAR] += char_mass
    best, conf = (_BEST_BLANK, _CONF_BLANK) if ends_in_blank else (_BEST_CHAR, _CONF_CHAR)
    if path_prob >= target[best]:
        target[best] = path_prob
        target[conf] = confidences


def exact_fit(text: str, region_hint: str | None = None, grammar: PlateGrammar | None = None) -> str | None:
    """The region ("" when formats of several fit) of the plate format that plate text `text` fits
    exactly as read, no look-alike fixed (`grammar.clean` with `region_hint`); None when it fits none.
    Under a closed region's hint, `clean` fixes a text into that region's formats where it can, even
    one that fits another region's format as it is ("EHBB432" under "br"): such a text still fits,
    and its region is named as `clean` names a foreign plate's under that hint."""
    grammar = grammar or default_grammar()
    plate = grammar.clean(text, region_hint)
    if plate.format_known and plate.fixes == 0 and plate.text == text:
        return plate.region
    if plate.fixes and region_hint:
        plain = grammar.clean(text)
        if plain.format_known and plain.text == text:
            return plain.region
    return None


def choose(
    scored: list[ScoredCandidate],
    grammar: PlateGrammar | None = None,
    *,
    format_ratio: float = FORMAT_RATIO,
    region_hint: str | None = None,
) -> list[ScoredCandidate]:
    """The candidates (best first) as plate text, marked with the format and region they fit exactly,
    and reordered: when the best one fits no format (of the hinted region first, then any), the
    first look-alike variant of it that fits one comes first if its alignment is at least
    `format_ratio` times as likely, or failing that the first reading of it without its first or
    last character that fits one, if at least `EDGE_TRIM_RATIO` times as likely. Duplicates (after
    separators are removed) are dropped; readings that are not plate-like pass through untouched."""
    grammar = grammar or default_grammar()
    rewritten: list[ScoredCandidate] = []
    seen: set[str] = set()
    for item in scored:
        compact = plate_text(item.candidate.text)
        if compact is None:
            # Not plate-like (empty, signage, lower case): the grammar has nothing to say.
            if item.candidate.text not in seen:
                seen.add(item.candidate.text)
                rewritten.append(item)
            continue
        # Exact fits only: the grammar picks among the model's readings, it never rewrites one.
        region = exact_fit(compact, region_hint, grammar)
        fits = region is not None
        text = compact
        if text in seen:
            continue
        seen.add(text)
        confidences = item.candidate.char_confidences
        if len(confidences) != len(text):
            confidences = ()
        rewritten.append(
            ScoredCandidate(
                Candidate(text, item.candidate.confidence, confidences),
                item.log_prob,
                region or "",
                fits,
                item.path_log_prob,
            )
        )
    if not rewritten:
        return scored
    best = rewritten[0]
    if not best.candidate.text:
        return rewritten
    if region_hint and grammar.knows_region(region_hint):
        if grammar.fits_region(best.candidate.text, region_hint):
            return rewritten
        swapped = _fitting_first(
            rewritten,
            format_ratio,
            lambda item: (
                plate_text(item.candidate.text) is not None
                and grammar.fits_region(item.candidate.text, region_hint)
            ),
        )
        if swapped is not None:
            return swapped
    if best.format_known:
        return rewritten
    return _fitting_first(rewritten, format_ratio, lambda item: item.format_known) or rewritten


def _fitting_first(
    ranked: list[ScoredCandidate], format_ratio: float, fits: Callable[[ScoredCandidate], bool]
) -> list[ScoredCandidate] | None:
    """`ranked` with the first look-alike variant of its head that `fits` moved to the front, or
    failing that the first edge-trimmed one (`EDGE_TRIM_RATIO`); None when there is neither."""
    head = ranked[0].candidate.text
    # A head too long to be plate-like keeps the recognizer's separators (PP-OCR reads spaces), the
    # candidates it is compared with have none.
    compact = compact_text(head)
    trimmed = {compact[1:], compact[:-1]}
    # A head that is no plate (a state name, a sign word) is not swapped for a look-alike that
    # fits a format: "TEXAS" stays a sign rather than becoming the plate "TEXA5". (Edge trim still
    # applies: a plate read with a stray edge character may be too long to be plate-like.)
    if plate_text(head) is not None:
        swapped = _promoted(
            ranked, format_ratio, lambda item: look_alike_variant(head, item.candidate.text) and fits(item)
        )
        if swapped is not None:
            return swapped
    return _promoted(ranked, EDGE_TRIM_RATIO, lambda item: item.candidate.text in trimmed and fits(item))


def _promoted(
    ranked: list[ScoredCandidate], ratio: float, wanted: Callable[[ScoredCandidate], bool]
) -> list[ScoredCandidate] | None:
    """`ranked` with the first candidate after its head that is `wanted` moved to the front, when its
    alignment is at least `ratio` times as likely as the head's; None when there is none."""
    threshold = ranked[0].path_log_prob + math.log(ratio)
    for position, item in enumerate(ranked[1:], start=1):
        if item.path_log_prob < threshold:
            break
        if wanted(item):
            return [item, *ranked[:position], *ranked[position + 1 :]]
    return None


def look_alike_variant(text: str, other: str) -> bool:
    """`other` is `text` with only look-alike characters swapped (O/0, D/0, I/1, B/8, S/5, Z/2, G/6):
    the same length, every difference a pair the grammar may fix. The grammar decides which of two
    such readings a format allows; it never decides how many characters a plate has."""
    if len(text) != len(other) or text == other:
        return False
    return all(a == b or (a, b) in LOOK_ALIKES for a, b in zip(text, other, strict=True))


def combine_variants(per_variant: list[list[ScoredCandidate]]) -> list[ScoredCandidate]:
    """Readings of several variants of one crop (the original first) merged into one list: each
    text scores the mean over the variants of its probabilities (0 where a variant's beam lacks
    it), best first. Its candidate (confidences) comes from the first variant that has it."""
    if len(per_variant) == 1:
        return per_variant[0]
    merged: dict[str, tuple[ScoredCandidate, float, float]] = {}
    for scored in per_variant:
        for item in scored:
            text = item.candidate.text
            found = merged.get(text)
            total, path = math.exp(item.log_prob), math.exp(item.path_log_prob)
            if found is None:
                merged[text] = (item, total, path)
            else:
                merged[text] = (found[0], found[1] + total, found[2] + path)
    count = len(per_variant)
    combined = [
        ScoredCandidate(
            first.candidate,
            math.log(total / count) if total > 0.0 else -math.inf,
            path_log_prob=math.log(path / count) if path > 0.0 else -math.inf,
        )
        for first, total, path in merged.values()
    ]
    combined.sort(key=lambda item: item.path_log_prob, reverse=True)
    return combined


def read_line(
    indices: np.ndarray,
    probs: np.ndarray,
    characters: Sequence[str],
    top_k: int = 3,
    grammar: PlateGrammar | None = None,
    region_hint: str | None = None,
) -> list[Candidate]:
    """The best `top_k` readings of one text line (at least one, possibly empty text), best first:
    `beam_search` then `choose` (see the module docstring)."""
    return read_variants([(indices, probs)], characters, top_k, grammar, region_hint)


def read_variants(
    outputs: list[tuple[np.ndarray, np.ndarray]],
    characters: Sequence[str],
    top_k: int = 3,
    grammar: PlateGrammar | None = None,
    region_hint: str | None = None,
) -> list[Candidate]:
    """Like `read_line` over the outputs (top-k indices, probabilities) of several variants of one
    crop (`postprocess.reading_variants`), merged by `combine_variants` before the grammar's choice."""
    per_variant = [beam_search(indices, probs, characters) for indices, probs in outputs]
    chosen = choose(combine_variants(per_variant), grammar, region_hint=region_hint)
    return [item.candidate for item in chosen[:top_k]]
