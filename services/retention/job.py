"""Retention enforcement and the retention report.

Per agency and data class the policy (`Policy.retention_for(agency)`) gives a limit; a row is past
its limit when its time is older than `now - limit`. Classes and their rows:

  non_hit_reads  reads (captured_at) with no alert for the read
  hit_reads      reads (captured_at) with an alert (a read is a hit while its alert is kept, so
                 profiles keep alerts at least as long as hit reads)
  images         read_images of the agency's reads, past the images limit or whose read is past
                 its own limit (no image outlives its read)
  alerts         alerts (raised_at)
  audit          audit_log (chained_at), one global chain: the longest audit limit of any agency
                 and never less than a year

Rows of reads under an active legal hold (services/retention/holds.py) are never deleted, nor
their images and alerts. Only stable columns are used: agency_id, captured_at, read_id, plate
(reads), read_id/captured_at (read_images), agency_id/raised_at/read_id (alerts).

Why explicit deletes: limits differ per agency and per hit status (a read is a hit through the
alerts table, which a TTL expression cannot consult), and every deletion must be audited, which a
TTL does not do row by row. The job deletes with `ALTER TABLE ... DELETE` (a mutation rewriting the
parts, so the data is gone from disk, not just hidden), waiting for it to finish. A ClickHouse TTL
set from the same policy (services/retention/ttl.py) is only the backstop: it removes rows past
their limit plus a grace, i.e. only what this job should have deleted and did not because it was
not running. After its deletions each pass brings the rows' legal-hold marks, which that TTL reads,
in line with the active holds (`holds.sync_hold_marks`): released rows lose their mark only once
those past their limit were deleted here, audited.

Every deletion is recorded in the audit log (kind "retention_delete", details: data_class, cutoff,
rows, held rows kept) BEFORE it runs, so no deletion goes unaudited. Derived copies of reads made
by materialized views (reads_by_camera, plates), when present, are trimmed to the reads that remain.

Crypto-shredding (issue 6): after an agency's reads are trimmed, every pseudonym key of the agency
(services/governance/pseudonymize.py, under PLATEWATCH_PSEUDONYM_KEYS_DIR) whose whole period lies
before the non-hit cutoff is destroyed, each recorded first as a "retention_delete" of data class
"pseudonym_keys" (action retention.shred_key). Tokens of that period then name no plate any more:
hit reads stay findable through their alerts (which carry the plate), everything else is gone. A
period holding a tokenized read under an active legal hold keeps its key until the hold is released
(the hold must keep exactly that read, plate included). The report lists live, destroyed and
past-limit key periods per agency; a live key past its limit makes the report non-compliant.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from clickhouse_connect.driver.client import Client

from services.audit.client import AuditEvent, AuditRecorder
from services.governance.policy import MIN_AUDIT_RETENTION, Policy
from services.governance.pseudonymize import TOKEN_PREFIX, PeriodKeyStore, token_period
from services.retention.holds import held_reads_sql, sync_hold_marks
from services.retention.policy_source import configured_key_store
from services.retention.settings import RetentionSettings
from services.retention.ttl import backstop_state

log = logging.getLogger(__name__)

__all__ = ["DATA_CLASSES", "RetentionSettings", "retention_report", "run_retention"]

DATA_CLASSES = ("non_hit_reads", "hit_reads", "images", "alerts", "audit")
ACTOR = "retention"
_HELD = held_reads_sql()
_HIT = "read_id IN (SELECT read_id FROM alerts)"
_PAST_NON_HIT = f"(captured_at < {{cut_non_hit:DateTime64(3, 'UTC')}} AND NOT {_HIT})"
_PAST_HIT = f"(captured_at < {{cut_hit:DateTime64(3, 'UTC')}} AND {_HIT})"


@dataclass(frozen=True)
class ClassScope:
    """How one data class is counted and deleted for one agency."""

    data_class: str
    table: str
    time_column: str
    # Rows of the class (the agency's), and of those the ones past the limit (not held).
    rows_sql: str
    past_sql: str
    held_sql: str


def _scopes() -> dict[str, ClassScope]:
    agency = "agency_id = {agency:String}"
    agency_reads = "read_id IN (SELECT read_id FROM reads WHERE agency_id = {agency:String})"
    return {
        "non_hit_reads": ClassScope(
            "non_hit_reads",
            "reads",
            "captured_at",
            f"{agency} AND NOT {_HIT}",
            f"{agency} AND {_PAST_NON_HIT} AND read_id NOT IN {_HELD}",
            f"{agency} AND {_PAST_NON_HIT} AND read_id IN {_HELD}",
        ),
        "hit_reads": ClassScope(
            "hit_reads",
            "reads",
            "captured_at",
            f"{agency} AND {_HIT}",
            f"{agency} AND {_PAST_HIT} AND read_id NOT IN {_HELD}",
            f"{agency} AND {_PAST_HIT} AND read_id IN {_HELD}",
        ),
        "images": ClassScope(
            "images",
            "read_images",
            "captured_at",
            agency_reads,
            _images_past("NOT IN"),
            _images_past("IN"),
        ),
        "alerts": ClassScope(
            "alerts",
            "alerts",
            "raised_at",
            agency,
            f"{agency} AND raised_at < {{cut_alerts:DateTime64(3, 'UTC')}} AND read_id NOT IN {_HELD}",
            f"{agency} AND raised_at < {{cut_alerts:DateTime64(3, 'UTC')}} AND read_id IN {_HELD}",
        ),
    }


def _images_past(held_op: str) -> str:
    expired_reads = (
        "SELECT read_id FROM reads WHERE agency_id = {agency:String} AND ("
        f"captured_at < {{cut_images:DateTime64(3, 'UTC')}} OR {_PAST_NON_HIT} OR {_PAST_HIT})"
    )
    return f"read_id IN ({expired_reads}) AND read_id {held_op} {_HELD}"


def _naive_utc(value: datetime) -> datetime:
    return value.astimezone(UTC).replace(tzinfo=None) if value.tzinfo else value


def cutoffs(policy: Policy, agency_id: str, now: datetime) -> dict[str, Any]:
    """Query parameters: the agency and the cutoff of every class (naive UTC datetimes)."""
    retention = policy.retention_for(agency_id)
    return {
        "agency": agency_id,
        "cut_non_hit": _naive_utc(now - retention.non_hit_reads),
        "cut_hit": _naive_utc(now - retention.hit_reads),
        "cut_images": _naive_utc(now - retention.images),
        "cut_alerts": _naive_utc(now - retention.alerts),
    }


def audit_limit(policy: Policy, agencies: list[str]) -> timedelta:
    """The one audit limit of the global chain: the longest any agency asks for, >= one year."""
    limits = [policy.retention.audit, MIN_AUDIT_RETENTION]
    limits += [policy.retention_for(agency).audit for agency in agencies]
    return max(limits)


def known_agencies(client: Client, policy: Policy) -> list[str]:
    rows = client.query(
        "SELECT DISTINCT agency_id FROM reads UNION DISTINCT SELECT DISTINCT agency_id FROM alerts"
    ).result_rows
    return sorted({str(row[0]) for row in rows} | set(policy.agencies))


def _count(client: Client, table: str, where: str, params: dict[str, Any]) -> int:
    return int(
        client.query(f"SELECT count() FROM {table} WHERE {where}", parameters=params).result_rows[0][0]
    )


def _delete(client: Client, table: str, where: str, params: dict[str, Any]) -> None:
    client.command(
        f"ALTER TABLE {table} DELETE WHERE {where}", parameters=params, settings={"mutations_sync": 2}
    )


def _table_columns(client: Client, table: str) -> set[str]:
    rows = client.query(
        "SELECT name FROM system.columns WHERE database = currentDatabase() AND table = {t:String}",
        parameters={"t": table},
    ).result_rows
    return {str(row[0]) for row in rows}


def _trim_derived(client: Client, params: dict[str, Any]) -> None:
    """Remove rows of materialized-view copies whose read is gone (tables of migration 0005)."""
    if {"agency_id", "plate", "captured_at"} <= _table_columns(client, "reads_by_camera"):
        _delete(
            client,
            "reads_by_camera",
            "agency_id = {agency:String} AND captured_at < {newest_cut:DateTime('UTC')} AND "
            "(plate, captured_at) NOT IN (SELECT plate, toDateTime(captured_at) FROM reads "
            "WHERE agency_id = {agency:String})",
            params,
        )
    if {"agency_id", "plate"} <= _table_columns(client, "plates"):
        _delete(
            client,
            "plates",
            "agency_id = {agency:String} AND plate NOT IN "
            "(SELECT plate FROM reads WHERE agency_id = {agency:String})",
            params,
        )


def configured_keys(policy: Policy) -> PeriodKeyStore:
    """The storage process's pseudonym keys (PLATEWATCH_PSEUDONYM_KEYS_DIR, the policy's rotation)."""
    return configured_key_store(RetentionSettings(), policy)


def held_key_periods(client: Client, agency_id: str) -> set[int]:
    """Key periods of the agency's tokenized reads under an active legal hold."""
    rows = client.query(
        f"SELECT DISTINCT plate FROM reads WHERE agency_id = {{agency:String}} "
        f"AND startsWith(plate, '{TOKEN_PREFIX}:') AND read_id IN {_HELD}",
        parameters={"agency": agency_id},
    ).result_rows
    periods = set()
    for (plate,) in rows:
        try:
            periods.add(token_period(str(plate)))
        except ValueError:
            continue  # starts like a token but is not one: nothing to keep
    return periods


