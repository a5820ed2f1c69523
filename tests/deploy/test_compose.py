"""deploy/compose.yaml: valid against the Compose specification's schema, and a complete stack."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import yaml

from erp_api.jobs.names import QUEUES
from tests.deploy.conftest import DEPLOY, run_checker

COMPOSE = DEPLOY / "compose.yaml"


def validate(path: Path) -> tuple[bool, str]:
    result = run_checker(
        sys.executable, "-m", "check_jsonschema", "--builtin-schema", "vendor.compose-spec", str(path)
    )
    return result.returncode == 0, result.stdout + result.stderr


def services() -> dict[str, dict[str, Any]]:
    return dict(yaml.safe_load(COMPOSE.read_text())["services"])


def test_the_compose_file_is_valid_against_the_compose_schema() -> None:
    valid, output = validate(COMPOSE)
    assert valid, output


def test_the_schema_check_rejects_a_broken_compose_file(tmp_path: Path) -> None:
    broken = tmp_path / "compose.yaml"
    broken.write_text("services:\n  api:\n    image: erp-api\n    ports: 8000\n    restart: sometimes\n")
    valid, output = validate(broken)
    assert not valid, output


def test_the_stack_has_every_part() -> None:
    assert set(services()) == {
        "postgres",
        "redis",
        "migrate",
        "erp-api",
        "erp-worker-analyses",
        "erp-worker-background",
        "beat",
        "prometheus",
        "alertmanager",
        "grafana",
    }


def test_every_queue_has_workers_and_there_is_one_beat() -> None:
    consumed = []
    for service in services().values():
        command = service.get("command", [])
        if command[:2] == ["erp-worker", "worker"]:
            consumed += command[command.index("-Q") + 1].split(",")
    assert sorted(consumed) == sorted(QUEUES)
    beats = [
        name
        for name, service in services().items()
        if service.get("command", [])[:2] == ["erp-worker", "beat"]
    ]
    assert beats == ["beat"]


def test_the_api_serves_several_processes_after_the_migration() -> None:
    api = services()["erp-api"]
    assert api["command"] == ["erp-api", "serve"]
    assert api["environment"]["ERP_WORKERS"].startswith("${ERP_WORKERS:-")
    assert api["environment"]["PROMETHEUS_MULTIPROC_DIR"]
    assert api["depends_on"]["migrate"] == {"condition": "service_completed_successfully"}
    assert services()["migrate"]["command"] == ["erp-api", "migrate"]


def test_monitoring_mounts_the_shipped_configuration() -> None:
    mounts = {name: service.get("volumes", []) for name, service in services().items()}
    for name, folder in [("prometheus", "prometheus"), ("alertmanager", "alertmanager")]:
        assert any(mount.startswith(f"./{folder}:") for mount in mounts[name]), name
    assert "./grafana/provisioning:/etc/grafana/provisioning:ro" in mounts["grafana"]
    assert "./grafana/dashboards:/var/lib/grafana/dashboards/erp-api:ro" in mounts["grafana"]
    for mount in mounts["prometheus"] + mounts["alertmanager"] + mounts["grafana"]:
        source = mount.split(":")[0]
        if source.startswith("./"):
            assert (COMPOSE.parent / source).is_dir(), source


def test_scraped_hosts_are_services_of_the_stack() -> None:
    config = yaml.safe_load((DEPLOY / "prometheus" / "prometheus.yml").read_text())
    names = {
        name
        for job in config["scrape_configs"]
        for discovery in job.get("dns_sd_configs", [])
        for name in discovery["names"]
    }
    assert names and names <= set(services())
    targets = config["alerting"]["alertmanagers"][0]["static_configs"][0]["targets"]
    assert targets == ["alertmanager:9093"]
