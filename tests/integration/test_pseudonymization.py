"""Pseudonymization of reads end to end (issue 6): the writer and the search service running in
this process on embedded ClickHouse, reads and alerts through real Kafka, the audit component
chaining the retention job's records.

- A pseudonymizing policy: the plate of a read is stored only as its `pt1:` token (nowhere in clear
  in reads, plates, reads_by_camera); exact search, timeline and visits find it and show the plate;
  partial and fuzzy searches do not; a read stored in clear (another agency, before
  pseudonymization) is found beside it; a hit keeps its plate through its alert.
- Crypto-shredding with an advanced clock: once the key period is destroyed (audited, reported),
  the token rows still stored can no longer be found by plate, the hit still can, and a late read
  of the shredded period is not stored.
- Without pseudonymization the plate and candidate texts are stored as read, as before.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import grpc
import pytest
import yaml
from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient
from clickhouse_connect.driver.client import Client
from typer.testing import CliRunner

from services.audit import store
from services.audit.client import AuditRecorder
from services.audit.settings import AuditSettings
from services.audit.verify import verify_stored
from services.cli import app
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
from services.common.topics import ALERTS, READS
from services.governance.policy import POLICIES_DIR, Policy, load_policy
from services.governance.pseudonymize import PeriodKeyStore, is_token
from services.retention.job import retention_report, run_retention, shred_expired_keys
from services.search.client import SearchClient
from services.search.main import serve as serve_search
from services.writer.main import CONSUMER_GROUP
from services.writer.main import serve as serve_writer
from tests.governance_audit.conftest import RunningAudit, audit_component, audit_env  # noqa: F401
from tests.integration.test_writer import produce
from tests.waiting import until

pytestmark = pytest.mark.integration

PLATE = "PSN4321"
HIT_PLATE = "HIT7777"
CLEAR_PLATE_READ = "b-clear"


@pytest.fixture
def policy(request: pytest.FixtureRequest, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Policy:
    """The default profile (non-hit reads 30 days) with pseudonymization on (or off when the test
    is parametrized with False), keys per day. Set before the components start: they read it then."""
    raw = yaml.safe_load((POLICIES_DIR / "default.yaml").read_text())
    raw["pseudonymization"] = {"enabled": getattr(request, "param", True), "key_rotation": "1d"}
    path = tmp_path / "policy.yaml"
    path.write_text(yaml.safe_dump(raw))
    monkeypatch.setenv("PLATEWATCH_POLICY_FILE", str(path))
    return load_policy(path)


def make_read(read_id: str, plate: str, agency: str, captured_at: datetime) -> reads_pb2.Read:
    read = reads_pb2.Read(
        read_id=read_id,
        plate=plate,
        region="US-CA",
        confidence=0.91,
        camera=common_pb2.CameraInfo(camera_id="cam-7", agency_id=agency, lat=37.5, lon=-122.25),
        direction="northbound",
        crop_jpeg=b"\xff\xd8\xff\xe0crop",
        frames=2,
        candidates=[
            common_pb2.TextCandidate(text=plate, confidence=0.91),
            common_pb2.TextCandidate(text=plate[:-1] + "I", confidence=0.05),
        ],
    )
    read.captured_at.FromDatetime(captured_at)
    return read


@dataclass
class Storage:
    """The storage components of this process: writer and search (plus the audit component)."""

    db: Client
    search: SearchClient
    stub: search_pb2_grpc.SearchServiceStub
    bootstrap: str
    prefix: str
    keys_dir: Path


@pytest.fixture
async def storage(
    clickhouse_client: Client,
    audit_env: dict[str, str],  # noqa: F811 (a fixture imported above)
    policy: Policy,
    monkeypatch: pytest.MonkeyPatch,
) -> AsyncIterator[Storage]:
    port = free_port()
    monkeypatch.setenv("PLATEWATCH_SEARCH_GRPC_PORT", str(port))
    monkeypatch.setenv("PLATEWATCH_SEARCH_GRPC_HOST", "127.0.0.1")
    monkeypatch.setenv("PLATEWATCH_BATCH_MAX_SECONDS", "0.3")
    stop = asyncio.Event()
    tasks = [
        asyncio.create_task(serve_writer(stop, HealthState())),
        asyncio.create_task(serve_search(stop, HealthState())),
    ]
    client = SearchClient(f"127.0.0.1:{port}")
    channel = grpc.aio.insecure_channel(f"127.0.0.1:{port}")
    try:
        await client.wait_serving(within=60)
        yield Storage(
            clickhouse_client,
            client,
            search_pb2_grpc.SearchServiceStub(channel),
            audit_env["PLATEWATCH_KAFKA_BOOTSTRAP"],
            audit_env["PLATEWATCH_TOPIC_PREFIX"],
            Path(audit_env["PLATEWATCH_VAR_DIR"]) / "pseudonym-keys",
        )
    finally:
        stop.set()
        await client.close()
        await channel.close()
        await asyncio.wait_for(asyncio.gather(*tasks), timeout=60)


async def send_reads(storage: Storage, reads: list[reads_pb2.Read]) -> None:
    await produce(
        storage.bootstrap, READS, storage.prefix, [(r.read_id.encode(), r.SerializeToString()) for r in reads]
    )


async def send_alert(storage: Storage, read: reads_pb2.Read) -> None:
    alert = alerts_pb2.Alert(
        alert_id=f"alert-{read.read_id}",
        read=read,
        entry=hotlist_pb2.HotlistEntry(entry_id="e-1", hotlist_id="list-1", plate=read.plate),
        hotlist_name="Stolen",
        match_kind=alerts_pb2.MATCH_KIND_EXACT,
        status=alerts_pb2.ALERT_STATUS_UNCONFIRMED,
    )
    alert.raised_at.FromDatetime(datetime.now(UTC))
    await produce(
        storage.bootstrap, ALERTS, storage.prefix, [(alert.alert_id.encode(), alert.SerializeToString())]
    )


async def writer_caught_up(storage: Storage) -> bool:
    """Whether the writer's group has committed the end of every READS partition holding records."""
    admin = AIOKafkaAdminClient(bootstrap_servers=storage.bootstrap)
    consumer = AIOKafkaConsumer(bootstrap_servers=storage.bootstrap, enable_auto_commit=False)
    await admin.start()
    await consumer.start()
    try:
        tps = [TopicPartition(READS.name(storage.prefix), p) for p in range(READS.partitions)]
        ends = await consumer.end_offsets(tps)
        committed = await admin.list_consumer_group_offsets(storage.prefix + CONSUMER_GROUP)
        return all(tp in committed and committed[tp].offset == end for tp, end in ends.items() if end)
    finally:
        await consumer.stop()
        await admin.close()