def _period_record(keys: PeriodKeyStore, agency: str, period: int) -> dict[str, Any]:
    start, end = keys.period_bounds(period)
    return {"agency_id": agency, "period": period, "start": start.isoformat(), "end": end.isoformat()}


async def shred_expired_keys(
    client: Client,
    policy: Policy,
    keys: PeriodKeyStore,
    agencies: list[str],
    now: datetime,
    recorder: AuditRecorder | None,
) -> dict[str, list[dict[str, Any]]]:
    """Destroy the agencies' keys whose period ended before their non-hit cutoff (audited first),
    except periods with held tokenized reads. Returns {"destroyed": [...], "kept_for_holds": [...]}."""
    destroyed: list[dict[str, Any]] = []
    kept: list[dict[str, Any]] = []
    for agency in sorted(set(agencies) | set(keys.agencies())):
        limit = policy.retention_for(agency).non_hit_reads
        expired = keys.expired_periods(agency, now, limit)
        if not expired:
            continue
        held = await asyncio.to_thread(held_key_periods, client, agency)
        for period in expired:
            record = _period_record(keys, agency, period)
            if period in held:
                kept.append(record)
                continue
            record["cutoff"] = (now - limit).astimezone(UTC).isoformat()
            if recorder is not None:
                details = {"data_class": "pseudonym_keys", **record, **policy_reference(policy)}
                await recorder.record(
                    AuditEvent(
                        kind="retention_delete",
                        actor=ACTOR,
                        agency_id=agency,
                        action="retention.shred_key",
                        result_count=1,
                        details=details,
                    )
                )
            if await asyncio.to_thread(keys.destroy_period, agency, period):
                destroyed.append(record)
                log.info("pseudonym key destroyed", extra=record)
    return {"destroyed": destroyed, "kept_for_holds": kept}


