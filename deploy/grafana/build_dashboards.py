"""Writes the Grafana dashboards in deploy/grafana/dashboards/ from the panel lists below.

The JSON files are committed (Grafana provisions them as they are); edit this file and run
`python deploy/grafana/build_dashboards.py` to change them. tests/deploy checks the two agree and that
every metric named here is one the services export.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

OUT_DIR = Path(__file__).resolve().parent / "dashboards"
DATASOURCE = {"type": "prometheus", "uid": "${datasource}"}
RATE = "$__rate_interval"

Panel = dict[str, Any]


def _target(expr: str, legend: str = "", ref: str = "A", **extra: Any) -> dict[str, Any]:
    return {"datasource": DATASOURCE, "expr": expr, "legendFormat": legend or "__auto", "refId": ref, **extra}


def timeseries(
    title: str, targets: list[tuple[str, str]], unit: str = "short", description: str = ""
) -> Panel:
    return {
        "type": "timeseries",
        "title": title,
        "description": description,
        "datasource": DATASOURCE,
        "fieldConfig": {"defaults": {"unit": unit, "custom": {"fillOpacity": 10}}, "overrides": []},
        "options": {
            "legend": {"displayMode": "table", "placement": "right", "calcs": ["lastNotNull", "max"]}
        },
        "targets": [_target(expr, legend, chr(ord("A") + i)) for i, (expr, legend) in enumerate(targets)],
    }


def heatmap(title: str, bucket_metric: str, selector: str, description: str = "") -> Panel:
    """A latency histogram over time from a Prometheus histogram's buckets."""
    expr = f"sum by (le) (increase({bucket_metric}{{{selector}}}[{RATE}]))"
    return {
        "type": "heatmap",
        "title": title,
        "description": description,
        "datasource": DATASOURCE,
        "options": {
            "calculate": False,
            "yAxis": {"unit": "s"},
            "cellGap": 1,
            "color": {"mode": "scheme", "scheme": "Oranges"},
            "tooltip": {"show": True, "yHistogram": True},
        },
        "targets": [_target(expr, "{{le}}", format="heatmap")],
    }


def stat(
    title: str, expr: str, unit: str = "short", legend: str = "", thresholds: list[Any] | None = None
) -> Panel:
    steps = thresholds or [{"color": "green", "value": None}]
    return {
        "type": "stat",
        "title": title,
        "datasource": DATASOURCE,
        "fieldConfig": {
            "defaults": {"unit": unit, "thresholds": {"mode": "absolute", "steps": steps}},
            "overrides": [],
        },
        "options": {"reduceOptions": {"calcs": ["lastNotNull"]}, "colorMode": "background"},
        "targets": [_target(expr, legend)],
    }


def table(title: str, targets: list[tuple[str, str]], description: str = "") -> Panel:
    return {
        "type": "table",
        "title": title,
        "description": description,
        "datasource": DATASOURCE,
        "options": {"showHeader": True},
        "transformations": [{"id": "merge", "options": {}}],
        "targets": [
            _target(expr, legend, chr(ord("A") + i), format="table", instant=True)
            for i, (expr, legend) in enumerate(targets)
        ],
    }


def row(title: str) -> Panel:
    return {"type": "row", "title": title, "collapsed": False, "panels": []}


def quantiles(metric: str, by: str, selector: str = "") -> list[tuple[str, str]]:
    inner = f"{metric}_bucket{{{selector}}}" if selector else f"{metric}_bucket"
    return [
        (
            f"histogram_quantile({q}, sum by ({by}, le) (rate({inner}[{RATE}])))",
            f"p{int(q * 100)} {{{{{by}}}}}",
        )
        for q in (0.5, 0.95, 0.99)
    ]


