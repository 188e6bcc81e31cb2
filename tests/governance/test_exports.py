"""Exports (services/api/export_routes.py): what a reads, timeline and evidence export holds, its row
limit, and that every export is audited with its format, filters, row count, purpose and case,
while refusals (role, purpose, agency, data age) are refused with the rule named and audited too."""

from __future__ import annotations

import csv
import hashlib
import io
import json
import zipfile
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from services.api.export_routes import READ_COLUMNS, ExportSettings
from services.audit.client import AuditEvent
from services.common.pb.platewatch.v1 import search_pb2
from tests.governance.conftest import JPEG, PLATE, READ_ID, A, B, World, open_world, sharing_policy
from tests.governance.helpers import DEFAULT_CASE, DEFAULT_PURPOSE, auth_headers

EXPORT = "/api/v1/exports/reads"


def _add_reads(world: World, agency: str, count: int, **fields: Any) -> list[str]:
    """`count` more reads of PLATE for `agency`, captured an hour ago; their ids."""
    ids = []
    for index in range(count):
        read = search_pb2.StoredRead(
            read_id=f"extra-{agency}-{index}", plate=PLATE, camera_id=f"cam-{agency}", agency_id=agency
        )
        for name, value in fields.items():
            setattr(read, name, value)
        read.captured_at.FromDatetime(datetime.now(UTC) - timedelta(hours=1))
        world.search.reads[read.read_id] = read
        ids.append(read.read_id)
    return ids


def _rows(text: str) -> list[dict[str, str]]:
    return list(csv.DictReader(io.StringIO(text)))


async def test_csv_export_holds_every_page_and_is_audited(world: World) -> None:
    _add_reads(world, A, 5)
    headers = auth_headers(world.governance, "analyst", A, subject="analyst-1")
    world.client.app.state.export_settings = ExportSettings(export_page_size=2)  # type: ignore[attr-defined]
    response = await world.client.get(
        EXPORT, params={"plate": PLATE, "camera_id": "cam-agency-a"}, headers=headers
    )
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("text/csv")
    assert response.headers["content-disposition"].startswith('attachment; filename="reads-CASE-2024-001-')
    assert response.headers["x-export-rows"] == "6" and response.headers["x-export-truncated"] == "false"
    rows = _rows(response.text)
    assert tuple(rows[0]) == READ_COLUMNS
    assert sorted(row["read_id"] for row in rows) == sorted(
        [READ_ID[A], *[f"extra-{A}-{i}" for i in range(5)]]
    )
    # Gathered page by page (page size 2), every page scoped to the caller's agency only.
    pages = [q for q in world.search.queries if isinstance(q, search_pb2.PlateQuery)]
    assert len(pages) == 3 and all(list(q.agency_ids) == [A] for q in pages)
    (event,) = world.audit.of_kind("export")
    assert (event.agency_id, event.actor, event.action) == (A, "analyst-1", "export reads")
    assert (event.purpose_code, event.case_number, event.result_count) == (DEFAULT_PURPOSE, DEFAULT_CASE, 6)
    assert event.details["format"] == "csv" and event.details["plate"] == PLATE
    assert event.details["camera_ids"] == ["cam-agency-a"] and event.details["truncated"] is False
    assert world.audit.of_kind("sharing") == []


async def test_json_export_stops_at_the_row_limit_and_says_so(world: World) -> None:
    _add_reads(world, A, 4)
    headers = auth_headers(world.governance, "supervisor", A)
    # The setting is a hard cap: a larger `limit` does not lift it.
    world.client.app.state.export_settings = ExportSettings(export_max_rows=3)  # type: ignore[attr-defined]
    response = await world.client.get(
        EXPORT, params={"plate": PLATE, "format": "json", "limit": 1000}, headers=headers
    )
    assert response.status_code == 200, response.text
    body = response.json()
    assert response.headers["content-type"].startswith("application/json")
    assert body["rows"] == 3 and len(body["reads"]) == 3 and body["truncated"] is True
    assert (body["purpose_code"], body["case_number"], body["agency_ids"]) == (
        DEFAULT_PURPOSE,
        DEFAULT_CASE,
        [A],
    )
    assert response.headers["x-export-truncated"] == "true"
    smaller = await world.client.get(
        EXPORT, params={"plate": PLATE, "format": "json", "limit": 2}, headers=headers
    )
    assert smaller.json()["rows"] == 2
    events = world.audit.of_kind("export")
    assert [(e.result_count, e.details["limit"], e.details["truncated"]) for e in events] == [
        (3, 3, True),
        (2, 2, True),
    ]


