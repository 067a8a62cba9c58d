"""The production files under deploy/ parse and have the structure they must have: pinned images,
ports, environment, probes, graceful shutdown longer than the worker's, a setup job, and
collector/Prometheus configs that point at what the stack runs."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
import yaml

from worker.cli import app
from worker.settings import Settings

DEPLOY = Path(__file__).resolve().parents[2] / "deploy"
PINNED = re.compile(r"^[\w.\-/]+(:v?\d+\.\d+[\w.\-]*|@sha256:[0-9a-f]{64})$")


def documents(path: Path) -> list[dict[str, Any]]:
    return [d for d in yaml.safe_load_all(path.read_text()) if d is not None]


def test_every_yaml_under_deploy_parses() -> None:
    files = sorted(DEPLOY.rglob("*.yaml")) + sorted(DEPLOY.rglob("*.yml"))
    assert len(files) >= 10
    for file in files:
        assert documents(file), file


def compose() -> dict[str, Any]:
    return documents(DEPLOY / "compose.yaml")[0]


def test_compose_runs_the_whole_stack_with_pinned_images() -> None:
    services = compose()["services"]
    assert set(services) >= {
        "postgresql",
        "elasticsearch",
        "temporal",
        "temporal-ui",
        "otel-collector",
        "jaeger",
        "prometheus",
        "cadenza-setup",
        "worker",
        "worker-llm",
        "codec-server",
    }
    for name, service in services.items():
        image = service["image"]
        assert PINNED.match(image), f"{name}: image {image!r} is not pinned to a version"
        assert not image.endswith(":latest")
    temporal = services["temporal"]["environment"]
    assert temporal["DB"] == "postgres12" and temporal["ENABLE_ES"] == "true"
    ports = {p.split(":")[-2] for s in services.values() for p in s.get("ports", [])}
    assert {"7233", "8080", "16686", "9090", "8081", "4317", "4318"} <= ports


def test_compose_workers_wait_for_setup_and_are_configured_by_environment() -> None:
    services = compose()["services"]
    setup = services["cadenza-setup"]
    assert setup["command"][0] == "setup" and setup["restart"] == "no"
    queues = {}
    for name in ("worker", "worker-llm"):
        worker = services[name]
        assert worker["depends_on"]["cadenza-setup"] == {
            "condition": "service_completed_successfully"
        }
        env = worker["environment"]
        assert env["TEMPORAL_ADDRESS"] == "temporal:7233"
        assert env["OTEL_EXPORTER_OTLP_ENDPOINT"] == "http://otel-collector:4318"
        assert env["CADENZA_HEALTH_PORT"] and env["CADENZA_METRICS_PORT"]
        assert "CADENZA_CODEC_KEYS" in env
        grace = int(worker["stop_grace_period"].rstrip("s"))
        assert grace > float(env["CADENZA_GRACEFUL_SHUTDOWN_SECONDS"])
        queues[name] = worker["command"][worker["command"].index("--task-queue") + 1]
    assert queues == {"worker": "cadenza", "worker-llm": "cadenza.llm"}
    codec = services["codec-server"]
    assert codec["command"][0] == "codec-server"
    # a bearer token always, and only this machine may reach it (tests/unit/test_exposure_deploy.py)
    assert "--insecure-no-auth" not in codec["command"]
    assert codec["ports"] == ["127.0.0.1:8081:8081"]


def test_compose_commands_exist_in_the_cli() -> None:
    names = {c.name or (c.callback.__name__ if c.callback else "") for c in app.registered_commands}
    names |= {g.name or "" for g in app.registered_groups}  # `cadenza inbox`, a command group
    for service in compose()["services"].values():
        if service["image"].startswith("cadenza-worker"):
            assert service["command"][0] in names


def test_collector_and_prometheus_point_at_the_stack() -> None:
    collector = documents(DEPLOY / "config" / "otel-collector.yaml")[0]
    assert set(collector["receivers"]["otlp"]["protocols"]) == {"grpc", "http"}
    pipelines = collector["service"]["pipelines"]
    assert pipelines["traces"]["exporters"] == ["otlp/jaeger"]
    assert collector["exporters"]["otlp/jaeger"]["endpoint"].startswith("jaeger:")
    prometheus = documents(DEPLOY / "config" / "prometheus.yaml")[0]
    targets = {
        t
        for job in prometheus["scrape_configs"]
        for c in job["static_configs"]
        for t in c["targets"]
    }
    assert {"worker:9464", "worker-llm:9464"} <= targets
    rules = documents(DEPLOY / "config" / "alerts.yaml")[0]["groups"][0]["rules"]
    exprs = " ".join(r["expr"] for r in rules)
    for metric in ("cadenza_runs_total", "cadenza_step_retries_total", "cadenza_approvals_waiting"):
        assert metric in exprs


def k8s() -> list[dict[str, Any]]:
    docs = []
    for file in sorted((DEPLOY / "k8s").glob("*.yaml")):
        docs += documents(file)
    return docs


def test_kustomization_lists_every_manifest() -> None:
    kustomization = documents(DEPLOY / "k8s" / "kustomization.yaml")[0]
    listed = set(kustomization["resources"])
    present = {p.name for p in (DEPLOY / "k8s").glob("*.yaml")} - {"kustomization.yaml"}
    assert listed == present


@pytest.mark.parametrize("name", ["cadenza-worker", "cadenza-worker-llm"])
def test_worker_deployments_have_probes_resources_and_a_long_enough_grace(name: str) -> None:
    docs = k8s()
    deployment = next(
        d for d in docs if d["kind"] == "Deployment" and d["metadata"]["name"] == name
    )
    pod = deployment["spec"]["template"]["spec"]
    container = pod["containers"][0]
    assert PINNED.match(container["image"])
    assert container["livenessProbe"]["httpGet"]["path"] == "/livez"
    assert container["readinessProbe"]["httpGet"]["path"] == "/readyz"
    assert {p["containerPort"] for p in container["ports"]} == {8080, 9464}
    assert set(container["resources"]["requests"]) == {"cpu", "memory"}
    assert pod["securityContext"]["runAsNonRoot"] is True
    config = next(d for d in docs if d["kind"] == "ConfigMap")["data"]
    assert config["CADENZA_HEALTH_PORT"] == "8080" and config["CADENZA_METRICS_PORT"] == "9464"
    shutdown = float(config["CADENZA_GRACEFUL_SHUTDOWN_SECONDS"])
    assert pod["terminationGracePeriodSeconds"] > shutdown
    assert {"configMapRef", "secretRef"} <= {k for e in container["envFrom"] for k in e}
    hpa = next(
        d for d in docs if d["kind"] == "HorizontalPodAutoscaler" and d["metadata"]["name"] == name
    )
    assert hpa["spec"]["scaleTargetRef"] == {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "name": name,
    }
    assert 1 <= hpa["spec"]["minReplicas"] < hpa["spec"]["maxReplicas"]


def test_k8s_configmap_keys_are_settings_cadenza_reads() -> None:
    config = next(d for d in k8s() if d["kind"] == "ConfigMap")["data"]
    fields = {f"CADENZA_{name.upper()}" for name in Settings.model_fields}
    for key in config:
        if key.startswith("CADENZA_"):
            assert key in fields, key
    job = next(d for d in k8s() if d["kind"] == "Job")
    assert job["spec"]["template"]["spec"]["containers"][0]["args"][0] == "setup"


def test_dockerfile_is_pinned_non_root_and_checks_health() -> None:
    text = (DEPLOY / "Dockerfile").read_text()
    for line in text.splitlines():
        if line.startswith("FROM "):
            image = line.split()[1]
            assert PINNED.match(image) and "latest" not in image, line
    assert re.search(r"^USER 10001", text, re.M)
    assert "HEALTHCHECK" in text and "/livez" in text
    assert 'ENTRYPOINT ["cadenza"]' in text
