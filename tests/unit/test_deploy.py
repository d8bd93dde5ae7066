"""The deployment files, checked as far as this machine can: Kubernetes manifests against a
pinned Kubernetes schema (strict), the alert rules by promtool (syntax and unit tests), the
dashboard and rules against the metrics the service exports, the compose file and the
Dockerfile by their structure (no Docker engine or compose plugin here to ask)."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import kubernetes_validate
import pytest
import yaml
from prometheus_client import REGISTRY

import imageeditor.core.metrics  # noqa: F401  (registers every metric)
from tests.conftest import service_unavailable

DEPLOY = Path(__file__).resolve().parents[2] / "deploy"
KUBERNETES_VERSION = "1.33.0"  # the oldest release the manifests promise to fit
WORKER_QUEUES = ("edits", "models", "callbacks")


def manifests(name: str) -> list[dict[str, Any]]:
    return [doc for doc in yaml.safe_load_all((DEPLOY / "kubernetes" / name).read_text()) if doc]


def by_kind(docs: list[dict[str, Any]], kind: str) -> dict[str, dict[str, Any]]:
    return {d["metadata"]["name"]: d for d in docs if d["kind"] == kind}


@pytest.mark.parametrize("name", ["production.yaml", "imageeditor.yaml"])
def test_every_manifest_is_valid_kubernetes_strictly(name: str) -> None:
    for doc in manifests(name):
        kubernetes_validate.validate(doc, KUBERNETES_VERSION, strict=True)


def pod_specs(docs: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    return {
        f"{d['kind']}/{d['metadata']['name']}": d["spec"]["template"]["spec"]
        for d in docs
        if d["kind"] in {"Deployment", "StatefulSet", "Job"}
    }


def test_production_has_a_deployment_per_queue_a_migration_and_its_settings() -> None:
    docs = manifests("production.yaml")
    deployments = by_kind(docs, "Deployment")
    for queue in WORKER_QUEUES:
        (container,) = deployments[f"imageeditor-worker-{queue}"]["spec"]["template"]["spec"][
            "containers"
        ]
        assert container["command"][:4] == ["imageeditor", "worker", "--queues", queue]
        assert container["resources"]["requests"] and container["resources"]["limits"]["memory"]
    (migrate,) = by_kind(docs, "Job")["imageeditor-migrate"]["spec"]["template"]["spec"][
        "containers"
    ]
    assert migrate["command"] == ["imageeditor", "db", "upgrade"]
    assert set(by_kind(docs, "Secret")) == set(by_kind(docs, "ConfigMap")) == {"imageeditor"}
    hpas = by_kind(docs, "HorizontalPodAutoscaler")
    scaled = {h["spec"]["scaleTargetRef"]["name"] for h in hpas.values()}
    assert scaled == {"imageeditor-worker-edits", "imageeditor-worker-models"}
    for hpa in hpas.values():
        (metric,) = hpa["spec"]["metrics"]
        assert metric["external"]["metric"]["name"] == "imageeditor_queue_depth"
    budgets = {
        p["spec"]["selector"]["matchLabels"]["app.kubernetes.io/component"]
        for p in by_kind(docs, "PodDisruptionBudget").values()
    }
    assert {"server", "worker-edits", "worker-models"} <= budgets


def test_the_server_drains_behind_grpc_probes() -> None:
    server = by_kind(manifests("production.yaml"), "Deployment")["imageeditor-server"]
    spec = server["spec"]["template"]["spec"]
    (container,) = spec["containers"]
    assert container["readinessProbe"]["grpc"]["port"] == 50051
    assert container["livenessProbe"]["grpc"]["port"] == 50051
    assert container["lifecycle"]["preStop"]["exec"]["command"][0] == "sleep"
    pre_stop = int(container["lifecycle"]["preStop"]["exec"]["command"][1])
    config = by_kind(manifests("production.yaml"), "ConfigMap")["imageeditor"]["data"]
    drain = float(config["IMAGEEDITOR_SHUTDOWN_GRACE_SECONDS"])
    assert spec["terminationGracePeriodSeconds"] > pre_stop + drain


@pytest.mark.parametrize("name", ["production.yaml", "imageeditor.yaml"])
def test_every_pod_runs_as_a_numeric_non_root_user(name: str) -> None:
    for where, spec in pod_specs(manifests(name)).items():
        security = spec["securityContext"]
        assert security["runAsNonRoot"] is True, where
        assert isinstance(security["runAsUser"], int) and security["runAsUser"] > 0, where
        for container in spec["containers"]:
            assert container["securityContext"]["allowPrivilegeEscalation"] is False, where


def promtool() -> str:
    found = shutil.which("promtool")
    if found is None:
        service_unavailable("promtool is not installed (make test installs prometheus)")
    return str(found)


@pytest.mark.parametrize(
    "command", [["check", "rules", "alerts.yaml"], ["test", "rules", "alerts_test.yaml"]]
)
def test_the_alert_rules_pass_promtool(command: list[str]) -> None:
    done = subprocess.run(
        [promtool(), *command],
        cwd=DEPLOY / "grafana",
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stdout + done.stderr


def exported_names() -> set[str]:
    """Every sample name the service's metrics can have (and a histogram's own name, which
    the rules' descriptions mention)."""
    suffixes = {"counter": ("_total",), "histogram": ("", "_bucket", "_sum", "_count")}
    return {
        family.name + suffix
        for family in REGISTRY.collect()
        if family.name.startswith("imageeditor_")
        for suffix in suffixes.get(family.type, ("",))
    }


