"""gRPC `HotlistService`: list and entry management on top of the change log.

Writes publish to the change log and reply only once this replica has applied them, so a client
that writes and then reads (on the same replica) sees its write. Until the change log has been
replayed at start every call answers UNAVAILABLE rather than serving a partial view.
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from typing import NoReturn

import grpc
from aiokafka.errors import KafkaError

from services.common.pb.platewatch.v1 import hotlist_pb2, hotlist_pb2_grpc
from services.hotlist.changelog import ChangeLog, entry_key, list_key, now_timestamp
from services.hotlist.csv_import import ParsedCsv, parse_csv
from services.hotlist.validation import PLATE_PATTERN, validate_entry

__all__ = ["PLATE_PATTERN", "HotlistServicer", "validate_entry"]

log = logging.getLogger(__name__)

# ImportCsvResponse.errors holds at most this many (error_count has the total), so a reply for a
# file of nothing but bad rows stays well under gRPC's default 4 MB message limit.
MAX_REPORTED_ERRORS = 10_000


class HotlistServicer(hotlist_pb2_grpc.HotlistServiceServicer):
    def __init__(
        self,
        changelog: ChangeLog,
        write_timeout_s: float = 10.0,
        *,
        import_max_bytes: int = 20 * 1024 * 1024,
        import_max_rows: int = 100_000,
        import_timeout_s: float = 90.0,
    ) -> None:
        self._changelog = changelog
        self._index = changelog.index
        self._write_timeout_s = write_timeout_s
        self._import_max_bytes = import_max_bytes
        self._import_max_rows = import_max_rows
        self._import_timeout_s = import_timeout_s
        # One import at a time on this replica: each computes its changes (replace!) from the index
        # as the previous one left it.
        self._import_lock = asyncio.Lock()

    async def CreateHotlist(
        self, request: hotlist_pb2.CreateHotlistRequest, context: grpc.aio.ServicerContext
    ) -> hotlist_pb2.Hotlist:
        await self._require_ready(context)
        hotlist = hotlist_pb2.Hotlist()
        hotlist.CopyFrom(request.hotlist)
        if not hotlist.name:
            await _abort(context, grpc.StatusCode.INVALID_ARGUMENT, "hotlist.name is required")
        if not hotlist.agency_id:
            await _abort(context, grpc.StatusCode.INVALID_ARGUMENT, "hotlist.agency_id is required")
        if hotlist.max_age_seconds < 0:
            await _abort(context, grpc.StatusCode.INVALID_ARGUMENT, "hotlist.max_age_seconds must be >= 0")
        if not hotlist.hotlist_id:
            hotlist.hotlist_id = uuid.uuid4().hex
        elif hotlist.hotlist_id in self._index.lists:
            await _abort(context, grpc.StatusCode.ALREADY_EXISTS, f"hotlist {hotlist.hotlist_id} exists")
        now = now_timestamp()
        hotlist.refreshed_at.CopyFrom(now)
        hotlist.entry_count = 0
        change = hotlist_pb2.HotlistChange(hotlist=hotlist, at=now)
        await self._publish(context, [(list_key(hotlist.hotlist_id), change)])
        log.info("hotlist created", extra={"hotlist_id": hotlist.hotlist_id, "agency_id": hotlist.agency_id})
        return self._with_count(hotlist)

    async def ListHotlists(
        self, request: hotlist_pb2.ListHotlistsRequest, context: grpc.aio.ServicerContext
    ) -> hotlist_pb2.ListHotlistsResponse:
        """Lists of `agency_id`, or of every agency when it is empty, ordered by name."""
        await self._require_ready(context)
        lists = [
            self._with_count(hotlist)
            for hotlist in self._index.lists.values()
            if not request.agency_id or hotlist.agency_id == request.agency_id
        ]
        lists.sort(key=lambda h: (h.name, h.hotlist_id))
        return hotlist_pb2.ListHotlistsResponse(hotlists=lists)

    async def AddEntries(
        self, request: hotlist_pb2.AddEntriesRequest, context: grpc.aio.ServicerContext
    ) -> hotlist_pb2.AddEntriesResponse:
        """All or nothing: one bad entry rejects the request, naming its index. Refreshes the list."""
        await self._require_ready(context)
        current = self._index.lists.get(request.hotlist_id)
        if current is None:
            await _abort(context, grpc.StatusCode.NOT_FOUND, f"hotlist {request.hotlist_id!r} not found")
        if not request.entries:
            await _abort(context, grpc.StatusCode.INVALID_ARGUMENT, "no entries given")
        now = now_timestamp()
        entries = []
        for position, requested in enumerate(request.entries):
            problem = validate_entry(requested)
            if requested.hotlist_id and requested.hotlist_id != request.hotlist_id:
                problem = f"hotlist_id {requested.hotlist_id!r} differs from the request's"
            existing = self._index.entries.get(requested.entry_id) if requested.entry_id else None
            if existing is not None and existing.hotlist_id != request.hotlist_id:
                problem = f"entry_id {requested.entry_id!r} belongs to another hotlist"
            if problem is not None:
                await _abort(context, grpc.StatusCode.INVALID_ARGUMENT, f"entries[{position}]: {problem}")
            entry = hotlist_pb2.HotlistEntry()
            entry.CopyFrom(requested)
            entry.entry_id = entry.entry_id or uuid.uuid4().hex
            entry.hotlist_id = current.hotlist_id
            entry.agency_id = current.agency_id
            entries.append(entry)
        refreshed = hotlist_pb2.Hotlist()
        refreshed.CopyFrom(current)
        refreshed.refreshed_at.CopyFrom(now)
        refreshed.entry_count = 0
        changes: list[tuple[str, hotlist_pb2.HotlistChange | None]] = [
            (entry_key(entry.entry_id), hotlist_pb2.HotlistChange(entry=entry, at=now)) for entry in entries
        ]
        changes.append((list_key(refreshed.hotlist_id), hotlist_pb2.HotlistChange(hotlist=refreshed, at=now)))
        await self._publish(context, changes)
        log.info("hotlist entries added", extra={"hotlist_id": current.hotlist_id, "count": len(entries)})
        return hotlist_pb2.AddEntriesResponse(entries=entries)

    async def ListEntries(
        self, request: hotlist_pb2.ListEntriesRequest, context: grpc.aio.ServicerContext
    ) -> hotlist_pb2.ListEntriesResponse:
        await self._require_ready(context)
        if request.hotlist_id not in self._index.lists:
            await _abort(context, grpc.StatusCode.NOT_FOUND, f"hotlist {request.hotlist_id!r} not found")
        return hotlist_pb2.ListEntriesResponse(entries=self._index.entries_of(request.hotlist_id))

    async def RemoveEntry(
        self, request: hotlist_pb2.RemoveEntryRequest, context: grpc.aio.ServicerContext
    ) -> hotlist_pb2.RemoveEntryResponse:
        """`removed` is false when the list holds no such entry."""
        await self._require_ready(context)
        entry = self._index.entries.get(request.entry_id)
        if entry is None or entry.hotlist_id != request.hotlist_id:
            return hotlist_pb2.RemoveEntryResponse(removed=False)
        deletion = hotlist_pb2.HotlistChange(
            entry=hotlist_pb2.HotlistEntry(entry_id=entry.entry_id, hotlist_id=entry.hotlist_id),
            deleted=True,
            at=now_timestamp(),
        )
        # The typed deletion tells other readers what happened; the null tombstone lets compaction
        # eventually drop the key altogether.
        await self._publish(
            context, [(entry_key(entry.entry_id), deletion), (entry_key(entry.entry_id), None)]
        )
        log.info("hotlist entry removed", extra={"hotlist_id": entry.hotlist_id, "entry_id": entry.entry_id})
        return hotlist_pb2.RemoveEntryResponse(removed=True)

    async def ImportCsv(
        self, request: hotlist_pb2.ImportCsvRequest, context: grpc.aio.ServicerContext
    ) -> hotlist_pb2.ImportCsvResponse:
        """Import a CSV extract (format: services/hotlist/csv_import.py) into the list.

        Bad rows and bad files are answered with status OK, `applied=false` and every error (line,
        column, message) in the body; gRPC errors are for the call (NOT_FOUND list, UNAVAILABLE...).
        Without `allow_partial` one bad row refuses the whole file; with it the good rows are
        applied unless the file as a whole is unusable (size, encoding, header, quoting). `replace`
        removes the list's entries that the file does not hold (bad rows whose record id or plate is
        still readable keep their entry). Entries whose contents are unchanged apart from `source`
        are not re-published. Everything applied goes out in one Kafka transaction together with
        the list's new `refreshed_at`."""
        await self._require_ready(context)
        current = self._index.lists.get(request.hotlist_id)
        if current is None:
            await _abort(context, grpc.StatusCode.NOT_FOUND, f"hotlist {request.hotlist_id!r} not found")
        # A big file takes a second or two to parse: off the event loop, so matching goes on.
        parsed = await asyncio.to_thread(
            parse_csv,
            request.csv,
            hotlist_id=current.hotlist_id,
            filename=request.filename,
            max_bytes=self._import_max_bytes,
            max_rows=self._import_max_rows,
        )
        response = hotlist_pb2.ImportCsvResponse(rows=parsed.rows, error_count=len(parsed.errors))
        response.errors.extend(
            hotlist_pb2.RowError(line=e.line, column=e.column, message=e.message)
            for e in parsed.errors[:MAX_REPORTED_ERRORS]
        )
        log_fields = {
            "hotlist_id": current.hotlist_id,
            "filename": request.filename,
            "rows": parsed.rows,
            "errors": len(parsed.errors),
        }
        if parsed.fatal or (parsed.errors and not request.allow_partial) or not parsed.entries:
            log.info("hotlist import refused", extra=log_fields)
            return response

        async with self._import_lock:
            await self._apply_import(context, request, parsed, response)
        log.info(
            "hotlist import applied",
            extra={
                **log_fields,
                "imported": response.imported,
                "updated": response.updated,
                "unchanged": response.unchanged,
                "removed": response.removed,
            },
        )
        return response

    async def _apply_import(
        self,
        context: grpc.aio.ServicerContext,
        request: hotlist_pb2.ImportCsvRequest,
        parsed: ParsedCsv,
        response: hotlist_pb2.ImportCsvResponse,
    ) -> None:
        """Publish the import's changes against the current index and count them in `response`."""
        current = self._index.lists.get(request.hotlist_id)
        if current is None:
            await _abort(context, grpc.StatusCode.NOT_FOUND, f"hotlist {request.hotlist_id!r} was removed")
        now = now_timestamp()
        changes: list[tuple[str, hotlist_pb2.HotlistChange | None]] = []
        for entry in parsed.entries:
            entry.agency_id = current.agency_id
            existing = self._index.entries.get(entry.entry_id)
            if existing is None:
                response.imported += 1
            elif _same_apart_from_source(existing, entry):
                response.unchanged += 1
                continue
            else:
                response.updated += 1
            changes.append((entry_key(entry.entry_id), hotlist_pb2.HotlistChange(entry=entry, at=now)))
        if request.replace:
            keep = {entry.entry_id for entry in parsed.entries} | parsed.bad_row_entry_ids
            for stale in self._index.entries_of(current.hotlist_id):
                if stale.entry_id in keep:
                    continue
                response.removed += 1
                deletion = hotlist_pb2.HotlistChange(
                    entry=hotlist_pb2.HotlistEntry(entry_id=stale.entry_id, hotlist_id=stale.hotlist_id),
                    deleted=True,
                    at=now,
                )
                changes.extend([(entry_key(stale.entry_id), deletion), (entry_key(stale.entry_id), None)])
        refreshed = hotlist_pb2.Hotlist()
        refreshed.CopyFrom(current)
        refreshed.refreshed_at.CopyFrom(now)
        refreshed.entry_count = 0
        changes.append((list_key(refreshed.hotlist_id), hotlist_pb2.HotlistChange(hotlist=refreshed, at=now)))
        await self._publish(context, changes, atomic=True)
        response.applied = True

    # ---- helpers ---------------------------------------------------------------------------------

    def _with_count(self, hotlist: hotlist_pb2.Hotlist) -> hotlist_pb2.Hotlist:
        result = hotlist_pb2.Hotlist()
        result.CopyFrom(hotlist)
        result.entry_count = self._index.entry_count(hotlist.hotlist_id)
        return result

    async def _require_ready(self, context: grpc.aio.ServicerContext) -> None:
        if not self._changelog.ready:
            await _abort(context, grpc.StatusCode.UNAVAILABLE, "hotlist change log is still being replayed")

    async def _publish(
        self,
        context: grpc.aio.ServicerContext,
        changes: list[tuple[str, hotlist_pb2.HotlistChange | None]],
        *,
        atomic: bool = False,
    ) -> None:
        try:
            if atomic:
                await self._changelog.publish_atomic(changes, apply_wait_s=self._import_timeout_s)
            else:
                await self._changelog.publish(changes, apply_wait_s=self._write_timeout_s)
        except TimeoutError:
            await _abort(
                context,
                grpc.StatusCode.DEADLINE_EXCEEDED,
                "change was published but this replica has not applied it yet",
            )
        except KafkaError as exc:
            log.warning("publishing a hotlist change failed", extra={"error": str(exc)})
            await _abort(context, grpc.StatusCode.UNAVAILABLE, f"change log unavailable: {exc}")


def _same_apart_from_source(existing: hotlist_pb2.HotlistEntry, imported: hotlist_pb2.HotlistEntry) -> bool:
    """A nightly extract under a new file name changes every entry's source and nothing else."""
    comparable = hotlist_pb2.HotlistEntry()
    comparable.CopyFrom(imported)
    comparable.source = existing.source
    return bool(comparable == existing)


async def _abort(context: grpc.aio.ServicerContext, code: grpc.StatusCode, message: str) -> NoReturn:
    await context.abort(code, message)
    raise AssertionError("unreachable: context.abort raises")
