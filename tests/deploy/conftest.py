"""Helpers for the tests of the deployment files in deploy/: paths, YAML, and the external checkers."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.services import REQUIRE_SERVICES

ROOT = Path(__file__).resolve().parents[2]
DEPLOY = ROOT / "deploy"


def load_documents(path: Path) -> list[dict[str, Any]]:
    """Every YAML document of ``path`` (Kubernetes files hold several)."""
    return [document for document in yaml.safe_load_all(path.read_text()) if document is not None]


def require_tool(name: str, debian_package: str) -> str:
    """The path of a checker CLI; missing, it skips the test, or fails it with ERP_REQUIRE_SERVICES=1."""
    path = shutil.which(name)
    if path is None:
        reason = f"{name} is not installed (Debian: apt-get install {debian_package})"
        if REQUIRE_SERVICES:
            pytest.fail(f"{reason}, and ERP_REQUIRE_SERVICES=1 makes it mandatory", pytrace=False)
        pytest.skip(reason)
    return path


def run_checker(*command: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(list(command), capture_output=True, text=True, timeout=120, check=False)
