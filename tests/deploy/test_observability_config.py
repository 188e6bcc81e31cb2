"""Static checks of deploy/prometheus and deploy/grafana: promtool validates the config and rules and
runs the rule unit tests; the dashboards are what build_dashboards.py renders, their PromQL parses,
and every platewatch metric they or the rules name is one the services really export."""

from __future__ import annotations

import importlib
import json
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml
from prometheus_client import REGISTRY

REPO_ROOT = Path(__file__).resolve().parents[2]
PROMETHEUS_DIR = REPO_ROOT / "deploy" / "prometheus"
GRAFANA_DIR = REPO_ROOT / "deploy" / "grafana"
RULE_FILES = sorted((PROMETHEUS_DIR / "rules").glob("*.yml"))
DASHBOARD_FILES = sorted((GRAFANA_DIR / "dashboards").glob("*.json"))
# Modules defining metric families outside services/<pkg>/metrics.py.
METRIC_MODULES = ["services.search.main", "services.api.broker", "services.api.consumer"]
# Grafana's built-in variables and the dashboards' own, replaced so promtool can parse the queries.
GRAFANA_VARIABLES = {"$__rate_interval": "5m", "$__range": "1h", "$camera": ".*", "$agency": ".*"}
METRIC_NAME = re.compile(r"\bplatewatch_[a-z0-9_]+")


def _promtool(prometheus_bin: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(prometheus_bin / "promtool"), *args], capture_output=True, text=True, timeout=120, cwd=REPO_ROOT
    )


def _load_build_dashboards() -> Any:
    sys.path.insert(0, str(GRAFANA_DIR))
    try:
        return importlib.import_module("build_dashboards")
    finally:
        sys.path.remove(str(GRAFANA_DIR))


def _dashboard_panels(path: Path) -> list[dict[str, Any]]:
    return [p for p in json.loads(path.read_text())["panels"] if p["type"] != "row"]


def _dashboard_exprs() -> list[tuple[str, str]]:
    """(dashboard file: panel title, expr) for every query of every panel."""
    return [
        (f"{path.name}: {panel['title']}", target["expr"])
        for path in DASHBOARD_FILES
        for panel in _dashboard_panels(path)
        for target in panel["targets"]
    ]


def _rule_exprs() -> list[tuple[str, str]]:
    return [
        (rule.get("alert") or rule["record"], rule["expr"])
        for path in RULE_FILES
        for group in yaml.safe_load(path.read_text())["groups"]
        for rule in group["rules"]
    ]


def _exported_sample_names() -> set[str]:
    """Sample names the service processes can export, from every module that defines metrics."""
    for metrics_file in sorted((REPO_ROOT / "services").glob("*/metrics.py")):
        importlib.import_module(f"services.{metrics_file.parent.name}.metrics")
    for module in METRIC_MODULES:
        importlib.import_module(module)
    names: set[str] = set()
    for family in REGISTRY.collect():
        if family.type == "counter":
            names.add(f"{family.name}_total")
        elif family.type == "histogram":
            names.update(f"{family.name}{suffix}" for suffix in ("_bucket", "_sum", "_count"))
        else:
            names.add(family.name)
    return names


def test_prometheus_config_is_valid(prometheus_bin: Path, tmp_path: Path) -> None:
    # The config names the rules where the compose file mounts them; point it at the repo copy so
    # promtool checks the rules through the config as well.
    config = yaml.safe_load((PROMETHEUS_DIR / "prometheus.yml").read_text())
    assert config["rule_files"] == ["/etc/prometheus/rules/*.yml"]
    config["rule_files"] = [str(PROMETHEUS_DIR / "rules" / "*.yml")]
    rendered = tmp_path / "prometheus.yml"
    rendered.write_text(yaml.safe_dump(config))
    result = _promtool(prometheus_bin, "check", "config", str(rendered))
    assert result.returncode == 0, result.stdout + result.stderr
    assert f"SUCCESS: {len(_rule_exprs())} rules found" in result.stdout


def test_alert_rules_pass_promtool_check_and_unit_tests(prometheus_bin: Path) -> None:
    checked = _promtool(prometheus_bin, "check", "rules", *map(str, RULE_FILES))
    assert checked.returncode == 0, checked.stdout + checked.stderr
    tests = sorted((PROMETHEUS_DIR / "tests").glob("*.yml"))
    assert tests, "no rule unit tests"
    result = _promtool(prometheus_bin, "test", "rules", *map(str, tests))
    assert result.returncode == 0, result.stdout + result.stderr
    assert "SUCCESS" in result.stdout