def referenced_names(text: str) -> set[str]:
    # Recording rules (with a colon) are the rules' own names, not metrics.
    return set(re.findall(r"(?<![:\w])imageeditor_[a-z_]+(?![:\w])", text))


def test_the_dashboard_and_the_rules_name_only_exported_metrics() -> None:
    dashboard = json.loads((DEPLOY / "grafana" / "imageeditor-dashboard.json").read_text())
    expressions = [t["expr"] for p in dashboard["panels"] for t in p["targets"]]
    assert len(expressions) >= 10
    rules = (DEPLOY / "grafana" / "alerts.yaml").read_text()
    used = referenced_names("\n".join(expressions)) | referenced_names(rules)
    assert used and used <= exported_names(), used - exported_names()
    titles = " ".join(p["title"].lower() for p in dashboard["panels"])
    for topic in ("submitted", "latency", "queue depth", "fail", "callbacks"):
        assert topic in titles


def test_compose_runs_the_whole_system_with_health_gated_start() -> None:
    compose = yaml.safe_load((DEPLOY / "compose.yaml").read_text())
    services = compose["services"]
    wanted = {
        "postgres", "redis", "minio", "otel-collector", "jaeger", "prometheus", "grafana",
        "flower", "server", "worker-edits", "worker-models", "worker-callbacks", "migrate",
    }  # fmt: skip
    assert wanted <= set(services)
    for name, service in services.items():
        for needed, condition in (service.get("depends_on") or {}).items():
            assert needed in services, f"{name} depends on unknown {needed}"
            if condition["condition"] == "service_healthy":
                assert "healthcheck" in services[needed], f"{needed} has no healthcheck"
        for volume in service.get("volumes", []):
            source = volume.split(":")[0]
            if source.startswith("."):
                assert (DEPLOY / source).exists(), f"{name} mounts missing {source}"
    for name in ("server", "worker-edits", "worker-models", "worker-callbacks", "flower"):
        assert services[name]["healthcheck"]["test"], name
        assert services[name]["depends_on"]["migrate"]["condition"] == (
            "service_completed_successfully"
        )
    assert services["server"]["build"]["target"] == "server"


def test_the_dockerfile_builds_a_lean_server_and_a_worker_as_a_numeric_user() -> None:
    text = (DEPLOY / "Dockerfile").read_text()
    stages = re.findall(r"^FROM \S+ AS (\S+)$", text, flags=re.M)
    assert {"server", "worker"} <= set(stages)
    assert re.search(r"^USER \d+:\d+$", text, flags=re.M)
    assert re.search(r"^HEALTHCHECK .*\n\s+CMD \[\"imageeditor\", \"health\"\]", text, re.M)
    server_install = re.search(r"AS build-server\n(?:.*\n)*?RUN pip install '(.*)'", text)
    assert server_install is not None and server_install.group(1) == ".[server]"
    assert "imageeditor models fetch" in text.split("AS build-worker", 1)[1]
