"""Use cases of the charges package, shared by the HTTP routes and background tasks.

Every write records itself in the audit trail in its own transaction, commits, then invalidates the
cache tags it affected, then returns; reads come from the cache as ready-to-send JSON bytes and touch
the database only on a miss.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import orjson
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from cache import CacheManager
from erp_api.audit import trail as audit
from erp_api.charges import cache_tags as charge_tags
from erp_api.charges.documents import charge_dict, charge_etag, etag_matches, pack_document
from erp_api.charges.models import Charge
from erp_api.charges.repository import ChargeRepository
from erp_api.charges.schemas import ChargeCreate, ChargeListQuery, ChargeUpdate
from erp_api.charges.states import ChargeStatus, IllegalTransition, check_transition, is_deletable
from erp_api.errors import Conflict, NotFound, PreconditionFailed
from erp_api.pagination import decode_cursor, encode_cursor

NAMESPACE = "charges"
AUDIT_ENTITY = "charge"
# A PATCH without If-Match retries this often when a concurrent writer moves the version under it.
MAX_UPDATE_ATTEMPTS = 3


class ChargeService:
    def __init__(self, sessions: async_sessionmaker[AsyncSession], cache: CacheManager) -> None:
        self._sessions = sessions
        self._cache = cache

    # Reads -----------------------------------------------------------------------------------

    async def document(self, charge_id: int) -> bytes:
        """ETag and JSON body of one charge (see ``documents.pack_document``), cached."""
        return await self._cache.get_or_load(
            NAMESPACE,
            key=("charge", charge_id),
            loader=lambda: self._load_document(charge_id),
            tags=[charge_tags.charge_tag(charge_id)],
        )

    async def cached_document(self, charge_id: int) -> bytes | None:
        """The cached document if there is a valid one; never touches the database."""
        return await self._cache.get_raw(
            NAMESPACE, ("charge", charge_id), [charge_tags.charge_tag(charge_id)]
        )

    async def _load_document(self, charge_id: int) -> bytes:
        async with self._sessions() as session:
            charge = await ChargeRepository(session).get(charge_id)
        if charge is None:
            raise NotFound(f"charge {charge_id} does not exist")
        return pack_document(charge)

    async def page(self, query: ChargeListQuery) -> bytes:
        after = decode_cursor(query.cursor) if query.cursor else None
        tag = charge_tags.list_tag(product_sku=query.product_sku, line=query.line, status=query.status)
        key = ("list", *sorted(query.model_dump(mode="json").items()))
        return await self._cache.get_or_load(
            NAMESPACE, key=key, loader=lambda: self._load_page(query, after), tags=[tag]
        )

    async def _load_page(self, query: ChargeListQuery, after: Any) -> bytes:
        async with self._sessions() as session:
            rows = await ChargeRepository(session).page(
                status=query.status,
                product_sku=query.product_sku,
                line=query.line,
                produced_from=query.produced_from,
                produced_to=query.produced_to,
                after=after,
                limit=query.limit + 1,
            )
        has_more = len(rows) > query.limit
        rows = rows[: query.limit]
        next_cursor = encode_cursor(rows[-1].produced_at, rows[-1].id) if has_more else None
        return orjson.dumps({"items": [charge_dict(row) for row in rows], "next_cursor": next_cursor})

    async def lookup(self, numbers: Sequence[str]) -> bytes:
        unique = sorted(set(numbers))
        return await self._cache.get_or_load(
            NAMESPACE,
            key=("lookup", *unique),
            loader=lambda: self._load_lookup(unique),
            tags=charge_tags.lookup_tags(unique),
        )

    async def _load_lookup(self, numbers: Sequence[str]) -> bytes:
        async with self._sessions() as session:
            charges = await ChargeRepository(session).by_numbers(numbers)
        found = {charge.charge_number: charge_dict(charge) for charge in charges}
        missing = [number for number in numbers if number not in found]
        return orjson.dumps({"found": found, "missing": missing})

    # Writes ----------------------------------------------------------------------------------

    async def create(self, data: ChargeCreate) -> Charge:
        return (await self.create_many([data]))[0]

    async def create_many(self, items: Sequence[ChargeCreate]) -> list[Charge]:
        """All or nothing; a duplicate number is a 409 naming the item's index."""
        numbers = [item.charge_number for item in items]
        seen: dict[str, int] = {}
        for index, number in enumerate(numbers):
            if number in seen:
                raise Conflict(
                    f"items[{index}]: charge_number {number} repeats items[{seen[number]}]",
                    extra={"index": index, "charge_number": number},
                )
            seen[number] = index
        try:
            async with self._sessions.begin() as session:
                repository = ChargeRepository(session)
                taken = await repository.existing_numbers(numbers)
                if taken:
                    index = next(i for i, number in enumerate(numbers) if number in taken)
                    raise _duplicate(numbers[index], index if len(items) > 1 else None)
                charges = await repository.insert_many([item.model_dump() for item in items])
                await audit.record_many(
                    session,
                    [
                        audit.AuditEntry(AUDIT_ENTITY, charge.id, "create", after=_audited(charge))
                        for charge in charges
                    ],
                )
        except IntegrityError:
            # Lost a race with a concurrent insert of the same number.
            raise Conflict("a charge_number in the request was created concurrently; retry") from None
        await self._cache.invalidate_tags(
            sorted(
                {
                    tag
                    for charge in charges
                    for tag in charge_tags.tags_for_change(charge_tags.ChargeFacets.of(charge))
                }
            )
        )
        return charges

    async def update(self, charge_id: int, changes: ChargeUpdate, if_match: str | None) -> Charge:
        values = changes.model_dump(exclude_unset=True)
        for _attempt in range(MAX_UPDATE_ATTEMPTS):
            async with self._sessions.begin() as session:
                repository = ChargeRepository(session)
                current = await _existing(repository, charge_id)
                etag = charge_etag(current.id, current.version)
                if if_match is not None and not etag_matches(if_match, etag):
                    raise PreconditionFailed(
                        f"charge {charge_id} has changed; its current ETag is {etag}", headers={"ETag": etag}
                    )
                before = charge_tags.ChargeFacets.of(current)
                # Taken now: the UPDATE ... RETURNING refreshes ``current`` in place.
                old_values = _audited(current)
                updated = await repository.update_if_version(charge_id, current.version, values)
                if updated is not None:
                    await audit.record(
                        session,
                        entity=AUDIT_ENTITY,
                        entity_id=charge_id,
                        action="update",
                        before=old_values,
                        after=_audited(updated),
                    )
            if updated is None:
                if if_match is not None:
                    raise PreconditionFailed(f"charge {charge_id} changed while it was being updated")
                continue
            await self._cache.invalidate_tags(
                charge_tags.tags_for_change(before, charge_tags.ChargeFacets.of(updated))
            )
            return updated
        raise Conflict(f"charge {charge_id} is being changed concurrently; retry")

    async def transition(self, charge_id: int, target: ChargeStatus, reason: str | None) -> Charge:
        async with self._sessions.begin() as session:
            repository = ChargeRepository(session)
            current = await _existing(repository, charge_id, for_update=True)
            before = charge_tags.ChargeFacets.of(current)
            try:
                check_transition(ChargeStatus(current.status), target)
            except IllegalTransition as exc:
                raise Conflict(
                    str(exc),
                    extra={"current": exc.current.value, "allowed": [status.value for status in exc.allowed]},
                ) from None
            old_values = _audited(current)
            updated = await repository.update_if_version(charge_id, current.version, {"status": target.value})
            if updated is None:
                raise Conflict(f"charge {charge_id} changed concurrently; retry")
            await repository.record_status_change(charge_id, before.status, target.value, reason)
            await audit.record(
                session,
                entity=AUDIT_ENTITY,
                entity_id=charge_id,
                action="transition",
                before=old_values,
                after=_audited(updated),
            )
        await self._cache.invalidate_tags(
            charge_tags.tags_for_change(before, charge_tags.ChargeFacets.of(updated))
        )
        return updated

    async def delete(self, charge_id: int) -> None:
        async with self._sessions.begin() as session:
            repository = ChargeRepository(session)
            current = await _existing(repository, charge_id, for_update=True)
            before = charge_tags.ChargeFacets.of(current)
            if not is_deletable(ChargeStatus(current.status)) or not await repository.delete_if_status(
                charge_id, ChargeStatus.PLANNED.value
            ):
                raise Conflict(
                    f"charge {charge_id} is {current.status}; only planned charges can be deleted",
                    extra={"current": current.status},
                )
            await audit.record(
                session, entity=AUDIT_ENTITY, entity_id=charge_id, action="delete", before=_audited(current)
            )
        await self._cache.invalidate_tags(charge_tags.tags_for_change(before))


async def _existing(repository: ChargeRepository, charge_id: int, *, for_update: bool = False) -> Charge:
    charge = await repository.get(charge_id, for_update=for_update)
    if charge is None:
        raise NotFound(f"charge {charge_id} does not exist")
    return charge


def _audited(charge: Charge) -> dict[str, Any]:
    """What the audit trail keeps of a charge: its fields as the API shows them, bar the update time."""
    values = charge_dict(charge)
    del values["updated_at"]
    return values


def _duplicate(number: str, index: int | None) -> Conflict:
    where = f"items[{index}]: " if index is not None else ""
    extra: dict[str, Any] = {"charge_number": number}
    if index is not None:
        extra["index"] = index
    return Conflict(f"{where}a charge with number {number} already exists", extra=extra)
