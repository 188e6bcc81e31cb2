"""Alert workflow versions in embedded ClickHouse: the writer's rows keep who did what when, the
newest version wins (ReplacingMergeTree by updated_at), and the search service's GetAlert returns
that version with the crop put back (NOT_FOUND for unknown alerts)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta

import grpc
import pytest
from clickhouse_connect.driver.client import Client

from services.api.alert_workflow import apply_action
from services.common.health import HealthState
from services.common.net import free_port
from services.common.pb.platewatch.v1 import (
    alerts_pb2,
    common_pb2,
    hotlist_pb2,
    reads_pb2,
    search_pb2,
    search_pb2_grpc,
)
from services.search.client import SearchClient
from services.search.main import serve
from services.writer.rows import ALERTS_COLUMNS, READ_IMAGES_COLUMNS, alert_row, read_rows

NOW = datetime.now(UTC).replace(microsecond=0)
CROP = b"\xff\xd8\xff\xe0alert-crop\xff\xd9"


def _raised() -> alerts_pb2.Alert:
    read = reads_pb2.Read(
        read_id="read-1",
        plate="7XY2AB",
        camera=common_pb2.CameraInfo(camera_id="cam-1", agency_id="pd-a"),
        crop_jpeg=CROP,
        frame_thumbnail_jpeg=b"\xff\xd8frame\xff\xd9",
    )
    read.captured_at.FromDatetime(NOW - timedelta(minutes=5))
    alert = alerts_pb2.Alert(
        alert_id="alert-1",
        read=read,
        entry=hotlist_pb2.HotlistEntry(entry_id="e1", hotlist_id="h1", plate="7XY2AB"),
        hotlist_name="Stolen",
        match_kind=alerts_pb2.MATCH_KIND_EXACT,
        status=alerts_pb2.ALERT_STATUS_UNCONFIRMED,
        list_age_seconds=42,
    )
    alert.raised_at.FromDatetime(NOW - timedelta(minutes=4))
    return alert


def _ms(value: datetime) -> int:
    return int(value.timestamp() * 1000)


@pytest.fixture
async def stub(clickhouse_client: Client, monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[object]:
    port = free_port()
    monkeypatch.setenv("PLATEWATCH_SEARCH_GRPC_PORT", str(port))
    monkeypatch.setenv("PLATEWATCH_SEARCH_GRPC_HOST", "127.0.0.1")
    stop = asyncio.Event()
    task = asyncio.create_task(serve(stop, HealthState()))
    client = SearchClient(f"127.0.0.1:{port}")
    channel = grpc.aio.insecure_channel(f"127.0.0.1:{port}")
    try:
        await client.wait_serving(within=30)
        yield search_pb2_grpc.SearchServiceStub(channel)
    finally:
        stop.set()
        await channel.close()
        await client.close()
        await asyncio.wait_for(task, timeout=30)


async def test_latest_version_is_stored_and_returned_by_get_alert(
    clickhouse_client: Client, stub: object
) -> None:
    raised = _raised()
    visual = apply_action(raised, "confirm_visual", "op-1", NOW - timedelta(minutes=3), note="crop ok")
    dispatch = apply_action(visual, "confirm_dispatch", "disp-2", NOW - timedelta(minutes=2))
    done = apply_action(dispatch, "record_outcome", "op-1", NOW - timedelta(minutes=1), outcome="arrest")
    images = read_rows(raised.read, NOW).image_row
    clickhouse_client.insert("read_images", [images], column_names=list(READ_IMAGES_COLUMNS))
    # Kafka time orders the versions; the newest is inserted first, as a lagging partition could.
    versions = [(done, 4), (raised, 1), (visual, 2), (dispatch, 3)]
    for alert, second in versions:
        row = alert_row(alert, NOW, _ms(NOW - timedelta(seconds=60 - second)))
        clickhouse_client.insert("alerts", [row], column_names=list(ALERTS_COLUMNS))

    stored = clickhouse_client.query(
        "SELECT status, outcome, confirmed_by, dispatched_by, outcome_recorded_by, note, "
        "toUnixTimestamp64Milli(dispatched_at), dismissed_at FROM alerts FINAL"
    ).result_rows
    assert stored == [
        (
            "ALERT_STATUS_CONFIRMED_DISPATCH",
            "ALERT_OUTCOME_ARREST",
            "op-1",
            "disp-2",
            "op-1",
            "crop ok",
            _ms(NOW - timedelta(minutes=2)),
            None,
        )
    ]

    got = await stub.GetAlert(search_pb2.GetAlertRequest(alert_id="alert-1"), timeout=10)  # type: ignore[attr-defined]
    expected = alerts_pb2.Alert()
    expected.CopyFrom(done)
    expected.read.ClearField("frame_thumbnail_jpeg")
    assert got == expected
    assert got.read.crop_jpeg == CROP

    with pytest.raises(grpc.aio.AioRpcError) as missing:
        await stub.GetAlert(search_pb2.GetAlertRequest(alert_id="nope"), timeout=10)  # type: ignore[attr-defined]
    assert missing.value.code() == grpc.StatusCode.NOT_FOUND


async def test_alert_stored_before_the_workflow_columns_is_rebuilt(
    clickhouse_client: Client, stub: object
) -> None:
    raised = _raised()
    row = dict(zip(ALERTS_COLUMNS, alert_row(raised, NOW, _ms(NOW)), strict=True))
    row["alert_pb"] = b""
    clickhouse_client.insert("alerts", [list(row.values())], column_names=list(row))
    got = await stub.GetAlert(search_pb2.GetAlertRequest(alert_id="alert-1"), timeout=10)  # type: ignore[attr-defined]
    assert (got.alert_id, got.read.read_id, got.read.plate, got.entry.entry_id, got.hotlist_name) == (
        "alert-1",
        "read-1",
        "7XY2AB",
        "e1",
        "Stolen",
    )
    assert got.status == alerts_pb2.ALERT_STATUS_UNCONFIRMED
    assert got.raised_at == raised.raised_at
    assert got.read.camera.agency_id == "pd-a"