def _layout(panels: list[Panel]) -> list[Panel]:
    """Rows span the width; other panels flow two per line (stats four per line)."""
    x = y = 0
    line_height = 0
    laid: list[Panel] = []
    for panel_id, panel in enumerate(panels, start=1):
        width, height = {"row": (24, 1), "stat": (6, 4)}.get(panel["type"], (12, 8))
        if x + width > 24 or panel["type"] == "row":
            x, y = 0, y + line_height
            line_height = 0
        panel = {**panel, "id": panel_id, "gridPos": {"h": height, "w": width, "x": x, "y": y}}
        laid.append(panel)
        x += width
        line_height = max(line_height, height)
        if panel["type"] == "row":
            x, y, line_height = 0, y + height, 0
    return laid


def dashboard(
    uid: str, title: str, panels: list[Panel], variables: list[dict[str, Any]] | None = None
) -> dict[str, Any]:
    datasource_variable = {
        "name": "datasource",
        "label": "Prometheus",
        "type": "datasource",
        "query": "prometheus",
        "current": {"text": "Prometheus", "value": "prometheus"},
        "hide": 0,
    }
    return {
        "uid": uid,
        "title": title,
        "tags": ["platewatch"],
        "timezone": "browser",
        "schemaVersion": 39,
        "version": 1,
        "editable": True,
        "refresh": "30s",
        "time": {"from": "now-3h", "to": "now"},
        "templating": {"list": [datasource_variable, *(variables or [])]},
        "annotations": {"list": []},
        "links": [{"type": "dashboards", "tags": ["platewatch"], "asDropdown": True, "title": "platewatch"}],
        "panels": _layout(panels),
    }


def query_variable(name: str, label: str, query: str) -> dict[str, Any]:
    return {
        "name": name,
        "label": label,
        "type": "query",
        "datasource": DATASOURCE,
        "query": {"query": query, "refId": "variable"},
        "definition": query,
        "includeAll": True,
        "multi": True,
        "allValue": ".*",
        "current": {"text": "All", "value": "$__all"},
        "refresh": 2,
        "sort": 1,
        "hide": 0,
    }


