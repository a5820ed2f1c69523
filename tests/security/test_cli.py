"""``python -m erp_api keys ...``: create prints the key once on its last line; list; revoke; local-admin."""

from __future__ import annotations

import asyncio
import os
import stat
import subprocess
import sys
from pathlib import Path

import pytest

from erp_api.__main__ import main
from erp_api.db import create_engine, create_session_factory
from erp_api.security.key_store import KeyStore
from erp_api.security.principal import Principal
from erp_api.settings import load_settings
from testing.processes import ROOT


def authenticate(database_url: str, key: str) -> Principal | None:
    async def check() -> Principal | None:
        engine = create_engine(load_settings(database_url=database_url))
        try:
            keys = KeyStore(create_session_factory(engine), cache_ttl_seconds=0, cache_max_entries=1)
            return await keys.authenticate(key)
        finally:
            await engine.dispose()

    return asyncio.run(check())


@pytest.fixture
def database(sqlite_database: str, monkeypatch: pytest.MonkeyPatch) -> str:
    monkeypatch.setenv("ERP_DATABASE_URL", sqlite_database)
    return sqlite_database


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, list[str]]:
    status = main(list(argv))
    return status, capsys.readouterr().out.splitlines()


def test_create_prints_the_key_alone_on_the_last_line(database: str) -> None:
    command = [
        sys.executable,
        "-m",
        "erp_api",
        "keys",
        "create",
        "--role",
        "quality_manager",
        "--name",
        "line 3 tablet",
    ]
    result = subprocess.run(
        command,
        check=False,
        cwd=ROOT,
        env={**os.environ, "ERP_DATABASE_URL": database},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    key = result.stdout.splitlines()[-1]
    assert key.startswith("erp_") and " " not in key
    principal = authenticate(database, key)
    assert principal is not None
    assert (principal.name, principal.role.value) == ("line 3 tablet", "quality_manager")


def test_list_shows_keys_without_their_secrets(database: str, capsys: pytest.CaptureFixture[str]) -> None:
    _status, created = run(capsys, "keys", "create", "--role", "viewer", "--name", "wall display")
    key = created[-1]
    status, listed = run(capsys, "keys", "list")
    assert status == 0
    assert any(key[:12] in line and "viewer" in line and "wall display" in line for line in listed)
    assert key not in "\n".join(listed)


def test_revoke_by_id_or_prefix_stops_the_key(database: str, capsys: pytest.CaptureFixture[str]) -> None:
    keys = [run(capsys, "keys", "create", "--role", "operator", "--name", f"op {n}")[1][-1] for n in range(2)]
    _status, listed = run(capsys, "keys", "list")
    first_id = next(line.split()[0] for line in listed if keys[0][:12] in line)
    assert run(capsys, "keys", "revoke", first_id)[0] == 0
    assert run(capsys, "keys", "revoke", keys[1][:12])[0] == 0
    assert authenticate(database, keys[0]) is None
    assert authenticate(database, keys[1]) is None
    status, output = run(capsys, "keys", "revoke", keys[1][:12])
    assert status == 1 and output[-1].startswith("error:")
    _status, listed = run(capsys, "keys", "list", "--all")
    assert sum(keys[0][:12] in line or keys[1][:12] in line for line in listed) == 2


def test_create_refuses_an_unknown_role(database: str) -> None:
    with pytest.raises(SystemExit):
        main(["keys", "create", "--role", "root", "--name", "x"])


def test_local_admin_creates_a_private_key_file_once_and_reuses_it(
    database: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "var" / "admin-key"
    status, first = run(capsys, "keys", "local-admin", "--file", str(path))
    assert status == 0
    key = first[-1]
    assert path.read_text().strip() == key
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    principal = authenticate(database, key)
    assert principal is not None and principal.role.value == "admin"
    assert run(capsys, "keys", "local-admin", "--file", str(path))[1][-1] == key
    # A key that no longer works (revoked, or another database) is replaced.
    run(capsys, "keys", "revoke", key[:12])
    replaced = run(capsys, "keys", "local-admin", "--file", str(path))[1][-1]
    assert replaced != key and path.read_text().strip() == replaced
