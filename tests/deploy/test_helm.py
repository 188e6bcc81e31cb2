"""helm/platewatch: `helm lint` and `helm template` with every values file, each rendered object
validated against the Kubernetes OpenAPI schemas (kubernetes-validate, offline, strict: unknown fields
fail), ServiceMonitors (a CRD, not in those schemas) checked structurally, then what the chart
promises: every component deployed with probes, HPAs, PDBs, NetworkPolicies and secrets by reference."""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import kubernetes_validate
import pytest
import yaml

from services.cli import COMPONENTS

REPO_ROOT = Path(__file__).resolve().parents[2]
CHART = REPO_ROOT / "helm" / "platewatch"
VALUES_FILES = [CHART / "values.yaml", *sorted((CHART / "examples").glob("*.yaml"))]
KUBE_VERSION = "1.31.0"
Manifest = dict[str, Any]


def _values_id(path: Path) -> str:
    return path.relative_to(CHART).as_posix()


def _helm(helm: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(helm), *args], capture_output=True, text=True, timeout=300, cwd=REPO_ROOT)


@pytest.fixture(scope="module", params=VALUES_FILES, ids=_values_id)
def rendered(request: pytest.FixtureRequest, helm: Path) -> tuple[Path, list[Manifest]]:
    values: Path = request.param
    result = _helm(
        helm,
        "template",
        "pw",
        str(CHART),
        "-f",
        str(values),
        "--namespace",
        "alpr",
        "--kube-version",
        KUBE_VERSION,
    )
    assert result.returncode == 0, result.stderr
    manifests = [doc for doc in yaml.safe_load_all(result.stdout) if doc]
    return values, manifests


def _of_kind(manifests: list[Manifest], kind: str) -> Iterator[Manifest]:
    return (m for m in manifests if m["kind"] == kind)


def _by_name(manifests: list[Manifest]) -> dict[tuple[str, str], Manifest]:
    return {(m["kind"], m["metadata"]["name"]): m for m in manifests}


def _values(path: Path) -> dict[str, Any]:
    """The values file merged over the chart defaults (enough for the keys the tests read)."""
    merged: dict[str, Any] = yaml.safe_load((CHART / "values.yaml").read_text())

    def merge(base: dict[str, Any], over: dict[str, Any]) -> None:
        for key, value in over.items():
            if isinstance(value, dict) and isinstance(base.get(key), dict):
                merge(base[key], value)
            else:
                base[key] = value

    merge(merged, yaml.safe_load(path.read_text()) or {})
    return merged


def _workloads(manifests: list[Manifest]) -> dict[str, Manifest]:
    """Component name -> Deployment or StatefulSet."""
    return {
        m["metadata"]["labels"]["app.kubernetes.io/component"]: m
        for m in manifests
        if m["kind"] in ("Deployment", "StatefulSet")
    }


@pytest.mark.parametrize("values", VALUES_FILES, ids=_values_id)
def test_helm_lint(helm: Path, values: Path) -> None:
    result = _helm(helm, "lint", str(CHART), "-f", str(values), "--strict", "--kube-version", KUBE_VERSION)
    assert result.returncode == 0, result.stdout + result.stderr


def test_every_object_matches_the_kubernetes_schema(rendered: tuple[Path, list[Manifest]]) -> None:
    _, manifests = rendered
    errors = []
    for manifest in manifests:
        if manifest["kind"] == "ServiceMonitor":
            continue  # a CRD: checked below
        try:
            kubernetes_validate.validate(manifest, KUBE_VERSION, strict=True)
        except kubernetes_validate.ValidationError as exc:
            errors.append(
                f"{manifest['kind']}/{manifest['metadata']['name']}: {exc.message} at {list(exc.path)}"
            )
    assert errors == []


def test_the_schema_validation_catches_mistakes(rendered: tuple[Path, list[Manifest]]) -> None:
    """Guards the check above: a misspelt field and a wrong type must be rejected."""
    _, manifests = rendered
    deployment = next(_of_kind(manifests, "Deployment"))
    misspelt = {**deployment, "spec": {**deployment["spec"], "replica": 2}}
    wrong_type = {**deployment, "spec": {**deployment["spec"], "replicas": "two"}}
    for broken in (misspelt, wrong_type):
        with pytest.raises(kubernetes_validate.ValidationError):
            kubernetes_validate.validate(broken, KUBE_VERSION, strict=True)


