"""docker-compose.yml, checked without a Docker engine: the Compose Specification schema (vendored in
tests/deploy/schemas/compose-spec, Apache-2.0), then what the schema cannot say: healthchecks, the
dependency graph, memory limits, the GPU reservation, and that every component is deployed."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest
import yaml
from jsonschema import Draft201909Validator

from services.cli import COMPONENTS

REPO_ROOT = Path(__file__).resolve().parents[2]
COMPOSE_FILE = REPO_ROOT / "docker-compose.yml"
SCHEMA_FILE = Path(__file__).resolve().parent / "schemas" / "compose-spec" / "compose-spec.json"
# Run-to-completion jobs: other services wait for them with service_completed_successfully.
ONE_SHOT = {"kafka-topics", "migrate"}
INFRASTRUCTURE = {"kafka", "clickhouse", "triton", "prometheus", "grafana"}
Services = dict[str, dict[str, Any]]


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    loaded: dict[str, Any] = yaml.safe_load(COMPOSE_FILE.read_text())
    return loaded


@pytest.fixture(scope="module")
def services(compose: dict[str, Any]) -> dict[str, dict[str, Any]]:
    found: dict[str, dict[str, Any]] = compose["services"]
    return found


def _served_components(service: dict[str, Any]) -> list[str]:
    command = service.get("command") or []
    return list(command[1:]) if command[:1] == ["serve"] else []


def test_matches_the_compose_specification(compose: dict[str, Any]) -> None:
    validator = Draft201909Validator(json.loads(SCHEMA_FILE.read_text()))
    errors = [f"{'/'.join(map(str, e.absolute_path))}: {e.message}" for e in validator.iter_errors(compose)]
    assert errors == []


def test_the_schema_check_rejects_a_broken_file(compose: dict[str, Any]) -> None:
    """Guards the check above: a wrong type and an unknown key must be reported."""
    validator = Draft201909Validator(json.loads(SCHEMA_FILE.read_text()))
    broken = json.loads(json.dumps(compose))
    broken["services"]["api"]["ports"] = "8080:8080"
    broken["services"]["writer"]["restartt"] = "always"
    messages = [e.message for e in validator.iter_errors(broken)]
    assert len(messages) >= 2


def test_every_component_is_deployed(services: dict[str, dict[str, Any]]) -> None:
    deployed = [c for service in services.values() for c in _served_components(service)]
    assert sorted(deployed) == sorted(COMPONENTS), "each component exactly once"
    for name in COMPONENTS:
        assert services[name]["command"] == ["serve", name], "a service per component, named after it"


def test_infrastructure_is_there(services: dict[str, dict[str, Any]]) -> None:
    assert INFRASTRUCTURE <= set(services)
    assert services["kafka"]["image"].startswith("apache/kafka:")
    assert "broker,controller" in services["kafka"]["environment"]["KAFKA_PROCESS_ROLES"]  # KRaft
    assert services["clickhouse"]["image"].startswith("clickhouse/clickhouse-server:")
    devices = services["triton"]["deploy"]["resources"]["reservations"]["devices"]
    assert devices == [{"driver": "nvidia", "count": 1, "capabilities": ["gpu"]}]


def test_long_running_services_have_healthchecks_and_memory_limits(
    services: dict[str, dict[str, Any]],
) -> None:
    for name, service in services.items():
        memory = service["deploy"]["resources"]["limits"]["memory"]
        assert re.fullmatch(r"\d+[mg]", memory), (name, memory)
        if name in ONE_SHOT:
            assert service["restart"] == "no"
            continue
        check = service.get("healthcheck")
        assert check and check["test"] and not check.get("disable"), f"{name} has no healthcheck"


def test_platewatch_services_probe_readiness_on_their_metrics_port(
    services: dict[str, dict[str, Any]],
) -> None:
    for name in COMPONENTS:
        service = services[name]
        assert service["environment"]["PLATEWATCH_METRICS_PORT"] == "9100"
        assert "http://127.0.0.1:9100/readyz" in service["healthcheck"]["test"]
        assert service["image"].startswith("platewatch:")


def test_depends_on_targets_exist_with_valid_conditions(services: dict[str, dict[str, Any]]) -> None:
    for name, service in services.items():
        for target, spec in (service.get("depends_on") or {}).items():
            assert target in services, f"{name} depends on unknown {target}"
            condition = spec["condition"]
            if target in ONE_SHOT:
                assert condition == "service_completed_successfully", (name, target)
            else:
                assert condition == "service_healthy", (name, target)
                assert "healthcheck" in services[target], (name, target)


def test_dependency_graph_has_no_cycle(services: dict[str, dict[str, Any]]) -> None:
    state: dict[str, str] = {}

    def visit(name: str, path: list[str]) -> None:
        if state.get(name) == "done":
            return
        assert state.get(name) != "visiting", f"cycle: {' -> '.join([*path, name])}"
        state[name] = "visiting"
        for target in services[name].get("depends_on") or {}:
            visit(target, [*path, name])
        state[name] = "done"

    for name in services:
        visit(name, [])


def test_storage_and_kafka_wiring(services: dict[str, dict[str, Any]]) -> None:
    for name in COMPONENTS:
        env = services[name]["environment"]
        assert env["PLATEWATCH_KAFKA_BOOTSTRAP"] == "kafka:9092"
        # Separate writer and search processes need a ClickHouse server, not the embedded engine.
        assert env["PLATEWATCH_CLICKHOUSE_URL"] == "http://clickhouse:8123"
    api_env = services["api"]["environment"]
    assert api_env["PLATEWATCH_SEARCH_GRPC_TARGET"].split(":")[0] in services
    assert api_env["PLATEWATCH_HOTLIST_GRPC_TARGET"].split(":")[0] in services


def test_mounted_files_exist(services: dict[str, dict[str, Any]]) -> None:
    for name, service in services.items():
        for volume in service.get("volumes") or []:
            source = volume.split(":")[0]
            if source.startswith("./"):
                assert (REPO_ROOT / source).exists(), f"{name} mounts missing {source}"


def test_prometheus_scrapes_every_component(services: dict[str, dict[str, Any]]) -> None:
    config = yaml.safe_load((REPO_ROOT / "deploy" / "prometheus" / "prometheus.yml").read_text())
    job = next(j for j in config["scrape_configs"] if j["job_name"] == "platewatch")
    targets = {t for group in job["static_configs"] for t in group["targets"]}
    assert targets == {f"{name}:9100" for name in COMPONENTS}
    others = {
        t.split(":")[0] for j in config["scrape_configs"] for g in j["static_configs"] for t in g["targets"]
    }
    assert others - {"localhost"} <= set(services)


def test_dockerfile_builds_both_images() -> None:
    dockerfile = (REPO_ROOT / "Dockerfile").read_text()
    stages = re.findall(r"^FROM \S+ AS (\S+)$", dockerfile, flags=re.MULTILINE)
    assert {"platewatch", "triton"} <= set(stages)
    assert stages[-1] == "platewatch", "the default target is the service image"
    assert 'ENTRYPOINT ["platewatch"]' in dockerfile


def test_triton_image_serves_the_wire_graphs_the_chart_names() -> None:
    """The Triton image renders the onnxruntime-backend repositories the Helm chart points at: GPU
    instances with the fp32 detector at /models, CPU instances at /models-cpu (triton.gpus: 0)."""
    dockerfile = (REPO_ROOT / "Dockerfile").read_text().replace("\\\n", " ")
    renders = dict(re.findall(r"triton repository (/\S+)\s+(--backend onnxruntime[^&\n]*)", dockerfile))
    assert set(renders) == {"/models", "/models-cpu"}
    assert renders["/models"].split() == [
        "--backend",
        "onnxruntime",
        "--instance-kind",
        "gpu",
        "--det-precision",
        "fp32",
    ]
    assert renders["/models-cpu"].split() == [
        "--backend",
        "onnxruntime",
        "--instance-kind",
        "cpu",
        "--det-precision",
        "int8",
    ]
    triton_stage = dockerfile.split("AS triton", 1)[1].split("\nFROM ", 1)[0]
    assert "COPY --from=models /models /models" in triton_stage
    assert "COPY --from=models /models-cpu /models-cpu" in triton_stage
    assert "onnxruntime-gpu" not in triton_stage, "no Python onnxruntime: the backend is Triton's own"
    chart = (REPO_ROOT / "helm" / "platewatch" / "templates" / "triton.yaml").read_text()
    assert set(re.findall(r"(/models(?:-cpu)?)\b", chart)) == set(renders)
