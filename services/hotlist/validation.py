"""Validation of hotlist entries, shared by AddEntries and the CSV import. Pure."""

from __future__ import annotations

import re

from services.common.pb.platewatch.v1 import hotlist_pb2
from services.hotlist.matcher import WILDCARD_CHARS

PLATE_PATTERN = re.compile(r"[A-Z0-9?*]+")


def validate_entry(entry: hotlist_pb2.HotlistEntry) -> str | None:
    """Why the entry is unacceptable, or None when it is fine."""
    plate = entry.plate
    if not plate:
        return "plate is empty"
    if not PLATE_PATTERN.fullmatch(plate):
        return f"plate {plate!r} may only hold upper-case A-Z, 0-9 and the wildcards '?' and '*'"
    if all(char in WILDCARD_CHARS for char in plate):
        return f"plate {plate!r} is only wildcards and would match every read"
    if entry.priority < 1:
        return f"priority {entry.priority} must be 1 (highest) or more"
    return None
