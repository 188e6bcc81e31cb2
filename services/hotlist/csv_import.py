"""Parsing hotlist CSV extracts (NCIC-style) into `HotlistEntry`s. Pure: no I/O, no clock.

Accepted format
---------------
- UTF-8, with or without a byte-order mark; LF or CRLF line ends; RFC 4180 quoting (a quoted value
  may hold commas, doubled quotes and line breaks). At most `MAX_CSV_BYTES` bytes and `MAX_CSV_ROWS`
  data rows; blank lines are skipped.
- A header row is required (line 1). Column names are case-insensitive, spaces and dashes count as
  underscores, and the order is free. Columns with other names are ignored. Recognised columns:

  ========================  ==========  ===========================================================
  column (aliases)          required    value
  ========================  ==========  ===========================================================
  plate (lic)               yes         upper-cased, spaces and dashes removed; then A-Z, 0-9 and
                                        the wildcards '?' (one character) and '*' (any run), at
                                        most 16 characters, not only wildcards (as AddEntries)
  reason                    yes         see the reason codes below
  state, region (lis)       no          region code such as CA or US-CA (upper-cased)
  priority                  no          1 (highest) .. 9; blank = the reason's default below
  expires (expires_at)      no          ISO 8601 date (the entry is live through that whole day,
                                        UTC) or date-time (no offset = UTC); blank = never
  notes                     no          free text, at most 1000 characters
  vehicle (vehicle_desc...) no          free text (year, make, model, colour), at most 1000
  nic, record_id            no          the source system's record id, at most 128 characters
  ========================  ==========  ===========================================================

  The reason column is required although the issue only requires the plate: an alert with no reason
  would tell the officer nothing, and guessing one (say "stolen vehicle") would be worse.

- Reason codes (case-insensitive; spaces/dashes = underscores; the proto name REASON_CODE_... too):

  ==================================================  ===============  ================
  value                                               ReasonCode       default priority
  ==================================================  ===============  ================
  AMBER, AMBER_ALERT                                  AMBER_ALERT      1
  W, WANTED, WANTED_PERSON                            WANTED_PERSON    2
  MP, EMP, MISSING, MISSING_PERSON, ENDANGERED,       MISSING_PERSON   2
  MISSING_OR_ENDANGERED_PERSON
  SILVER, SILVER_ALERT                                SILVER_ALERT     2
  V, STOLEN_VEHICLE                                   STOLEN_VEHICLE   3
  LP, STOLEN_PLATE                                    STOLEN_PLATE     4
  CUSTOM                                              CUSTOM           5
  ==================================================  ===============  ================

  Anything else is an error (use CUSTOM and explain in `notes`).

Identity: every entry gets a stable `entry_id` derived from the list and the row's record id (`nic`
/ `record_id`) or, without one, its plate and region. Re-importing the same extract therefore
updates entries instead of duplicating them. Two rows with the same identity in one file are an
error on the later row.

Errors carry the 1-based line number (the header is line 1; a row whose quoted value spans lines is
reported at the line it starts on), the column as written in the header ('' for the whole row or
file) and a message. Problems with the file as a whole (size, encoding, header, too many rows,
broken quoting, no data rows) are `fatal`: nothing of such a file may be imported, even partially.
"""

from __future__ import annotations

import csv
import hashlib
import io
import re
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta

from google.protobuf.timestamp_pb2 import Timestamp

from services.common.pb.platewatch.v1 import hotlist_pb2
from services.hotlist.validation import validate_entry

MAX_CSV_BYTES = 20 * 1024 * 1024
MAX_CSV_ROWS = 100_000
MAX_PLATE_LENGTH = 16
MAX_TEXT_LENGTH = 1000
MAX_RECORD_ID_LENGTH = 128
MIN_PRIORITY, MAX_PRIORITY = 1, 9

R = hotlist_pb2.ReasonCode
# Reason code -> (ReasonCode, default priority). Keys are normalised by `_normalise_code`.
REASONS: dict[str, tuple[hotlist_pb2.ReasonCode, int]] = {}
for _reason, _priority, _codes in (
    (R.REASON_CODE_AMBER_ALERT, 1, ("AMBER", "AMBER_ALERT")),
    (R.REASON_CODE_WANTED_PERSON, 2, ("W", "WANTED", "WANTED_PERSON")),
    (
        R.REASON_CODE_MISSING_PERSON,
        2,
        ("MP", "EMP", "MISSING", "MISSING_PERSON", "ENDANGERED", "MISSING_OR_ENDANGERED_PERSON"),
    ),
    (R.REASON_CODE_SILVER_ALERT, 2, ("SILVER", "SILVER_ALERT")),
    (R.REASON_CODE_STOLEN_VEHICLE, 3, ("V", "STOLEN_VEHICLE")),
    (R.REASON_CODE_STOLEN_PLATE, 4, ("LP", "STOLEN_PLATE")),
    (R.REASON_CODE_CUSTOM, 5, ("CUSTOM",)),
):
    for _code in (*_codes, R.Name(_reason)):
        REASONS[_code] = (_reason, _priority)