async def test_shared_export_is_audited_on_both_sides() -> None:
    async with open_world(sharing_policy(["reads"])) as world:
        headers = auth_headers(world.governance, "analyst", A, subject="analyst-1")
        response = await world.client.get(EXPORT, params={"plate": PLATE, "format": "json"}, headers=headers)
        assert {read["agency_id"] for read in response.json()["reads"]} == {A, B}
        (event,) = world.audit.of_kind("export")
        assert event.details["agreement_ids"] == ["b-to-a"] and event.result_count == 2
        (other_side,) = world.audit.of_kind("sharing")
        assert other_side.agency_id == B and other_side.details["partner_agency_id"] == A
        assert other_side.action == "shared export: export reads" and other_side.case_number == DEFAULT_CASE


def _refusals(world: World, rule: str) -> list[AuditEvent]:
    return [e for e in world.audit.of_kind("refusal") if e.details["rule"] == rule]


@pytest.mark.parametrize(
    ("role", "purpose", "case", "status", "rule"),
    [
        ("officer", DEFAULT_PURPOSE, DEFAULT_CASE, 403, "role.reads.export"),
        ("oversight", DEFAULT_PURPOSE, DEFAULT_CASE, 403, "role.reads.export"),
        ("analyst", None, DEFAULT_CASE, 422, "purpose.code_required"),
        ("analyst", DEFAULT_PURPOSE, None, 422, "purpose.case_number_required"),
        (
            "analyst",
            "civil-immigration-enforcement",
            DEFAULT_CASE,
            403,
            "purpose.forbidden.civil-immigration-enforcement",
        ),
    ],
)
async def test_refused_exports_name_the_rule_and_are_audited(
    world: World, role: str, purpose: str | None, case: str | None, status: int, rule: str
) -> None:
    headers = auth_headers(world.governance, role, A, purpose=purpose, case=case)
    for path, params in (
        (EXPORT, {"plate": PLATE}),
        ("/api/v1/exports/timeline", {"plate": PLATE}),
        (f"/api/v1/exports/reads/{READ_ID[A]}/evidence.zip", {"plate": PLATE}),
    ):
        response = await world.client.get(path, params=params, headers=headers)
        assert response.status_code == status, (path, response.text)
        assert response.json()["rule"] == rule
    assert len(_refusals(world, rule)) == 3
    assert world.audit.of_kind("export") == []


async def test_exporting_old_reads_needs_an_approval(world: World) -> None:
    headers = auth_headers(world.governance, "analyst", A)
    old = (datetime.now(UTC) - timedelta(days=200)).isoformat()
    response = await world.client.get(EXPORT, params={"plate": PLATE, "from": old}, headers=headers)
    assert response.status_code == 403 and response.json()["rule"] == "data_age.approval_required"
    assert len(_refusals(world, "data_age.approval_required")) == 1
    # Without `from`, the export is limited to the tier like a search.
    response = await world.client.get(EXPORT, params={"plate": PLATE}, headers=headers)
    (query,) = [q for q in world.search.queries if isinstance(q, search_pb2.PlateQuery)]
    tier_start = getattr(query, "from").ToDatetime(UTC)
    assert datetime.now(UTC) - tier_start >= timedelta(days=89)


async def test_the_other_agency_cannot_be_named_without_an_agreement(world: World) -> None:
    headers = auth_headers(world.governance, "supervisor", A)
    response = await world.client.get(EXPORT, params={"plate": PLATE, "agency_id": B}, headers=headers)
    assert response.status_code == 403 and response.json()["rule"] == "agency.not_shared"
    assert not [q for q in world.search.queries if isinstance(q, search_pb2.PlateQuery)]
    assert len(_refusals(world, "agency.not_shared")) == 1


