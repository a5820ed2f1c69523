"""Stream tickets: how a browser's ``EventSource`` (which cannot send ``Authorization``) opens a stream.

``POST /api/v1/events/tickets`` (with the key) issues a random ticket bound to the key's principal
and role, valid ``ERP_EVENT_TICKET_TTL_SECONDS`` (60 s). ``GET /api/v1/events?ticket=...`` redeems
it: the row is deleted with ``DELETE ... RETURNING`` in one statement, so a ticket opens one stream
once, on any API process (they share the database). Only its SHA-256 is stored. A ticket is
checked against its expiry, not against the key again: a key revoked within a ticket's minute
still opens that one stream (the stream itself lives on, as any request already authorized does).
"""

from __future__ import annotations

import hashlib
import secrets
from datetime import timedelta

from sqlalchemy import delete
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from erp_api.db import utcnow
from erp_api.events.models import EventTicket
from erp_api.security.principal import Principal
from erp_api.security.roles import Role

TICKET_PREFIX = "evt_"


def _hash(ticket: str) -> str:
    return hashlib.sha256(ticket.encode()).hexdigest()


class TicketStore:
    def __init__(self, sessions: async_sessionmaker[AsyncSession], ttl_seconds: int) -> None:
        self._sessions = sessions
        self.ttl_seconds = ttl_seconds

    async def issue(self, principal: Principal) -> str:
        """A new ticket for ``principal``; expired tickets are deleted on the way."""
        ticket = TICKET_PREFIX + secrets.token_urlsafe(32)
        now = utcnow()
        async with self._sessions.begin() as session:
            await session.execute(delete(EventTicket).where(EventTicket.expires_at < now))
            session.add(
                EventTicket(
                    ticket_hash=_hash(ticket),
                    key_id=principal.key_id,
                    name=principal.name[:200],
                    role=principal.role.value,
                    expires_at=now + timedelta(seconds=self.ttl_seconds),
                )
            )
        return ticket

    async def redeem(self, ticket: str) -> Principal | None:
        """The principal the ticket was issued to, once; None for an unknown, used or expired one."""
        if not ticket.startswith(TICKET_PREFIX) or len(ticket) > 100:
            return None
        async with self._sessions.begin() as session:
            row = (
                await session.execute(
                    delete(EventTicket)
                    .where(EventTicket.ticket_hash == _hash(ticket))
                    .returning(EventTicket.key_id, EventTicket.name, EventTicket.role, EventTicket.expires_at)
                )
            ).first()
        if row is None or row.expires_at <= utcnow():
            return None
        return Principal(row.key_id, row.name, Role(row.role))
