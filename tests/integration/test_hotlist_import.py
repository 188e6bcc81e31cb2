"""CSV import into the hotlist service against a real Kafka broker: all-or-nothing, partial imports,
replace, freshness (refreshed_at, STALE alerts), over gRPC, REST and the CLI."""

from __future__ import annotations

import asyncio
import os
import sys
import time
import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer

from services.api.app import create_app
from services.api.backends import Backends
from services.api.settings import ApiSettings
from services.common.net import free_port
from services.common.pb.platewatch.v1 import alerts_pb2, common_pb2, hotlist_pb2, reads_pb2
from services.common.topics import READS
from services.hotlist.client import HotlistClient
from services.hotlist.csv_import import stable_entry_id
from services.hotlist.matcher import epoch_seconds
from tests.fixtures.hotlist_service import RunningHotlist
from tests.governance.helpers import auth_headers, make_governance

AGENCY = "pd-import"
WAIT_S = 60.0

# Lines 3 and 5 are bad: an unknown reason and a plate with a character no plate has.
TWO_BAD_ROWS = (
    b"nic,plate,state,reason,notes\n"
    b"N1,AAA111,CA,V,first\n"
    b"N2,BBB222,CA,STOLEN,\n"
    b"N3,CCC333,CA,LP,\n"
    b"N4,DD#444,CA,W,\n"
)


@pytest.fixture
async def client(hotlist: RunningHotlist) -> AsyncIterator[HotlistClient]:
    hotlist_client = await hotlist.start()
    try:
        yield hotlist_client
    finally:
        await hotlist_client.close()


def refreshed_at(hotlist: hotlist_pb2.Hotlist) -> float:
    return epoch_seconds(hotlist.refreshed_at)


async def only_list(client: HotlistClient, hotlist_id: str) -> hotlist_pb2.Hotlist:
    [found] = [h for h in await client.list_hotlists(AGENCY) if h.hotlist_id == hotlist_id]
    return found


async def test_bad_rows_refuse_the_file_unless_partial_imports_are_allowed(client: HotlistClient) -> None:
    created = await client.create_hotlist("Import", AGENCY)

    refused = await client.import_csv(created.hotlist_id, TWO_BAD_ROWS, filename="ncic.csv")
    assert not refused.applied
    assert [(e.line, e.column) for e in refused.errors] == [(3, "reason"), (5, "plate")]
    assert refused.error_count == 2 and refused.rows == 4
    assert (refused.imported, refused.updated, refused.removed) == (0, 0, 0)
    # Nothing applied: no entries, and the list was not marked refreshed.
    assert await client.list_entries(created.hotlist_id) == []
    assert refreshed_at(await only_list(client, created.hotlist_id)) == refreshed_at(created)

    partial = await client.import_csv(
        created.hotlist_id, TWO_BAD_ROWS, filename="ncic.csv", allow_partial=True
    )
    assert partial.applied
    assert [e.line for e in partial.errors] == [3, 5]
    assert (partial.imported, partial.updated, partial.unchanged, partial.removed) == (2, 0, 0, 0)
    entries = await client.list_entries(created.hotlist_id)
    assert sorted(e.plate for e in entries) == ["AAA111", "CCC333"]
    first = next(e for e in entries if e.plate == "AAA111")
    assert first.entry_id == stable_entry_id(created.hotlist_id, "record:N1")
    assert first.source == "csv:ncic.csv" and first.agency_id == AGENCY and first.notes == "first"
    assert first.reason == hotlist_pb2.REASON_CODE_STOLEN_VEHICLE and first.priority == 3
    assert refreshed_at(await only_list(client, created.hotlist_id)) > refreshed_at(created)


