"""The HAProxy configuration of a scale-out run: valid for the installed HAProxy, with the promised policy."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

from loadtests.balancer import haproxy_config


def test_the_configuration_checks_readiness_and_retries_on_another_instance() -> None:
    config = haproxy_config(8080, [8081, 8082])
    assert "bind 127.0.0.1:8080" in config
    assert "server api1 127.0.0.1:8081" in config and "server api2 127.0.0.1:8082" in config
    assert "option httpchk GET /health/ready" in config
    assert "option redispatch" in config
    assert "retry-on conn-failure empty-response" in config
    for timeout in ("connect", "client", "server", "http-request", "queue", "check"):
        assert f"timeout {timeout} " in config


@pytest.mark.skipif(shutil.which("haproxy") is None, reason="haproxy is not installed")
def test_the_installed_haproxy_accepts_the_configuration(tmp_path: Path) -> None:
    path = tmp_path / "haproxy.cfg"
    path.write_text(haproxy_config(8080, [8081, 8082]))
    checked = subprocess.run(["haproxy", "-c", "-f", str(path)], capture_output=True, text=True, check=False)
    assert checked.returncode == 0, checked.stdout + checked.stderr