def test_service_monitors_are_well_formed(rendered: tuple[Path, list[Manifest]]) -> None:
    _, manifests = rendered
    services = list(_of_kind(manifests, "Service"))
    for monitor in _of_kind(manifests, "ServiceMonitor"):
        assert monitor["apiVersion"] == "monitoring.coreos.com/v1"
        assert set(monitor) == {"apiVersion", "kind", "metadata", "spec"}
        spec = monitor["spec"]
        assert set(spec) <= {"jobLabel", "selector", "endpoints", "namespaceSelector"}
        wanted = spec["selector"]["matchLabels"]
        matched = [s for s in services if wanted.items() <= s["metadata"]["labels"].items()]
        assert len(matched) == 1, monitor["metadata"]["name"]
        port_names = {p["name"] for p in matched[0]["spec"]["ports"]}
        for endpoint in spec["endpoints"]:
            assert set(endpoint) <= {"port", "path", "interval", "scrapeTimeout", "scheme"}
            assert endpoint["port"] in port_names
            assert endpoint["path"] == "/metrics"
            assert endpoint["interval"].endswith("s")


def test_every_component_runs_with_probes_and_resources(rendered: tuple[Path, list[Manifest]]) -> None:
    _, manifests = rendered
    workloads = _workloads(manifests)
    for name in COMPONENTS:
        pod = workloads[name]["spec"]["template"]["spec"]
        (container,) = pod["containers"]
        assert container["args"] == ["serve", name]
        assert container["livenessProbe"]["httpGet"]["path"] == "/healthz"
        assert container["readinessProbe"]["httpGet"]["path"] == "/readyz"
        assert container["resources"]["limits"]["memory"]
        env = {e["name"]: e for e in container["env"]}
        assert env["PLATEWATCH_METRICS_PORT"]["value"] == "9100"
        # Secrets come by reference only.
        assert "secretKeyRef" in env["PLATEWATCH_CLICKHOUSE_PASSWORD"]["valueFrom"]


def test_transactional_components_have_stable_instance_ids(rendered: tuple[Path, list[Manifest]]) -> None:
    _, manifests = rendered
    workloads = _workloads(manifests)
    for name, variable in (
        ("normalizer", "PLATEWATCH_INSTANCE_ID"),
        ("hotlist", "PLATEWATCH_HOTLIST_INSTANCE_ID"),
    ):
        assert workloads[name]["kind"] == "StatefulSet"
        env = {e["name"]: e for e in workloads[name]["spec"]["template"]["spec"]["containers"][0]["env"]}
        assert env[variable]["valueFrom"]["fieldRef"]["fieldPath"] == "metadata.name"


def test_autoscalers_and_disruption_budgets_target_real_workloads(
    rendered: tuple[Path, list[Manifest]],
) -> None:
    values_file, manifests = rendered
    values = _values(values_file)
    objects = _by_name(manifests)
    autoscaled = set()
    for hpa in _of_kind(manifests, "HorizontalPodAutoscaler"):
        target = hpa["spec"]["scaleTargetRef"]
        workload = objects[(target["kind"], target["name"])]
        assert "replicas" not in workload["spec"], "the HPA owns the replica count"
        assert hpa["spec"]["minReplicas"] <= hpa["spec"]["maxReplicas"]
        autoscaled.add(workload["metadata"]["labels"]["app.kubernetes.io/component"])
    expected = {n for n in ("inference", "normalizer") if values["components"][n]["autoscaling"]["enabled"]}
    assert autoscaled == expected
    pods = [w["spec"]["template"]["metadata"]["labels"] for w in _workloads(manifests).values()]
    budgets = list(_of_kind(manifests, "PodDisruptionBudget"))
    if values["podDisruptionBudget"]["enabled"]:
        assert {b["metadata"]["labels"]["app.kubernetes.io/component"] for b in budgets} >= set(COMPONENTS)
    for budget in budgets:
        selector = budget["spec"]["selector"]["matchLabels"]
        assert sum(selector.items() <= labels.items() for labels in pods) == 1


