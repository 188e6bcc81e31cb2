"""API fuzzing with schemathesis against the app's own OpenAPI schema: for every operation, generated
requests (valid and invalid) sent as an authenticated supervisor must never produce a 5xx, an
undocumented status code, a wrong content type or a body that violates the documented schema.

The app runs under uvicorn in a background thread, over the fake two-agency search and hotlist
services of conftest.py and a real AuditService (embedded ClickHouse, real Kafka for the audit
events it records), so the whole HTTP stack (routing, validation, auth, policy) is exercised.
Examples per operation are bounded (FUZZ_EXAMPLES) to keep the suite fast."""

from __future__ import annotations

import asyncio
import os
import threading
from collections.abc import Iterator
from typing import Any

import grpc
import pytest
import uvicorn
from clickhouse_connect.driver.client import Client
from hypothesis import HealthCheck, given, settings

from services.audit.grpc_service import AuditServicer
from services.audit.settings import AuditSettings
from services.common.net import free_port
from services.common.pb.platewatch.v1 import audit_pb2_grpc
from tests.governance.conftest import open_world
from tests.governance.helpers import auth_headers

schemathesis = pytest.importorskip("schemathesis", reason="schemathesis is a dev dependency")
from schemathesis import checks as st_checks  # noqa: E402
from schemathesis.specs.openapi import checks as openapi_checks  # noqa: E402

pytestmark = pytest.mark.integration  # the AuditService behind /api/v1/audit records to Kafka

FUZZ_EXAMPLES = int(os.environ.get("PLATEWATCH_FUZZ_EXAMPLES", "12"))
CHECKS = [
    st_checks.not_a_server_error,
    openapi_checks.status_code_conformance,
    openapi_checks.content_type_conformance,
    openapi_checks.response_schema_conformance,
]


class _Server:
    """The world's app under uvicorn on a free port, in its own thread and event loop."""

    def __init__(self, audit_client: Client) -> None:
        self.audit_client = audit_client
        self.port = free_port()
        self.headers: dict[str, str] = {}
        self._ready = threading.Event()
        self._stop: asyncio.Event | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._run, name="fuzz-api", daemon=True)

    def _run(self) -> None:
        try:
            asyncio.run(self._main())
        except BaseException as exc:  # surfaced to the test thread
            self._error = exc
            self._ready.set()

    async def _main(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._stop = asyncio.Event()
        audit = AuditServicer(AuditSettings())
        await audit.attach(self.audit_client)
        audit_server = grpc.aio.server()
        audit_pb2_grpc.add_AuditServiceServicer_to_server(audit, audit_server)
        audit_port = audit_server.add_insecure_port("127.0.0.1:0")
        await audit_server.start()
        async with open_world() as world:
            app = world.client.app  # type: ignore[attr-defined]
            app.state.audit_stub = audit_pb2_grpc.AuditServiceStub(
                grpc.aio.insecure_channel(f"127.0.0.1:{audit_port}")
            )
            self.headers = auth_headers(world.governance, "supervisor", "agency-a")
            config = uvicorn.Config(app, host="127.0.0.1", port=self.port, log_config=None, lifespan="off")
            server = uvicorn.Server(config)
            task = asyncio.create_task(server.serve())
            while not server.started:
                if task.done():
                    task.result()
                await asyncio.sleep(0.05)
            self._ready.set()
            await self._stop.wait()
            server.should_exit = True
            await task
        await audit_server.stop(None)
        await audit.close()

    def __enter__(self) -> _Server:
        self._thread.start()
        if not self._ready.wait(30) or self._error is not None:
            raise RuntimeError(f"fuzz API server did not start: {self._error!r}")
        return self

    def __exit__(self, *exc: Any) -> None:
        if self._loop is not None and self._stop is not None:
            self._loop.call_soon_threadsafe(self._stop.set)
        self._thread.join(30)


@pytest.fixture
def api_server(
    clickhouse_client: Client, kafka_env: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> Iterator[_Server]:
    for name, value in kafka_env.items():
        monkeypatch.setenv(name, value)
    with _Server(clickhouse_client) as server:
        yield server


def _operations(server: _Server) -> Any:
    schema = schemathesis.openapi.from_url(f"http://127.0.0.1:{server.port}/openapi.json")
    # The live stream never ends; it is covered by the alert stream tests.
    return schema.exclude(path="/api/v1/alerts/stream")


def test_fuzz_every_operation(api_server: _Server) -> None:
    schema = _operations(api_server)
    failures: list[str] = []
    operations = 0
    for result in schema.get_all_operations():
        operation = result.ok()
        operations += 1

        @settings(
            max_examples=FUZZ_EXAMPLES,
            deadline=None,
            database=None,
            suppress_health_check=list(HealthCheck),
            derandomize=True,
        )
        @given(case=operation.as_strategy())
        def run(case: Any) -> None:
            # Authorization is not a schema parameter: add it. Purpose headers stay generated.
            generated = {k: v for k, v in (case.headers or {}).items() if k.lower() != "x-api-key"}
            headers = {**generated, "Authorization": api_server.headers["Authorization"]}
            case.call_and_validate(
                base_url=f"http://127.0.0.1:{api_server.port}", headers=headers, checks=CHECKS
            )

        try:
            run()
        except Exception as exc:  # one report for all operations
            failures.append(f"{operation.method.upper()} {operation.path}: {exc}")
    assert operations >= 15
    assert failures == [], "\n\n".join(failures)
