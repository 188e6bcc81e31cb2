"""Rendering the migration DDL for a ClickHouse cluster (`PLATEWATCH_CLICKHOUSE_CLUSTER`).

The migration files are written for one node (the embedded default). With a cluster name set, each
statement is rewritten before it is sent:

* `CREATE TABLE t (...) ENGINE = XMergeTree(args) ...` becomes `t_local ON CLUSTER c` with
  `ReplicatedXMergeTree('/clickhouse/tables/{shard}/<db>/t_local', '{replica}', args)` (the shard
  and replica macros come from each server's config), plus `t ON CLUSTER c AS t_local` with
  `ENGINE = Distributed(c, <db>, t_local, <sharding key>)`. Everything keeps querying `t`.
* A materialized view reads the local table it derives from (each shard derives from its own
  inserts) and writes to the local target when the target is sharded like the source, else to the
  Distributed target so rows reach the shard that owns them.
* `ALTER TABLE t` applies to `t_local ON CLUSTER c`; an ADD COLUMN also goes to the Distributed `t`.
* `DROP VIEW/TABLE IF EXISTS` drops on the cluster (a sharded table: Distributed, then local).
* `RENAME TABLE a TO b` renames the local tables on the cluster and re-creates the Distributed
  tables over them (a Distributed table names its local table).
* Backfill `INSERT ... SELECT` statements run once, through the Distributed tables, unchanged.

Sharding keys (SHARDING_KEYS) and why:
* reads, plates: cityHash64(plate). All sightings of a plate live on one shard, so exact search,
  timelines, visits of a plate and the plate step of partial search touch one shard (with
  `optimize_skip_unused_shards`), and the per-plate aggregation of `plates` stays local.
* reads_by_camera (named camera_reads in 0007-0008), read_counts_hourly, cameras: cityHash64(camera_id).
  A camera's reads live on one shard, so site, convoy and multi-site questions are per-camera
  local work on every shard in parallel, and `cameras` versions fold on one shard.
* alerts: cityHash64(alert_id): every version of an alert meets on one shard (ReplacingMergeTree).
* read_images: cityHash64(read_id): fetched one read at a time by id.
* hotlist_entries: cityHash64(hotlist_id, entry_id): versions of an entry fold on one shard.
Tables without a key here (small ones owned by other components, e.g. the audit chain, which must
stay whole and in order) are not sharded: one ReplicatedMergeTree under the same name with every
node a replica ('/clickhouse/tables/all/...').
Queries that join or IN a subquery over Distributed tables run with
`distributed_product_mode = 'global'` on a cluster (the subquery is computed once and shipped).
"""

from __future__ import annotations

import re

SHARDING_KEYS: dict[str, str] = {
    "reads": "cityHash64(plate)",
    # Names `reads` passes through in migration 0008.
    "reads_by_plate": "cityHash64(plate)",
    "reads_0001": "cityHash64(plate)",
    # Names `plates` passes through in migration 0009.
    "plates_1024": "cityHash64(plate)",
    "plates_0005": "cityHash64(plate)",
    "plates": "cityHash64(plate)",
    "reads_by_camera": "cityHash64(camera_id)",
    "camera_reads": "cityHash64(camera_id)",
    "read_counts_hourly": "cityHash64(camera_id)",
    "cameras": "cityHash64(camera_id)",
    "alerts": "cityHash64(alert_id)",
    "read_images": "cityHash64(read_id)",
    "hotlist_entries": "cityHash64(hotlist_id, entry_id)",
}

_CREATE_TABLE = re.compile(
    r"^CREATE TABLE IF NOT EXISTS (?P<name>\w+)\s*(?P<columns>\(.*\))\s*"
    r"ENGINE = (?P<engine>\w*MergeTree)(?:\((?P<args>[^)]*)\))?(?P<rest>.*)$",
    re.DOTALL,
)
_CREATE_MV = re.compile(
    r"^CREATE MATERIALIZED VIEW IF NOT EXISTS (?P<name>\w+) TO (?P<target>\w+) AS(?P<select>.*)$", re.DOTALL
)
_FROM = re.compile(r"\bFROM (?P<source>\w+)\b")
_DROP = re.compile(r"^DROP (?P<kind>TABLE|VIEW) IF EXISTS (?P<name>\w+)$")
_RENAME = re.compile(r"^RENAME TABLE (?P<if_exists>IF EXISTS )?(?P<pairs>\w+ TO \w+(?:\s*,\s*\w+ TO \w+)*)$")
_ALTER = re.compile(r"^ALTER TABLE (?P<name>\w+) (?P<rest>.*)$", re.DOTALL)


class ClusterRenderError(ValueError):
    """A migration statement that this renderer does not know how to distribute."""