async def run_retention(
    client: Client,
    policy: Policy,
    now: datetime,
    recorder: AuditRecorder | None,
    keys: PeriodKeyStore | None = None,
) -> dict[str, Any]:
    """One retention pass at time `now`. Returns {"at", "deleted": [{agency_id, data_class, rows,
    held_kept, cutoff}], "keys": {"destroyed": [{agency_id, period, start, end, cutoff}],
    "kept_for_holds": [...]}, "audit": {...}}. `keys`: the pseudonym keys (default: the configured
    ones, `configured_keys`). Blocking ClickHouse calls run in worker threads."""
    keys = keys if keys is not None else configured_keys(policy)
    deleted: list[dict[str, Any]] = []
    agencies = await asyncio.to_thread(known_agencies, client, policy)
    scopes = _scopes()
    for agency in agencies:
        params = cutoffs(policy, agency, now)
        params["newest_cut"] = max(params["cut_non_hit"], params["cut_hit"]).replace(microsecond=0)
        any_reads_deleted = False
        # Images first (found through their reads), then reads (hit status comes from alerts), then alerts.
        for data_class in ("images", "non_hit_reads", "hit_reads", "alerts"):
            scope = scopes[data_class]
            rows = await asyncio.to_thread(_count, client, scope.table, scope.past_sql, params)
            if rows == 0:
                continue
            held = await asyncio.to_thread(_count, client, scope.table, scope.held_sql, params)
            cutoff_key = {
                "images": "cut_images",
                "alerts": "cut_alerts",
                "non_hit_reads": "cut_non_hit",
                "hit_reads": "cut_hit",
            }[data_class]
            record = {
                "agency_id": agency,
                "data_class": data_class,
                "rows": rows,
                "held_kept": held,
                "cutoff": params[cutoff_key].replace(tzinfo=UTC).isoformat(),
            }
            if recorder is not None:
                await recorder.record(_deletion_event(policy, agency, data_class, rows, record))
            await asyncio.to_thread(_delete, client, scope.table, scope.past_sql, params)
            deleted.append(record)
            any_reads_deleted = any_reads_deleted or scope.table == "reads"
            log.info("retention deleted rows", extra=record)
        if any_reads_deleted:
            await asyncio.to_thread(_trim_derived, client, params)
    # After the deletions: released rows still past their limit are gone (audited) by now.
    marks = await asyncio.to_thread(sync_hold_marks, client)
    if marks:
        log.info("legal-hold marks updated", extra={"rows": marks})
    # After the reads are gone: a shredded key must not leave non-hit reads it could still name.
    shredded = await shred_expired_keys(client, policy, keys, agencies, now, recorder)
    audit = await _prune_audit(client, policy, agencies, now, recorder)
    return {"at": now.isoformat(), "deleted": deleted, "keys": shredded, "audit": audit}