def pipeline_overview() -> dict[str, Any]:
    panels = [
        row("Throughput"),
        timeseries(
            "Frames/s per camera (published to Kafka)",
            [
                (
                    f'sum by (camera) (rate(platewatch_capture_frames_total{{outcome="published"}}[{RATE}]))',
                    "{{camera}}",
                )
            ],
            "fps",
        ),
        timeseries(
            "Reads/s per camera (vehicle passes)",
            [(f"sum by (camera) (rate(platewatch_reads_total[{RATE}]))", "{{camera}}")],
            "reqps",
        ),
        timeseries(
            "Messages/s produced per topic",
            [(f"sum by (topic) (rate(platewatch_messages_produced_total[{RATE}]))", "{{topic}}")],
            "reqps",
        ),
        timeseries(
            "Consumer lag per topic",
            [("sum by (service, topic) (platewatch_consumer_lag_messages)", "{{service}} ← {{topic}}")],
            "short",
            "Messages behind the end of the topic, summed over partitions, per consuming service.",
        ),
        row("End-to-end latency (from frame capture)"),
        heatmap(
            "Capture → stored in ClickHouse",
            "platewatch_stage_latency_seconds_bucket",
            'stage="stored"',
            "Seconds from the frame's capture time until the writer's insert was acknowledged.",
        ),
        heatmap(
            "Capture → alert published",
            "platewatch_stage_latency_seconds_bucket",
            'stage="alert"',
            "Seconds from the frame's capture time until the hotlist service published the alert.",
        ),
        timeseries(
            "Latency quantiles per stage", quantiles("platewatch_stage_latency_seconds", "stage"), "s"
        ),
        timeseries(
            "Dead letters/s",
            [
                (
                    f"sum by (service, topic, reason) (rate(platewatch_dead_letters_total[{RATE}]))",
                    "{{service}} {{topic}} {{reason}}",
                )
            ],
            "reqps",
        ),
        row("Inference (Triton)"),
        timeseries(
            "Triton queue time per request",
            [
                (
                    f"sum by (model) (rate(nv_inference_queue_duration_us[{RATE}]))"
                    f" / clamp_min(sum by (model) (rate(nv_inference_request_success[{RATE}])), 1e-9) / 1e6",
                    "{{model}}",
                )
            ],
            "s",
        ),
        timeseries(
            "Triton compute time per inference",
            [
                (
                    f"sum by (model) (rate(nv_inference_compute_infer_duration_us[{RATE}]))"
                    f" / clamp_min(sum by (model) (rate(nv_inference_count[{RATE}])), 1e-9) / 1e6",
                    "{{model}}",
                )
            ],
            "s",
        ),
        timeseries(
            "Recognition batch latency (inference service)",
            quantiles("platewatch_inference_batch_seconds", "backend"),
            "s",
        ),
        timeseries(
            "Frames and plates/s (inference service)",
            [
                (f"sum(rate(platewatch_inference_frames_total[{RATE}]))", "frames"),
                (f"sum(rate(platewatch_inference_plates_total[{RATE}]))", "plates"),
                (
                    f"sum by (backend) (rate(platewatch_inference_backend_errors_total[{RATE}]))",
                    "errors {{backend}}",
                ),
            ],
            "reqps",
        ),
        row("Storage (ClickHouse)"),
        timeseries(
            "Rows inserted/s per table (writer)",
            [(f"sum by (table) (rate(platewatch_writer_rows_inserted_total[{RATE}]))", "{{table}}")],
            "rowsps",
        ),
        timeseries(
            "Rows inserted/s (ClickHouse server)",
            [(f"sum(rate(ClickHouseProfileEvents_InsertedRows[{RATE}]))", "inserted rows")],
            "rowsps",
            "From the ClickHouse server's own /metrics (absent with the embedded engine).",
        ),
        timeseries("Insert latency (writer)", quantiles("platewatch_writer_insert_seconds", "table"), "s"),
        timeseries(
            "Insert failures and duplicates skipped",
            [
                (
                    f"sum by (operation) (rate(platewatch_writer_insert_failures_total[{RATE}]))",
                    "failed {{operation}}",
                ),
                (
                    f"sum by (table) (rate(platewatch_writer_duplicates_skipped_total[{RATE}]))",
                    "duplicate {{table}}",
                ),
            ],
            "reqps",
        ),
        row("Normalizer"),
        timeseries("Open vehicle passes", [("sum(platewatch_normalizer_open_tracks)", "open tracks")]),
        timeseries(
            "Transactions/s",
            [
                (f"sum(rate(platewatch_normalizer_transactions_total[{RATE}]))", "committed"),
                (f"sum(rate(platewatch_normalizer_transaction_aborts_total[{RATE}]))", "aborted"),
            ],
            "reqps",
        ),
    ]
    return dashboard("platewatch-pipeline", "platewatch / Pipeline overview", panels)