def count(db: Client, sql: str) -> int:
    return int(db.query(sql).result_rows[0][0])


async def found(
    storage: Storage, plate: str, agencies: list[str], fuzzy: bool = False
) -> list[tuple[str, str]]:
    """(read_id, plate shown) of every read a search finds, through the search gRPC API."""
    if not fuzzy:
        return [(r.read_id, r.plate) async for r in storage.search.iter_reads(plate, agency_ids=agencies)]
    response = await storage.stub.SearchReads(
        search_pb2.PlateQuery(plate=plate, agency_ids=agencies, fuzzy=True), timeout=10
    )
    return [(r.read_id, r.plate) for r in response.reads]


async def timeline(storage: Storage, plate: str, agencies: list[str]) -> list[tuple[str, str]]:
    response = await storage.stub.VehicleTimeline(
        search_pb2.TimelineRequest(plate=plate, agency_ids=agencies), timeout=10
    )
    return [(r.read_id, r.plate) for r in response.sightings]


async def visits(storage: Storage, plate: str, agencies: list[str]) -> int:
    response = await storage.stub.VisitFrequency(
        search_pb2.VisitsRequest(
            plate=plate, agency_ids=agencies, site=search_pb2.Place(camera_ids=["cam-7"])
        ),
        timeout=10,
    )
    return int(response.visit_count)


def plaintext_rows(db: Client, table: str, plate: str) -> list[Any]:
    """Rows of `table` in which `plate` appears in any column, in clear."""
    rows = db.query(f"SELECT * FROM {table}").result_rows
    return [row for row in rows if plate in repr(row)]