# Canonical column -> header names that mean it (normalised by `_normalise_code`, lower-cased).
COLUMN_ALIASES: dict[str, tuple[str, ...]] = {
    "plate": ("plate", "lic"),
    "reason": ("reason",),
    "region": ("state", "region", "lis"),
    "priority": ("priority",),
    "expires": ("expires", "expires_at"),
    "notes": ("notes",),
    "vehicle": ("vehicle", "vehicle_description"),
    "record_id": ("nic", "record_id"),
}
REQUIRED_COLUMNS = ("plate", "reason")
_COLUMN_FOR_HEADER = {alias: column for column, aliases in COLUMN_ALIASES.items() for alias in aliases}
REGION_PATTERN = re.compile(r"[A-Z0-9]{1,3}(-[A-Z0-9]{1,3})?")


@dataclass(frozen=True)
class RowError:
    """One problem: 1-based `line` (header = 1, 0 = the whole file), header `column` ('' = row)."""

    line: int
    column: str
    message: str

    def __str__(self) -> str:
        where = f"line {self.line}" if self.line else "file"
        return f"{where}: {self.column}: {self.message}" if self.column else f"{where}: {self.message}"


@dataclass
class ParsedCsv:
    """`entries` from the good rows (in file order) and `errors` (in line order)."""

    entries: list[hotlist_pb2.HotlistEntry] = field(default_factory=list)
    errors: list[RowError] = field(default_factory=list)
    # Data rows read, good and bad (blank lines not counted).
    rows: int = 0
    # The file as a whole is unusable: import nothing, even when partial imports are allowed.
    fatal: bool = False
    # Entry ids of bad rows whose identity is still known: a replacing import keeps those entries
    # rather than removing them for a typo in another column.
    bad_row_entry_ids: set[str] = field(default_factory=set)


def source_of(filename: str) -> str:
    """`csv:<base name>` for the entries' `source` field."""
    base = re.split(r"[\\/]", filename.strip())[-1][:200]
    return f"csv:{base or 'upload'}"


def stable_entry_id(hotlist_id: str, identity: str) -> str:
    """The entry id of a row: the same list and identity always give the same id."""
    digest = hashlib.blake2b(digest_size=12)
    digest.update(hotlist_id.encode())
    # Separator so ("ab", "c") and ("a", "bc") differ.
    digest.update(b"\x00")
    digest.update(identity.encode())
    return f"csv-{digest.hexdigest()}"


def normalise_plate(raw: str) -> str:
    return re.sub(r"[\s-]+", "", raw).upper()


def parse_reason(raw: str) -> tuple[hotlist_pb2.ReasonCode, int] | None:
    """(ReasonCode, default priority) for a reason code, None when unknown."""
    return REASONS.get(_normalise_code(raw).upper())


def parse_expiry(raw: str) -> datetime:
    """ISO date -> the start of the next day UTC (live through the whole day); ISO date-time -> itself
    (no offset = UTC). ValueError when it is neither."""
    text = raw.strip()
    if re.fullmatch(r"\d{4}-\d{2}-\d{2}", text):
        return datetime.combine(date.fromisoformat(text) + timedelta(days=1), time(), tzinfo=UTC)
    moment = datetime.fromisoformat(text)
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)


def parse_csv(
    data: bytes,
    *,
    hotlist_id: str,
    filename: str,
    max_bytes: int = MAX_CSV_BYTES,
    max_rows: int = MAX_CSV_ROWS,
) -> ParsedCsv:
    """Parse a CSV extract for `hotlist_id`; entries carry entry_id, hotlist_id, source and the row's
    fields (the caller stamps the agency). See the module docstring for the format."""
    result = ParsedCsv()

    def fail(line: int, message: str, column: str = "") -> ParsedCsv:
        result.errors.append(RowError(line, column, message))
        result.fatal = True
        result.entries = []
        return result

    if len(data) > max_bytes:
        return fail(0, f"file is {len(data)} bytes; at most {max_bytes} are accepted (split it)")
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = data[: exc.start].count(b"\n") + 1
        byte = data[exc.start]
        return fail(line, f"not UTF-8: byte 0x{byte:02x} cannot be decoded (save the file as UTF-8)")

    reader = csv.reader(io.StringIO(text, newline=""), strict=True)
    source = source_of(filename)
    columns: dict[str, int] = {}
    header: list[str] = []
    first_line_of: dict[str, int] = {}
    previous_line_num = 0
    try:
        for row in reader:
            line = previous_line_num + 1
            previous_line_num = reader.line_num
            if not header:
                if not any(cell.strip() for cell in row):
                    return fail(line, "the header row is missing (the first line is blank)")
                header = row
                problem = _read_header(header, columns)
                if problem is not None:
                    return fail(1, problem)
                continue
            if not any(cell.strip() for cell in row):
                continue
            result.rows += 1
            if result.rows > max_rows:
                return fail(line, f"more than {max_rows} data rows (split the file)")
            _parse_row(row, line, header, columns, hotlist_id, source, first_line_of, result)
    except csv.Error as exc:
        # Reported where the row that could not be read starts (an unclosed quote runs to the end).
        return fail(previous_line_num + 1, f"broken CSV: {exc}")
    if not header:
        return fail(1, "the file is empty: a header row and at least one data row are required")
    if result.rows == 0:
        return fail(0, "the file has a header but no data rows")
    return result


