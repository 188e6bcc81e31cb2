"""In-memory hotlist index and read matching. Pure: no I/O, no clock (callers pass `now`).

Matching rules (per read, against every list of the read's agency):
- exact: the entry plate equals the read plate;
- confusable: the read plate differs from the entry plate in exactly one position, by a look-alike
  pair (O/0/D/Q, I/1/L, B/8, S/5, Z/2, G/6), and the entry's list has `fuzzy_confusables` on;
- wildcard: the entry plate holds `?` (exactly one character) or `*` (any run, empty included)
  and matches the whole read plate (wildcards are matched literally, never fuzzily);
- entries whose `expires_at` lies in the past never match;
- an entry with a region that differs from a known read region still matches, flagged
  `region_mismatch` (`regions_differ`: an entry's bare state code "TX" agrees with a read's "US-TX"
  or "US", a read's bare "US" with an entry's "US-TX");
- a list whose `refreshed_at` is older than its `max_age_seconds` (0 = never) yields `stale` hits.

Only lists of the read's own agency (`read.camera.agency_id`) are searched: cross-agency sharing is
deliberately left out until there is a sharing model to authorise it.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from google.protobuf.timestamp_pb2 import Timestamp

from services.common.pb.platewatch.v1 import alerts_pb2, hotlist_pb2, reads_pb2

# Characters a plate reader commonly mistakes for one another; each group is a set of look-alikes.
CONFUSABLE_GROUPS: tuple[str, ...] = ("O0DQ", "I1L", "B8", "S5", "Z2", "G6")
_LOOKALIKES: dict[str, str] = {char: group.replace(char, "") for group in CONFUSABLE_GROUPS for char in group}

WILDCARD_CHARS = frozenset("?*")
_KIND_ORDER = {
    alerts_pb2.MATCH_KIND_EXACT: 0,
    alerts_pb2.MATCH_KIND_CONFUSABLE: 1,
    alerts_pb2.MATCH_KIND_WILDCARD: 2,
}


def epoch_seconds(timestamp: Timestamp) -> float:
    return timestamp.seconds + timestamp.nanos / 1e9


def confusable_variants(plate: str) -> Iterator[str]:
    """Every plate that differs from `plate` by exactly one look-alike substitution."""
    for position, char in enumerate(plate):
        for lookalike in _LOOKALIKES.get(char, ""):
            yield plate[:position] + lookalike + plate[position + 1 :]


def is_wildcard(plate: str) -> bool:
    return any(char in WILDCARD_CHARS for char in plate)


def compile_wildcard(plate: str) -> re.Pattern[str]:
    """`?` = exactly one character, `*` = any run (possibly empty); use with `fullmatch`."""
    parts = []
    for char in plate:
        if char == "?":
            parts.append(".")
        elif char == "*":
            parts.append(".*")
        else:
            parts.append(re.escape(char))
    return re.compile("".join(parts))


def wildcard_bucket(hotlist_id: str, pattern: str) -> tuple[object, ...]:
    """Where a wildcard pattern is filed; `read_buckets` lists every bucket that may hold a match.

    `?`-only patterns match one length only: filed by length and their first literal character
    (with its position). `*` patterns are filed by a literal first or last character, or else
    under the list alone."""
    if "*" not in pattern:
        position = next(i for i, char in enumerate(pattern) if char != "?")
        return (hotlist_id, "fixed", len(pattern), position, pattern[position])
    if pattern[0] not in WILDCARD_CHARS:
        return (hotlist_id, "starts", pattern[0])
    if pattern[-1] not in WILDCARD_CHARS:
        return (hotlist_id, "ends", pattern[-1])
    return (hotlist_id, "any")


def read_buckets(hotlist_id: str, plate: str) -> Iterator[tuple[object, ...]]:
    """Every wildcard bucket of the list that could hold a pattern matching `plate` (non-empty)."""
    length = len(plate)
    for position, char in enumerate(plate):
        yield (hotlist_id, "fixed", length, position, char)
    yield (hotlist_id, "starts", plate[0])
    yield (hotlist_id, "ends", plate[-1])
    yield (hotlist_id, "any")


@dataclass(frozen=True)
class Match:
    """One hit of a read on a hotlist entry."""

    entry: hotlist_pb2.HotlistEntry
    hotlist: hotlist_pb2.Hotlist
    kind: alerts_pb2.MatchKind
    region_mismatch: bool
    stale: bool
    # Seconds since the list was last refreshed (0 when it never was).
    list_age_seconds: int

    def sort_key(self) -> tuple[int, int, str]:
        # Priority 1 is the highest; an unset priority (0) sorts last.
        priority = self.entry.priority if self.entry.priority >= 1 else 1 << 30
        return (priority, _KIND_ORDER.get(self.kind, 9), self.entry.entry_id)


class HotlistIndex:
    """Hotlists and their entries, indexed for matching.

    Entries may arrive before their list (the change log is compacted, so a list's surviving
    record can sit after its entries); an entry whose list is unknown simply never matches.
    Callers must not mutate the messages they put in or get out.
    """

    def __init__(self) -> None:
        self.lists: dict[str, hotlist_pb2.Hotlist] = {}
        self.entries: dict[str, hotlist_pb2.HotlistEntry] = {}
        self._lists_by_agency: dict[str, set[str]] = {}
        # Literal plates: plate -> entry_id -> entry.
        self._by_plate: dict[str, dict[str, hotlist_pb2.HotlistEntry]] = {}
        # Wildcard plates, bucketed by `wildcard_bucket` so a read tests only a handful of patterns:
        # bucket -> entry_id -> (pattern, entry).
        self._wildcards: dict[
            tuple[object, ...], dict[str, tuple[re.Pattern[str], hotlist_pb2.HotlistEntry]]
        ] = {}
        self._entry_ids_by_list: dict[str, set[str]] = {}

    # ---- updates ---------------------------------------------------------------------------------

    def put_list(self, hotlist: hotlist_pb2.Hotlist) -> None:
        self.remove_list(hotlist.hotlist_id)
        self.lists[hotlist.hotlist_id] = hotlist
        self._lists_by_agency.setdefault(hotlist.agency_id, set()).add(hotlist.hotlist_id)

    def remove_list(self, hotlist_id: str) -> bool:
        """Forget the list; its entries stay indexed but cannot match until it comes back."""
        previous = self.lists.pop(hotlist_id, None)
        if previous is None:
            return False
        agency_lists = self._lists_by_agency.get(previous.agency_id)
        if agency_lists is not None:
            agency_lists.discard(hotlist_id)
            if not agency_lists:
                del self._lists_by_agency[previous.agency_id]
        return True

    def put_entry(self, entry: hotlist_pb2.HotlistEntry) -> None:
        self.remove_entry(entry.entry_id)
        self.entries[entry.entry_id] = entry
        self._entry_ids_by_list.setdefault(entry.hotlist_id, set()).add(entry.entry_id)
        if is_wildcard(entry.plate):
            bucket = self._wildcards.setdefault(wildcard_bucket(entry.hotlist_id, entry.plate), {})
            bucket[entry.entry_id] = (compile_wildcard(entry.plate), entry)
        else:
            self._by_plate.setdefault(entry.plate, {})[entry.entry_id] = entry

    def remove_entry(self, entry_id: str) -> bool:
        entry = self.entries.pop(entry_id, None)
        if entry is None:
            return False
        _discard(self._entry_ids_by_list, entry.hotlist_id, entry_id)
        if is_wildcard(entry.plate):
            _discard(self._wildcards, wildcard_bucket(entry.hotlist_id, entry.plate), entry_id)
        else:
            _discard(self._by_plate, entry.plate, entry_id)
        return True

    def apply(self, change: hotlist_pb2.HotlistChange) -> None:
        """Apply one change-log record. `deleted`, or neither field set, removes."""
        kind = change.WhichOneof("change")
        if kind == "hotlist":
            if change.deleted:
                self.remove_list(change.hotlist.hotlist_id)
            else:
                self.put_list(change.hotlist)
        elif kind == "entry":
            if change.deleted:
                self.remove_entry(change.entry.entry_id)
            else:
                self.put_entry(change.entry)

    def apply_key_deletion(self, key: str) -> None:
        """A null tombstone (or an empty change) under `list/<id>` or `entry/<id>` removes that object."""
        kind, _, object_id = key.partition("/")
        if kind == "list":
            self.remove_list(object_id)
        elif kind == "entry":
            self.remove_entry(object_id)

    # ---- queries ---------------------------------------------------------------------------------

    def entry_count(self, hotlist_id: str) -> int:
        return len(self._entry_ids_by_list.get(hotlist_id, ()))

    def entries_of(self, hotlist_id: str) -> list[hotlist_pb2.HotlistEntry]:
        """The list's entries, highest priority first."""
        ids = self._entry_ids_by_list.get(hotlist_id, set())
        entries = [self.entries[entry_id] for entry_id in ids]
        entries.sort(key=lambda e: (e.priority, e.plate, e.entry_id))
        return entries

    def match(self, plate: str, region: str, agency_id: str, now: float) -> list[Match]:
        """Every live entry of the agency's lists that `plate` hits, highest priority first."""
        list_ids = self._lists_by_agency.get(agency_id)
        if not plate or not list_ids:
            return []
        hits: dict[str, tuple[hotlist_pb2.HotlistEntry, alerts_pb2.MatchKind]] = {}
        for entry in self._by_plate.get(plate, {}).values():
            if entry.hotlist_id in list_ids:
                hits[entry.entry_id] = (entry, alerts_pb2.MATCH_KIND_EXACT)
        if any(self.lists[list_id].fuzzy_confusables for list_id in list_ids):
            for variant in confusable_variants(plate):
                for entry in self._by_plate.get(variant, {}).values():
                    if (
                        entry.entry_id not in hits
                        and entry.hotlist_id in list_ids
                        and self.lists[entry.hotlist_id].fuzzy_confusables
                    ):
                        hits[entry.entry_id] = (entry, alerts_pb2.MATCH_KIND_CONFUSABLE)
        if self._wildcards:
            for list_id in list_ids:
                for bucket in read_buckets(list_id, plate):
                    for pattern, entry in self._wildcards.get(bucket, {}).values():
                        if pattern.fullmatch(plate):
                            hits.setdefault(entry.entry_id, (entry, alerts_pb2.MATCH_KIND_WILDCARD))

        matches = []
        for entry, kind in hits.values():
            if entry.HasField("expires_at") and epoch_seconds(entry.expires_at) < now:
                continue
            hotlist = self.lists[entry.hotlist_id]
            matches.append(
                Match(
                    entry=entry,
                    hotlist=hotlist,
                    kind=kind,
                    region_mismatch=regions_differ(entry.region, region),
                    stale=is_stale(hotlist, now),
                    list_age_seconds=list_age_seconds(hotlist, now),
                )
            )
        matches.sort(key=Match.sort_key)
        return matches

    def match_read(self, read: reads_pb2.Read, now: float) -> list[Match]:
        return self.match(read.plate, read.region, read.camera.agency_id, now)


