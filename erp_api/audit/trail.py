"""The audit trail: who changed what, when, from which values to which, in which request.

Services call ``record`` (or ``record_many``) with the session of the transaction that makes the
change, so the audit row commits or rolls back with it. The caller (key id, name, role) and the
request id are read from the context variables the HTTP middleware binds; outside a request (a
Celery task, the command line) the caller is ``SYSTEM`` unless an ``Attribution`` is passed. Work
handed to another task (a queue, a batching writer) should ``capture()`` the attribution where the
request is served and pass it along.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import Any, Final

import orjson
from sqlalchemy.ext.asyncio import AsyncSession

from erp_api.audit.models import AuditEvent
from erp_api.db import insert_rows, utcnow
from erp_api.observability.request_id import current_request_id
from erp_api.security.principal import Principal, current_principal


@dataclass(frozen=True, slots=True)
class Attribution:
    """Who a change is attributed to, and the request it was made in."""

    principal: Principal
    request_id: str | None


def capture() -> Attribution:
    """The attribution of the current context: the request's caller and id, or ``SYSTEM``."""
    return Attribution(current_principal(), current_request_id())


@dataclass(frozen=True, slots=True)
class AuditEntry:
    """One change to record; ``before``/``after`` are field values (None for a create/delete).

    ``attribution`` overrides the call's, for writers that commit the work of several requests at
    once (each captured with ``capture()`` while its request was served).
    """

    entity: str
    entity_id: str | int
    action: str
    before: Mapping[str, Any] | None = None
    after: Mapping[str, Any] | None = None
    attribution: Attribution | None = None


async def record(
    session: AsyncSession,
    *,
    entity: str,
    entity_id: str | int,
    action: str,
    before: Mapping[str, Any] | None = None,
    after: Mapping[str, Any] | None = None,
    attribution: Attribution | None = None,
) -> None:
    """Add one audit row to ``session``'s transaction.

    ``entity`` names the kind of thing (``"charge"``, ``"quality_spec"``), ``entity_id`` which one,
    ``action`` what happened (``"create"``, ``"update"``, ``"transition"``, ``"delete"``, ...).
    When both ``before`` and ``after`` are given only the fields whose values differ are kept, so
    callers may pass whole snapshots. Values are stored as JSON (decimals as strings).
    """
    await record_many(
        session, [AuditEntry(entity, entity_id, action, before, after)], attribution=attribution
    )


async def record_many(
    session: AsyncSession, entries: Sequence[AuditEntry], *, attribution: Attribution | None = None
) -> None:
    """Add one audit row per entry, in one statement (``erp_api.db.insert_rows``)."""
    if not entries:
        return
    who = attribution or capture()
    now = utcnow()
    await insert_rows(session, AuditEvent, [_row(entry, entry.attribution or who, now) for entry in entries])


def changed_fields(
    before: Mapping[str, Any] | None, after: Mapping[str, Any] | None
) -> tuple[dict[str, Any] | None, dict[str, Any] | None]:
    """JSON-ready (before, after), reduced to the fields that differ when both are given."""
    old = _jsonable(before)
    new = _jsonable(after)
    if old is None or new is None:
        return old, new
    changed = [name for name in {**old, **new} if old.get(name, _ABSENT) != new.get(name, _ABSENT)]
    return (
        {name: old[name] for name in changed if name in old},
        {name: new[name] for name in changed if name in new},
    )


_ABSENT: Final = object()


def _row(entry: AuditEntry, who: Attribution, now: Any) -> dict[str, Any]:
    before, after = changed_fields(entry.before, entry.after)
    return {
        "occurred_at": now,
        "actor_key_id": who.principal.key_id,
        "actor_name": who.principal.name[:100],
        "actor_role": who.principal.role.value,
        "entity": entry.entity,
        "entity_id": str(entry.entity_id),
        "action": entry.action,
        "before": before,
        "after": after,
        "request_id": who.request_id,
    }


def _json_default(value: Any) -> Any:
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, set | frozenset):
        return sorted(value, key=str)
    return str(value)


def _jsonable(values: Mapping[str, Any] | None) -> dict[str, Any] | None:
    if values is None:
        return None
    loaded: dict[str, Any] = orjson.loads(
        orjson.dumps(dict(values), default=_json_default, option=orjson.OPT_NON_STR_KEYS)
    )
    return loaded