def test_triton_requests_gpus_and_serves_the_matching_repository(
    rendered: tuple[Path, list[Manifest]],
) -> None:
    """GPUs requested: the GPU repository (/models, KIND_GPU); none: the CPU one, and no GPU asked for."""
    values_file, manifests = rendered
    gpus = _values(values_file)["triton"]["gpus"]
    (container,) = _workloads(manifests)["triton"]["spec"]["template"]["spec"]["containers"]
    repository = next(a for a in container["args"] if a.startswith("--model-repository="))
    if gpus > 0:
        assert container["resources"]["limits"]["nvidia.com/gpu"] == gpus
        assert container["resources"]["requests"]["nvidia.com/gpu"] == gpus
        assert repository == "--model-repository=/models"
    else:
        assert "nvidia.com/gpu" not in container["resources"]["limits"]
        assert "nvidia.com/gpu" not in container["resources"]["requests"]
        assert repository == "--model-repository=/models-cpu"


def test_some_values_file_runs_triton_without_gpus() -> None:
    """Both branches of the Triton template are rendered by the tests above."""
    gpus = {_values(path)["triton"]["gpus"] for path in VALUES_FILES}
    assert 0 in gpus and any(g > 0 for g in gpus)


def test_external_or_in_cluster_datastores(rendered: tuple[Path, list[Manifest]]) -> None:
    values_file, manifests = rendered
    values = _values(values_file)
    workloads = _workloads(manifests)
    env = {
        e["name"]: e.get("value")
        for e in workloads["writer"]["spec"]["template"]["spec"]["containers"][0]["env"]
    }
    for store, variable, external in (
        ("kafka", "PLATEWATCH_KAFKA_BOOTSTRAP", "bootstrap"),
        ("clickhouse", "PLATEWATCH_CLICKHOUSE_URL", "url"),
    ):
        if values[store]["enabled"]:
            assert store in workloads
            assert f"pw-platewatch-{store}:" in env[variable]
        else:
            assert store not in workloads, f"an external {store} must not be deployed"
            assert env[variable] == values[store][external]


def test_network_policies_isolate_every_pod(rendered: tuple[Path, list[Manifest]]) -> None:
    values_file, manifests = rendered
    if not _values(values_file)["networkPolicy"]["enabled"]:
        pytest.skip("network policies disabled in this values file")
    policies = list(_of_kind(manifests, "NetworkPolicy"))
    pod_labels = {
        name: w["spec"]["template"]["metadata"]["labels"] for name, w in _workloads(manifests).items()
    }
    pod_labels["setup"] = next(_of_kind(manifests, "Job"))["spec"]["template"]["metadata"]["labels"]
    for name, labels in pod_labels.items():
        covering = [p for p in policies if p["spec"]["podSelector"]["matchLabels"].items() <= labels.items()]
        assert covering, f"{name} pods are not isolated"
    capture = next(p for p in policies if p["metadata"]["name"] == "pw-platewatch-capture")
    assert capture["spec"]["ingress"][0]["ports"] == [{"port": 9100, "protocol": "TCP"}], (
        "capture takes no calls"
    )
    camera_rules = [
        r for r in capture["spec"]["egress"] if any("ipBlock" in peer for peer in r.get("to", []))
    ]
    assert camera_rules, "capture reaches the camera networks"
    triton = next(p for p in policies if p["metadata"]["name"] == "pw-platewatch-triton")
    callers = triton["spec"]["ingress"][0]["from"][0]["podSelector"]["matchLabels"]
    assert callers["app.kubernetes.io/component"] == "inference", "only inference calls Triton"
    search = next(p for p in policies if p["metadata"]["name"] == "pw-platewatch-search")
    egress_ports = {port["port"] for rule in search["spec"]["egress"] for port in rule["ports"]}
    assert egress_ports == {53, 8123}, "search reaches only DNS and ClickHouse"
