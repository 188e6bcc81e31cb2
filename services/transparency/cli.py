"""`platewatch transparency-report --agency A --from ... --to ... --out DIR`: JSON + HTML."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, Any

import typer


def _utc(value: datetime) -> datetime:
    return value if value.tzinfo else value.replace(tzinfo=UTC)


def register(app: typer.Typer) -> None:
    @app.command("transparency-report")
    def transparency_report(
        agency: Annotated[str, typer.Option("--agency")],
        period_from: Annotated[datetime, typer.Option("--from", help="start (ISO date or time, UTC)")],
        period_to: Annotated[datetime, typer.Option("--to", help="end, exclusive")],
        out: Annotated[Path, typer.Option("--out", help="folder for the .json and .html")] = Path("."),
        direct: Annotated[bool, typer.Option("--direct", help="open ClickHouse from this process")] = False,
        target: Annotated[str | None, typer.Option("--target", help="AuditService host:port")] = None,
    ) -> None:
        """Write transparency-<agency>-<from>-<to>.json and .html: cameras, reads, hits by list,
        alert outcomes, searches by purpose, refusals by rule, sharing partners, retention
        compliance and the latest signed audit checkpoint."""
        from services.transparency.render import render_html

        start, end = _utc(period_from), _utc(period_to)
        data = _gather(agency, start, end, direct, target)
        out.mkdir(parents=True, exist_ok=True)
        stem = out / f"transparency-{agency}-{start:%Y%m%d}-{end:%Y%m%d}"
        stem.with_suffix(".json").write_text(json.dumps(data, indent=2, default=str))
        stem.with_suffix(".html").write_text(render_html(data))
        typer.echo(f"wrote {stem}.json and {stem}.html")


def _gather(agency: str, start: datetime, end: datetime, direct: bool, target: str | None) -> dict[str, Any]:
    if direct:
        from services.retention.policy_source import load_configured_policy
        from services.retention.settings import RetentionSettings
        from services.storage.client import close_client, get_client
        from services.storage.migrations import apply_migrations
        from services.transparency.data import gather

        settings = RetentionSettings()
        try:
            client = get_client(settings)
            apply_migrations(client)
            return gather(client, load_configured_policy(settings), agency, start, end, datetime.now(UTC))
        finally:
            close_client()
    from google.protobuf.timestamp_pb2 import Timestamp

    from services.audit.remote import AuditClient
    from services.audit.settings import AuditSettings
    from services.common.pb.platewatch.v1 import audit_pb2

    request = audit_pb2.TransparencyDataRequest(agency_id=agency)
    for field, value in (("from", start), ("to", end)):
        ts = Timestamp()
        ts.FromDatetime(value)
        getattr(request, field).CopyFrom(ts)
    with AuditClient(target or AuditSettings().audit_grpc_target) as remote:
        data: dict[str, Any] = remote.json_call("TransparencyData", request)
    return data