def _normalise_code(raw: str) -> str:
    return re.sub(r"[\s-]+", "_", raw.strip())


def _read_header(header: list[str], columns: dict[str, int]) -> str | None:
    """Fill `columns` (canonical column -> index); why the header is unusable, or None."""
    for index, name in enumerate(header):
        column = _COLUMN_FOR_HEADER.get(_normalise_code(name).lower())
        if column is None:
            continue
        if column in columns:
            first = header[columns[column]]
            return f"columns {first!r} and {name!r} both give the {column}; keep one"
        columns[column] = index
    missing = [column for column in REQUIRED_COLUMNS if column not in columns]
    if missing:
        found = ", ".join(repr(name) for name in header)
        return (
            f"no {' or '.join(missing)} column in the header row (found {found}); "
            "the first line must name the columns, e.g. plate,state,reason"
        )
    return None


def _parse_row(
    row: list[str],
    line: int,
    header: list[str],
    columns: dict[str, int],
    hotlist_id: str,
    source: str,
    first_line_of: dict[str, int],
    result: ParsedCsv,
) -> None:
    """Append the row's entry, or its errors, to `result`."""
    errors: list[RowError] = []

    def error(column: str, message: str) -> None:
        errors.append(RowError(line, header[columns[column]] if column else "", message))

    if len(row) != len(header):
        result.errors.append(RowError(line, "", f"has {len(row)} fields; the header has {len(header)}"))
        return

    def value(column: str) -> str:
        index = columns.get(column)
        return row[index].strip() if index is not None else ""

    entry = hotlist_pb2.HotlistEntry(hotlist_id=hotlist_id, source=source)
    entry.plate = normalise_plate(value("plate"))
    if len(entry.plate) > MAX_PLATE_LENGTH:
        error("plate", f"plate {entry.plate!r} is longer than {MAX_PLATE_LENGTH} characters")
    else:
        entry.priority = MIN_PRIORITY  # validated on its own below
        problem = validate_entry(entry)
        if problem is not None:
            error("plate", problem)
    plate_ok = not errors

    region = value("region").upper()
    if region and not REGION_PATTERN.fullmatch(region):
        error("region", f"region {region!r} is not a code such as CA or US-CA")
    entry.region = region

    reason_text = value("reason")
    reason = parse_reason(reason_text) if reason_text else None
    if not reason_text:
        error("reason", "reason is empty")
    elif reason is None:
        error("reason", f"unknown reason {reason_text!r}; use V, LP, W, MP, AMBER, SILVER or CUSTOM")
    else:
        entry.reason = reason[0]

    priority_text = value("priority")
    if priority_text:
        number = int(priority_text) if re.fullmatch(r"[0-9]{1,3}", priority_text) else 0
        if not MIN_PRIORITY <= number <= MAX_PRIORITY:
            error("priority", f"priority {priority_text!r} must be a whole number 1..9")
        else:
            entry.priority = number
    elif reason is not None:
        entry.priority = reason[1]

    expires_text = value("expires")
    if expires_text:
        try:
            expires = parse_expiry(expires_text)
        except ValueError:
            error("expires", f"expires {expires_text!r} is not an ISO date (2025-12-31) or date-time")
        else:
            entry.expires_at.CopyFrom(_timestamp(expires))

    for column, target in (("notes", "notes"), ("vehicle", "vehicle_description")):
        text = value(column)
        if len(text) > MAX_TEXT_LENGTH:
            error(column, f"longer than {MAX_TEXT_LENGTH} characters")
        setattr(entry, target, text)

    record_id = value("record_id")
    if len(record_id) > MAX_RECORD_ID_LENGTH:
        error("record_id", f"record id longer than {MAX_RECORD_ID_LENGTH} characters")
        identity = None
    elif record_id:
        identity = f"record:{record_id}"
    else:
        identity = f"plate:{entry.plate}|{region}" if plate_ok else None

    if identity is not None:
        entry.entry_id = stable_entry_id(hotlist_id, identity)
        first_line = first_line_of.get(identity)
        if first_line is not None:
            what = "record id" if record_id else "plate and region"
            error("record_id" if record_id else "plate", f"same {what} as line {first_line}")
        else:
            first_line_of[identity] = line
    if errors:
        result.errors.extend(errors)
        if identity is not None:
            result.bad_row_entry_ids.add(entry.entry_id)
    else:
        result.entries.append(entry)


def _timestamp(moment: datetime) -> Timestamp:
    timestamp = Timestamp()
    timestamp.FromDatetime(moment.astimezone(UTC).replace(tzinfo=None))
    return timestamp
