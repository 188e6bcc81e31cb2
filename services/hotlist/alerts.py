"""Turning matches into `Alert` messages. Pure (no I/O).

Early alerting: the normalizer publishes an early (provisional) read of a pass as soon as it has a
confident, grammar-valid text, on READS_EARLY, and the final read (same read_id) when the pass closes,
on READS. `PassAlerts` turns both into alerts:

* early read -> one alert per matching entry, `provisional` true;
* final read -> the same alert_ids for the entries it matches (a new version of the same alert,
  `provisional` false, `raised_at` kept from the early version when this replica raised it), and a
  new alert for an entry only the final text matches;
* an entry that the early text matched and the final text does not -> a version of that alert with
  `superseded` true (and the final read): a probable misread in the early frames. It stays UNCONFIRMED:
  every alert needs a person's visual confirmation before anyone acts on it, and the flag tells them the
  pass's consensus disagrees. The final read carries the early plate (`provisional_plate`), so this works
  without state here, also after a restart.
* an early read whose final read this replica already handled (the two topics are consumed
  independently) is ignored, so a late early read cannot turn a final alert back into a provisional one.
"""

from __future__ import annotations

import hashlib
from collections import OrderedDict

from google.protobuf.timestamp_pb2 import Timestamp

from services.common.pb.platewatch.v1 import alerts_pb2, reads_pb2
from services.hotlist.matcher import HotlistIndex, Match

# Passes remembered per replica (read_ids of recent final reads and of early reads that raised alerts).
PASS_MEMORY = 200_000


def alert_id(read_id: str, entry_id: str) -> str:
    """Stable id of the alert for one read hitting one entry: replaying a read yields the same id."""
    digest = hashlib.blake2b(digest_size=16)
    digest.update(read_id.encode())
    # Separator so ("ab", "c") and ("a", "bc") differ.
    digest.update(b"\x00")
    digest.update(entry_id.encode())
    return digest.hexdigest()


def build_alert(
    read: reads_pb2.Read, match: Match, raised_at: Timestamp, *, superseded: bool = False
) -> alerts_pb2.Alert:
    """An UNCONFIRMED alert embedding the full read (crop and thumbnail included) and the entry.

    The id depends on the read_id and the entry only, so a pass's early (provisional) read and its final
    read raise the same alert for the same entry: the final one is a new version of it (provisional
    False), never a second alert. `superseded` marks the version published when the final read no longer
    matches an entry its early read matched."""
    alert = alerts_pb2.Alert(
        alert_id=alert_id(read.read_id, match.entry.entry_id),
        hotlist_name=match.hotlist.name,
        match_kind=match.kind,
        region_mismatch=match.region_mismatch,
        stale=match.stale,
        list_age_seconds=match.list_age_seconds,
        status=alerts_pb2.ALERT_STATUS_UNCONFIRMED,
        provisional=read.provisional,
        superseded=superseded,
    )
    alert.read.CopyFrom(read)
    alert.entry.CopyFrom(match.entry)
    alert.raised_at.CopyFrom(raised_at)
    return alert


def _remember(memory: OrderedDict[str, Timestamp | None], read_id: str, value: Timestamp | None) -> None:
    memory[read_id] = value
    memory.move_to_end(read_id)
    while len(memory) > PASS_MEMORY:
        memory.popitem(last=False)


class PassAlerts:
    """The alerts that early and final reads raise; see the module docstring. Memory is bounded."""

    def __init__(self) -> None:
        self._final_seen: OrderedDict[str, Timestamp | None] = OrderedDict()
        self._early_raised: OrderedDict[str, Timestamp | None] = OrderedDict()
        self.early_skipped = 0
        self.superseded = 0

    def alerts(
        self, read: reads_pb2.Read, index: HotlistIndex, now: float, raised_at: Timestamp
    ) -> list[alerts_pb2.Alert]:
        if read.provisional:
            if read.read_id in self._final_seen:
                self.early_skipped += 1
                return []
            matches = index.match_read(read, now)
            if matches:
                _remember(self._early_raised, read.read_id, raised_at)
            return [build_alert(read, match, raised_at) for match in matches]
        _remember(self._final_seen, read.read_id, None)
        first_raised = self._early_raised.pop(read.read_id, None) or raised_at
        matches = index.match_read(read, now)
        alerts = [build_alert(read, match, first_raised) for match in matches]
        early = (read.provisional_plate, read.provisional_region)
        if read.provisional_plate and early != (read.plate, read.region):
            hit = {match.entry.entry_id for match in matches}
            agency = read.camera.agency_id
            for match in index.match(read.provisional_plate, read.provisional_region, agency, now):
                if match.entry.entry_id not in hit:
                    alerts.append(build_alert(read, match, first_raised, superseded=True))
                    self.superseded += 1
        return alerts