def _deletion_event(
    policy: Policy, agency: str, data_class: str, rows: int, details: dict[str, Any]
) -> AuditEvent:
    """A deletion, naming the policy (profile and fingerprint) whose limit it enforced."""
    return AuditEvent(
        kind="retention_delete",
        actor=ACTOR,
        agency_id=agency,
        action=f"retention.delete.{data_class}",
        result_count=rows,
        details={**details, **policy_reference(policy)},
    )


def policy_reference(policy: Policy) -> dict[str, str]:
    return {"policy_profile": policy.profile, "policy_sha256": policy.fingerprint()}


async def _prune_audit(
    client: Client, policy: Policy, agencies: list[str], now: datetime, recorder: AuditRecorder | None
) -> dict[str, Any]:
    """Delete audit entries older than the audit limit; the deletion itself is chained first with
    `through_sequence`, which tells verifiers where the log may legitimately start."""
    limit = audit_limit(policy, agencies)
    cutoff_us = int((now - limit).timestamp() * 1_000_000)
    rows = await asyncio.to_thread(
        lambda: client.query(
            "SELECT count(), max(sequence) FROM audit_log WHERE chained_at_us < {cut:Int64}",
            parameters={"cut": cutoff_us},
        ).result_rows[0]
    )
    count, through = int(rows[0]), int(rows[1] or 0)
    summary = {"limit_days": limit.days, "rows": count, "through_sequence": through}
    if count == 0:
        return summary
    if recorder is not None:
        details = {"data_class": "audit", "rows": count, "through_sequence": through}
        await recorder.record(_deletion_event(policy, "", "audit", count, details))
    await asyncio.to_thread(
        _delete, client, "audit_log", "sequence <= {through:UInt64}", {"through": through}
    )
    return summary


