"""The region a plate names in words printed on it: a US state's name or slogan ("NEW MEXICO",
"LAND OF ENCHANTMENT"), "BRASIL" on a Mercosur band. Formats alone rarely tell US states apart
(`ABC123` fits a dozen of them); the words on the plate do, as they do for a person.

Contract of `region_of_words(texts)`: the texts are what was read on the small lines around one
registration (any case, any punctuation). Each is reduced to its letters A-Z and the places where a
word starts or ends in it: a non-letter, or a lower-case letter followed by a capital (OCR glues
"Scenic IDAHO" into "ScenicIDAHO"). A phrase of `printed_regions.yaml` matches a stretch of those
letters that starts and ends where words do, begins and ends with the phrase's own first and last
letters, and is within `allowed_edits` of it (one misread, missing or extra letter per
`LETTERS_PER_EDIT` letters; none for shorter phrases): so "INDIAN RIVER" is not Indiana, "RADIO
WAVE" not Iowa, "WASHINGTON COUNTY" not Washington DC. Of two matches in one text whose phrases are
nested (one within the other: "KANSAS" in "ARKANSAS", "NORTH CAROLINA" and "SOUTH CAROLINA" within
two edits) only the better counts: fewer edits, then more letters. The texts name a region when all
their remaining matches belong to it; texts that name two regions, or none, give None.
"""

from __future__ import annotations

import functools
from pathlib import Path

import yaml

PHRASES_FILE = Path(__file__).with_name("printed_regions.yaml")
LETTERS_PER_EDIT = 6


def letters(text: str) -> str:
    """`text` in upper case with everything but the letters A-Z removed."""
    return words_of(text)[0]


def words_of(text: str) -> tuple[str, frozenset[int]]:
    """`text` as letters A-Z (upper case) and the positions in them where a word starts or ends (0
    and the end included; see the module docstring)."""
    kept: list[str] = []
    edges = {0}
    previous_lower = False
    for char in text:
        if "a" <= char <= "z" or "A" <= char <= "Z":
            if previous_lower and char.isupper():
                edges.add(len(kept))
            kept.append(char.upper())
            previous_lower = char.islower()
        else:
            edges.add(len(kept))
            previous_lower = False
    edges.add(len(kept))
    return "".join(kept), frozenset(edges)


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


def edit_distance(a: str, b: str) -> int:
    """Levenshtein distance (substitutions, insertions and deletions cost 1)."""
    previous = list(range(len(b) + 1))
    for i, x in enumerate(a, start=1):
        current = [i] + [0] * len(b)
        for j, y in enumerate(b, start=1):
            current[j] = min(previous[j - 1] + (x != y), previous[j] + 1, current[j - 1] + 1)
        previous = current
    return previous[-1]


def phrase_distance(phrase: str, text: str, edges: frozenset[int] = frozenset()) -> int | None:
    """The least edit distance between `phrase` and a stretch of `text` that starts and ends at
    `edges` (the whole of `text` when none are given besides its ends) and begins and ends with the
    phrase's first and last letters; None when no such stretch lies within `allowed_edits`."""
    edges = edges | {0, len(text)}
    slack = allowed_edits(phrase)
    best: int | None = None
    for start in edges:
        if start >= len(text) or text[start] != phrase[0]:
            continue
        for end in edges:
            if end <= start or text[end - 1] != phrase[-1] or abs((end - start) - len(phrase)) > slack:
                continue
            distance = edit_distance(phrase, text[start:end])
            if distance <= slack and (best is None or distance < best):
                best = distance
    return best


@functools.lru_cache(maxsize=4096)
def text_matches(text: str) -> frozenset[tuple[str, str]]:
    """(region, phrase) of the phrases that `text` holds (see the module docstring), less each one
    nested with a better match (fewer edits, then more letters)."""
    word, edges = words_of(text)
    found = []
    for region, phrase in phrases():
        if phrase[0] in word and phrase[-1] in word:
            distance = phrase_distance(phrase, word, edges)
            if distance is not None:
                found.append((-distance, len(phrase), region, phrase))
    kept: list[tuple[str, str]] = []
    for _, _, region, phrase in sorted(found, reverse=True):
        if not any(_nested(phrase, other) for _, other in kept):
            kept.append((region, phrase))
    return frozenset(kept)


def _nested(a: str, b: str) -> bool:
    """One phrase lies within the other, within the shorter one's allowed edits."""
    shorter, longer = sorted((a, b), key=len)
    return any(
        edit_distance(shorter, longer[start : start + size]) <= allowed_edits(shorter)
        for size in range(len(shorter) - allowed_edits(shorter), len(shorter) + allowed_edits(shorter) + 1)
        for start in range(0, len(longer) - size + 1)
    )


def region_of_words(texts: list[str]) -> str | None:
    """The region the words `texts` name (see the module docstring), or None; words that name two
    regions (a Texas dealer's frame around a Virginia plate) name none."""
    regions = {region for text in texts for region, _ in text_matches(text)}
    return regions.pop() if len(regions) == 1 else None
