"""The composition root shared by the web app and the worker: every connection and service, built once.

``open_resources(settings, tasks=...)`` builds the database engine, the session factory, the cache
and the services from the settings; the web app's lifespan (``erp_api.app``) and each worker process
(``tasks.runtime``) call it, so both run the same services on the same configuration. The web app
adds what only it needs (``web=True``): the group-commit ingestor, the on-ingest rule checker and
the security services.
Nothing here is a module-level singleton: the caller owns the object and closes it.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from functools import partial
from typing import cast

from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker
from starlette.requests import Request

from cache import CacheManager, build_backend
from erp_api.admin.service import CacheAdminService
from erp_api.analyses.service import AnalysisService
from erp_api.audit.service import AuditService
from erp_api.charges.overview import ChargeOverview
from erp_api.charges.service import ChargeService
from erp_api.db import create_engine, create_session_factory
from erp_api.events.charge_events import ChargeEvents
from erp_api.events.hub import EventHub
from erp_api.events.tickets import TicketStore
from erp_api.exports.service import ExportService
from erp_api.jobs.dispatch import TaskClient
from erp_api.jobs.status import JobStatusService
from erp_api.observability.db_metrics import instrument_engine
from erp_api.observability.metrics import CacheCounters
from erp_api.quality.alerts.rule_check_runner import RuleCheckRunner
from erp_api.quality.alerts.rule_checker import RuleChecker
from erp_api.quality.alerts.service import AlertService, refresh_alert_gauges
from erp_api.quality.charge_guards import QualityChargeGuards
from erp_api.quality.charts.service import ControlChartService
from erp_api.quality.ingest import MeasurementIngestor
from erp_api.quality.inspections.service import InspectionService
from erp_api.quality.limits.service import ControlLimitsService
from erp_api.quality.service import QualityService
from erp_api.quality.writer import MeasurementWriter
from erp_api.security.services import SecurityServices, build_security, ensure_bootstrap_key
from erp_api.settings import Settings
from erp_api.webhooks.charge_events import ChargeStatusWebhooks
from erp_api.webhooks.service import WebhookService


def build_cache(settings: Settings) -> CacheManager:
    """The cache manager on the configured backend (memory, Redis or none).

    On Redis it is tiered unless ``ERP_CACHE_L1=off``: hits come from a per-process L1 (several
    workers need Redis, and the settings refuse the memory backend for them).
    """
    tiered = settings.cache_backend == "redis" and settings.cache_l1 != "off"
    backend = build_backend(
        settings.cache_backend,
        redis_url=settings.redis_url,
        socket_timeout=settings.redis_timeout_seconds,
        socket_connect_timeout=settings.redis_timeout_seconds,
        pool_timeout=settings.redis_timeout_seconds,
        max_connections=settings.redis_pool_size,
        max_entries=settings.cache_max_entries,
        max_bytes=settings.cache_max_bytes,
        l1_max_entries=settings.cache_l1_max_entries if tiered else 0,
        coherence_window=settings.cache_coherence_window_ms / 1000,
    )
    return CacheManager(
        backend,
        prefix=settings.cache_prefix,
        default_ttl=settings.cache_default_ttl_seconds,
    )


@dataclass
class Resources:
    """What a process serves with; ``ingestor``, ``rule_checks`` and ``security`` in the web app only."""

    settings: Settings
    engine: AsyncEngine
    sessions: async_sessionmaker[AsyncSession]
    cache: CacheManager
    tasks: TaskClient
    charges: ChargeService
    charge_overview: ChargeOverview
    quality: QualityService
    limits: ControlLimitsService
    charts: ControlChartService
    inspections: InspectionService
    analyses: AnalysisService
    jobs: JobStatusService
    audit: AuditService
    cache_admin: CacheAdminService
    webhooks: WebhookService
    alerts: AlertService
    exports: ExportService
    cache_counters: CacheCounters
    """The cache's counters into the metrics: recorded with each ledger flush, scrape and task."""
    ingestor: MeasurementIngestor | None = None
    rule_checks: RuleCheckRunner | None = None
    security: SecurityServices | None = None
    events: EventHub | None = None
    event_tickets: TicketStore | None = None

    async def close(self) -> None:
        """Close in dependency order: accepted measurements are committed before their connections go."""
        if self.ingestor is not None:
            await self.ingestor.stop()
        if self.rule_checks is not None:
            await self.rule_checks.stop()
        if self.events is not None:
            await self.events.stop()
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
    rule_checks: RuleCheckRunner | None = None
    security: SecurityServices | None = None
    events: EventHub | None = None
    event_tickets: TicketStore | None = None
    writer = MeasurementWriter(sessions, cache)
    alerts = AlertService(sessions, cache)
    if web:
        rule_checks = RuleCheckRunner(
            RuleChecker(sessions, cache),
            sweep_seconds=settings.rule_check_sweep_seconds,
            refresh_gauges=partial(refresh_alert_gauges, sessions),
            delay_seconds=settings.rule_check_delay_seconds,
            stop_timeout_seconds=settings.request_timeout_seconds,
        )
        # Every commit of measurements wakes the checker; a moved alert has its gauges counted again.
        writer = MeasurementWriter(sessions, cache, on_commit=rule_checks.notify)
        alerts = AlertService(sessions, cache, on_change=rule_checks.alerts_changed)
        ingestor = MeasurementIngestor(
            writer.write,
            window_seconds=settings.ingest_window_ms / 1000,
            max_rows=settings.ingest_max_rows_per_commit,
            queue_bound=settings.ingest_queue_bound,
            stop_timeout_seconds=settings.request_timeout_seconds,
        )
        security = build_security(settings, sessions)
        events = EventHub(
            sessions,
            engine,
            poll_interval_seconds=settings.event_poll_interval_ms / 1000,
            client_buffer=settings.event_client_buffer,
            max_clients=settings.event_max_clients,
            retention=timedelta(hours=settings.event_retention_hours),
        )
        event_tickets = TicketStore(sessions, settings.event_ticket_ttl_seconds)
    quality = QualityService(sessions, cache, ingestor, writer)
    resources = Resources(
        settings=settings,
        engine=engine,
        sessions=sessions,
        cache=cache,
        tasks=tasks,
        charges=ChargeService(
            sessions,
            cache,
            guards=QualityChargeGuards(),
            notifier=ChargeStatusWebhooks(tasks),
            changes=ChargeEvents(),
        ),
        charge_overview=ChargeOverview(sessions, cache),
        quality=quality,
        limits=ControlLimitsService(sessions, cache),
        charts=ControlChartService(sessions, cache),
        inspections=InspectionService(sessions, cache),
        analyses=AnalysisService(sessions, tasks, quality),
        jobs=JobStatusService(sessions, tasks),
        audit=AuditService(sessions),
        cache_admin=CacheAdminService(sessions, cache),
        cache_counters=CacheCounters(cache),
        webhooks=WebhookService(sessions),
        alerts=alerts,
        exports=ExportService(sessions, chunk_rows=settings.export_chunk_rows),
        ingestor=ingestor,
        rule_checks=rule_checks,
        security=security,
        events=events,
        event_tickets=event_tickets,
    )
    try:
        if ingestor is not None:
            await ingestor.start()
        if rule_checks is not None:
            await rule_checks.start()
        if events is not None:
            await events.start()
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
