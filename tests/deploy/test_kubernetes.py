"""deploy/kubernetes/: every manifest valid against the Kubernetes schemas, with probes, resources and budgets."""

from __future__ import annotations

from typing import Any

import kubernetes_validate
import pytest

from erp_api.jobs.names import QUEUES
from tests.deploy.conftest import DEPLOY, load_documents

MANIFESTS = sorted((DEPLOY / "kubernetes").glob("*.yaml"))


def resources() -> list[dict[str, Any]]:
    return [document for path in MANIFESTS for document in load_documents(path)]


def of_kind(kind: str) -> dict[str, dict[str, Any]]:
    return {item["metadata"]["name"]: item for item in resources() if item["kind"] == kind}


def pod_spec(workload: dict[str, Any]) -> dict[str, Any]:
    spec: dict[str, Any] = workload["spec"]["template"]["spec"]
    return spec


@pytest.mark.parametrize("path", MANIFESTS, ids=lambda path: path.name)
def test_every_manifest_is_valid_against_the_kubernetes_schemas(path: Any) -> None:
    for document in load_documents(path):
        kubernetes_validate.validate(document, kubernetes_validate.latest_version(), strict=True)


def test_the_schema_check_rejects_an_unknown_field() -> None:
    broken = dict(of_kind("Deployment")["erp-api"])
    broken["spec"] = {**broken["spec"], "replica": 2}
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(broken, kubernetes_validate.latest_version(), strict=True)


def test_the_api_is_probed_on_health_and_readiness() -> None:
    (container,) = pod_spec(of_kind("Deployment")["erp-api"])["containers"]
    assert container["command"] == ["erp-api", "serve"]
    assert container["livenessProbe"]["httpGet"]["path"] == "/health"
    assert container["startupProbe"]["httpGet"]["path"] == "/health"
    assert container["readinessProbe"]["httpGet"]["path"] == "/health/ready"


def test_workers_consume_every_queue_and_serve_their_metrics() -> None:
    consumed = []
    for name, deployment in of_kind("Deployment").items():
        for container in pod_spec(deployment)["containers"]:
            if container["command"][:2] == ["erp-worker", "worker"]:
                consumed += container["command"][container["command"].index("-Q") + 1].split(",")
                assert container["livenessProbe"]["httpGet"]["port"] == "metrics", name
    assert sorted(consumed) == sorted(QUEUES)
    assert int(of_kind("ConfigMap")["erp-api"]["data"]["ERP_WORKER_METRICS_PORT"]) == 9808


def test_the_migration_job_migrates() -> None:
    (container,) = pod_spec(of_kind("Job")["erp-api-migrate"])["containers"]
    assert container["command"] == ["erp-api", "migrate"]


def test_every_container_requests_resources_and_runs_unprivileged() -> None:
    workloads = {**of_kind("Deployment"), **of_kind("Job")}
    assert len(workloads) == 5
    for name, workload in workloads.items():
        spec = pod_spec(workload)
        assert spec["securityContext"]["runAsNonRoot"] is True, name
        for container in spec["containers"]:
            assert {"cpu", "memory"} <= set(container["resources"]["requests"]), name
            assert "memory" in container["resources"]["limits"], name
            assert container["securityContext"]["allowPrivilegeEscalation"] is False, name


def test_api_and_workers_have_a_disruption_budget_that_selects_their_pods() -> None:
    budgets = [
        budget["spec"]["selector"]["matchLabels"] for budget in of_kind("PodDisruptionBudget").values()
    ]
    for name, deployment in of_kind("Deployment").items():
        labels = deployment["spec"]["template"]["metadata"]["labels"]
        assert deployment["spec"]["selector"]["matchLabels"].items() <= labels.items(), name
        covered = [selector for selector in budgets if selector.items() <= labels.items()]
        # Beat runs alone (Recreate): a budget would block every node drain.
        assert len(covered) == (0 if name == "erp-beat" else 1), name


def test_one_beat_at_most() -> None:
    beat = of_kind("Deployment")["erp-beat"]
    assert pod_spec(beat)["containers"][0]["command"][:2] == ["erp-worker", "beat"]
    assert beat["spec"]["replicas"] == 1
    assert beat["spec"]["strategy"] == {"type": "Recreate"}
