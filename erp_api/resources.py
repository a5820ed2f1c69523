"""The composition root shared by the web app and the worker: every connection and service, built once.

``open_resources(settings, tasks=...)`` builds the database engine, the session factory, the cache
and the services from the settings; the web app's lifespan (``erp_api.app``) and each worker process
(``tasks.runtime``) call it, so both run the same services on the same configuration. The web app
adds what only it needs (``web=True``): the group-commit ingestor and the security services.
Nothing here is a module-level singleton: the caller owns the object and closes it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import cast

from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker
from starlette.requests import Request

from cache import CacheManager, build_backend
from erp_api.analyses.service import AnalysisService
from erp_api.charges.service import ChargeService
from erp_api.db import create_engine, create_session_factory
from erp_api.jobs.dispatch import TaskClient
from erp_api.jobs.status import JobStatusService
from erp_api.observability.db_metrics import instrument_engine
from erp_api.observability.metrics import record_cache_event
from erp_api.quality.ingest import MeasurementIngestor
from erp_api.quality.service import QualityService
from erp_api.quality.writer import MeasurementWriter
from erp_api.security.services import SecurityServices, build_security, ensure_bootstrap_key
from erp_api.settings import Settings


def build_cache(settings: Settings) -> CacheManager:
    """The cache manager on the configured backend (memory, Redis or none)."""
    backend = build_backend(
        settings.cache_backend,
        redis_url=settings.redis_url,
        socket_timeout=settings.redis_timeout_seconds,
        socket_connect_timeout=settings.redis_timeout_seconds,
        pool_timeout=settings.redis_timeout_seconds,
        max_connections=settings.redis_pool_size,
        max_entries=settings.cache_max_entries,
        max_bytes=settings.cache_max_bytes,
    )
    return CacheManager(
        backend,
        prefix=settings.cache_prefix,
        default_ttl=settings.cache_default_ttl_seconds,
        on_event=record_cache_event,
    )


@dataclass
class Resources:
    """What a process serves with. ``ingestor`` and ``security`` exist in the web app only."""

    settings: Settings
    engine: AsyncEngine
    sessions: async_sessionmaker[AsyncSession]
    cache: CacheManager
    tasks: TaskClient
    charges: ChargeService
    quality: QualityService
    analyses: AnalysisService
    jobs: JobStatusService
    ingestor: MeasurementIngestor | None = None
    security: SecurityServices | None = None

    async def close(self) -> None:
        """Close in dependency order: accepted measurements are committed before their connections go."""
        if self.ingestor is not None:
            await self.ingestor.stop()
        await self.tasks.close()
        if self.security is not None:
            await self.security.close()
        await self.cache.close()
        await self.engine.dispose()


async def open_resources(settings: Settings, *, tasks: TaskClient, web: bool = False) -> Resources:
    """Build (and for the web app, start) everything a process needs; the caller closes it."""
    engine = create_engine(settings)
    instrument_engine(engine)
    sessions = create_session_factory(engine)
    cache = build_cache(settings)
    ingestor: MeasurementIngestor | None = None
    security: SecurityServices | None = None
    if web:
        ingestor = MeasurementIngestor(
            MeasurementWriter(sessions, cache).write,
            window_seconds=settings.ingest_window_ms / 1000,
            max_rows=settings.ingest_max_rows_per_commit,
            queue_bound=settings.ingest_queue_bound,
            stop_timeout_seconds=settings.request_timeout_seconds,
        )
        security = build_security(settings, sessions)
    resources = Resources(
        settings=settings,
        engine=engine,
        sessions=sessions,
        cache=cache,
        tasks=tasks,
        charges=ChargeService(sessions, cache),
        quality=QualityService(sessions, cache, ingestor),
        analyses=AnalysisService(sessions, tasks),
        jobs=JobStatusService(sessions, tasks),
        ingestor=ingestor,
        security=security,
    )
    try:
        if ingestor is not None:
            await ingestor.start()
        if security is not None:
            await ensure_bootstrap_key(settings, security.keys)
    except BaseException:
        await resources.close()
        raise
    return resources


def resources(request: Request) -> Resources:
    """The resources of the app serving ``request`` (set by its lifespan)."""
    return cast(Resources, request.app.state.resources)


def web_security(resources: Resources) -> SecurityServices:
    """The security services of a web app's resources (always built with ``web=True``)."""
    if resources.security is None:
        raise RuntimeError("security services exist only in the web app (open_resources(web=True))")
    return resources.security
