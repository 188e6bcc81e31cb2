"""The region a plate names in words printed on it: a US state's name or slogan ("NEW MEXICO",
"LAND OF ENCHANTMENT"), "BRASIL" on a Mercosur band. Formats alone rarely tell US states apart
(`ABC123` fits a dozen of them); the words on the plate do, as they do for a person.

Contract of `region_of_words(texts)`: the texts are what was read on the small lines around one
registration (any case, any punctuation). Each is reduced to its letters A-Z; a phrase of
`printed_regions.yaml` matches where some stretch of those letters is within `allowed_edits` of it
(one misread, missing or extra letter per `LETTERS_PER_EDIT` letters; none for phrases shorter than
that). Of two matches in one text whose phrases are nested (one within the other: "KANSAS" in
"ARKANSAS", "NORTH CAROLINA" and "SOUTH CAROLINA" within two edits) only the better counts: more
letters matched, then fewer edits. The texts name a region when all their remaining matches belong
to it; texts that name two regions, or none, give None.
"""

from __future__ import annotations

import functools
import re
from pathlib import Path

import yaml

PHRASES_FILE = Path(__file__).with_name("printed_regions.yaml")
LETTERS_PER_EDIT = 6
_NOT_LETTERS = re.compile(r"[^A-Z]")


def letters(text: str) -> str:
    """`text` in upper case with everything but the letters A-Z removed."""
    return _NOT_LETTERS.sub("", text.upper())


def allowed_edits(phrase: str) -> int:
    """How many letters of a phrase (letters only) may be misread, missing or extra in a match."""
    return len(phrase) // LETTERS_PER_EDIT


@functools.lru_cache(maxsize=1)
def phrases(path: Path = PHRASES_FILE) -> tuple[tuple[str, str], ...]:
    """(region, phrase as letters) for every phrase of the data file, longest first."""
    data = yaml.safe_load(path.read_text())
    pairs = {
        (str(region), letters(str(phrase))) for region, listed in data["regions"].items() for phrase in listed
    }
    return tuple(sorted(pairs, key=lambda pair: (-len(pair[1]), pair)))


def substring_distance(phrase: str, text: str) -> int:
    """The least edit distance between `phrase` and any stretch of `text` (Sellers' algorithm: the
    edit-distance table with a free start and end in `text`)."""
    previous = [0] * (len(text) + 1)
    for i, letter in enumerate(phrase, start=1):
        current = [i] + [0] * len(text)
        for j, other in enumerate(text, start=1):
            current[j] = min(previous[j - 1] + (letter != other), previous[j] + 1, current[j - 1] + 1)
        previous = current
    return min(previous)


def _pieces(phrase: str) -> tuple[str, ...]:
    """`phrase` cut into `allowed_edits + 1` pieces: a stretch within that many edits of the phrase
    holds at least one of them exactly (each edit spoils at most one piece), a cheap filter before
    `substring_distance`."""
    count = allowed_edits(phrase) + 1
    size = len(phrase) // count
    return tuple(phrase[i * size : (i + 1) * size if i < count - 1 else len(phrase)] for i in range(count))


@functools.lru_cache(maxsize=4096)
def word_matches(word: str) -> frozenset[tuple[str, str]]:
    """(region, phrase) of the phrases that `word` (letters only) holds within their allowed edits,
    less each one nested with a better match (one phrase within the other, "KANSAS" and "ARKANSAS",
    "WASHINGTON" and "WASHINGTON DC"; better: more letters matched, then fewer edits)."""
    found = []
    for region, phrase in phrases():
        if any(piece in word for piece in _pieces(phrase)):
            distance = substring_distance(phrase, word)
            if distance <= allowed_edits(phrase):
                found.append((len(phrase) - distance, -distance, region, phrase))
    kept: list[tuple[str, str]] = []
    for _, _, region, phrase in sorted(found, reverse=True):
        if not any(_nested(phrase, other) for _, other in kept):
            kept.append((region, phrase))
    return frozenset(kept)


def _nested(a: str, b: str) -> bool:
    """One phrase lies within the other, within the shorter one's allowed edits."""
    shorter, longer = sorted((a, b), key=len)
    return substring_distance(shorter, longer) <= allowed_edits(shorter)


def region_of_words(texts: list[str]) -> str | None:
    """The region the words `texts` name (see the module docstring), or None; words that name two
    regions (a Texas dealer's frame around a Virginia plate) name none."""
    regions = {region for text in texts for region, _ in word_matches(letters(text))}
    return regions.pop() if len(regions) == 1 else None
