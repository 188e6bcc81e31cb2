"""Async client of the hotlist gRPC service, for tools, tests and other services.

    async with HotlistClient("localhost:50052") as client:
        hotlist = await client.create_hotlist(name="Stolen", agency_id="pd-1")
        await client.add_entry(hotlist.hotlist_id, plate="ABC123", reason="stolen_vehicle")

Errors surface as `grpc.aio.AioRpcError` (INVALID_ARGUMENT, NOT_FOUND, UNAVAILABLE, ...).
"""

from __future__ import annotations

import asyncio
from types import TracebackType

import grpc
from google.protobuf.timestamp_pb2 import Timestamp
from grpc_health.v1 import health_pb2, health_pb2_grpc

from services.common.pb.platewatch.v1 import hotlist_pb2, hotlist_pb2_grpc

DEFAULT_TIMEOUT_S = 15.0
# An import of a large extract publishes and applies up to 100 000 changes.
IMPORT_TIMEOUT_S = 120.0
SERVICE_NAME = hotlist_pb2.DESCRIPTOR.services_by_name["HotlistService"].full_name


def reason_code(reason: str | int) -> hotlist_pb2.ReasonCode:
    """`"stolen_vehicle"` (or `"REASON_CODE_STOLEN_VEHICLE"`, or the number) -> ReasonCode."""
    if isinstance(reason, int):
        return hotlist_pb2.ReasonCode.Value(hotlist_pb2.ReasonCode.Name(reason))
    name = reason.strip().upper()
    if not name.startswith("REASON_CODE_"):
        name = f"REASON_CODE_{name}"
    try:
        return hotlist_pb2.ReasonCode.Value(name)
    except ValueError:
        choices = [n.removeprefix("REASON_CODE_").lower() for n in hotlist_pb2.ReasonCode.keys()]
        raise ValueError(f"unknown reason {reason!r}; choose from {choices}") from None


class HotlistClient:
    """Thin async wrapper around `HotlistServiceStub`; one channel per client, `close()` when done."""

    def __init__(self, target: str, timeout_s: float = DEFAULT_TIMEOUT_S) -> None:
        self.target = target
        self._timeout_s = timeout_s
        self._channel = grpc.aio.insecure_channel(target)
        self.stub = hotlist_pb2_grpc.HotlistServiceStub(self._channel)

    async def __aenter__(self) -> HotlistClient:
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.close()

    async def close(self) -> None:
        await self._channel.close()

    async def wait_serving(self, timeout_s: float = 60.0) -> None:
        """Wait until the service's gRPC health check says SERVING (change log replayed).
        TimeoutError otherwise."""
        health_stub = health_pb2_grpc.HealthStub(self._channel)
        request = health_pb2.HealthCheckRequest(service=SERVICE_NAME)
        async with asyncio.timeout(timeout_s):
            while True:
                try:
                    response = await health_stub.Check(request, timeout=2.0)
                    if response.status == health_pb2.HealthCheckResponse.SERVING:
                        return
                except grpc.aio.AioRpcError as exc:
                    if exc.code() not in (grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.DEADLINE_EXCEEDED):
                        raise
                await asyncio.sleep(0.2)

    async def create_hotlist(
        self,
        name: str,
        agency_id: str,
        *,
        max_age_seconds: int = 0,
        fuzzy_confusables: bool = True,
        hotlist_id: str = "",
    ) -> hotlist_pb2.Hotlist:
        hotlist = hotlist_pb2.Hotlist(
            hotlist_id=hotlist_id,
            name=name,
            agency_id=agency_id,
            max_age_seconds=max_age_seconds,
            fuzzy_confusables=fuzzy_confusables,
        )
        request = hotlist_pb2.CreateHotlistRequest(hotlist=hotlist)
        return await self.stub.CreateHotlist(request, timeout=self._timeout_s)

    async def list_hotlists(self, agency_id: str = "") -> list[hotlist_pb2.Hotlist]:
        """Lists of `agency_id`, or of every agency when empty."""
        request = hotlist_pb2.ListHotlistsRequest(agency_id=agency_id)
        response = await self.stub.ListHotlists(request, timeout=self._timeout_s)
        return list(response.hotlists)

    async def add_entries(
        self, hotlist_id: str, entries: list[hotlist_pb2.HotlistEntry]
    ) -> list[hotlist_pb2.HotlistEntry]:
        request = hotlist_pb2.AddEntriesRequest(hotlist_id=hotlist_id, entries=entries)
        response = await self.stub.AddEntries(request, timeout=self._timeout_s)
        return list(response.entries)

    async def add_entry(
        self,
        hotlist_id: str,
        *,
        plate: str,
        reason: str | int = "stolen_vehicle",
        priority: int = 1,
        region: str = "",
        notes: str = "",
        source: str = "",
        vehicle_description: str = "",
        agency_id: str = "",
        expires_at: Timestamp | None = None,
        entry_id: str = "",
    ) -> hotlist_pb2.HotlistEntry:
        """Add one entry; `agency_id` is informational (the service stamps the list's agency)."""
        entry = hotlist_pb2.HotlistEntry(
            entry_id=entry_id,
            hotlist_id=hotlist_id,
            plate=plate,
            region=region,
            reason=reason_code(reason),
            priority=priority,
            source=source,
            agency_id=agency_id,
            notes=notes,
            vehicle_description=vehicle_description,
        )
        if expires_at is not None:
            entry.expires_at.CopyFrom(expires_at)
        [added] = await self.add_entries(hotlist_id, [entry])
        return added

    async def list_entries(self, hotlist_id: str) -> list[hotlist_pb2.HotlistEntry]:
        request = hotlist_pb2.ListEntriesRequest(hotlist_id=hotlist_id)
        response = await self.stub.ListEntries(request, timeout=self._timeout_s)
        return list(response.entries)

    async def remove_entry(self, hotlist_id: str, entry_id: str) -> bool:
        request = hotlist_pb2.RemoveEntryRequest(hotlist_id=hotlist_id, entry_id=entry_id)
        response = await self.stub.RemoveEntry(request, timeout=self._timeout_s)
        return response.removed

    async def import_csv(
        self,
        hotlist_id: str,
        csv: bytes,
        *,
        filename: str = "",
        allow_partial: bool = False,
        replace: bool = False,
        timeout_s: float = IMPORT_TIMEOUT_S,
    ) -> hotlist_pb2.ImportCsvResponse:
        """Import a CSV extract. Bad rows come back in `errors` with `applied=false` (or, with
        `allow_partial`, alongside the applied good rows); they do not raise."""
        request = hotlist_pb2.ImportCsvRequest(
            hotlist_id=hotlist_id, filename=filename, csv=csv, allow_partial=allow_partial, replace=replace
        )
        return await self.stub.ImportCsv(request, timeout=timeout_s)