def camera_health() -> dict[str, Any]:
    camera = '{camera=~"$camera"}'
    panels = [
        stat(
            "Cameras connected",
            f"sum(platewatch_capture_camera_connected{camera})",
            legend="connected",
        ),
        stat(
            "Cameras disconnected",
            f"count(platewatch_capture_camera_connected{camera} == 0) or vector(0)",
            thresholds=[{"color": "green", "value": None}, {"color": "red", "value": 1}],
        ),
        stat(
            "Oldest last frame",
            f"max(time() - platewatch_capture_last_frame_timestamp_seconds{camera})",
            unit="s",
            thresholds=[
                {"color": "green", "value": None},
                {"color": "orange", "value": 60},
                {"color": "red", "value": 120},
            ],
        ),
        stat("Reads in range", f"sum(increase(platewatch_reads_total{camera}[$__range]))"),
        table(
            "Camera status",
            [
                (f"max by (camera) (platewatch_capture_camera_connected{camera})", "connected"),
                (
                    f"max by (camera) (time() - platewatch_capture_last_frame_timestamp_seconds{camera})",
                    "seconds since last frame",
                ),
                (f"sum by (camera) (rate(platewatch_reads_total{camera}[5m])) * 60", "reads per minute"),
                (
                    f"sum by (camera) (increase(platewatch_capture_reconnects_total{camera}[1h]))",
                    "reconnects (1 h)",
                ),
            ],
            "One line per camera: online, last frame, reads per minute.",
        ),
        timeseries(
            "Seconds since last frame",
            [(f"time() - platewatch_capture_last_frame_timestamp_seconds{camera}", "{{camera}}")],
            "s",
        ),
        timeseries(
            "Frames/s by outcome",
            [(f"sum by (outcome) (rate(platewatch_capture_frames_total{camera}[{RATE}]))", "{{outcome}}")],
            "fps",
            "captured, published, dropped_motion, dropped_backpressure, failed_encode, failed_publish",
        ),
        timeseries(
            "Reads per minute per camera",
            [(f"sum by (camera) (rate(platewatch_reads_total{camera}[{RATE}])) * 60", "{{camera}}")],
        ),
        timeseries(
            "Lean per camera",
            [(f"max by (camera) (platewatch_inference_camera_lean_degrees{camera})", "{{camera}}")],
            "degree",
            "Running mean of the median text-line angle of each camera's frames, its known roll included"
            " (degrees by which level text runs down to the right). A camera that settles away from 0"
            " is mounted with roll: set roll_deg in the registry to this value (README, Tilted frames).",
        ),
        timeseries(
            "Reconnects per camera",
            [
                (
                    f"sum by (camera) (increase(platewatch_capture_reconnects_total{camera}[{RATE}]))",
                    "{{camera}}",
                )
            ],
        ),
    ]
    variables = [
        query_variable("camera", "Camera", "label_values(platewatch_capture_camera_connected, camera)")
    ]
    return dashboard("platewatch-cameras", "platewatch / Camera health", panels, variables)


def hits_and_alerts() -> dict[str, Any]:
    panels = [
        stat("Alerts in range", "sum(increase(platewatch_hotlist_alerts_total[$__range]))"),
        stat(
            "Hit rate",
            "sum(rate(platewatch_hotlist_reads_matched_total[1h]))"
            " / clamp_min(sum(rate(platewatch_hotlist_reads_checked_total[1h])), 1e-9)",
            unit="percentunit",
        ),
        stat("Hotlists loaded", "max(platewatch_hotlist_lists)"),
        stat(
            "Stale hotlists",
            "count(platewatch_hotlist_list_age_seconds > on (instance, hotlist_id)"
            " (platewatch_hotlist_list_max_age_seconds > 0)) or vector(0)",
            thresholds=[{"color": "green", "value": None}, {"color": "orange", "value": 1}],
        ),
        timeseries(
            "Reads checked and matched/s",
            [
                (f"sum(rate(platewatch_hotlist_reads_checked_total[{RATE}]))", "checked"),
                (f"sum(rate(platewatch_hotlist_reads_matched_total[{RATE}]))", "matched"),
            ],
            "reqps",
        ),
        timeseries(
            "Alerts by reason and match kind",
            [
                (
                    f"sum by (reason, match_kind) (increase(platewatch_hotlist_alerts_total[{RATE}]))",
                    "{{reason}} {{match_kind}}",
                )
            ],
        ),
        timeseries(
            "STALE and region-mismatch alerts",
            [
                (f'sum(increase(platewatch_hotlist_alerts_total{{stale="true"}}[{RATE}]))', "stale list"),
                (
                    f'sum(increase(platewatch_hotlist_alerts_total{{region_mismatch="true"}}[{RATE}]))',
                    "region mismatch",
                ),
            ],
        ),
        timeseries(
            "Alert outcomes (user actions)",
            [
                (
                    f"sum by (action, outcome) (increase(platewatch_alert_actions_total[{RATE}]))",
                    "{{action}} {{outcome}}",
                )
            ],
            description="Acknowledge, confirm, dismiss and outcome steps taken in the console or the API.",
        ),
        timeseries(
            "Hotlist age",
            [("max by (hotlist_id) (platewatch_hotlist_list_age_seconds)", "{{hotlist_id}}")],
            "s",
        ),
        timeseries(
            "Hotlist entries", [("max by (hotlist_id) (platewatch_hotlist_entries)", "{{hotlist_id}}")]
        ),
        timeseries("Match time per read", quantiles("platewatch_hotlist_match_seconds", "instance"), "s"),
        timeseries(
            "Webhook deliveries by outcome",
            [
                (
                    f"sum by (subscriber, outcome) (increase(platewatch_notifier_deliveries_total[{RATE}]))",
                    "{{subscriber}} {{outcome}}",
                )
            ],
        ),
        timeseries(
            "Alert to webhook delivery",
            quantiles("platewatch_notifier_alert_age_seconds", "subscriber"),
            "s",
        ),
        timeseries(
            "Live alert streams (SSE)",
            [
                ("sum(platewatch_api_sse_subscribers)", "subscribers"),
                (f"sum(rate(platewatch_api_sse_dropped_total[{RATE}]))", "dropped/s"),
            ],
        ),
    ]
    return dashboard("platewatch-alerts", "platewatch / Hits and alerts", panels)


