"""Plate text cleanup by region grammar.

`PlateGrammar.clean(text, region_hint=None)` strips everything but ASCII letters and digits and
uppercases, then checks the text against the known plate formats (data in `grammars.yaml`, not code) of
the same length. Contract:

- No region hint (the camera's region is unknown): no character is ever rewritten. The stripped text is
  returned as it is, `format_known=True` only when it exactly fits one or more formats, and `region` only when
  all those formats agree on it (see below; else ""). Look-alike characters (O/0, I/1, ...) cannot be decided
  without knowing where the plate is from, and forcing a correct read of a format the grammar lacks (or of
  another country) into some format breaks it: "8ZX0123" would become California's "8ZXO123". The recognizer
  already chose among its own look-alike readings (services/inference/decoding.py); that choice is kept.
- With a region hint (e.g. "us", "us-ca", "de"; case-insensitive), the formats of that region come first:
  those whose region is the hint, a sub-region of it ("us" -> "US-CA") or a parent of it ("us-ca" -> the
  generic "US" formats). An exact fit of one of them wins (so "ABC1234" is reported "US" under a US hint,
  where US and Brazil share the format). Otherwise, only when the region is *closed* (`closed_regions` in
  `grammars.yaml`: its formats there are every plate it issues, as for Germany or Brazil) may its formats
  drive look-alike fixes: a position that must hold a letter turns a look-alike digit into its letter
  (0->O, 1->I, 8->B, 5->S, 2->Z, 6->G), a digit position does the reverse (O->0, D->0, I->1, B->8, S->5,
  Z->2, G->6), nothing is changed anywhere else, and the format needing the fewest fixes wins. An open
  region (the US: every state has its own formats, and vanity plates) is never fixed into, as a correct
  read of an unlisted format would be broken. When nothing of the region fits (a visiting foreign plate,
  an open region), the text is handled as without a hint, except that another region's format names the
  region only under a closed region's hint (an open region's plate of an unlisted format may be local:
  "JX1000" under a US hint is known, as it fits a German format, but its region is "").
- Regional formats (`regional_formats` in `grammars.yaml`: US states' series, more European national
  series) count only under a hint of their own region or one inside it ("us-ia" for Iowa's, "sk" for
  Slovakia's), never under a parent ("us" does not bring in every state's series) nor without a hint,
  since each extra format is one more way for a misread to look valid. A hint no format belongs to
  acts as no hint.
- `region` is the region all winning formats are in (their region, or the parent region they share:
  "US-CA" and "US" give "US"), else "". Text no format accepts is returned stripped but otherwise
  untouched ("unknown format"), with `format_known=False` and region "".
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
# Results of `PlateGrammar.clean` kept per grammar, by (text, region hint) (cleared when full).
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
    # Consulted only under a region hint that covers it (`regional_formats` in grammars.yaml).
    regional: bool = False


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

    def __init__(self, formats: list[PlateFormat], closed_regions: frozenset[str] = frozenset()) -> None:
        self.formats = formats
        # Regions (upper case) whose formats may drive look-alike fixes under a region hint.
        self.closed_regions = frozenset(region.upper() for region in closed_regions)
        self._by_length: dict[int, list[PlateFormat]] = {}
        # Per length, one regex per format matching the text as it is (no look-alike fix needed).
        self._exact: dict[int, list[tuple[re.Pattern[str], PlateFormat]]] = {}
        # Texts repeat (every frame of a pass, its early and final read): remember recent results.
        self._cache: dict[tuple[str, str], CleanPlate] = {}
        self._known_regions: dict[str, bool] = {}
        for fmt in formats:
            self._by_length.setdefault(len(fmt.positions), []).append(fmt)
            self._exact.setdefault(len(fmt.positions), []).append((_exact_pattern(fmt.positions), fmt))

    @classmethod
    def from_yaml(cls, path: Path = GRAMMARS_FILE) -> PlateGrammar:
        data = yaml.safe_load(path.read_text())
        formats: list[PlateFormat] = []
        for key, regional in (("formats", False), ("regional_formats", True)):
            for entry in data.get(key) or ():
                if not isinstance(entry["region"], str):
                    # YAML reads a bare NO (Norway) as false: region codes must be strings.
                    raise ValueError(
                        f"region of format {entry.get('name')!r} is not a string: {entry['region']!r}"
                    )
                for positions in expand_pattern(entry["pattern"]):
                    formats.append(PlateFormat(entry["region"], entry["name"], positions, regional))
        return cls(formats, frozenset(data.get("closed_regions") or ()))

    def clean(self, text: str, region_hint: str | None = None) -> CleanPlate:
        """The text cleaned as the module docstring says; `region_hint` is the camera's region
        ("us", "us-ca", "de", ...), None or "" when unknown."""
        hint = (region_hint or "").strip().upper()
        if hint and not self.knows_region(hint):
            hint = ""  # a region no format belongs to: as without a hint
        key = (text, hint)
        cached = self._cache.get(key)
        if cached is None:
            if len(self._cache) >= CACHE_SIZE:
                self._cache.clear()
            cached = self._cache[key] = self._clean(strip_text(text), hint)
        return cached

    def knows_region(self, region_hint: str) -> bool:
        """Some format belongs to this region hint (see `clean`)."""
        hint = region_hint.strip().upper()
        known = self._known_regions.get(hint)
        if known is None:
            known = self._known_regions[hint] = any(_applies(fmt, hint) for fmt in self.formats)
        return known

    def fits_region(self, text: str, region_hint: str | None) -> bool:
        """The text, as read (stripped, nothing fixed), fits a format of the hinted region: its own,
        a sub-region's or its parent's (see `clean`). False without a hint."""
        hint = (region_hint or "").strip().upper()
        return bool(hint) and bool(self._exact_fits(strip_text(text), hint))

    def _closed(self, region: str) -> bool:
        """The region's formats (or its country's) are all the plates it issues."""
        return region in self.closed_regions or region.split("-")[0] in self.closed_regions

    def _exact_fits(self, stripped: str, hint: str) -> list[PlateFormat]:
        """Formats `stripped` fits as it is: those of the hinted region, or without a hint every
        format but the regional ones."""
        return [
            fmt
            for pattern, fmt in self._exact.get(len(stripped), [])
            if (_applies(fmt, hint) if hint else not fmt.regional) and pattern.fullmatch(stripped)
        ]

    def _clean(self, stripped: str, hint: str) -> CleanPlate:
        if hint:
            # Formats the text fits without any fix are the best there can be.
            exact = self._exact_fits(stripped, hint)
            if exact:
                return CleanPlate(stripped, _agreed_region(exact), True, 0)
            best: list[tuple[str, PlateFormat]] = []
            best_fixes = -1
            for fmt in self._by_length.get(len(stripped), []):
                if not _applies(fmt, hint) or not self._closed(fmt.region):
                    continue
                fitted = _fit(stripped, fmt.positions)
                if fitted is None:
                    continue
                fixed, fixes = fitted
                if best_fixes < 0 or fixes < best_fixes:
                    best, best_fixes = [(fixed, fmt)], fixes
                elif fixes == best_fixes:
                    best.append((fixed, fmt))
            if best:
                return CleanPlate(best[0][0], _agreed_region([fmt for _, fmt in best]), True, best_fixes)
        # No hint, or no format of the hinted region fits: the text as it is, known only on an exact fit.
        exact = self._exact_fits(stripped, "")
        if exact:
            foreign_known = not hint or self._closed(hint)
            return CleanPlate(stripped, _agreed_region(exact) if foreign_known else "", True, 0)
        return CleanPlate(stripped, "", False)


def _in_region(region: str, hint: str) -> bool:
    """A format of `region` applies under `hint` (both upper case): the same region, a sub-region of
    the hint ("US-CA" under "US"), or a parent of it ("US" under "US-CA")."""
    return region == hint or region.startswith(hint + "-") or hint.startswith(region + "-")


def _applies(fmt: PlateFormat, hint: str) -> bool:
    """`fmt` counts under `hint` (upper case, not empty): a base format of the hinted region, a
    sub-region or a parent (`_in_region`); a regional format only of the hinted region itself or a
    parent of it, so "US" does not bring in every state's series ("US-IA" brings Iowa's)."""
    if fmt.regional:
        return fmt.region == hint or hint.startswith(fmt.region + "-")
    return _in_region(fmt.region, hint)


def _agreed_region(formats: list[PlateFormat]) -> str:
    """The region every format is in: their shared region, or the parent they share ("US-CA" and
    "US" -> "US"); "" when they disagree on the country."""
    paths = [fmt.region.split("-") for fmt in formats]
    shared: list[str] = []
    for parts in zip(*paths, strict=False):
        if len(set(parts)) != 1:
            break
        shared.append(parts[0])
    return "-".join(shared)


@lru_cache(maxsize=1)
def default_grammar() -> PlateGrammar:
    return PlateGrammar.from_yaml()
