from __future__ import annotations

import os
import subprocess
import sys

import pytest

from erp_api.settings import SettingsError, load_settings


def test_defaults_need_no_server() -> None:
    settings = load_settings()
    assert settings.database_url.startswith("sqlite+aiosqlite:///")
    assert settings.cache_backend == "memory"
    assert settings.broker_url.startswith("sqla+sqlite:///")
    assert settings.port == 8000


def test_environment_variables_with_erp_prefix_are_read(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ERP_PORT", "9123")
    monkeypatch.setenv("ERP_CACHE_BACKEND", "redis")
    monkeypatch.setenv("ERP_DB_POOL_SIZE", "3")
    settings = load_settings()
    assert (settings.port, settings.cache_backend, settings.db_pool_size) == (9123, "redis", 3)


@pytest.mark.parametrize(
    ("variable", "value"),
    [
        ("ERP_PORT", "http"),
        ("ERP_PORT", "70000"),
        ("ERP_CACHE_BACKEND", "memcached"),
        ("ERP_DATABASE_URL", "mysql://localhost/erp"),
        ("ERP_REDIS_URL", "http://localhost"),
        ("ERP_DB_POOL_SIZE", "0"),
    ],
)
def test_a_bad_setting_names_its_variable(monkeypatch: pytest.MonkeyPatch, variable: str, value: str) -> None:
    monkeypatch.setenv(variable, value)
    with pytest.raises(SettingsError) as caught:
        load_settings()
    message = str(caught.value)
    assert message.startswith(f"{variable}:")
    assert "\n" not in message


def test_uvicorn_factory_fails_with_one_line_naming_the_variable(tmp_path: object) -> None:
    env = {**os.environ, "ERP_CACHE_BACKEND": "memcached"}
    result = subprocess.run(
        [sys.executable, "-c", "from erp_api.app import create_app; create_app()"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode != 0
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert "ERP_CACHE_BACKEND" in lines[0]


def test_several_workers_with_the_memory_cache_are_refused_naming_both_variables(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("ERP_WORKERS", "2")  # ERP_CACHE_BACKEND left at its default, memory
    with pytest.raises(SettingsError) as caught:
        load_settings()
    message = str(caught.value)
    assert message.startswith("ERP_CACHE_BACKEND:")
    assert "ERP_WORKERS=2" in message
    assert "\n" not in message
    assert load_settings(workers=2, cache_backend="redis").workers == 2
    assert load_settings(workers=2, cache_backend="none").workers == 2


def test_the_l1_is_on_by_default_and_can_only_be_forced_on_with_redis() -> None:
    settings = load_settings()
    assert (settings.cache_l1, settings.cache_l1_max_entries, settings.cache_coherence_window_ms) == (
        "auto",
        10_000,
        50.0,
    )
    with pytest.raises(SettingsError, match=r"^ERP_CACHE_L1: on needs ERP_CACHE_BACKEND=redis"):
        load_settings(cache_l1="on")
    assert load_settings(cache_l1="on", cache_backend="redis").cache_l1 == "on"


def test_serve_refuses_several_workers_on_the_memory_cache_with_one_line() -> None:
    env = {**os.environ, "ERP_WORKERS": "2", "ERP_CACHE_BACKEND": "memory"}
    result = subprocess.run(
        [sys.executable, "-m", "erp_api", "serve"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode != 0
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert "ERP_CACHE_BACKEND" in lines[0]
    assert "ERP_WORKERS" in lines[0]


def test_the_default_body_timeout_follows_a_shorter_request_timeout() -> None:
    # A slow body must get its 408 before the request's 504: the default gives way, a named value must fit.
    assert load_settings(request_timeout_seconds=9).body_timeout_seconds == 6
    assert load_settings().body_timeout_seconds == 20
    with pytest.raises(SettingsError, match="ERP_BODY_TIMEOUT_SECONDS: must be less than"):
        load_settings(request_timeout_seconds=9, body_timeout_seconds=12)


def test_a_named_body_timeout_equal_to_the_default_must_fit_too(monkeypatch: pytest.MonkeyPatch) -> None:
    # Named, 20 s is the operator's choice, not the default: refused, not silently shortened.
    monkeypatch.setenv("ERP_REQUEST_TIMEOUT_SECONDS", "15")
    assert load_settings().body_timeout_seconds == 10
    monkeypatch.setenv("ERP_BODY_TIMEOUT_SECONDS", "20")
    with pytest.raises(SettingsError, match="ERP_BODY_TIMEOUT_SECONDS: must be less than"):
        load_settings()