def governance() -> dict[str, Any]:
    agency = '{agency=~"$agency"}'
    panels = [
        stat("Searches in range", f"sum(increase(platewatch_searches_total{agency}[$__range]))"),
        stat(
            "Refusals in range",
            f"sum(increase(platewatch_refusals_total{agency}[$__range])) or vector(0)",
            thresholds=[{"color": "green", "value": None}, {"color": "orange", "value": 1}],
        ),
        stat(
            "Audit chain",
            "min(platewatch_audit_chain_verified)",
            thresholds=[{"color": "red", "value": None}, {"color": "green", "value": 1}],
        ),
        stat(
            "Since last chain verification",
            "time() - max(platewatch_audit_chain_last_verified_timestamp_seconds)",
            unit="s",
            thresholds=[{"color": "green", "value": None}, {"color": "red", "value": 7200}],
        ),
        timeseries(
            "Searches by purpose",
            [(f"sum by (purpose) (increase(platewatch_searches_total{agency}[{RATE}]))", "{{purpose}}")],
        ),
        timeseries(
            "Searches by agency",
            [(f"sum by (agency) (increase(platewatch_searches_total{agency}[{RATE}]))", "{{agency}}")],
        ),
        timeseries(
            "Refusals by rule",
            [
                (
                    f"sum by (agency, rule) (increase(platewatch_refusals_total{agency}[{RATE}]))",
                    "{{agency}} {{rule}}",
                )
            ],
        ),
        table(
            "Searches by purpose and agency (range)",
            [
                (
                    f"sum by (agency, purpose) (increase(platewatch_searches_total{agency}[$__range]))",
                    "searches",
                )
            ],
        ),
        timeseries(
            "Audit entries by action",
            [(f"sum by (action) (increase(platewatch_audit_entries_total[{RATE}]))", "{{action}}")],
        ),
        timeseries(
            "Search RPCs/s by method and code",
            [
                (
                    f"sum by (method, code) (rate(platewatch_search_requests_total[{RATE}]))",
                    "{{method}} {{code}}",
                )
            ],
            "reqps",
        ),
    ]
    variables = [query_variable("agency", "Agency", "label_values(platewatch_searches_total, agency)")]
    return dashboard("platewatch-governance", "platewatch / Governance", panels, variables)


DASHBOARDS = {
    "pipeline-overview.json": pipeline_overview,
    "camera-health.json": camera_health,
    "hits-and-alerts.json": hits_and_alerts,
    "governance.json": governance,
}


def render() -> dict[str, str]:
    """File name -> JSON text, exactly as committed."""
    return {
        name: json.dumps(build(), indent=2, ensure_ascii=False) + "\n" for name, build in DASHBOARDS.items()
    }


def main() -> int:
    OUT_DIR.mkdir(parents=True, exist_ok=True)
    for name, text in render().items():
        (OUT_DIR / name).write_text(text)
        print(f"wrote {OUT_DIR / name}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
