"""The numbers of a transparency report, gathered from ClickHouse (runs where ClickHouse is owned:
AuditService.TransparencyData, or `--direct`).

Shape (JSON): {agency_id, period: {from, to}, generated_at, policy_profile, cameras: [{camera_id,
reads}], reads: {total, source}, hits_by_list: [{hotlist, hits}], alert_outcomes: [{status,
outcome, alerts}], searches_by_purpose: [{purpose_code, outcome, searches, results}],
audited_actions: [{kind, outcome, count}], refusals_by_rule: [{rule, refusals}], sharing:
{partners_queried: [{agency_id, searches}], partners_received: [{agency_id, accesses}]},
retention: <retention report of the agency>, checkpoint: <latest signed checkpoint> | null}.

Read counts come from `read_counts_hourly` (kept as counts beyond read retention) when that table
exists, else from the reads still stored.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from clickhouse_connect.driver.client import Client

from services.audit import store
from services.audit.chain import to_micros
from services.governance.policy import Policy
from services.retention.job import retention_report


def _naive(value: datetime) -> datetime:
    return value.astimezone(UTC).replace(tzinfo=None) if value.tzinfo else value


def _rows(client: Client, sql: str, params: dict[str, Any]) -> list[dict[str, Any]]:
    result = client.query(sql, parameters=params)
    return [dict(zip(result.column_names, row, strict=True)) for row in result.result_rows]


def _has_table(client: Client, table: str) -> bool:
    rows = client.query(
        "SELECT count() FROM system.tables WHERE database = currentDatabase() AND name = {t:String}",
        parameters={"t": table},
    ).result_rows
    return bool(rows[0][0])


def gather(
    client: Client, policy: Policy, agency_id: str, start: datetime, end: datetime, now: datetime
) -> dict[str, Any]:
    params: dict[str, Any] = {
        "agency": agency_id,
        "start": _naive(start),
        "end": _naive(end),
        "start_us": to_micros(start),
        "end_us": to_micros(end),
    }
    if _has_table(client, "read_counts_hourly"):
        source = "read_counts_hourly"
        cameras = _rows(
            client,
            "SELECT toString(camera_id) AS camera_id, toUInt64(sum(reads)) AS reads FROM read_counts_hourly "
            "WHERE agency_id = {agency:String} AND hour >= {start:DateTime('UTC')} "
            "AND hour < {end:DateTime('UTC')} GROUP BY camera_id ORDER BY camera_id",
            params,
        )
    else:
        source = "reads"
        cameras = _rows(
            client,
            "SELECT toString(camera_id) AS camera_id, count() AS reads FROM reads "
            "WHERE agency_id = {agency:String} AND captured_at >= {start:DateTime64(3, 'UTC')} "
            "AND captured_at < {end:DateTime64(3, 'UTC')} GROUP BY camera_id ORDER BY camera_id",
            params,
        )
    alerts_in_period = (
        "SELECT alert_id, any(hotlist_name) AS hotlist, argMax(status, updated_at) AS status, "
        "argMax(outcome, updated_at) AS outcome FROM alerts WHERE agency_id = {agency:String} "
        "AND raised_at >= {start:DateTime64(3, 'UTC')} AND raised_at < {end:DateTime64(3, 'UTC')} "
        "GROUP BY alert_id"
    )
    hits = _rows(
        client,
        f"SELECT hotlist, count() AS hits FROM ({alerts_in_period}) GROUP BY hotlist ORDER BY hotlist",
        params,
    )
    outcomes = _rows(
        client,
        f"SELECT toString(status) AS status, toString(outcome) AS outcome, count() AS alerts "
        f"FROM ({alerts_in_period}) GROUP BY status, outcome ORDER BY status, outcome",
        params,
    )
    audit_period = (
        "agency_id = {agency:String} AND occurred_at_us >= {start_us:Int64} "
        "AND occurred_at_us < {end_us:Int64}"
    )
    searches = _rows(
        client,
        "SELECT toString(purpose_code) AS purpose_code, toString(outcome) AS outcome, count() AS searches, "
        f"sum(result_count) AS results FROM audit_log WHERE {audit_period} AND kind = 'search' "
        "GROUP BY purpose_code, outcome ORDER BY purpose_code, outcome",
        params,
    )
    actions = _rows(
        client,
        "SELECT toString(kind) AS kind, toString(outcome) AS outcome, count() AS count FROM audit_log "
        f"WHERE {audit_period} GROUP BY kind, outcome ORDER BY kind, outcome",
        params,
    )
    refusals = _rows(
        client,
        "SELECT JSONExtractString(details_json, 'rule') AS rule, count() AS refusals FROM audit_log "
        f"WHERE {audit_period} AND outcome = 'refused' GROUP BY rule ORDER BY rule",
        params,
    )
    queried = _rows(
        client,
        "SELECT partner, count() AS searches FROM audit_log "
        "ARRAY JOIN JSONExtract(details_json, 'agency_ids', 'Array(String)') AS partner "
        f"WHERE {audit_period} AND kind IN ('search', 'image_view', 'export') "
        "AND partner != {agency:String} GROUP BY partner ORDER BY partner",
        params,
    )
    received = _rows(
        client,
        "SELECT JSONExtractString(details_json, 'partner_agency_id') AS partner, count() AS accesses "
        f"FROM audit_log WHERE {audit_period} AND kind = 'sharing' GROUP BY partner ORDER BY partner",
        params,
    )
    checkpoint = store.get_checkpoint(client)
    return {
        "agency_id": agency_id,
        "period": {"from": start.isoformat(), "to": end.isoformat()},
        "generated_at": now.isoformat(),
        "policy_profile": policy.profile,
        "cameras": cameras,
        "reads": {"total": sum(int(c["reads"]) for c in cameras), "source": source},
        "hits_by_list": hits,
        "alert_outcomes": outcomes,
        "searches_by_purpose": searches,
        "audited_actions": actions,
        "refusals_by_rule": refusals,
        # (Aliased `partner` in SQL: an alias named agency_id would shadow the column in WHERE.)
        "sharing": {
            "partners_queried": [{"agency_id": r["partner"], "searches": r["searches"]} for r in queried],
            "partners_received": [{"agency_id": r["partner"], "accesses": r["accesses"]} for r in received],
        },
        "retention": retention_report(client, policy, now, agency_id),
        "checkpoint": checkpoint.to_json() if checkpoint else None,
    }
