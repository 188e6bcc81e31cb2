"""The transparency report as a readable, self-contained HTML page (no scripts, no external assets)."""

from __future__ import annotations

from html import escape
from typing import Any

_STYLE = """
body { font-family: system-ui, sans-serif; max-width: 60rem; margin: 2rem auto; color: #222; }
h1 { font-size: 1.6rem; } h2 { font-size: 1.2rem; margin-top: 2rem; border-bottom: 1px solid #ccc; }
table { border-collapse: collapse; margin: .5rem 0; } td, th { padding: .25rem .75rem; text-align: left; }
th { background: #f0f0f0; } td.n { text-align: right; font-variant-numeric: tabular-nums; }
.ok { color: #176b2c; font-weight: bold; } .bad { color: #a11; font-weight: bold; }
code { font-size: .85rem; word-break: break-all; }
"""


def _table(rows: list[dict[str, Any]], columns: list[tuple[str, str]], empty: str = "none") -> str:
    if not rows:
        return f"<p><em>{escape(empty)}</em></p>"
    head = "".join(f"<th>{escape(title)}</th>" for _, title in columns)
    body = ""
    for row in rows:
        cells = ""
        for key, _ in columns:
            value = row.get(key)
            numeric = isinstance(value, int | float)
            shown = "-" if value in (None, "") else str(value)
            cells += f"<td class='n'>{escape(shown)}</td>" if numeric else f"<td>{escape(shown)}</td>"
        body += f"<tr>{cells}</tr>"
    return f"<table><tr>{head}</tr>{body}</table>"


def render_html(data: dict[str, Any]) -> str:
    agency = escape(str(data["agency_id"]))
    period = data["period"]
    retention = data["retention"]
    retention_rows = [
        {"data_class": name, **values}
        for name, values in retention["agencies"].get(data["agency_id"], {}).items()
    ]
    compliant = retention["compliant"]
    checkpoint = data.get("checkpoint")
    checkpoint_html = (
        "<p><em>no signed checkpoint yet</em></p>"
        if not checkpoint
        else (
            f"<p>Sequence {checkpoint['sequence']} signed at {escape(checkpoint['created_at'])} "
            f"with key <code>{escape(checkpoint['key_id'])}</code>.</p>"
            f"<p>Entry hash <code>{escape(checkpoint['entry_hash'])}</code><br>"
            f"Signature (Ed25519) <code>{escape(checkpoint['signature'])}</code><br>"
            f"Public key <code>{escape(checkpoint['public_key'])}</code></p>"
            "<p>Anyone holding an export of the audit log can check it against this checkpoint with "
            "<code>platewatch audit verify --file EXPORT --public-key KEY</code>.</p>"
        )
    )
    sharing = data["sharing"]
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<title>Transparency report: {agency}</title><style>{_STYLE}</style></head>
<body>
<h1>Transparency report: {agency}</h1>
<p>Period {escape(period["from"])} to {escape(period["to"])}. Generated {escape(data["generated_at"])}
under policy profile <strong>{escape(data["policy_profile"])}</strong>.</p>
<h2>Cameras and reads</h2>
<p>{data["reads"]["total"]} plate reads by {len(data["cameras"])} cameras.</p>
{_table(data["cameras"], [("camera_id", "Camera"), ("reads", "Reads")])}
<h2>Hotlist hits by list</h2>
{_table(data["hits_by_list"], [("hotlist", "List"), ("hits", "Hits")])}
<h2>Alert outcomes</h2>
{_table(data["alert_outcomes"], [("status", "Status"), ("outcome", "Outcome"), ("alerts", "Alerts")])}
<h2>Searches by purpose</h2>
{
        _table(
            data["searches_by_purpose"],
            [
                ("purpose_code", "Purpose"),
                ("outcome", "Outcome"),
                ("searches", "Searches"),
                ("results", "Results"),
            ],
        )
    }
<h2>Refusals by rule</h2>
{_table(data["refusals_by_rule"], [("rule", "Rule"), ("refusals", "Refusals")])}
<h2>All audited actions</h2>
{_table(data["audited_actions"], [("kind", "Kind"), ("outcome", "Outcome"), ("count", "Count")])}
<h2>Sharing partners used</h2>
<p>Agencies whose data this agency queried under a sharing agreement:</p>
{_table(sharing["partners_queried"], [("agency_id", "Agency"), ("searches", "Queries")])}
<p>Agencies that queried this agency's data:</p>
{_table(sharing["partners_received"], [("agency_id", "Agency"), ("accesses", "Queries")])}
<h2>Retention compliance</h2>
<p class="{"ok" if compliant else "bad"}">{
        "Compliant: no row is kept past its limit." if compliant else "NOT compliant: rows past their limit."
    }</p>
{
        _table(
            retention_rows,
            [
                ("data_class", "Data class"),
                ("limit_seconds", "Limit (s)"),
                ("rows", "Rows"),
                ("oldest", "Oldest"),
                ("past_limit", "Past limit"),
                ("held_past_limit", "Kept by legal hold"),
            ],
        )
    }
<h2>Latest signed audit checkpoint</h2>
{checkpoint_html}
</body></html>
"""
