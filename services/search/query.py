"""Plate search as SQL: wildcard translation, filters and keyset page tokens.

User input only ever reaches ClickHouse as bound parameters; the SQL text is assembled from fixed
fragments chosen by which filters are present.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from services.common.pb.platewatch.v1 import search_pb2
from services.search.pseudonyms import NOT_TOKEN_SQL

WILDCARD_ONE = "?"
WILDCARD_ANY = "*"
MAX_PATTERN_LENGTH = 32

STORED_READ_COLUMNS = (
    "read_id",
    "plate",
    "region",
    "confidence",
    "camera_id",
    "agency_id",
    "toUnixTimestamp64Milli(captured_at) AS captured_ms",
    "direction",
    "lat",
    "lon",
    "vehicle_color",
    "vehicle_color_confidence",
    "vehicle_make",
    "vehicle_type",
    "box_x",
    "box_y",
    "box_width",
    "box_height",
)


class InvalidQuery(ValueError):
    """The request cannot be answered as asked (maps to INVALID_ARGUMENT)."""


@dataclass(frozen=True)
class PlateMatch:
    """Either an exact plate or a LIKE pattern (with `\\` as the escape character)."""

    exact: str | None = None
    like: str | None = None


def normalize_plate_text(text: str) -> str:
    """Stored plates are upper case without spaces; queries are compared the same way."""
    return "".join(text.split()).upper()


def translate_plate(text: str) -> PlateMatch:
    """`?` matches one character and `*` any run (also empty); everything else is literal.

    LIKE's own metacharacters (`%`, `_`, `\\`) are escaped so they only match themselves.
    Empty queries and queries made only of wildcards are rejected: they would scan every read."""
    plate = normalize_plate_text(text)
    if not plate:
        raise InvalidQuery("plate is required")
    if len(plate) > MAX_PATTERN_LENGTH:
        raise InvalidQuery(f"plate longer than {MAX_PATTERN_LENGTH} characters")
    if all(ch in (WILDCARD_ONE, WILDCARD_ANY) for ch in plate):
        raise InvalidQuery("plate pattern needs at least one literal character")
    if WILDCARD_ONE not in plate and WILDCARD_ANY not in plate:
        return PlateMatch(exact=plate)
    out: list[str] = []
    for ch in plate:
        if ch == WILDCARD_ONE:
            out.append("_")
        elif ch == WILDCARD_ANY:
            # Consecutive stars mean the same as one.
            if not out or out[-1] != "%":
                out.append("%")
        elif ch in ("%", "_", "\\"):
            out.append("\\" + ch)
        else:
            out.append(ch)
    return PlateMatch(like="".join(out))


@dataclass(frozen=True)
class PageCursor:
    """The last row of the previous page, in the (captured_at, read_id) descending order."""

    captured_ms: int
    read_id: str


def query_fingerprint(request: search_pb2.PlateQuery) -> str:
    """What a page token is tied to: every filter of the query, but not page size or token."""
    key = {
        "plate": normalize_plate_text(request.plate),
        "agencies": sorted(request.agency_ids),
        "cameras": sorted(request.camera_ids),
        "from": [getattr(request, "from").seconds, getattr(request, "from").nanos],
        "to": [request.to.seconds, request.to.nanos],
        "min_confidence": round(float(request.min_confidence), 6),
        "directions": sorted(request.directions),
        "colors": sorted(request.vehicle_colors),
        "circle": request.circle.SerializeToString().hex() if request.HasField("circle") else "",
        "polygon": request.polygon.SerializeToString().hex() if request.HasField("polygon") else "",
        "fuzzy": request.fuzzy,
        "full_scan": request.allow_full_scan,
    }
    return hashlib.sha256(json.dumps(key, sort_keys=True).encode()).hexdigest()[:16]


def encode_page_token(cursor: PageCursor, fingerprint: str) -> str:
    payload = json.dumps({"t": cursor.captured_ms, "id": cursor.read_id, "q": fingerprint}).encode()
    return base64.urlsafe_b64encode(payload).decode().rstrip("=")


def decode_page_token(token: str, fingerprint: str) -> PageCursor:
    """The cursor in `token`; InvalidQuery when it is corrupt or belongs to a different query."""
    try:
        padded = token + "=" * (-len(token) % 4)
        payload = json.loads(base64.urlsafe_b64decode(padded.encode()))
        cursor = PageCursor(int(payload["t"]), str(payload["id"]))
        query = str(payload["q"])
    except (binascii.Error, ValueError, KeyError, TypeError, UnicodeDecodeError) as exc:
        raise InvalidQuery("page_token is not valid") from exc
    if query != fingerprint:
        raise InvalidQuery("page_token belongs to a different query")
    return cursor


def _timestamp_ms(seconds: int, nanos: int) -> int:
    return seconds * 1000 + nanos // 1_000_000


def exact_plate_sql(
    plate: str,
    forms: Sequence[str] | None,
    params: dict[str, Any],
    column: str = "plate",
    negate: bool = False,
) -> str:
    """`column` equal to an exact plate, or IN its stored forms when it has more than one (the
    plate and its pseudonym tokens: services/search/pseudonyms.py). Binds `plate` and, with forms,
    `plate_forms`."""
    params["plate"] = plate
    if forms is None or list(forms) == [plate]:
        return f"{column} {'!=' if negate else '='} {{plate:String}}"
    params["plate_forms"] = list(dict.fromkeys([plate, *forms]))
    return f"{column} {'NOT IN' if negate else 'IN'} {{plate_forms:Array(String)}}"


def build_search_sql(
    request: search_pb2.PlateQuery, page_size: int, plate_forms: Sequence[str] | None = None
) -> tuple[str, dict[str, Any], str]:
    """SQL, parameters and query fingerprint for one page. Fetches page_size + 1 rows so the
    caller knows whether a next page exists. `plate_forms`: the stored forms of an exact plate
    (services/search/pseudonyms.plate_forms); None = the plate as typed."""
    # Imported here: analytics imports this module.
    from services.search.analytics import geo_conditions, require_agencies, time_window

    # Reversed windows and times before 2000 or far in the future are refused; any length is fine
    # here because a plate search is bounded by its plates.
    time_window(request, max_days=100 * 366, required=False)

    fingerprint = query_fingerprint(request)
    params: dict[str, Any] = {"limit": page_size + 1, "agencies": require_agencies(request.agency_ids)}
    conditions: list[str] = ["agency_id IN {agencies:Array(String)}"]
    if normalize_plate_text(request.plate):
        conditions.append(
            _plate_condition(translate_plate(request.plate), request.fuzzy, params, plate_forms)
        )
    elif not request.allow_full_scan:
        raise InvalidQuery(
            "plate is required (a search without a plate scans every read: set allow_full_scan)"
        )
    if request.directions:
        conditions.append("direction IN {directions:Array(String)}")
        params["directions"] = sorted(set(request.directions))
    if request.vehicle_colors:
        conditions.append("vehicle_color IN {colors:Array(String)}")
        params["colors"] = sorted(set(request.vehicle_colors))
    conditions += geo_conditions(
        request.circle if request.HasField("circle") else None,
        request.polygon if request.HasField("polygon") else None,
        params,
        "geo",
    )
    if request.camera_ids:
        conditions.append("camera_id IN {cameras:Array(String)}")
        params["cameras"] = list(request.camera_ids)
    since = getattr(request, "from")  # `from` is a Python keyword
    if request.HasField("from"):
        conditions.append("captured_at >= fromUnixTimestamp64Milli({from_ms:Int64}, 'UTC')")
        params["from_ms"] = _timestamp_ms(since.seconds, since.nanos)
    if request.HasField("to"):
        conditions.append("captured_at < fromUnixTimestamp64Milli({to_ms:Int64}, 'UTC')")
        params["to_ms"] = _timestamp_ms(request.to.seconds, request.to.nanos)
    if request.min_confidence > 0:
        conditions.append("confidence >= {min_confidence:Float32}")
        params["min_confidence"] = float(request.min_confidence)
    if request.page_token:
        cursor = decode_page_token(request.page_token, fingerprint)
        conditions.append(
            "captured_at <= fromUnixTimestamp64Milli({cursor_ms:Int64}, 'UTC') AND "
            "(captured_at < fromUnixTimestamp64Milli({cursor_ms:Int64}, 'UTC') "
            "OR read_id < {cursor_id:String})"
        )
        params["cursor_ms"] = cursor.captured_ms
        params["cursor_id"] = cursor.read_id
    sql = (
        f"SELECT {', '.join(STORED_READ_COLUMNS)} FROM reads "
        f"WHERE {' AND '.join(conditions)} "
        "ORDER BY captured_at DESC, read_id DESC LIMIT {limit:UInt32}"
    )
    return sql, params, fingerprint


def _plate_condition(
    match: PlateMatch, fuzzy: bool, params: dict[str, Any], forms: Sequence[str] | None = None
) -> str:
    """The plate part of a search. An exact plate uses the `reads` key directly. Patterns and fuzzy
    searches match `plates` first (`plate_candidates_sql`) and the caller binds the matching plates
    as `plates`, so the reads are found by key (a bound array prunes by key; measured 2x faster than
    an IN subquery)."""
    if match.exact is not None and not fuzzy:
        return exact_plate_sql(match.exact, forms, params)
    params["pattern"] = match.exact if match.exact is not None else match.like
    return "plate IN {plates:Array(String)}"


def plate_candidates_sql(request: search_pb2.PlateQuery, page_size: int) -> tuple[str, dict[str, Any]] | None:
    """For a pattern or fuzzy search, the query listing matching plates (one column), else None.

    On the first page of a search whose only other filters are agencies and `from`, only the
    page_size + 1 plates seen most recently (with ties) can hold the newest page_size + 1 reads: any
    plate outside them has at least that many newer plates, each with a newer read. So a broad
    pattern costs a few plates' reads, not every matching plate's. Other pages and filtered searches
    take every matching plate (the caller refuses more than a configured number).

    Pseudonym tokens never match a pattern or a fuzzy search (minimization, see pseudonyms.py)."""
    plate = normalize_plate_text(request.plate)
    if not plate:
        return None
    match = translate_plate(plate)
    if match.exact is not None and not request.fuzzy:
        return None
    # Imported here: analytics imports this module.
    from services.search.analytics import require_agencies

    params: dict[str, Any] = {"agencies": require_agencies(request.agency_ids)}
    params["pattern"] = match.exact if match.exact is not None else match.like
    if request.fuzzy:
        # translate() leaves LIKE wildcards and escapes alone; the mapping matches migration 0005.
        operator = "=" if match.exact is not None else "LIKE"
        matching = f"skeleton {operator} translate({{pattern:String}}, 'ODQILBSZG', '000118526')"
    else:
        matching = "plate LIKE {pattern:String}"
    having: list[str] = []
    since = getattr(request, "from")
    if request.HasField("from"):
        params["from_s"] = since.seconds
        having.append("max(last_seen) >= toDateTime({from_s:Int64}, 'UTC')")
    if request.HasField("to"):
        params["to_s"] = request.to.seconds + 1
        having.append("min(first_seen) < toDateTime({to_s:Int64}, 'UTC')")
    sql = (
        f"SELECT plate FROM plates WHERE agency_id IN {{agencies:Array(String)}} AND {matching} "
        f"AND {NOT_TOKEN_SQL} GROUP BY plate"
    )
    if having:
        sql += f" HAVING {' AND '.join(having)}"
    unfiltered = not (
        request.page_token
        or request.HasField("to")
        or request.camera_ids
        or request.min_confidence > 0
        or request.directions
        or request.vehicle_colors
        or request.HasField("circle")
        or request.HasField("polygon")
    )
    if unfiltered:
        params["top"] = page_size + 1
        sql += " ORDER BY max(last_seen) DESC LIMIT {top:UInt32} WITH TIES"
    return sql, params


def clamp_page_size(requested: int, default: int, maximum: int) -> int:
    if requested <= 0:
        return default
    return min(requested, maximum)
