"""Async client for the search gRPC service, for the API and tests."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Sequence
from datetime import datetime
from types import TracebackType

import grpc
from google.protobuf.timestamp_pb2 import Timestamp
from grpc_health.v1 import health_pb2, health_pb2_grpc

from services.common.pb.platewatch.v1 import search_pb2, search_pb2_grpc

GRPC_SERVICE_NAME = search_pb2.DESCRIPTOR.services_by_name["SearchService"].full_name


def _timestamp(value: datetime) -> Timestamp:
    ts = Timestamp()
    ts.FromDatetime(value)
    return ts


class SearchClient:
    """`SearchClient("127.0.0.1:50051")`; use as `async with` or call `close()`.

    RPC errors surface as `grpc.aio.AioRpcError` (INVALID_ARGUMENT for a bad pattern or page token,
    UNAVAILABLE while storage is not ready), except `get_read_image` which returns None for
    NOT_FOUND."""

    def __init__(self, target: str, *, timeout: float = 10.0) -> None:
        self.target = target
        self.timeout = timeout
        self._channel = grpc.aio.insecure_channel(target)
        self._stub = search_pb2_grpc.SearchServiceStub(self._channel)
        self._health = health_pb2_grpc.HealthStub(self._channel)

    async def __aenter__(self) -> SearchClient:
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.close()

    async def close(self) -> None:
        await self._channel.close()

    async def search_reads(
        self,
        plate: str,
        *,
        agency_ids: Sequence[str] = (),
        camera_ids: Sequence[str] = (),
        since: datetime | None = None,
        until: datetime | None = None,
        min_confidence: float = 0.0,
        page_size: int = 0,
        page_token: str = "",
    ) -> search_pb2.SearchReadsResponse:
        """One page, newest first. `plate` is exact or a pattern (`?` one char, `*` any run);
        `since` inclusive, `until` exclusive (aware datetimes); page_size 0 = server default."""
        request = search_pb2.PlateQuery(
            plate=plate,
            agency_ids=list(agency_ids),
            camera_ids=list(camera_ids),
            min_confidence=min_confidence,
            page_size=page_size,
            page_token=page_token,
        )
        if since is not None:
            getattr(request, "from").CopyFrom(_timestamp(since))
        if until is not None:
            request.to.CopyFrom(_timestamp(until))
        response: search_pb2.SearchReadsResponse = await self._stub.SearchReads(request, timeout=self.timeout)
        return response

    async def iter_reads(
        self,
        plate: str,
        *,
        agency_ids: Sequence[str] = (),
        camera_ids: Sequence[str] = (),
        since: datetime | None = None,
        until: datetime | None = None,
        min_confidence: float = 0.0,
        page_size: int = 0,
    ) -> AsyncIterator[search_pb2.StoredRead]:
        """Every matching read, newest first, following page tokens to the end."""
        token = ""
        while True:
            page = await self.search_reads(
                plate,
                agency_ids=agency_ids,
                camera_ids=camera_ids,
                since=since,
                until=until,
                min_confidence=min_confidence,
                page_size=page_size,
                page_token=token,
            )
            for read in page.reads:
                yield read
            token = page.next_page_token
            if not token:
                return

    async def count_reads(self, agency_ids: Sequence[str] = ()) -> search_pb2.CountReadsResponse:
        """Rows stored (`.reads`) and distinct read_ids (`.distinct_read_ids`)."""
        response: search_pb2.CountReadsResponse = await self._stub.CountReads(
            search_pb2.CountReadsRequest(agency_ids=list(agency_ids)), timeout=self.timeout
        )
        return response

    async def get_read_image(
        self, read_id: str, kind: str = "crop", agency_ids: Sequence[str] = ()
    ) -> bytes | None:
        """The JPEG bytes of a read's "crop" or "frame", or None when the read has none stored or
        belongs to none of `agency_ids` (required, contract 2)."""
        try:
            response = await self._stub.GetReadImage(
                search_pb2.GetReadImageRequest(read_id=read_id, kind=kind, agency_ids=list(agency_ids)),
                timeout=self.timeout,
            )
        except grpc.aio.AioRpcError as exc:
            if exc.code() == grpc.StatusCode.NOT_FOUND:
                return None
            raise
        return bytes(response.jpeg)

    async def serving(self) -> bool:
        """Whether the service reports SERVING on grpc.health.v1 (storage open and migrated)."""
        try:
            response = await self._health.Check(
                health_pb2.HealthCheckRequest(service=GRPC_SERVICE_NAME), timeout=self.timeout
            )
        except grpc.aio.AioRpcError:
            return False
        return bool(response.status == health_pb2.HealthCheckResponse.SERVING)

    async def wait_serving(self, within: float = 60.0) -> None:
        """Wait until `serving()`; TimeoutError after `within` seconds."""
        deadline = time.monotonic() + within
        while not await self.serving():
            if time.monotonic() > deadline:
                raise TimeoutError(f"search at {self.target} not serving after {within}s")
            await asyncio.sleep(0.2)