async def test_pseudonymized_reads_are_found_by_exact_plate_only_until_their_key_is_shredded(
    storage: Storage,
    audit_component: RunningAudit,  # noqa: F811 (a fixture imported above)
    policy: Policy,
) -> None:
    db = storage.db
    now = datetime.now(UTC).replace(microsecond=0)
    nonhit = make_read("a-nonhit", PLATE, "pd-a", now - timedelta(minutes=5))
    hit = make_read("a-hit", HIT_PLATE, "pd-a", now - timedelta(minutes=4))
    await send_reads(storage, [nonhit, hit])
    await send_alert(storage, hit)
    await until(
        lambda: count(db, "SELECT count() FROM reads") == 2 and count(db, "SELECT count() FROM alerts") == 1,
        "both reads and the alert stored",
        90,
    )
    # A read of pd-b stored in clear (before pseudonymization was enabled), same plate.
    db.insert(
        "reads",
        [[CLEAR_PLATE_READ, PLATE, "pd-b", "cam-9", (now - timedelta(minutes=3)).replace(tzinfo=None)]],
        column_names=["read_id", "plate", "agency_id", "camera_id", "captured_at"],
    )

    # Stored as tokens only: the plate is nowhere in clear, not even among the candidate texts.
    for table in ("reads", "plates", "reads_by_camera"):
        assert not [r for r in plaintext_rows(db, table, PLATE) if "pd-a" in repr(r)], table
        assert not plaintext_rows(db, table, HIT_PLATE), table
    stored = dict(db.query("SELECT read_id, plate FROM reads WHERE agency_id = 'pd-a'").result_rows)
    assert all(is_token(plate) for plate in stored.values()) and stored["a-nonhit"] != stored["a-hit"]
    assert count(db, "SELECT count() FROM reads WHERE notEmpty(candidate_texts)") == 0
    assert {
        str(p) for (p,) in db.query("SELECT plate FROM plates WHERE agency_id = 'pd-a'").result_rows
    } == set(stored.values())
    # The hit keeps its plate through its alert.
    assert db.query("SELECT plate FROM alerts").result_rows == [(HIT_PLATE,)]

    # Exact plate: found, shown with the plate; with another agency's clear read beside it.
    assert await found(storage, PLATE, ["pd-a"]) == [("a-nonhit", PLATE)]
    assert sorted(await found(storage, PLATE.lower(), ["pd-a", "pd-b"])) == [
        ("a-nonhit", PLATE),
        (CLEAR_PLATE_READ, PLATE),
    ]
    assert await found(storage, HIT_PLATE, ["pd-a"]) == [("a-hit", HIT_PLATE)]
    assert await found(storage, PLATE, ["pd-c"]) == []
    assert await timeline(storage, PLATE, ["pd-a"]) == [("a-nonhit", PLATE)]
    assert await visits(storage, PLATE, ["pd-a"]) == 1
    # Partial and fuzzy searches cannot match a token (digits in a pattern neither).
    assert await found(storage, "PSN43*", ["pd-a"]) == []
    assert await found(storage, "PSN43*", ["pd-a", "pd-b"]) == [(CLEAR_PLATE_READ, PLATE)]
    assert await found(storage, "*1*", ["pd-a"]) == []
    assert await found(storage, "P5N4321", ["pd-a"], fuzzy=True) == []

    # 32 days later today's key period is past the 30-day non-hit limit. Shred first without
    # deleting the rows (as a backup would still hold them): the tokens no longer name the plate.
    keys = PeriodKeyStore(storage.keys_dir, timedelta(days=1))
    later = now + timedelta(days=32)
    period = keys.period_of(now - timedelta(minutes=5))
    settings = AuditSettings()
    async with AuditRecorder(settings.kafka_bootstrap, settings.topic_prefix, source="test") as recorder:
        shredded = await shred_expired_keys(db, policy, keys, ["pd-a"], later, recorder)
        assert [(d["agency_id"], d["period"]) for d in shredded["destroyed"]] == [("pd-a", period)]
        assert count(db, "SELECT count() FROM reads WHERE agency_id = 'pd-a'") == 2
        assert await found(storage, PLATE, ["pd-a"]) == []
        assert await found(storage, PLATE, ["pd-a", "pd-b"]) == [(CLEAR_PLATE_READ, PLATE)]
        assert await timeline(storage, PLATE, ["pd-a"]) == []
        # A hit stays findable by plate through its alert.
        assert await found(storage, HIT_PLATE, ["pd-a"]) == [("a-hit", HIT_PLATE)]

        # A late read of the shredded period is not stored (its key can never be made again);
        # a read of another agency in the same batch is.
        late = make_read("a-late", PLATE, "pd-a", now - timedelta(minutes=1))
        other = make_read("c-new", "OTH1", "pd-c", now - timedelta(minutes=1))
        await send_reads(storage, [late, other])
        await until(lambda: writer_caught_up(storage), "the writer to commit every read", 60)
        ids = {str(r[0]) for r in db.query("SELECT read_id FROM reads").result_rows}
        assert "c-new" in ids and "a-late" not in ids

        # The retention pass deletes the non-hit read; the report lists the destroyed period.
        summary = await run_retention(db, policy, later, recorder, keys)
        assert ("pd-a", "non_hit_reads") in {(d["agency_id"], d["data_class"]) for d in summary["deleted"]}
        report = retention_report(db, policy, later, keys=keys)
        pd_a = report["pseudonym_keys"]["pd-a"]
        assert [p["period"] for p in pd_a["destroyed"]] == [period]
        assert (pd_a["live"], pd_a["past_limit"], pd_a["rotation_seconds"]) == ([], 0, 86400)
        # The pass itself shredded pd-c's key of the same day (just as old by then).
        assert [(d["agency_id"], d["period"]) for d in summary["keys"]["destroyed"]] == [("pd-c", period)]
        assert [p["period"] for p in report["pseudonym_keys"]["pd-c"]["destroyed"]] == [period]
        assert report["compliant"]

    # The CLI shows the key periods (through AuditService; in a thread: it runs on this loop).
    args = ["retention", "report", "--agency", "pd-a", "--target", audit_component.target]
    result = await asyncio.to_thread(CliRunner().invoke, app, args)
    assert "pseudonym keys" in result.output and "destroyed 1" in result.output, result.output
    args = ["retention", "report", "--json", "--agency", "pd-a", "--target", audit_component.target]
    result = await asyncio.to_thread(CliRunner().invoke, app, args)
    listed = json.loads(result.output)["pseudonym_keys"]["pd-a"]
    assert [p["period"] for p in listed["destroyed"]] == [period]

    # The destruction is in the audit chain, recorded before it happened; the chain verifies.
    def shreds() -> list[dict[str, Any]]:
        return [
            json.loads(e.details_json)
            for e in store.iter_entries(db)
            if e.kind == "retention_delete" and e.action == "retention.shred_key"
        ]

    await until(lambda: len(shreds()) == 2, "both key destructions in the audit log", 30)
    assert sorted((d["agency_id"], d["period"], d["data_class"]) for d in shreds()) == [
        ("pd-a", period, "pseudonym_keys"),
        ("pd-c", period, "pseudonym_keys"),
    ]
    await until(lambda: verify_stored(db, audit_component.public_key).ok, "a verified audit chain", 30)


@pytest.mark.parametrize("policy", [False], indirect=True)
async def test_without_pseudonymization_plates_are_stored_as_read(storage: Storage, policy: Policy) -> None:
    assert not policy.pseudonymization.enabled
    read = make_read("a-clear", PLATE, "pd-a", datetime.now(UTC) - timedelta(minutes=2))
    await send_reads(storage, [read])
    await until(lambda: count(storage.db, "SELECT count() FROM reads") == 1, "the read stored", 90)
    row = storage.db.query("SELECT plate, candidate_texts FROM reads").result_rows[0]
    assert row == (PLATE, [PLATE, PLATE[:-1] + "I"])
    assert plaintext_rows(storage.db, "plates", PLATE) and plaintext_rows(
        storage.db, "reads_by_camera", PLATE
    )
    assert await found(storage, PLATE, ["pd-a"]) == [("a-clear", PLATE)]
    assert await found(storage, "PSN*", ["pd-a"]) == [("a-clear", PLATE)]
    assert not storage.keys_dir.exists(), "no key is made when the policy does not pseudonymize"
