"""`platewatch audit ...`: verify, export and inspect the tamper-evident audit log.

By default the commands reach the log through AuditService (PLATEWATCH_AUDIT_GRPC_TARGET), since
the storage process owns the embedded ClickHouse. `--direct` opens ClickHouse from this process
instead (a ClickHouse server, or an embedded directory no process is using). `verify --file`
checks an export (`platewatch audit export`) without any access to the platform.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

from services.audit.chain import Checkpoint, Entry
from services.common.logging import configure_logging

DirectOption = Annotated[bool, typer.Option("--direct", help="open ClickHouse from this process")]
TargetOption = Annotated[str | None, typer.Option("--target", help="AuditService host:port")]


def _load(direct: bool, target: str | None) -> tuple[list[Entry], list[Checkpoint]]:
    from services.audit.settings import AuditSettings

    settings = AuditSettings()
    configure_logging("audit-cli", "WARNING")
    if direct:
        from services.audit import store
        from services.storage.client import close_client, get_client
        from services.storage.migrations import apply_migrations

        try:
            client = get_client(settings)
            apply_migrations(client)
            return list(store.iter_entries(client)), store.list_checkpoints(client)
        finally:
            close_client()
    from services.audit.remote import AuditClient

    with AuditClient(target or settings.audit_grpc_target) as remote:
        return remote.entries(), remote.checkpoints()


def register(app: typer.Typer) -> None:
    audit = typer.Typer(help="Tamper-evident audit log: verify, export, keys.", no_args_is_help=True)
    app.add_typer(audit, name="audit")

    @audit.command()
    def verify(
        file: Annotated[Path | None, typer.Option("--file", help="verify an export file")] = None,
        public_key: Annotated[
            Path | None,
            typer.Option("--public-key", help="trusted Ed25519 public key (PEM or hex) to pin"),
        ] = None,
        as_json: Annotated[bool, typer.Option("--json", help="print the result as JSON")] = False,
        direct: DirectOption = False,
        target: TargetOption = None,
    ) -> None:
        """Verify the hash chain and checkpoint signatures; name every edited, deleted, inserted or
        reordered entry. Exit code 0 when the log verifies, 1 when it does not."""
        from services.audit.chain import parse_public_key
        from services.audit.verify import read_export, verify_entries

        if file is not None:
            entries, checkpoints = read_export(file)
        else:
            entries, checkpoints = _load(direct, target)
        trusted = parse_public_key(public_key.read_text()) if public_key else None
        result = verify_entries(entries, checkpoints, trusted)
        if as_json:
            typer.echo(json.dumps(result.to_json(), indent=2))
        else:
            typer.echo(
                f"{result.entries} entries (sequence {result.first_sequence}..{result.last_sequence}), "
                f"{result.checkpoints_checked} checkpoints, key "
                f"{'pinned' if result.key_pinned else 'NOT pinned (pass --public-key)'}"
            )
            for finding in result.findings:
                typer.echo(f"  sequence {finding.sequence}: {finding.kind}: {finding.detail}")
            typer.echo(
                "OK: the audit log verifies" if result.ok else f"FAILED: {len(result.findings)} problems"
            )
        raise typer.Exit(0 if result.ok else 1)

    @audit.command()
    def export(
        out: Annotated[Path, typer.Option("--out", help="file to write (JSON lines)")],
        direct: DirectOption = False,
        target: TargetOption = None,
    ) -> None:
        """Export every entry and checkpoint, for `audit verify --file` by an outside party."""
        from services.audit.verify import write_export

        entries, checkpoints = _load(direct, target)
        count = write_export(out, entries, checkpoints)
        typer.echo(f"exported {count} entries and {len(checkpoints)} checkpoints to {out}")

    @audit.command("public-key")
    def public_key(
        key_file: Annotated[
            Path | None, typer.Option("--key-file", help="signing key (default: settings)")
        ] = None,
    ) -> None:
        """Print the checkpoint signing public key (PEM) to hand to an oversight board."""
        from services.audit.chain import load_or_create_signing_key, public_key_pem
        from services.audit.settings import AuditSettings

        path = key_file or AuditSettings().signing_key_path()
        try:
            key = load_or_create_signing_key(path, create=False)
        except FileNotFoundError as exc:
            typer.echo(str(exc), err=True)
            raise typer.Exit(1) from exc
        typer.echo(public_key_pem(key), nl=False)

    @audit.command()
    def checkpoint(target: TargetOption = None) -> None:
        """Print the latest signed checkpoint as JSON."""
        from services.audit.remote import AuditClient
        from services.audit.settings import AuditSettings

        with AuditClient(target or AuditSettings().audit_grpc_target) as remote:
            latest = remote.latest_checkpoint()
        if latest is None:
            typer.echo("no checkpoint yet", err=True)
            raise typer.Exit(1)
        typer.echo(json.dumps(latest.to_json(), indent=2))
