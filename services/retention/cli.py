"""`platewatch retention ...`: the retention report, a pass on demand, and legal holds.

Like `platewatch audit`, the commands go through AuditService (the storage process owns
ClickHouse); `--direct` opens ClickHouse from this process instead.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Annotated, Any

import typer

from services.common.logging import configure_logging

DirectOption = Annotated[bool, typer.Option("--direct", help="open ClickHouse from this process")]
TargetOption = Annotated[str | None, typer.Option("--target", help="AuditService host:port")]


def _target(target: str | None) -> str:
    from services.audit.settings import AuditSettings

    return target or AuditSettings().audit_grpc_target


def _duration(seconds: int) -> str:
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= size and seconds % size == 0:
            return f"{seconds // size}{unit}"
    return f"{seconds}s"


def _periods(periods: list[dict[str, Any]]) -> str:
    """'3 (2026-11-20 .. 2026-11-22)': how many key periods and the first and last start."""
    if not periods:
        return "0"
    first, last = periods[0]["start"][:16], periods[-1]["start"][:16]
    return f"{len(periods)} ({first}{' .. ' + last if last != first else ''})"


def print_report(report: dict[str, Any]) -> None:
    """A readable table: per agency and class, the oldest row and the rows past their limit."""
    typer.echo(f"retention report at {report['at']}")
    for agency, classes in report["agencies"].items():
        typer.echo(f"agency {agency}")
        for data_class, row in classes.items():
            limit = _duration(row["limit_seconds"])
            typer.echo(
                f"  {data_class:<14} limit {limit:>8}"
                f"  rows {row['rows']:>8}  oldest {row['oldest'] or '-':<32}"
                f"  past limit {row['past_limit']:>6}  held {row['held_past_limit']:>4}"
            )
        keys = report.get("pseudonym_keys", {}).get(agency)
        if keys and (keys["live"] or keys["destroyed"] or keys["pseudonymized"]):
            typer.echo(
                f"  {'pseudonym keys':<14} rotation {_duration(keys['rotation_seconds'])}"
                f"  live {_periods(keys['live'])}  destroyed {_periods(keys['destroyed'])}"
                f"  past limit {keys['past_limit']}  held {keys['held_past_limit']}"
            )
    audit = report["audit"]
    typer.echo(
        f"audit log       limit {_duration(audit['limit_seconds'])}  rows {audit['rows']}"
        f"  oldest {audit['oldest'] or '-'}  past limit {audit['past_limit']}"
    )
    backstop = report.get("ttl_backstop") or {}
    if backstop:
        states = ", ".join(
            f"{table} {'as policy' if state['current'] else 'DIFFERS' if state['in_place'] else 'NONE'}"
            for table, state in backstop.items()
        )
        typer.echo(f"ttl backstop    {states}")
    typer.echo("COMPLIANT: no row past its limit" if report["compliant"] else "NOT COMPLIANT")


def register(app: typer.Typer) -> None:
    retention = typer.Typer(help="Retention: report, run a pass, legal holds.", no_args_is_help=True)
    app.add_typer(retention, name="retention")
    hold = typer.Typer(help="Legal holds: keep exactly the listed reads of a case.", no_args_is_help=True)
    retention.add_typer(hold, name="hold")

    @retention.command()
    def report(
        agency: Annotated[str | None, typer.Option("--agency")] = None,
        as_json: Annotated[bool, typer.Option("--json")] = False,
        direct: DirectOption = False,
        target: TargetOption = None,
    ) -> None:
        """Per agency and data class: oldest row and rows past the limit (0 after a pass).
        Exit code 1 when a row is past its limit."""
        configure_logging("retention-cli", "WARNING")
        if direct:
            from services.retention.job import RetentionSettings, retention_report
            from services.retention.policy_source import load_configured_policy
            from services.storage.client import close_client, get_client
            from services.storage.migrations import apply_migrations

            settings = RetentionSettings()
            try:
                client = get_client(settings)
                apply_migrations(client)
                data = retention_report(client, load_configured_policy(settings), datetime.now(UTC), agency)
            finally:
                close_client()
        else:
            from services.audit.remote import AuditClient
            from services.common.pb.platewatch.v1 import audit_pb2

            with AuditClient(_target(target)) as remote:
                data = remote.json_call(
                    "RetentionReport", audit_pb2.RetentionReportRequest(agency_id=agency or "")
                )
        if as_json:
            typer.echo(json.dumps(data, indent=2))
        else:
            print_report(data)
        raise typer.Exit(0 if data["compliant"] else 1)

    @retention.command("run")
    def run_now(target: TargetOption = None) -> None:
        """Run one retention pass now (in the storage process) and print what it deleted."""
        from services.audit.remote import AuditClient
        from services.common.pb.platewatch.v1 import audit_pb2

        with AuditClient(_target(target), timeout_s=600) as remote:
            data = remote.json_call("RunRetention", audit_pb2.RunRetentionRequest())
        typer.echo(json.dumps(data, indent=2))

    @hold.command("place")
    def place(
        agency: Annotated[str, typer.Option("--agency")],
        case: Annotated[str, typer.Option("--case", help="case or incident number")],
        read_ids: Annotated[list[str], typer.Option("--read-id", help="a held read (repeat)")],
        reason: Annotated[str, typer.Option("--reason")] = "",
        actor: Annotated[str, typer.Option("--actor", help="who places the hold")] = "cli",
        target: TargetOption = None,
    ) -> None:
        """Place a legal hold on reads of a case."""
        from google.protobuf.json_format import MessageToDict

        from services.audit.remote import AuditClient
        from services.common.pb.platewatch.v1 import audit_pb2

        request = audit_pb2.PlaceLegalHoldRequest(
            agency_id=agency, case_number=case, read_ids=read_ids, reason=reason, actor=actor
        )
        with AuditClient(_target(target)) as remote:
            placed = remote.stub.PlaceLegalHold(request, timeout=remote.timeout_s)
        typer.echo(json.dumps(MessageToDict(placed), indent=2))

    @hold.command("release")
    def release(
        hold_id: Annotated[str, typer.Argument()],
        actor: Annotated[str, typer.Option("--actor")] = "cli",
        target: TargetOption = None,
    ) -> None:
        """Release a legal hold; its reads fall under retention again."""
        from google.protobuf.json_format import MessageToDict

        from services.audit.remote import AuditClient
        from services.common.pb.platewatch.v1 import audit_pb2

        with AuditClient(_target(target)) as remote:
            released = remote.stub.ReleaseLegalHold(
                audit_pb2.ReleaseLegalHoldRequest(hold_id=hold_id, actor=actor), timeout=remote.timeout_s
            )
        typer.echo(json.dumps(MessageToDict(released), indent=2))

    @hold.command("list")
    def list_holds(
        agency: Annotated[str, typer.Option("--agency")] = "",
        include_released: Annotated[bool, typer.Option("--all")] = False,
        target: TargetOption = None,
    ) -> None:
        """List legal holds."""
        from google.protobuf.json_format import MessageToDict

        from services.audit.remote import AuditClient
        from services.common.pb.platewatch.v1 import audit_pb2

        with AuditClient(_target(target)) as remote:
            found = remote.stub.ListLegalHolds(
                audit_pb2.ListLegalHoldsRequest(agency_id=agency, include_released=include_released),
                timeout=remote.timeout_s,
            )
        typer.echo(json.dumps(MessageToDict(found), indent=2))
