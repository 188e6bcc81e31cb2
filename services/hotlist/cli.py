"""`platewatch hotlist ...`: manage hotlists from the command line over gRPC.

Talks to `PLATEWATCH_HOTLIST_GRPC_TARGET` (default localhost:50052). Prints results as JSON.
"""

from __future__ import annotations

import asyncio
import json
import os
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Annotated, TypeVar

import grpc
import typer
from google.protobuf.json_format import MessageToDict
from google.protobuf.message import Message

from services.common.pb.platewatch.v1 import hotlist_pb2
from services.hotlist.client import HotlistClient

DEFAULT_TARGET = "localhost:50052"

T = TypeVar("T")

hotlist_app = typer.Typer(
    help="Manage hotlists (talks to the hotlist service over gRPC).", no_args_is_help=True
)


def register(app: typer.Typer) -> None:
    app.add_typer(hotlist_app, name="hotlist")


def _target() -> str:
    return os.environ.get("PLATEWATCH_HOTLIST_GRPC_TARGET", DEFAULT_TARGET)


def _call(action: Callable[[HotlistClient], Awaitable[T]]) -> T:
    async def run() -> T:
        async with HotlistClient(_target()) as client:
            return await action(client)

    try:
        return asyncio.run(run())
    except grpc.aio.AioRpcError as exc:
        typer.echo(f"error: {exc.code().name}: {exc.details()}", err=True)
        raise typer.Exit(1) from None


def _echo(message: Message) -> None:
    typer.echo(json.dumps(MessageToDict(message, preserving_proto_field_name=True), sort_keys=True))


@hotlist_app.command("create")
def create(
    name: Annotated[str, typer.Option("--name", help="display name")],
    agency: Annotated[str, typer.Option("--agency", help="owning agency id")],
    max_age_s: Annotated[int, typer.Option("--max-age-s", help="alerts are STALE after this; 0 = never")] = 0,
    fuzzy: Annotated[
        bool, typer.Option("--fuzzy/--no-fuzzy", help="also match one look-alike character (O/0, B/8, ...)")
    ] = True,
    hotlist_id: Annotated[str, typer.Option("--id", help="list id (generated when empty)")] = "",
) -> None:
    """Create a hotlist."""
    hotlist = _call(
        lambda c: c.create_hotlist(
            name, agency, max_age_seconds=max_age_s, fuzzy_confusables=fuzzy, hotlist_id=hotlist_id
        )
    )
    _echo(hotlist)


@hotlist_app.command("lists")
def lists(agency: Annotated[str, typer.Option("--agency", help="only this agency's lists")] = "") -> None:
    """List hotlists."""
    for hotlist in _call(lambda c: c.list_hotlists(agency)):
        _echo(hotlist)


@hotlist_app.command("add")
def add(
    hotlist_id: Annotated[str, typer.Option("--list", help="hotlist id")],
    plate: Annotated[str, typer.Option("--plate", help="plate; '?' = one character, '*' = any run")],
    reason: Annotated[
        str, typer.Option("--reason", help="stolen_vehicle, stolen_plate, wanted_person, ...")
    ] = ("stolen_vehicle"),
    priority: Annotated[int, typer.Option("--priority", help="1 = highest")] = 1,
    region: Annotated[str, typer.Option("--region", help="region code, e.g. US-CA")] = "",
    notes: Annotated[str, typer.Option("--notes")] = "",
    vehicle: Annotated[str, typer.Option("--vehicle", help="vehicle description")] = "",
) -> None:
    """Add one entry to a hotlist (the plate is upper-cased; spaces and dashes are dropped)."""
    normalized = plate.upper().replace(" ", "").replace("-", "")
    try:
        entry = _call(
            lambda c: c.add_entry(
                hotlist_id,
                plate=normalized,
                reason=reason,
                priority=priority,
                region=region,
                notes=notes,
                vehicle_description=vehicle,
            )
        )
    except ValueError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(2) from None
    _echo(entry)


@hotlist_app.command("entries")
def entries(hotlist_id: Annotated[str, typer.Option("--list", help="hotlist id")]) -> None:
    """List a hotlist's entries, highest priority first."""
    for entry in _call(lambda c: c.list_entries(hotlist_id)):
        _echo(entry)


@hotlist_app.command("remove")
def remove(
    hotlist_id: Annotated[str, typer.Option("--list", help="hotlist id")],
    entry_id: Annotated[str, typer.Option("--entry", help="entry id")],
) -> None:
    """Remove one entry."""
    removed = _call(lambda c: c.remove_entry(hotlist_id, entry_id))
    if not removed:
        typer.echo("no such entry", err=True)
        raise typer.Exit(1)
    typer.echo("removed")


@hotlist_app.command("import")
def import_csv(
    hotlist_id: Annotated[str, typer.Option("--list", help="hotlist id")],
    file: Annotated[Path, typer.Argument(help="CSV extract (format: services/hotlist/csv_import.py)")],
    allow_partial: Annotated[
        bool, typer.Option("--allow-partial", help="import the good rows even if some rows are bad")
    ] = False,
    replace: Annotated[
        bool, typer.Option("--replace", help="full extract: remove the list's entries not in the file")
    ] = False,
) -> None:
    """Import a CSV extract. Prints a summary and every bad row as `line N: column: message`;
    exits 1 when nothing was applied."""
    try:
        data = file.read_bytes()
    except OSError as exc:
        typer.echo(f"error: cannot read {file}: {exc.strerror}", err=True)
        raise typer.Exit(2) from None
    result = _call(
        lambda c: c.import_csv(
            hotlist_id, data, filename=file.name, allow_partial=allow_partial, replace=replace
        )
    )
    typer.echo(import_summary(result))
    for error in result.errors:
        typer.echo(format_row_error(error))
    if result.error_count > len(result.errors):
        typer.echo(f"... and {result.error_count - len(result.errors)} more errors")
    if not result.applied:
        raise typer.Exit(1)


def import_summary(result: hotlist_pb2.ImportCsvResponse) -> str:
    if not result.applied:
        return f"nothing applied: {result.rows} rows, {result.error_count} errors"
    return (
        f"applied: {result.rows} rows, {result.imported} imported, {result.updated} updated, "
        f"{result.unchanged} unchanged, {result.removed} removed, {result.error_count} errors (rows skipped)"
    )


def format_row_error(error: hotlist_pb2.RowError) -> str:
    where = f"line {error.line}" if error.line else "file"
    return f"{where}: {error.column}: {error.message}" if error.column else f"{where}: {error.message}"
