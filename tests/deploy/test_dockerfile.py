"""deploy/Dockerfile: multi-stage, wheel-based, non-root, with a health check (a lint of its instructions)."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from tests.deploy.conftest import DEPLOY, ROOT

DOCKERFILE = DEPLOY / "Dockerfile"
IGNORE = DEPLOY / "Dockerfile.dockerignore"


def instructions() -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) of each instruction, continuation lines joined, comments dropped."""
    text = re.sub(r"\\\n\s*", " ", DOCKERFILE.read_text())
    parsed = []
    for raw in text.splitlines():
        line = raw.strip()
        if line and not line.startswith("#"):
            keyword, _, arguments = line.partition(" ")
            parsed.append((keyword.upper(), arguments.strip()))
    return parsed


def stages() -> list[list[tuple[str, str]]]:
    found: list[list[tuple[str, str]]] = []
    for keyword, arguments in instructions():
        if keyword == "FROM":
            found.append([])
        if found:
            found[-1].append((keyword, arguments))
    return found


def test_only_known_instructions_are_used() -> None:
    known = {"FROM", "ARG", "ENV", "WORKDIR", "COPY", "RUN", "USER", "EXPOSE", "HEALTHCHECK", "CMD", "LABEL"}
    assert {keyword for keyword, _ in instructions()} <= known


def test_the_wheel_is_built_in_a_builder_stage_and_installed_in_the_runtime_stage() -> None:
    builder, runtime = stages()
    assert builder[0][1].endswith(" AS builder")
    assert any(keyword == "RUN" and "pip wheel" in arguments for keyword, arguments in builder)
    assert ("COPY", "--from=builder /wheels /wheels") in runtime
    installs = [
        arguments for keyword, arguments in runtime if keyword == "RUN" and "pip install" in arguments
    ]
    assert installs and all("--no-index" in command for command in installs)
    # Nothing of the source tree reaches the runtime stage but the wheels.
    assert all(arguments.startswith("--from=builder") for keyword, arguments in runtime if keyword == "COPY")


def test_the_runtime_runs_as_an_unprivileged_user() -> None:
    runtime = stages()[-1]
    users = [arguments for keyword, arguments in runtime if keyword == "USER"]
    assert users, "the runtime stage sets no USER: it would run as root"
    user = users[-1].split(":")[0]
    assert user not in {"root", "0"}
    last_user = max(index for index, (keyword, _) in enumerate(runtime) if keyword == "USER")
    assert all(keyword != "RUN" for keyword, _ in runtime[last_user:]), "RUN after USER runs unprivileged"


def test_the_image_checks_the_health_endpoint_and_serves_the_api_by_default() -> None:
    runtime = stages()[-1]
    checks = [arguments for keyword, arguments in runtime if keyword == "HEALTHCHECK"]
    assert len(checks) == 1 and "/health" in checks[0] and "CMD" in checks[0]
    probe = json.loads(checks[0].split(" CMD ", 1)[1])  # exec form: no shell in between
    assert probe[0] == "python" and "/health" in probe[-1]
    command = [arguments for keyword, arguments in runtime if keyword == "CMD"][-1]
    assert json.loads(command) == ["erp-api", "serve"]


def test_worker_metrics_are_on_and_every_port_is_exposed() -> None:
    runtime = stages()[-1]
    env = " ".join(arguments for keyword, arguments in runtime if keyword == "ENV")
    port = re.search(r"ERP_WORKER_METRICS_PORT=(\d+)", env)
    assert port and int(port.group(1)) > 0
    assert re.search(r"ERP_HOST=0\.0\.0\.0", env), "a container must listen beyond its loopback"
    exposed = {arguments for keyword, arguments in runtime if keyword == "EXPOSE"}
    assert exposed == {f"8000 {port.group(1)}"}


def test_every_copied_source_exists_and_is_in_the_build_context() -> None:
    builder = stages()[0]
    allowed = [line[1:].rstrip("/*") for line in IGNORE.read_text().splitlines() if line.startswith("!")]
    for keyword, arguments in builder:
        if keyword != "COPY":
            continue
        *sources, _destination = arguments.split()
        for source in sources:
            assert (ROOT / source).exists(), source
            assert Path(source).parts[0] in allowed, f"{source} is excluded by {IGNORE.name}"


@pytest.mark.slow
def test_the_builder_stage_sources_build_a_wheel_with_migrations_and_commands(tmp_path: Path) -> None:
    """The builder's COPY instructions, replayed into an empty folder, are all ``pip wheel .`` needs."""
    context = tmp_path / "src"
    context.mkdir()
    for keyword, arguments in stages()[0]:
        if keyword != "COPY":
            continue
        *sources, destination = arguments.split()
        for source in sources:
            target = context / destination / source if destination.endswith("/") else context / destination
            if (ROOT / source).is_dir():
                shutil.copytree(ROOT / source, target, ignore=shutil.ignore_patterns("__pycache__"))
            else:
                shutil.copyfile(ROOT / source, target)
    dist = tmp_path / "dist"
    command = [sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps", "--wheel-dir", str(dist), "."]
    result = subprocess.run(command, cwd=context, capture_output=True, text=True, timeout=300, check=False)
    assert result.returncode == 0, result.stdout + result.stderr
    (wheel,) = dist.glob("erp_api-*.whl")
    with zipfile.ZipFile(wheel) as archive:
        names = archive.namelist()
        (entry_points,) = [name for name in names if name.endswith(".dist-info/entry_points.txt")]
        scripts = archive.read(entry_points).decode()
    assert any(name.endswith("/env.py") and "migrations" in name for name in names)
    assert "erp-api = " in scripts and "erp-worker = " in scripts
