"""Alembic environment: the database URL comes from the same Settings the service uses."""

from __future__ import annotations

import asyncio

from sqlalchemy.engine import Connection

from alembic import context
from erp_api.db import Base, create_engine
from erp_api.models import load_all
from erp_api.settings import load_settings

config = context.config
settings = config.attributes.get("settings") or load_settings()
load_all()
target_metadata = Base.metadata


def _run(connection: Connection) -> None:
    context.configure(
        connection=connection,
        target_metadata=target_metadata,
        render_as_batch=connection.dialect.name == "sqlite",
        compare_type=True,
    )
    with context.begin_transaction():
        context.run_migrations()


async def _run_async() -> None:
    engine = create_engine(settings)
    try:
        async with engine.connect() as connection:
            await connection.run_sync(_run)
            await connection.commit()
    finally:
        await engine.dispose()


if context.is_offline_mode():
    context.configure(url=settings.database_url, target_metadata=target_metadata, literal_binds=True)
    with context.begin_transaction():
        context.run_migrations()
else:
    connection = config.attributes.get("connection")
    if connection is not None:
        _run(connection)
    else:
        asyncio.run(_run_async())
