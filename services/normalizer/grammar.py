"""Plate text cleanup by region grammar.

`PlateGrammar.clean(text)` strips everything but ASCII letters and digits, uppercases, then tries every
known plate format (data in `grammars.yaml`, not code) of the same length. A format position that must
hold a letter turns a look-alike digit into its letter (0->O, 1->I, 8->B, 5->S, 2->Z, 6->G) and a digit
position does the reverse (O->0, D->0, I->1, B->8, S->5, Z->2, G->6); nothing is changed anywhere else.
The format needing the fewest fixes wins. The region is that format's region when every winning format
agrees on it, else "". Text no format accepts is returned cleaned but otherwise untouched, with
`format_known=False`.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import lru_cache
from itertools import product
from pathlib import Path

import yaml

GRAMMARS_FILE = Path(__file__).with_name("grammars.yaml")

LETTER = "L"
DIGIT = "D"
EITHER = "*"

DIGIT_TO_LETTER = {"0": "O", "1": "I", "8": "B", "5": "S", "2": "Z", "6": "G"}
LETTER_TO_DIGIT = {"O": "0", "D": "0", "I": "1", "B": "8", "S": "5", "Z": "2", "G": "6"}

_CLASS_TOKENS = {"[A-Z]": LETTER, "[0-9]": DIGIT, "[A-Z0-9]": EITHER}
_TOKEN = re.compile(r"(\[A-Z0-9\]|\[A-Z\]|\[0-9\]|[A-Z0-9])(?:\{(\d+)(?:,(\d+))?\})?")
_NOT_ALNUM = re.compile(r"[^A-Z0-9]")
# Results of `PlateGrammar.clean` kept per grammar (cleared when full).
CACHE_SIZE = 100_000


def strip_text(text: str) -> str:
    """Uppercase and keep only ASCII letters and digits (spaces, dashes, dots and the rest go)."""
    return _NOT_ALNUM.sub("", text.upper())


@dataclass(frozen=True)
class PlateFormat:
    region: str
    name: str
    # One entry per position: LETTER, DIGIT, EITHER, or a literal character.
    positions: tuple[str, ...]


@dataclass(frozen=True)
class CleanPlate:
    text: str
    region: str
    format_known: bool
    # Look-alike substitutions made.
    fixes: int = 0


def expand_pattern(pattern: str) -> list[tuple[str, ...]]:
    """All fixed-length position sequences a pattern allows (e.g. "[A-Z]{1,2}[0-9]" -> LD, LLD)."""
    pos = 0
    choices: list[list[tuple[str, ...]]] = []
    while pos < len(pattern):
        match = _TOKEN.match(pattern, pos)
        if match is None:
            raise ValueError(f"cannot parse plate pattern {pattern!r} at {pos}")
        token, low, high = match.groups()
        kind = _CLASS_TOKENS.get(token, token)
        least = int(low) if low else 1
        most = int(high) if high else least
        choices.append([(kind,) * n for n in range(least, most + 1)])
        pos = match.end()
    return sorted({tuple(c for part in combo for c in part) for combo in product(*choices)})


def _fit(text: str, positions: tuple[str, ...]) -> tuple[str, int] | None:
    """The text fixed to the positions and the number of fixes, or None when it cannot fit."""
    if len(text) != len(positions):
        return None
    out: list[str] = []
    fixes = 0
    for char, kind in zip(text, positions, strict=True):
        if kind == EITHER:
            out.append(char)
        elif kind == LETTER:
            if char.isalpha():
                out.append(char)
            elif char in DIGIT_TO_LETTER:
                out.append(DIGIT_TO_LETTER[char])
                fixes += 1
            else:
                return None
        elif kind == DIGIT:
            if char.isdigit():
                out.append(char)
            elif char in LETTER_TO_DIGIT:
                out.append(LETTER_TO_DIGIT[char])
                fixes += 1
            else:
                return None
        elif char != kind:
            return None
        else:
            out.append(char)
    return "".join(out), fixes


def _exact_pattern(positions: tuple[str, ...]) -> re.Pattern[str]:
    classes = {LETTER: "[A-Z]", DIGIT: "[0-9]", EITHER: "[A-Z0-9]"}
    return re.compile("".join(classes.get(kind, re.escape(kind)) for kind in positions))


class PlateGrammar:
    """The set of known plate formats; see the module docstring for the cleanup rules."""

    def __init__(self, formats: list[PlateFormat]) -> None:
        self.formats = formats
        self._by_length: dict[int, list[PlateFormat]] = {}
        # Per length, one regex per format matching the text as it is (no look-alike fix needed).
        self._exact: dict[int, list[tuple[re.Pattern[str], PlateFormat]]] = {}
        # Texts repeat (every frame of a pass, its early and final read): remember recent results.
        self._cache: dict[str, CleanPlate] = {}
        for fmt in formats:
            self._by_length.setdefault(len(fmt.positions), []).append(fmt)
            self._exact.setdefault(len(fmt.positions), []).append((_exact_pattern(fmt.positions), fmt))

    @classmethod
    def from_yaml(cls, path: Path = GRAMMARS_FILE) -> PlateGrammar:
        data = yaml.safe_load(path.read_text())
        formats: list[PlateFormat] = []
        for entry in data["formats"]:
            for positions in expand_pattern(entry["pattern"]):
                formats.append(PlateFormat(entry["region"], entry["name"], positions))
        return cls(formats)

    def clean(self, text: str) -> CleanPlate:
        cached = self._cache.get(text)
        if cached is None:
            if len(self._cache) >= CACHE_SIZE:
                self._cache.clear()
            cached = self._cache[text] = self._clean(text)
        return cached

    def _clean(self, text: str) -> CleanPlate:
        stripped = strip_text(text)
        best: list[tuple[str, PlateFormat]] = []
        best_fixes = -1
        # Fast path: formats the text fits without any fix are the best there can be.
        exact = [fmt for pattern, fmt in self._exact.get(len(stripped), []) if pattern.fullmatch(stripped)]
        if exact:
            regions = {fmt.region for fmt in exact}
            return CleanPlate(stripped, regions.pop() if len(regions) == 1 else "", True, 0)
        for fmt in self._by_length.get(len(stripped), []):
            fitted = _fit(stripped, fmt.positions)
            if fitted is None:
                continue
            fixed, fixes = fitted
            if best_fixes < 0 or fixes < best_fixes:
                best, best_fixes = [(fixed, fmt)], fixes
            elif fixes == best_fixes:
                best.append((fixed, fmt))
        if not best:
            return CleanPlate(stripped, "", False)
        regions = {fmt.region for _, fmt in best}
        return CleanPlate(best[0][0], regions.pop() if len(regions) == 1 else "", True, best_fixes)


@lru_cache(maxsize=1)
def default_grammar() -> PlateGrammar:
    return PlateGrammar.from_yaml()
