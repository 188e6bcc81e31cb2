"""gRPC connections to the search and hotlist services, and how their failures become HTTP errors."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc

from services.api.settings import ApiSettings
from services.common.pb.platewatch.v1 import hotlist_pb2, hotlist_pb2_grpc, search_pb2, search_pb2_grpc

log = logging.getLogger(__name__)

StubT = TypeVar("StubT")

# gRPC status -> HTTP status. Anything not listed is a failure of the backend: 502.
HTTP_STATUS_FOR_GRPC: dict[grpc.StatusCode, int] = {
    grpc.StatusCode.INVALID_ARGUMENT: 422,
    grpc.StatusCode.OUT_OF_RANGE: 422,
    grpc.StatusCode.NOT_FOUND: 404,
    grpc.StatusCode.ALREADY_EXISTS: 409,
    grpc.StatusCode.FAILED_PRECONDITION: 409,
    grpc.StatusCode.PERMISSION_DENIED: 403,
    grpc.StatusCode.UNAUTHENTICATED: 401,
    grpc.StatusCode.RESOURCE_EXHAUSTED: 429,
    grpc.StatusCode.UNAVAILABLE: 503,
    grpc.StatusCode.DEADLINE_EXCEEDED: 504,
}


class BackendError(Exception):
    """A gRPC call to a backend service failed; carries enough to build a useful HTTP error."""

    def __init__(self, backend: str, target: str, method: str, code: grpc.StatusCode, details: str) -> None:
        super().__init__(f"{backend} {method}: {code.name}: {details}")
        self.backend = backend
        self.target = target
        self.method = method
        self.code = code
        self.details = details

    @property
    def http_status(self) -> int:
        return HTTP_STATUS_FOR_GRPC.get(self.code, 502)

    @property
    def detail(self) -> str:
        """Human-readable reason for the HTTP body: the backend's own message for client errors,
        where to look for availability problems."""
        if self.code == grpc.StatusCode.UNAVAILABLE:
            return f"{self.backend} service unavailable at {self.target}: {self.details}"
        if self.code == grpc.StatusCode.DEADLINE_EXCEEDED:
            return f"{self.backend} service at {self.target} did not answer {self.method} in time"
        if self.http_status == 502:
            return f"{self.backend} service failed {self.method}: {self.code.name}: {self.details}"
        return self.details or self.code.name.lower()


@dataclass
class Backend(Generic[StubT]):
    """One gRPC service: its channel, generated stub and health check."""

    name: str
    target: str
    channel: grpc.aio.Channel
    stub: StubT
    timeout_seconds: float
    # The service name the server may register with grpc.health; "" is the whole server.
    health_service: str = ""
    _health: health_pb2_grpc.HealthStub = field(init=False)

    def __post_init__(self) -> None:
        self._health = health_pb2_grpc.HealthStub(self.channel)

    async def call(self, method: str, request: Any) -> Any:
        """Await the stub's `method(request)` with the configured deadline; gRPC failures raise
        BackendError."""
        try:
            return await getattr(self.stub, method)(request, timeout=self.timeout_seconds)
        except grpc.aio.AioRpcError as exc:
            raise BackendError(self.name, self.target, method, exc.code(), exc.details() or "") from exc

    async def healthy(self, timeout_seconds: float = 2.0) -> bool:
        """True when grpc.health reports SERVING for the service (or, if the server does not
        register it by name, for the server as a whole)."""
        for service in (self.health_service, ""):
            try:
                reply = await self._health.Check(
                    health_pb2.HealthCheckRequest(service=service), timeout=timeout_seconds
                )
            except grpc.aio.AioRpcError as exc:
                if exc.code() == grpc.StatusCode.NOT_FOUND and service:
                    continue
                return False
            return bool(reply.status == health_pb2.HealthCheckResponse.SERVING)
        return False


@dataclass
class Backends:
    """The API's gRPC connections. Create inside a running event loop; `close()` when done."""

    search: Backend[search_pb2_grpc.SearchServiceStub]
    hotlist: Backend[hotlist_pb2_grpc.HotlistServiceStub]

    @classmethod
    def connect(cls, settings: ApiSettings) -> Backends:
        """Open (lazily connecting) channels to the configured targets."""
        search_channel = grpc.aio.insecure_channel(settings.search_grpc_target)
        hotlist_channel = grpc.aio.insecure_channel(settings.hotlist_grpc_target)
        return cls(
            search=Backend(
                name="search",
                target=settings.search_grpc_target,
                channel=search_channel,
                stub=search_pb2_grpc.SearchServiceStub(search_channel),
                timeout_seconds=settings.grpc_timeout_seconds,
                health_service=search_pb2.DESCRIPTOR.services_by_name["SearchService"].full_name,
            ),
            hotlist=Backend(
                name="hotlist",
                target=settings.hotlist_grpc_target,
                channel=hotlist_channel,
                stub=hotlist_pb2_grpc.HotlistServiceStub(hotlist_channel),
                timeout_seconds=settings.grpc_timeout_seconds,
                health_service=hotlist_pb2.DESCRIPTOR.services_by_name["HotlistService"].full_name,
            ),
        )

    async def close(self) -> None:
        await self.search.channel.close()
        await self.hotlist.channel.close()
