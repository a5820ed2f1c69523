"""What the lifespan builds and the routes use: one object on ``app.state.context``."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, cast

from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker
from starlette.requests import Request

from cache import CacheManager
from erp_api.settings import Settings

if TYPE_CHECKING:
    from erp_api.analyses.jobs import JobStatusService
    from erp_api.analyses.service import AnalysisService
    from erp_api.charges.service import ChargeService
    from erp_api.quality.ingest import MeasurementIngestor
    from erp_api.quality.service import QualityService
    from erp_api.security.state import SecurityServices


@dataclass
class AppContext:
    settings: Settings
    engine: AsyncEngine
    sessions: async_sessionmaker[AsyncSession]
    cache: CacheManager
    charges: ChargeService
    quality: QualityService
    ingestor: MeasurementIngestor
    analyses: AnalysisService
    jobs: JobStatusService
    security: SecurityServices


def context(request: Request) -> AppContext:
    return cast(AppContext, request.app.state.context)