async def test_reimport_updates_instead_of_duplicating_and_replace_removes_missing_entries(
    hotlist: RunningHotlist, client: HotlistClient
) -> None:
    created = await client.create_hotlist("Nightly", AGENCY)
    manual = await client.add_entry(created.hotlist_id, plate="MAN001", reason="wanted_person")
    full = b"nic,plate,reason\nN1,AAA111,V\nN2,BBB222,LP\nN3,CCC333,W\n"

    first = await client.import_csv(created.hotlist_id, full, filename="day1.csv")
    assert first.applied and (first.imported, first.updated, first.unchanged) == (3, 0, 0)
    after_first = await only_list(client, created.hotlist_id)
    assert after_first.entry_count == 4

    # The same extract under another name: nothing new, nothing duplicated, but the list is refreshed.
    again = await client.import_csv(created.hotlist_id, full, filename="day2.csv")
    assert again.applied and (again.imported, again.updated, again.unchanged) == (0, 0, 3)
    after_again = await only_list(client, created.hotlist_id)
    assert after_again.entry_count == 4
    assert refreshed_at(after_again) > refreshed_at(after_first)

    # Full extract without N3 (and without the manual entry), N1 changed: replace removes both.
    smaller = b"nic,plate,reason,notes\nN1,AAA111,V,now armed\nN2,BBB222,LP,\n"
    replaced = await client.import_csv(created.hotlist_id, smaller, filename="day3.csv", replace=True)
    assert replaced.applied
    assert (replaced.imported, replaced.updated, replaced.unchanged, replaced.removed) == (0, 1, 1, 2)
    expected = {("AAA111", "now armed"), ("BBB222", "")}
    assert {(e.plate, e.notes) for e in await client.list_entries(created.hotlist_id)} == expected

    # A refused replacing import removes nothing.
    refused = await client.import_csv(
        created.hotlist_id, b"nic,plate,reason\nN1,AAA111,nonsense\n", replace=True
    )
    assert not refused.applied and [e.line for e in refused.errors] == [2]
    assert len(await client.list_entries(created.hotlist_id)) == 2

    # A fresh replica rebuilds exactly this from the change log (the transactions were committed).
    await client.close()
    await hotlist.stop()
    fresh = await hotlist.start()
    try:
        assert {(e.plate, e.notes) for e in await fresh.list_entries(created.hotlist_id)} == expected
        assert manual.entry_id not in {e.entry_id for e in await fresh.list_entries(created.hotlist_id)}
        # And a second replacing import with bad rows in partial mode keeps the bad rows' entries.
        partial = await fresh.import_csv(
            created.hotlist_id,
            b"nic,plate,reason\nN1,AAA111,typo\nN9,ZZZ999,V\n",
            allow_partial=True,
            replace=True,
        )
        assert partial.applied and (partial.imported, partial.removed) == (1, 1)
        assert {e.plate for e in await fresh.list_entries(created.hotlist_id)} == {"AAA111", "ZZZ999"}
    finally:
        await fresh.close()


async def alerts_for_read(
    producer: AIOKafkaProducer, consumer: AIOKafkaConsumer, prefix: str, plate: str, count: int
) -> list[alerts_pb2.Alert]:
    """Publish a read of `plate` and return its first `count` alerts."""
    read = reads_pb2.Read(
        read_id=uuid.uuid4().hex,
        plate=plate,
        region="CA",
        confidence=0.9,
        camera=common_pb2.CameraInfo(camera_id="cam-1", agency_id=AGENCY),
    )
    read.captured_at.GetCurrentTime()
    await producer.send_and_wait(
        READS.name(prefix), key=read.read_id.encode(), value=read.SerializeToString()
    )
    received: list[alerts_pb2.Alert] = []
    async with asyncio.timeout(WAIT_S):
        while len(received) < count:
            record = await consumer.getone()
            alert = alerts_pb2.Alert.FromString(record.value)
            if alert.read.read_id == read.read_id:
                received.append(alert)
    return received


async def test_alerts_from_a_list_older_than_its_max_age_are_stale_until_it_is_reimported(
    client: HotlistClient,
    kafka_producer: AIOKafkaProducer,
    alerts_reader: AIOKafkaConsumer,
    topic_prefix: str,
) -> None:
    max_age_s = 3
    ageing = await client.create_hotlist("Ageing", AGENCY, max_age_seconds=max_age_s)
    fresh = await client.create_hotlist("Fresh", AGENCY, max_age_seconds=3600)
    extract = b"plate,reason\nSTL001,V\n"
    for hotlist_id in (ageing.hotlist_id, fresh.hotlist_id):
        assert (await client.import_csv(hotlist_id, extract)).applied
    imported_at = refreshed_at(await only_list(client, ageing.hotlist_id))
    # Wait for the clock (not a guess): the list is stale once max_age has passed since the import.
    await asyncio.sleep(max(0.0, imported_at + max_age_s + 0.5 - time.time()))

    by_list = {
        a.entry.hotlist_id: a
        for a in await alerts_for_read(kafka_producer, alerts_reader, topic_prefix, "STL001", 2)
    }
    assert by_list[ageing.hotlist_id].stale
    assert by_list[ageing.hotlist_id].list_age_seconds >= max_age_s
    assert not by_list[fresh.hotlist_id].stale

    # Re-importing the extract refreshes the list: its alerts are no longer stale.
    assert (await client.import_csv(ageing.hotlist_id, extract)).applied
    assert refreshed_at(await only_list(client, ageing.hotlist_id)) > imported_at + max_age_s
    by_list = {
        a.entry.hotlist_id: a
        for a in await alerts_for_read(kafka_producer, alerts_reader, topic_prefix, "STL001", 2)
    }
    assert not by_list[ageing.hotlist_id].stale
    assert by_list[ageing.hotlist_id].list_age_seconds < max_age_s


