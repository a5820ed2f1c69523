"""The built wheel is the product: it migrates and serves without the checkout; the pins are honest.

The wheel test builds the wheel from a copy of the sources, installs it without dependencies into a
fresh venv that borrows this venv's third-party packages through a ``.pth`` line (nested ``.pth``
files, such as the editable install's finder, are not read that way, so the checkout stays out of
reach), and runs its console scripts from an empty directory.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import sysconfig
import time
import tomllib
from pathlib import Path

import httpx
import pytest
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name
from packaging.version import Version

from erp_api.settings import VAR_DIR
from testing.processes import free_port

ROOT = Path(__file__).resolve().parent.parent
SOURCES = ("pyproject.toml", "setup.py", "README.md", "alembic", "erp_api", "cache", "tasks")
PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())
PIN = re.compile(r"^([A-Za-z0-9_.-]+)==([^\s;]+)", re.MULTILINE)


def direct_requirements() -> list[Requirement]:
    project = PYPROJECT["project"]
    return [
        Requirement(line) for line in [*project["dependencies"], *project["optional-dependencies"]["dev"]]
    ]


def pins(path: Path) -> dict[str, Version]:
    return {canonicalize_name(name): Version(version) for name, version in PIN.findall(path.read_text())}


def lower_bound(requirement: Requirement) -> Version:
    (bound,) = [spec.version for spec in requirement.specifier if spec.operator == ">="]
    return Version(bound)


def test_the_var_directory_is_the_checkouts_never_the_current_one() -> None:
    if os.environ.get("ERP_VAR_DIR"):
        pytest.skip("ERP_VAR_DIR names another directory")
    assert VAR_DIR == ROOT / "var"
    result = subprocess.run(
        [
            sys.executable,
            "-c",
            "from erp_api.settings import load_settings; print(load_settings().database_url)",
        ],
        cwd="/",
        env={**os.environ, "ERP_VAR_DIR": ""},
        capture_output=True,
        text=True,
        check=True,
    )
    assert result.stdout.strip() == f"sqlite+aiosqlite:///{ROOT}/var/erp.sqlite3"


def test_the_lock_pins_every_direct_dependency_within_its_range() -> None:
    locked = pins(ROOT / "requirements.lock")
    for requirement in direct_requirements():
        name = canonicalize_name(requirement.name)
        assert name in locked, f"{name} is not in requirements.lock: run `make lock`"
        assert locked[name] in requirement.specifier, f"{name}=={locked[name]} is outside {requirement}"


def test_the_lowest_constraints_hold_each_direct_dependency_at_its_lower_bound() -> None:
    lowest = pins(ROOT / "constraints" / "lowest.txt")
    for requirement in direct_requirements():
        name, bound = canonicalize_name(requirement.name), lower_bound(requirement)
        assert name in lowest, f"{name} is not in constraints/lowest.txt: run `make lock`"
        # The lowest release of the bound's series (2.3 may only exist as 2.3.1), never a later one.
        assert lowest[name] >= bound, f"{name}: {lowest[name]} is below {bound}"
        assert lowest[name].release[: len(bound.release)] == bound.release, (
            f"{name} is tested at {lowest[name]}, not at its declared lower bound {bound}: run `make lock`"
        )


def test_the_supported_pythons_are_declared() -> None:
    classifiers = PYPROJECT["project"]["classifiers"]
    assert PYPROJECT["project"]["requires-python"] == ">=3.11"
    for minor in ("3.11", "3.12", "3.13"):
        assert f"Programming Language :: Python :: {minor}" in classifiers


def run(
    command: list[str], cwd: Path, env: dict[str, str], timeout: float = 180
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        command, cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout, check=False
    )


def build_wheel(tmp_path: Path) -> Path:
    source = tmp_path / "source"
    source.mkdir()
    for name in SOURCES:
        if (ROOT / name).is_dir():
            shutil.copytree(ROOT / name, source / name, ignore=shutil.ignore_patterns("__pycache__"))
        else:
            shutil.copy2(ROOT / name, source / name)
    dist = tmp_path / "dist"
    command = [sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps", "--wheel-dir", str(dist), "."]
    result = run(command, source, dict(os.environ), timeout=300)
    assert result.returncode == 0, result.stdout + result.stderr
    (wheel,) = dist.glob("erp_api-*.whl")
    return wheel


def install_in_fresh_venv(wheel: Path, tmp_path: Path) -> Path:
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True, timeout=120)
    python = venv / "bin" / "python"
    site = run([str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"], tmp_path, {})
    # The dependencies come from this venv; the project itself only from the wheel.
    Path(site.stdout.strip(), "borrowed-dependencies.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    command = [
        sys.executable,
        "-m",
        "pip",
        "--python",
        str(python),
        "install",
        "--quiet",
        "--no-deps",
        str(wheel),
    ]
    result = run(command, tmp_path, dict(os.environ))
    assert result.returncode == 0, result.stdout + result.stderr
    return venv / "bin"


@pytest.mark.slow
def test_the_built_wheel_migrates_and_serves_without_the_checkout(tmp_path: Path) -> None:
    wheel = build_wheel(tmp_path)
    bin_dir = install_in_fresh_venv(wheel, tmp_path)
    work = tmp_path / "elsewhere"
    work.mkdir()
    var = tmp_path / "state"
    port = free_port()
    env = {
        "PATH": f"{bin_dir}:{os.environ['PATH']}",
        "HOME": str(tmp_path),
        "ERP_VAR_DIR": str(var),
        "ERP_PORT": str(port),
    }

    where = run([str(bin_dir / "python"), "-c", "import erp_api; print(erp_api.__file__)"], work, env)
    assert where.stdout.startswith(str(bin_dir.parent)), where.stdout + where.stderr

    unmigrated = run([str(bin_dir / "erp-api"), "keys", "list"], work, env)
    assert unmigrated.returncode != 0
    assert unmigrated.stderr.strip().splitlines() == [
        f"the database has no tables yet ({var / 'erp.sqlite3'}): run `erp-api migrate` first"
    ]
    assert not var.exists() and not any(work.iterdir()), "asking created files"

    migrated = run([str(bin_dir / "erp-api"), "migrate"], work, env)
    assert migrated.returncode == 0, migrated.stderr
    assert (var / "erp.sqlite3").is_file()
    assert run([str(bin_dir / "erp-api"), "keys", "list"], work, env).returncode == 0

    helped = run([str(bin_dir / "erp-worker"), "--help"], work, env)
    assert helped.returncode == 0, helped.stderr
    assert "usage: erp-worker" in helped.stdout

    log = (tmp_path / "serve.log").open("w")
    server = subprocess.Popen([str(bin_dir / "erp-api"), "serve"], cwd=work, env=env, stdout=log, stderr=log)
    try:
        deadline, status = time.monotonic() + 60, None
        while time.monotonic() < deadline and server.poll() is None:
            try:
                status = httpx.get(f"http://127.0.0.1:{port}/health/ready", timeout=1).status_code
            except httpx.HTTPError:
                status = None
            if status == 200:
                break
            time.sleep(0.2)
        assert status == 200, (tmp_path / "serve.log").read_text()
    finally:
        server.terminate()
        server.wait(timeout=30)
        log.close()
    assert not any(work.iterdir()), "the commands wrote into the current directory"
