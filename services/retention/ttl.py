"""The ClickHouse TTL backstop: storage itself removes rows that outlive the policy's limits, even if
the retention job (services/retention/job.py) stops.

The job stays the enforcing and audited path: every pass deletes the rows past their limit with
`ALTER TABLE ... DELETE`, recording each deletion in the audit log first, and the retention report
counts what is past its limit. ClickHouse does not audit what a TTL removes row by row, so the TTL
is set later than the job: the policy's limit plus a grace (`PLATEWATCH_RETENTION_TTL_GRACE_SECONDS`,
default an hour, i.e. 60 missed passes). It only acts on rows the job should have deleted and did
not, i.e. when the job has not run for the grace. Such rows go at the next TTL merge of their part
(`merge_with_ttl_timeout`, 4 hours by default) or at the next mutation that rewrites it, whichever
comes first, without a retention_delete record; the audit log does record every TTL the component
sets (kind "policy_change", action "retention.ttl_backstop", with the policy's fingerprint).

One TTL per table, `<row time> + <limit> DELETE WHERE legal_hold = 0`:

  reads, reads_by_camera, plates  per agency (multiIf on agency_id, default branch for agencies the
                                  policy does not list) the longer of the hit and non-hit limits.
                                  There is no hit column: a read becomes a hit when its alert is
                                  stored, possibly after the read, and the writer cannot tell.
                                  Marking hits later would need the job, and a backstop that
                                  deletes a hit read at the non-hit limit when the job is down
                                  would destroy data the policy keeps; the backstop errs on keeping.
                                  The job does the per-hit precision. plates uses last_seen: a
                                  plate row goes when its newest read is past the limit.
  alerts                          per agency, the alerts limit (raised_at).
  read_images                     no agency column: the longest, over the policy's agencies and its
                                  default, of min(images, longer read limit) (an image never
                                  outlives its read).
  read_counts_hourly, cameras     none: no plate, and the job keeps them (statistics).
  audit_log                       none: the chain's prefix may only go after the chain records it
                                  (`through_sequence`, which verifiers start from); a TTL removal
                                  would make `audit verify` report tampering. The job prunes it.

A TTL expression can read only the row's own columns, not the legal_holds table, so a held row is
marked on the row (`legal_hold`, migration 0021, kept by services/retention/holds.py). The limits
are whole seconds (`toIntervalSecond`), so any duration a profile states is exact.

`apply_backstop` compares the TTL in place on each table (its engine definition) with the one the
loaded policy gives and changes only those that differ (`ALTER TABLE ... MODIFY TTL`). Changing a
TTL recomputes each part's TTL information (`materialize_ttl_recalculate_only`, set by 0021) in the
background, reading only the TTL's columns, so the writer is not held up; expired rows then go at
their part's next TTL merge. On a cluster the statement goes to the local tables on every node.
"""

from __future__ import annotations

import asyncio
import logging
import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from clickhouse_connect.driver.client import Client

from services.audit.client import AuditEvent, AuditRecorder
from services.governance.policy import Policy, Retention
from services.storage.cluster import physical_table, render

log = logging.getLogger(__name__)

ACTOR = "retention"
HOLD_CONDITION = "legal_hold = 0"


def read_limit(retention: Retention) -> timedelta:
    """The longest a read of the agency is kept (hit or not)."""
    return max(retention.hit_reads, retention.non_hit_reads)


def image_limit(retention: Retention) -> timedelta:
    """The longest an image of the agency is kept: its own limit, never past its read's."""
    return min(retention.images, read_limit(retention))


@dataclass(frozen=True)
class BackstopTable:
    table: str
    # DateTime expression of the row's time.
    time_expr: str
    limit: Callable[[Retention], timedelta]
    # The table has agency_id (per-agency limits) or not (the longest of all agencies).
    per_agency: bool


TABLES: tuple[BackstopTable, ...] = (
    BackstopTable("reads", "toDateTime(captured_at)", read_limit, True),
    BackstopTable("reads_by_camera", "captured_at", read_limit, True),
    BackstopTable("plates", "last_seen", read_limit, True),
    BackstopTable("alerts", "toDateTime(raised_at)", lambda r: r.alerts, True),
    BackstopTable("read_images", "toDateTime(captured_at)", image_limit, False),
)


