"""What the deploy files expose: compose publishes on loopback only and the codec server always
has a token; Kubernetes has no Secret value in git, one Secret per component mounted only by its
own pods, NetworkPolicies that deny by default, and side servers bound where probes reach."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path
from typing import Any

import yaml

DEPLOY = Path(__file__).resolve().parents[2] / "deploy"
K8S = DEPLOY / "k8s"


def documents(path: Path) -> list[dict[str, Any]]:
    return [d for d in yaml.safe_load_all(path.read_text()) if d is not None]


def manifests() -> list[dict[str, Any]]:
    return [d for f in sorted(K8S.glob("*.yaml")) for d in documents(f)]


def test_compose_publishes_every_port_on_loopback_only() -> None:
    services = documents(DEPLOY / "compose.yaml")[0]["services"]
    published = {name: s.get("ports", []) for name, s in services.items()}
    assert published["temporal"] and published["temporal-ui"]
    for name, ports in published.items():
        for port in ports:
            assert str(port).startswith("127.0.0.1:"), f"{name} publishes {port} on every interface"


def test_compose_codec_server_always_needs_a_token() -> None:
    codec = documents(DEPLOY / "compose.yaml")[0]["services"]["codec-server"]
    assert "--insecure-no-auth" not in codec["command"]
    assert codec["environment"]["CADENZA_CODEC_SERVER_TOKEN"].startswith(
        "${CADENZA_CODEC_SERVER_TOKEN:?"
    )  # compose refuses to start without one


def test_no_secret_values_in_git() -> None:
    assert not [d for d in manifests() if d["kind"] == "Secret"]
    ignored = (K8S / "secrets" / ".gitignore").read_text()
    assert "*.env" in ignored.splitlines()
    tracked = subprocess.run(
        ["git", "ls-files", str(K8S / "secrets")], capture_output=True, text=True, check=True
    ).stdout.split()
    assert tracked and all(not t.endswith(".env") for t in tracked), tracked
    for example in (K8S / "secrets").glob("*.env.example"):
        for line in example.read_text().splitlines():
            if line and not line.startswith("#"):
                assert re.fullmatch(r"[A-Z_]+=", line), f"{example.name}: {line}"


def test_one_secret_per_component_each_pod_mounts_only_its_own() -> None:
    kustomization = documents(K8S / "kustomization.yaml")[0]
    generated = {g["name"] for g in kustomization["secretGenerator"]}
    used: dict[str, set[str]] = {}
    for doc in manifests():
        if doc["kind"] not in ("Deployment", "Job"):
            continue
        names: set[str] = set()
        for container in doc["spec"]["template"]["spec"]["containers"]:
            names |= {
                e["secretRef"]["name"] for e in container.get("envFrom", []) if "secretRef" in e
            }
            for env in container.get("env", []):
                ref = env.get("valueFrom", {}).get("secretKeyRef")
                if ref:
                    names.add(ref["name"])
        used[doc["metadata"]["name"]] = names
    assert used == {
        "cadenza-worker": {"cadenza-worker-secrets"},
        "cadenza-worker-llm": {"cadenza-worker-llm-secrets"},
        "cadenza-codec-server": {"cadenza-codec-server-secrets"},
        "cadenza-setup": {"cadenza-setup-secrets"},
    }
    assert generated == set().union(*used.values())


def test_network_policies_deny_by_default_and_allow_each_component() -> None:
    policies = {
        d["metadata"]["name"]: d["spec"] for d in manifests() if d["kind"] == "NetworkPolicy"
    }
    deny = policies["default-deny"]
    assert deny["podSelector"] == {} and set(deny["policyTypes"]) == {"Ingress", "Egress"}
    assert "ingress" not in deny and "egress" not in deny
    selected = " ".join(str(p["podSelector"]) for p in policies.values())
    for component in (
        "cadenza-worker",
        "cadenza-worker-llm",
        "cadenza-setup",
        "cadenza-codec-server",
    ):
        assert component in selected, component
    ports = {
        port["port"]
        for p in policies.values()
        for rule in p.get("ingress", []) + p.get("egress", [])
        for port in rule.get("ports", [])
    }
    assert {53, 7233, 4318, 9464, 8081} <= ports


def test_k8s_binds_the_side_servers_where_probes_reach_them() -> None:
    config = next(d for d in manifests() if d["kind"] == "ConfigMap")["data"]
    assert config["CADENZA_HEALTH_HOST"] == "0.0.0.0"
    assert config["CADENZA_METRICS_HOST"] == "0.0.0.0"
