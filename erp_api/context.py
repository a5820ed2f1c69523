"""What the lifespan builds and the routes use: one object on ``app.state.context``."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, cast

from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker
from starlette.requests import Request

from cache import CacheManager
from erp_api.settings import Settings

if TYPE_CHECKING:
    from erp_api.charges.service import ChargeService


@dataclass
class AppContext:
    settings: Settings
    engine: AsyncEngine
    sessions: async_sessionmaker[AsyncSession]
    cache: CacheManager
    charges: ChargeService


def context(request: Request) -> AppContext:
    return cast(AppContext, request.app.state.context)
