"""Apply (or revert) the Alembic migrations with the service's own settings.

The scripts live in the checkout's top-level ``alembic/``; a built wheel carries the same files as
``erp_api/migrations`` (``setup.py`` maps them), so an installed package migrates without a checkout.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

from alembic.config import Config
from sqlalchemy import inspect

from alembic import command
from erp_api.settings import Settings

_PACKAGE = Path(__file__).resolve().parent
SCRIPT_LOCATIONS = (_PACKAGE / "migrations", _PACKAGE.parent / "alembic")
"""Where the migration scripts are: in an installed wheel, else in the source checkout."""
VERSION_TABLE = "alembic_version"


class MigrationsNotFoundError(RuntimeError):
    """Neither an installed package nor a checkout holds the migration scripts."""


def script_location() -> Path:
    for candidate in SCRIPT_LOCATIONS:
        if (candidate / "env.py").is_file():
            return candidate
    raise MigrationsNotFoundError(f"no migration scripts in {' or '.join(map(str, SCRIPT_LOCATIONS))}")


def alembic_config(settings: Settings) -> Config:
    config = Config()
    config.set_main_option("script_location", str(script_location()))
    config.set_main_option("path_separator", "os")
    config.attributes["settings"] = settings
    return config


def upgrade(settings: Settings, revision: str = "head") -> None:
    command.upgrade(alembic_config(settings), revision)


def downgrade(settings: Settings, revision: str = "base") -> None:
    command.downgrade(alembic_config(settings), revision)


def is_migrated(settings: Settings) -> bool:
    """Whether the configured database has been migrated (it has Alembic's version table).

    A SQLite file that does not exist is not created by asking.
    """
    if settings.sqlite_path is not None and not settings.sqlite_path.exists():
        return False
    return asyncio.run(_has_version_table(settings))


async def _has_version_table(settings: Settings) -> bool:
    from erp_api.db import create_engine

    engine = create_engine(settings)
    try:
        async with engine.connect() as connection:
            return await connection.run_sync(lambda sync: inspect(sync).has_table(VERSION_TABLE))
    finally:
        await engine.dispose()