def key_report(
    client: Client, policy: Policy, keys: PeriodKeyStore, agency_id: str, now: datetime
) -> dict[str, Any]:
    """One agency's pseudonym keys: rotation, live and destroyed periods (with their start), and
    live periods past the non-hit limit (0 after a pass, except those kept by a legal hold)."""
    expired = keys.expired_periods(agency_id, now, policy.retention_for(agency_id).non_hit_reads)
    held = held_key_periods(client, agency_id) if expired else set()

    def listed(periods: list[int]) -> list[dict[str, Any]]:
        return [_period_record(keys, agency_id, p) for p in periods]

    return {
        "pseudonymized": policy.rules_for(agency_id).pseudonymize,
        "rotation_seconds": int(keys.rotation.total_seconds()),
        "live": listed(list(keys.periods(agency_id))),
        "destroyed": listed(list(keys.destroyed_periods(agency_id))),
        "past_limit": len([p for p in expired if p not in held]),
        "held_past_limit": len([p for p in expired if p in held]),
    }


def retention_report(
    client: Client,
    policy: Policy,
    now: datetime,
    agency_id: str | None = None,
    keys: PeriodKeyStore | None = None,
) -> dict[str, Any]:
    """Per agency and class: limit, cutoff, rows, oldest row, rows past the limit (must be 0 after
    a pass), rows past the limit kept by a legal hold; per agency its pseudonym keys (`key_report`,
    in result["pseudonym_keys"][agency]); plus the audit log's. `compliant` is true when
    nothing unheld is past its limit."""
    keys = keys if keys is not None else configured_keys(policy)
    agencies = (
        [agency_id] if agency_id else sorted(set(known_agencies(client, policy)) | set(keys.agencies()))
    )
    scopes = _scopes()
    result: dict[str, Any] = {"at": now.isoformat(), "agencies": {}, "compliant": True}
    for agency in agencies:
        params = cutoffs(policy, agency, now)
        retention = policy.retention_for(agency)
        classes: dict[str, Any] = {}
        for data_class, scope in scopes.items():
            row = client.query(
                f"SELECT count(), min({scope.time_column}) FROM {scope.table} WHERE {scope.rows_sql}",
                parameters=params,
            ).result_rows[0]
            past = _count(client, scope.table, scope.past_sql, params)
            held = _count(client, scope.table, scope.held_sql, params)
            rows = int(row[0])
            classes[data_class] = {
                "limit_seconds": int(retention.for_class(data_class).total_seconds()),
                "rows": rows,
                "oldest": row[1].replace(tzinfo=UTC).isoformat() if rows else None,
                "past_limit": past,
                "held_past_limit": held,
            }
            if past:
                result["compliant"] = False
        result["agencies"][agency] = classes
        key_state = key_report(client, policy, keys, agency, now)
        if key_state["past_limit"]:
            result["compliant"] = False
        result.setdefault("pseudonym_keys", {})[agency] = key_state
    limit = audit_limit(policy, known_agencies(client, policy))
    cutoff_us = int((now - limit).timestamp() * 1_000_000)
    row = client.query(
        "SELECT count(), min(chained_at_us), countIf(chained_at_us < {cut:Int64}) FROM audit_log",
        parameters={"cut": cutoff_us},
    ).result_rows[0]
    result["audit"] = {
        "limit_seconds": int(limit.total_seconds()),
        "rows": int(row[0]),
        "oldest": datetime.fromtimestamp(int(row[1]) / 1e6, UTC).isoformat() if int(row[0]) else None,
        "past_limit": int(row[2]),
    }
    if int(row[2]):
        result["compliant"] = False
    # The TTL backstop in place per table against the policy's (not part of `compliant`: rows past
    # their limit are counted above whatever removes them).
    settings = RetentionSettings()
    result["ttl_backstop"] = backstop_state(
        client, policy, timedelta(seconds=settings.retention_ttl_grace_seconds), settings.clickhouse_cluster
    )
    return result