def local_name(table: str) -> str:
    return f"{table}_local"


def _sharding_key(table: str) -> str | None:
    return SHARDING_KEYS.get(table)


def _physical(table: str) -> str:
    """The table that holds a node's rows: `t_local` for a sharded table, `t` itself otherwise."""
    return local_name(table) if table in SHARDING_KEYS else table


def physical_table(table: str, cluster: str) -> str:
    """The table whose engine holds `table`'s rows (and so its TTL): `t` on one node, `t_local`
    for a sharded table on a cluster."""
    return _physical(table) if cluster else table


def render_statement(statement: str, cluster: str, database: str) -> list[str]:
    """The cluster form of one single-node statement (one or more statements, in order)."""
    on = f"ON CLUSTER `{cluster}`"
    text = statement.strip()
    if match := _CREATE_TABLE.match(text):
        name, engine = match["name"], match["engine"]
        key = _sharding_key(name)
        shard = "{shard}" if key else "all"
        path = f"'/clickhouse/tables/{shard}/{database}/{_physical(name)}', '{{replica}}'"
        args = f"{path}, {match['args']}" if match["args"] else path
        if key is None:
            return [
                f"CREATE TABLE IF NOT EXISTS {name} {on}\n{match['columns']}\n"
                f"ENGINE = Replicated{engine}({args}){match['rest']}"
            ]
        return [
            f"CREATE TABLE IF NOT EXISTS {local_name(name)} {on}\n{match['columns']}\n"
            f"ENGINE = Replicated{engine}({args}){match['rest']}",
            f"CREATE TABLE IF NOT EXISTS {name} {on} AS {local_name(name)}\n"
            f"ENGINE = Distributed(`{cluster}`, `{database}`, {local_name(name)}, {key})",
        ]
    if match := _CREATE_MV.match(text):
        target = match["target"]
        sources = {m["source"] for m in _FROM.finditer(match["select"])}
        if len(sources) != 1:
            raise ClusterRenderError(f"materialized view {match['name']} must read exactly one table")
        source = sources.pop()
        same_shard = _sharding_key(source) == _sharding_key(target)
        select = _FROM.sub(f"FROM {_physical(source)}", match["select"])
        writes_to = _physical(target) if same_shard else target
        return [f"CREATE MATERIALIZED VIEW IF NOT EXISTS {match['name']} {on} TO {writes_to} AS{select}"]
    if match := _ALTER.match(text):
        name, rest = match["name"], match["rest"]
        out = [f"ALTER TABLE {_physical(name)} {on} {rest}"]
        if name in SHARDING_KEYS and rest.startswith("ADD COLUMN"):
            out.append(f"ALTER TABLE {name} {on} {rest}")
        return out
    if match := _DROP.match(text):
        name = match["name"]
        if match["kind"] == "VIEW" or name not in SHARDING_KEYS:
            return [f"DROP {match['kind']} IF EXISTS {name} {on} SYNC"]
        # The Distributed table first, so nothing writes through it to a dropped local table.
        return [
            f"DROP TABLE IF EXISTS {name} {on} SYNC",
            f"DROP TABLE IF EXISTS {local_name(name)} {on} SYNC",
        ]
    if match := _RENAME.match(text):
        pairs = [tuple(part.split(" TO ")) for part in re.split(r"\s*,\s*", match["pairs"])]
        if any((old in SHARDING_KEYS) != (new in SHARDING_KEYS) for old, new in pairs):
            raise ClusterRenderError(f"rename between sharded and unsharded tables: {text[:80]!r}")
        renames = ", ".join(f"{_physical(old)} TO {_physical(new)}" for old, new in pairs)
        sharded = [(old, new) for old, new in pairs if old in SHARDING_KEYS]
        # A Distributed table names its local table, so it is dropped and created again over the
        # renamed local table rather than renamed.
        return [
            *(f"DROP TABLE IF EXISTS {old} {on} SYNC" for old, _ in sharded),
            f"RENAME TABLE {match['if_exists'] or ''}{renames} {on}",
            *(
                f"CREATE TABLE IF NOT EXISTS {new} {on} AS {local_name(new)}\n"
                f"ENGINE = Distributed(`{cluster}`, `{database}`, {local_name(new)}, {SHARDING_KEYS[new]})"
                for _, new in sharded
            ),
        ]
    if text.startswith("INSERT INTO "):
        return [text]
    raise ClusterRenderError(f"cannot render for a cluster: {text[:80]!r}")


def render(statements: list[str], cluster: str, database: str) -> list[str]:
    """Statements for `cluster`, or the statements unchanged when `cluster` is empty (one node)."""
    if not cluster:
        return list(statements)
    return [out for statement in statements for out in render_statement(statement, cluster, database)]