def test_every_required_alert_is_defined_and_unit_tested() -> None:
    alerts = {name for name, _ in _rule_exprs() if not name.startswith("platewatch:")}
    required = {
        "PlatewatchCameraOffline",
        "PlatewatchConsumerLagGrowing",
        "PlatewatchDeadLetterSpike",
        "PlatewatchHotlistStale",
        "PlatewatchAuditChainBroken",
    }
    assert required <= alerts
    tested = {
        case["alertname"]
        for path in (PROMETHEUS_DIR / "tests").glob("*.yml")
        for test in yaml.safe_load(path.read_text())["tests"]
        for case in test.get("alert_rule_test", [])
        if case.get("exp_alerts")
    }
    assert alerts - tested == set(), "alerts without a firing unit test"


def test_dashboards_are_rendered_from_the_builder() -> None:
    rendered = _load_build_dashboards().render()
    on_disk = {path.name: path.read_text() for path in DASHBOARD_FILES}
    assert on_disk == rendered, "run python deploy/grafana/build_dashboards.py and commit the result"


def test_dashboard_queries_parse_as_promql(prometheus_bin: Path, tmp_path: Path) -> None:
    exprs = _dashboard_exprs()
    for placeholder, value in GRAFANA_VARIABLES.items():
        exprs = [(where, expr.replace(placeholder, value)) for where, expr in exprs]
    leftover = [(where, expr) for where, expr in exprs if "$" in expr]
    assert leftover == []
    rules = [{"record": f"dashboard:query_{i}", "expr": expr} for i, (_, expr) in enumerate(exprs)]
    rule_file = tmp_path / "dashboard-queries.yml"
    rule_file.write_text(yaml.safe_dump({"groups": [{"name": "dashboards", "rules": rules}]}))
    result = _promtool(prometheus_bin, "check", "rules", str(rule_file))
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.parametrize("path", DASHBOARD_FILES, ids=lambda p: p.name)
def test_dashboard_structure(path: Path) -> None:
    dashboard = json.loads(path.read_text())
    assert dashboard["uid"].startswith("platewatch-")
    ids = [panel["id"] for panel in dashboard["panels"]]
    assert len(ids) == len(set(ids))
    variables = {v["name"] for v in dashboard["templating"]["list"]}
    assert "datasource" in variables
    for panel in _dashboard_panels(path):
        assert panel["targets"], panel["title"]
        assert panel["datasource"]["uid"] == "${datasource}"
        grid = panel["gridPos"]
        assert 0 <= grid["x"] and grid["x"] + grid["w"] <= 24
        for name in re.findall(r"\$([a-z]+)", json.dumps(panel["targets"])):
            assert name in variables or name.startswith("__"), (panel["title"], name)


def test_dashboards_cover_the_issue_panels() -> None:
    exprs = "\n".join(expr for _, expr in _dashboard_exprs())
    for needed in [
        'platewatch_capture_frames_total{outcome="published"}',  # frames/s per camera
        "platewatch_reads_total",  # reads/s per camera
        "platewatch_consumer_lag_messages",  # lag per topic
        'stage="stored"',  # capture -> stored latency
        'stage="alert"',  # capture -> alert latency
        "platewatch_dead_letters_total",
        "nv_inference_queue_duration_us",  # Triton queue time
        "nv_inference_compute_infer_duration_us",  # Triton compute time
        "platewatch_writer_rows_inserted_total",  # ClickHouse insert rate
        "platewatch_capture_last_frame_timestamp_seconds",  # camera health
        "platewatch_alert_actions_total",  # alert outcomes
        "platewatch_searches_total",  # searches by purpose
        "platewatch_refusals_total",
    ]:
        assert needed in exprs, needed


def test_every_platewatch_metric_named_is_exported() -> None:
    exported = _exported_sample_names()
    named = {
        (where, name)
        for where, expr in _dashboard_exprs() + _rule_exprs()
        for name in METRIC_NAME.findall(expr)
    }
    unknown = sorted((where, name) for where, name in named if name not in exported)
    assert unknown == []


def test_grafana_provisioning_points_at_the_dashboards() -> None:
    datasource = yaml.safe_load((GRAFANA_DIR / "provisioning" / "datasources" / "prometheus.yml").read_text())
    assert [d["uid"] for d in datasource["datasources"]] == ["prometheus"]
    providers = yaml.safe_load((GRAFANA_DIR / "provisioning" / "dashboards" / "platewatch.yml").read_text())
    assert providers["providers"][0]["options"]["path"] == "/var/lib/grafana/dashboards/platewatch"
    for path in DASHBOARD_FILES:
        variables = json.loads(path.read_text())["templating"]["list"]
        variable = next(v for v in variables if v["name"] == "datasource")
        assert variable["current"]["value"] == "prometheus"