async def test_rest_import_answers_422_with_row_errors_and_200_with_the_summary(
    hotlist: RunningHotlist, client: HotlistClient
) -> None:
    created = await client.create_hotlist("REST", AGENCY)
    settings = ApiSettings(hotlist_grpc_target=hotlist.target, search_grpc_target=f"127.0.0.1:{free_port()}")
    backends = Backends.connect(settings)
    governance = make_governance(settings)
    app = create_app(settings, backends=backends, alert_consumer_ready=lambda: True, governance=governance)
    url = f"/api/v1/hotlists/{created.hotlist_id}/import"
    headers = {"Content-Type": "text/csv"}
    auth = auth_headers(governance, "admin", AGENCY)
    try:
        async with httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app), base_url="http://api", headers=auth
        ) as http:
            refused = await http.post(url, content=TWO_BAD_ROWS, headers=headers)
            assert refused.status_code == 422, refused.text
            body = refused.json()
            assert body["applied"] is False and body["error_count"] == 2
            assert [(e["line"], e["column"]) for e in body["errors"]] == [(3, "reason"), (5, "plate")]
            assert await client.list_entries(created.hotlist_id) == []

            applied = await http.post(
                url,
                content=TWO_BAD_ROWS,
                headers=headers,
                params={"allow_partial": "true", "filename": "x.csv"},
            )
            assert applied.status_code == 200, applied.text
            summary = applied.json()
            assert summary["applied"] is True and summary["imported"] == 2
            assert [e["line"] for e in summary["errors"]] == [3, 5]

            replaced = await http.post(
                url,
                content=b"nic,plate,state,reason\nN3,CCC333,CA,LP\n",
                headers=headers,
                params={"replace": "true"},
            )
            assert replaced.status_code == 200, replaced.text
            assert replaced.json()["removed"] == 1 and replaced.json()["unchanged"] == 1
            assert [e.plate for e in await client.list_entries(created.hotlist_id)] == ["CCC333"]

            missing = await http.post("/api/v1/hotlists/no-such-list/import", content=b"plate,reason\nA1,V\n")
            assert missing.status_code == 404
            schema = (await http.get("/openapi.json")).json()
            assert (
                "text/csv"
                in schema["paths"]["/api/v1/hotlists/{hotlist_id}/import"]["post"]["requestBody"]["content"]
            )
    finally:
        await backends.close()


async def test_cli_import_prints_row_errors_and_fails_when_nothing_was_applied(
    hotlist: RunningHotlist, client: HotlistClient, tmp_path: Path
) -> None:
    created = await client.create_hotlist("CLI", AGENCY)
    extract = tmp_path / "extract.csv"
    extract.write_bytes(TWO_BAD_ROWS)
    env = {**os.environ, "PLATEWATCH_HOTLIST_GRPC_TARGET": hotlist.target}

    async def platewatch(*args: str) -> tuple[int, str]:
        process = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "services.cli",
            "hotlist",
            "import",
            "--list",
            created.hotlist_id,
            str(extract),
            *args,
            env=env,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.STDOUT,
        )
        stdout, _ = await asyncio.wait_for(process.communicate(), WAIT_S)
        assert process.returncode is not None
        return process.returncode, stdout.decode()

    code, output = await platewatch()
    assert code == 1, output
    lines = output.splitlines()
    assert lines[0].startswith("nothing applied")
    assert lines[1].startswith("line 3: reason: unknown reason 'STOLEN'")
    assert lines[2].startswith("line 5: plate: ")

    code, output = await platewatch("--allow-partial")
    assert code == 0, output
    assert "2 imported" in output.splitlines()[0]
    assert len(await client.list_entries(created.hotlist_id)) == 2