def list_age_seconds(hotlist: hotlist_pb2.Hotlist, now: float) -> int:
    if not hotlist.HasField("refreshed_at"):
        return 0
    return max(0, int(now - epoch_seconds(hotlist.refreshed_at)))


def is_stale(hotlist: hotlist_pb2.Hotlist, now: float) -> bool:
    """A list with a maximum age is stale once it has gone unrefreshed for longer (or never was)."""
    if hotlist.max_age_seconds <= 0:
        return False
    if not hotlist.HasField("refreshed_at"):
        return True
    return now - epoch_seconds(hotlist.refreshed_at) > hotlist.max_age_seconds


def _discard(index: dict[Any, Any], outer: object, inner: str) -> None:
    """Remove `inner` from the set or dict at `index[outer]`, dropping the bucket once empty."""
    bucket = index.get(outer)
    if bucket is None:
        return
    if isinstance(bucket, dict):
        bucket.pop(inner, None)
    else:
        bucket.discard(inner)
    if not bucket:
        del index[outer]


# US state and DC codes, as NCIC-style extracts give a plate's state (without the country).
US_STATE_CODES = frozenset(
    """AL AK AZ AR CA CO CT DE DC FL GA HI ID IL IN IA KS KY LA ME MD MA MI MN MS MO MT NE NV NH NJ NM
    NY NC ND OH OK OR PA RI SC SD TN TX UT VT VA WA WV WI WY""".split()
)


def regions_differ(entry_region: str, read_region: str) -> bool:
    """Both regions are known and name different places. Codes are compared upper case. One that
    names the other's country only ("US" and "US-TX": it knows less, it does not contradict) agrees
    with it, and so does a US state's bare code ("TX", as NCIC-style extracts give it) with that
    state ("US-TX") or with the bare country ("US"). A bare code that is also a country code
    elsewhere (Germany's DE, India's IN) is taken for the state when compared with a US region."""
    entry, read = (_bare_state_as_us(code.strip().upper()) for code in (entry_region, read_region))
    if not entry or not read or entry == read:
        return False
    return not (entry.startswith(read + "-") or read.startswith(entry + "-"))


def _bare_state_as_us(code: str) -> str:
    return f"US-{code}" if code in US_STATE_CODES else code