def _literal(value: str) -> str:
    """A ClickHouse string literal, written the way ClickHouse prints it back."""
    return "'" + value.replace("\\", "\\\\").replace("'", "\\'") + "'"


def _seconds(value: timedelta) -> int:
    return int(value.total_seconds())


def backstop_ttl(policy: Policy, grace: timedelta, spec: BackstopTable) -> str:
    """The TTL clause of one table for `policy` (as ClickHouse prints it back)."""
    default = _seconds(spec.limit(policy.defaults.retention or policy.retention) + grace)
    per_agency = {a: _seconds(spec.limit(policy.retention_for(a)) + grace) for a in sorted(policy.agencies)}
    if not spec.per_agency:
        seconds = str(max([default, *per_agency.values()]))
    else:
        branches = [f"agency_id = {_literal(a)}, {s}" for a, s in per_agency.items() if s != default]
        seconds = f"multiIf({', '.join(branches)}, {default})" if branches else str(default)
    return f"{spec.time_expr} + toIntervalSecond({seconds}) WHERE {HOLD_CONDITION}"


def backstop_ttls(policy: Policy, grace: timedelta) -> dict[str, str]:
    """Table -> its TTL clause for `policy`."""
    return {spec.table: backstop_ttl(policy, grace, spec) for spec in TABLES}


_TTL_IN_ENGINE = re.compile(r"\sTTL\s(?P<ttl>.*?)(?:\sSETTINGS\s.*)?$", re.DOTALL)


def _normal(text: str) -> str:
    return " ".join(text.split())


def ttl_in_place(client: Client, table: str, cluster: str = "") -> str:
    """The table's TTL clause as ClickHouse shows it ("" when it has none or does not exist)."""
    rows = client.query(
        "SELECT engine_full FROM system.tables WHERE database = currentDatabase() AND name = {t:String}",
        parameters={"t": physical_table(table, cluster)},
    ).result_rows
    if not rows:
        return ""
    match = _TTL_IN_ENGINE.search(str(rows[0][0]))
    return _normal(match["ttl"]) if match else ""


def backstop_state(client: Client, policy: Policy, grace: timedelta, cluster: str = "") -> dict[str, Any]:
    """Per table: the TTL in place, the one `policy` gives, and whether they agree."""
    state = {}
    for table, wanted in backstop_ttls(policy, grace).items():
        in_place = ttl_in_place(client, table, cluster)
        state[table] = {"in_place": in_place, "policy": wanted, "current": in_place == _normal(wanted)}
    return state


def _modify(client: Client, table: str, ttl: str, cluster: str, wait: bool) -> None:
    for statement in render([f"ALTER TABLE {table} MODIFY TTL {ttl}"], cluster, client.database or "default"):
        client.command(
            statement, settings={"mutations_sync": 2 if wait else 0, "materialize_ttl_after_modify": 1}
        )


async def apply_backstop(
    client: Client,
    policy: Policy,
    grace: timedelta,
    recorder: AuditRecorder | None,
    cluster: str = "",
    wait: bool = False,
) -> dict[str, dict[str, str]]:
    """Set the TTL of every table whose TTL in place differs from what `policy` gives; returns
    {table: {"ttl", "previous"}} for those changed. The change is audited before it is made.
    `wait`: return only once the parts' TTL information is recomputed (tests); by default that
    runs in the background. Blocking ClickHouse calls run in worker threads."""
    state = await asyncio.to_thread(backstop_state, client, policy, grace, cluster)
    changes = {
        table: {"ttl": entry["policy"], "previous": entry["in_place"]}
        for table, entry in state.items()
        if not entry["current"]
    }
    if not changes:
        return {}
    if recorder is not None:
        await recorder.record(
            AuditEvent(
                kind="policy_change",
                actor=ACTOR,
                agency_id="",
                action="retention.ttl_backstop",
                result_count=len(changes),
                details={
                    "tables": changes,
                    "grace_seconds": _seconds(grace),
                    "policy_profile": policy.profile,
                    "policy_sha256": policy.fingerprint(),
                },
            )
        )
    for table, change in changes.items():
        await asyncio.to_thread(_modify, client, table, change["ttl"], cluster, wait)
        log.info("retention TTL backstop set", extra={"table": table, **change})
    return changes