async def test_spreadsheet_formulas_are_quoted(world: World) -> None:
    _add_reads(world, A, 1, camera_id='=HYPERLINK("http://x")', direction="@SUM(A1)")
    headers = auth_headers(world.governance, "analyst", A)
    response = await world.client.get(EXPORT, params={"plate": PLATE}, headers=headers)
    (row,) = [r for r in _rows(response.text) if r["read_id"] == f"extra-{A}-0"]
    assert row["camera_id"] == '\'=HYPERLINK("http://x")' and row["direction"] == "'@SUM(A1)"


async def test_nothing_leaves_when_the_audit_log_is_down(world: World) -> None:
    class Down:
        async def record(self, event: AuditEvent) -> None:
            raise ConnectionError("audit topic unreachable")

    world.governance.audit_sink = Down()
    headers = auth_headers(world.governance, "analyst", A)
    response = await world.client.get(EXPORT, params={"plate": PLATE}, headers=headers)
    assert response.status_code == 503
    assert READ_ID[A] not in response.text


@pytest.mark.parametrize(
    ("format", "media_type"),
    [("csv", "text/csv"), ("json", "application/json"), ("geojson", "application/geo+json")],
)
async def test_timeline_export(world: World, format: str, media_type: str) -> None:
    headers = auth_headers(world.governance, "analyst", A)
    response = await world.client.get(
        "/api/v1/exports/timeline", params={"plate": PLATE, "format": format}, headers=headers
    )
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith(media_type)
    if format == "csv":
        assert [row["read_id"] for row in _rows(response.text)] == [READ_ID[A]]
    elif format == "json":
        body = response.json()
        assert body["plate"] == PLATE and [s["read_id"] for s in body["sightings"]] == [READ_ID[A]]
    else:
        features = response.json()["features"]
        assert [f["properties"]["read_id"] for f in features] == [READ_ID[A]]
    (event,) = world.audit.of_kind("export")
    assert event.action == "export vehicle timeline" and event.details["format"] == format
    assert event.result_count == 1 and event.details["plate"] == PLATE


async def test_evidence_package(world: World) -> None:
    headers = auth_headers(world.governance, "supervisor", A, subject="sup-1")
    response = await world.client.get(
        f"/api/v1/exports/reads/{READ_ID[A]}/evidence.zip", params={"plate": PLATE}, headers=headers
    )
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == "application/zip"
    with zipfile.ZipFile(io.BytesIO(response.content)) as archive:
        files = {name: archive.read(name) for name in archive.namelist()}
    assert set(files) == {"read.json", "crop.jpg", "frame.jpg", "manifest.json"}
    assert files["crop.jpg"] == JPEG and json.loads(files["read.json"])["read_id"] == READ_ID[A]
    manifest = json.loads(files["manifest.json"])
    assert (manifest["exported_by"], manifest["case_number"]) == ("sup-1", DEFAULT_CASE)
    for name, digest in manifest["files"].items():
        assert hashlib.sha256(files[name]).hexdigest() == digest
    (event,) = world.audit.of_kind("export")
    assert event.action == "export evidence package" and event.details["read_id"] == READ_ID[A]
    assert event.details["files"] == manifest["files"] and event.details["format"] == "zip"
    missing = await world.client.get(
        "/api/v1/exports/reads/no-such-read/evidence.zip", params={"plate": PLATE}, headers=headers
    )
    assert missing.status_code == 404


async def test_evidence_of_a_partners_read_needs_the_images_class() -> None:
    async with open_world(sharing_policy(["reads"])) as world:
        headers = auth_headers(world.governance, "analyst", A)
        path = f"/api/v1/exports/reads/{READ_ID[B]}/evidence.zip"
        response = await world.client.get(path, params={"plate": PLATE}, headers=headers)
        assert response.status_code == 403 and response.json()["rule"] == "agency.not_shared"
        assert "images" in response.json()["detail"]
        assert world.audit.of_kind("export") == [] and len(_refusals(world, "agency.not_shared")) == 1
        assert not [q for q in world.search.queries if isinstance(q, search_pb2.GetReadImageRequest)]
    async with open_world(sharing_policy(["reads", "images"])) as world:
        headers = auth_headers(world.governance, "analyst", A)
        response = await world.client.get(path, params={"plate": PLATE}, headers=headers)
        assert response.status_code == 200, response.text
        (other_side,) = world.audit.of_kind("sharing")
        assert other_side.agency_id == B and other_side.result_count == 1
