"""Exact-plate questions over pseudonymized reads (issue 6; the writer stores plates of a
pseudonymizing agency as `pt1:` tokens, see services/writer/main.py).

An exact plate is looked up as `plate IN (plate, tokens...)`: the plate itself (reads stored in
clear: other agencies, or before pseudonymization was enabled) plus, for every requested agency
(each with its own keys, so shared results work too), the plate's token in every key period of the
window whose key still exists (`Pseudonymizer.search_tokens`). Hit reads keep their plate in clear
through their alert, so the stored tokens of reads alerted for this plate are added too: that is how
a hit read stays findable after its period's key was shredded. Rows found are shown with the
searched plate, never the token.

Partial, wildcard and fuzzy searches match plate text in the `plates` table and cannot match tokens:
that is the intended minimization (a pseudonymized plate can only be found by someone who already
knows it). Tokens are excluded from their candidates (`NOT_TOKEN_SQL`).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from clickhouse_connect.driver.client import Client

from services.governance.pseudonymize import TOKEN_PREFIX, Pseudonymizer, is_token

# SQL condition keeping tokens out of pattern and fuzzy candidates (tokens hold digits a pattern
# such as `*12*` would otherwise match).
NOT_TOKEN_SQL = f"NOT startsWith(plate, '{TOKEN_PREFIX}:')"

_HIT_TOKENS_SQL = (
    "SELECT DISTINCT plate FROM reads WHERE agency_id IN {agencies:Array(String)} "
    f"AND startsWith(plate, '{TOKEN_PREFIX}:') AND read_id IN (SELECT read_id FROM alerts "
    "WHERE plate = {plate:String} AND agency_id IN {agencies:Array(String)})"
)


def stored_forms(
    pseudonymizer: Pseudonymizer | None,
    plate: str,
    agencies: Sequence[str],
    start: datetime | None,
    end: datetime | None,
) -> list[str]:
    """The plate and its tokens for each agency with keys, in the window (None: open)."""
    forms = [plate]
    if pseudonymizer is not None:
        for agency in sorted(set(agencies)):
            if pseudonymizer.keys.has_agency(agency):
                forms += pseudonymizer.search_tokens(agency, plate, start, end)
    return forms


def uses_tokens(pseudonymizer: Pseudonymizer | None, agencies: Sequence[str]) -> bool:
    """Whether any of the agencies ever had a pseudonym key (so may have tokens stored)."""
    return pseudonymizer is not None and any(pseudonymizer.keys.has_agency(a) for a in agencies)


def plate_forms(
    client: Client,
    pseudonymizer: Pseudonymizer | None,
    plate: str,
    agencies: Sequence[str],
    start: datetime | None,
    end: datetime | None,
) -> list[str]:
    """Every stored form of an exact `plate` among `agencies`: the plate, its tokens under live
    keys, and the tokens of its hit reads (found through their alerts). Just [plate] for agencies
    that never pseudonymized (no query is run then). Blocking: call from a worker thread."""
    forms = stored_forms(pseudonymizer, plate, agencies, start, end)
    if uses_tokens(pseudonymizer, agencies):
        rows = client.query(_HIT_TOKENS_SQL, {"plate": plate, "agencies": sorted(set(agencies))}).result_rows
        forms += sorted({str(row[0]) for row in rows} - set(forms))
    return forms


def reveal(rows: list[dict[str, Any]], plate: str) -> list[dict[str, Any]]:
    """Rows found by an exact search for `plate` show that plate where they store its token."""
    for row in rows:
        if is_token(str(row["plate"])):
            row["plate"] = plate
    return rows
