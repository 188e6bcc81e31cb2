"""Turning matches into `Alert` messages. Pure."""

from __future__ import annotations

import hashlib

from google.protobuf.timestamp_pb2 import Timestamp

from services.common.pb.platewatch.v1 import alerts_pb2, reads_pb2
from services.hotlist.matcher import Match


def alert_id(read_id: str, entry_id: str) -> str:
    """Stable id of the alert for one read hitting one entry: replaying a read yields the same id."""
    digest = hashlib.blake2b(digest_size=16)
    digest.update(read_id.encode())
    # Separator so ("ab", "c") and ("a", "bc") differ.
    digest.update(b"\x00")
    digest.update(entry_id.encode())
    return digest.hexdigest()


def build_alert(read: reads_pb2.Read, match: Match, raised_at: Timestamp) -> alerts_pb2.Alert:
    """An UNCONFIRMED alert embedding the full read (crop and thumbnail included) and the entry."""
    alert = alerts_pb2.Alert(
        alert_id=alert_id(read.read_id, match.entry.entry_id),
        hotlist_name=match.hotlist.name,
        match_kind=match.kind,
        region_mismatch=match.region_mismatch,
        stale=match.stale,
        list_age_seconds=match.list_age_seconds,
        status=alerts_pb2.ALERT_STATUS_UNCONFIRMED,
    )
    alert.read.CopyFrom(read)
    alert.entry.CopyFrom(match.entry)
    alert.raised_at.CopyFrom(raised_at)
    return alert
