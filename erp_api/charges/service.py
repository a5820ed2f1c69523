"""Use cases of the charges package, shared by the HTTP routes and background tasks.

Every write records itself in the audit trail in its own transaction, commits, then invalidates the
cache tags it affected, then returns; reads come from the cache as ready-to-send JSON bytes and touch
the database only on a miss.

The integrity rules a caller cannot get around: a charge is created planned and changes status only
by ``transition`` (which records who, when and why); a released or rejected charge is not edited; a
charge with open quality alerts is not released; a charge with measurements is not deleted. The last
two are asked of the quality package through the injected ``ChargeGuards``.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import orjson
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from cache import CacheManager, Entry
from erp_api.audit import trail as audit
from erp_api.charges import cache_tags as charge_tags
from erp_api.charges.documents import (
    charge_dict,
    charge_etag,
    if_match_passes,
    pack_document,
    status_change_dict,
)
from erp_api.charges.guards import ChargeGuards
from erp_api.charges.models import Charge
from erp_api.charges.notifications import ChargeChangeRecorder, StatusChanged, StatusChangeNotifier
from erp_api.charges.repository import ChargeFilter, ChargeRepository
from erp_api.charges.schemas import ChargeCreate, ChargeListQuery, ChargeUpdate
from erp_api.charges.sorting import key_parser, sort_key
from erp_api.charges.states import (
    ChargeStatus,
    IllegalTransition,
    check_transition,
    is_deletable,
    is_immutable,
)
from erp_api.errors import Conflict, NotFound, PreconditionFailed
from erp_api.pagination import SortedPosition, decode_sorted_cursor, page_of, rows_to_fetch
from erp_api.security.principal import current_principal

NAMESPACE = "charges"
AUDIT_ENTITY = "charge"
# A PATCH without If-Match retries this often when a concurrent writer moves the version under it.
MAX_UPDATE_ATTEMPTS = 3
# A charge moves a handful of times; the history answer is bounded all the same.
MAX_HISTORY = 1_000
# Charges whose cache entry is kept worked out (the hot ones read most; a bound, not a cache of data).
MAX_DOCUMENT_ENTRIES = 4_096
# What a list's filters are, as opposed to how it is ordered and paged.
_FILTER_FIELDS = frozenset({"status", "product_sku", "line", "number_prefix", "produced_from", "produced_to"})


class ChargeService:
    def __init__(
        self,
        sessions: async_sessionmaker[AsyncSession],
        cache: CacheManager,
        *,
        guards: ChargeGuards,
        notifier: StatusChangeNotifier | None = None,
        changes: ChargeChangeRecorder | None = None,
    ) -> None:
        self._sessions = sessions
        self._cache = cache
        self._guards = guards
        # Told of every status change made here (charge.status_changed webhooks); None: nobody.
        self._notifier = notifier
        # Records every change in its transaction (the live event log); None: nobody.
        self._changes = changes
        # The document entry of each charge read from the cache lately (``cached_document``).
        self._document_entries: dict[int, Entry] = {}

    # Reads -----------------------------------------------------------------------------------

    async def document(self, charge_id: int) -> bytes:
        """ETag and JSON body of one charge (see ``documents.pack_document``), cached."""
        key, tags = _document_entry(charge_id)
        return await self._cache.get_or_load(
            NAMESPACE, key=key, loader=lambda: self._load_document(charge_id), tags=tags
        )

    async def cached_document(self, charge_id: int) -> bytes | None:
        """``document`` if the cache holds it, else None (nothing is loaded)."""
        entry = self._document_entries.get(charge_id)
        if entry is None:
            if len(self._document_entries) >= MAX_DOCUMENT_ENTRIES:
                self._document_entries.clear()  # worked out again as they are read
            entry = self._document_entries[charge_id] = self._cache.entry(
                NAMESPACE, *_document_entry(charge_id)
            )
        document: bytes | None = await self._cache.peek_entry(entry)
        return document

    async def _load_document(self, charge_id: int) -> bytes:
        async with self._sessions() as session:
            charge = await ChargeRepository(session).get(charge_id)
        if charge is None:
            raise NotFound(f"charge {charge_id} does not exist")
        return pack_document(charge)

    async def page(self, query: ChargeListQuery) -> bytes:
        """A page of the list in the query's sort, with the filtered total if asked for, cached."""
        after = decode_sorted_cursor(query.cursor, query.sort.value, key_parser(query.sort))
        where = ChargeFilter(
            statuses=tuple(status.value for status in query.status or ()),
            product_sku=query.product_sku,
            line=query.line,
            number_prefix=query.number_prefix,
            produced_from=query.produced_from,
            produced_to=query.produced_to,
        )
        tags = charge_tags.list_tags(product_sku=query.product_sku, line=query.line, statuses=where.statuses)
        key = ("list", *sorted(query.model_dump(mode="json").items()))
        return await self._cache.get_or_load(
            NAMESPACE, key=key, loader=lambda: self._load_page(query, where, after, tags), tags=tags
        )

    async def _load_page(
        self, query: ChargeListQuery, where: ChargeFilter, after: tuple[Any, int] | None, tags: list[str]
    ) -> bytes:
        sort = query.sort
        extra = {"total": await self._total(query, where, tags)} if query.include_total else {}
        async with self._sessions() as session:
            rows = await ChargeRepository(session).page(
                where,
                sort=sort.field,
                descending=sort.descending,
                after=after,
                limit=rows_to_fetch(query.limit),
            )
        page = page_of(
            rows, query.limit, key=lambda charge: SortedPosition(sort, sort_key(sort, charge), charge.id)
        )
        return orjson.dumps(page.document(charge_dict, **extra))

    async def _total(self, query: ChargeListQuery, where: ChargeFilter, tags: list[str]) -> int:
        """How many charges the query's filters select, cached apart from the pages (with their
        tags), so that paging with include_total counts once per filter, not once per page."""

        async def load() -> int:
            async with self._sessions() as session:
                return await ChargeRepository(session).count_matching(where)

        filters = query.model_dump(mode="json", include=set(_FILTER_FIELDS))
        key = ("total", *sorted(filters.items()))
        return int(await self._cache.get_or_load(NAMESPACE, key=key, loader=load, tags=tags))

    async def history(self, charge_id: int) -> bytes:
        """The charge's status changes, oldest first, at most ``MAX_HISTORY`` (``truncated`` says
        when there are more), cached until the charge next changes."""
        return await self._cache.get_or_load(
            NAMESPACE,
            key=("history", charge_id),
            loader=lambda: self._load_history(charge_id),
            tags=[charge_tags.charge_tag(charge_id)],
        )

    async def _load_history(self, charge_id: int) -> bytes:
        async with self._sessions() as session:
            repository = ChargeRepository(session)
            if not await repository.exists(charge_id):
                raise NotFound(f"charge {charge_id} does not exist")
            changes = await repository.status_changes(charge_id, limit=MAX_HISTORY + 1)
        return orjson.dumps(
            {
                "charge_id": charge_id,
                "items": [status_change_dict(change) for change in changes[:MAX_HISTORY]],
                "truncated": len(changes) > MAX_HISTORY,
            }
        )

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
        """All or nothing, every charge planned; a duplicate number is a 409 naming the item's index."""
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
                charges = await repository.insert_many(
                    [{**item.model_dump(), "status": ChargeStatus.PLANNED.value} for item in items]
                )
                await audit.record_many(
                    session,
                    [
                        audit.AuditEntry(AUDIT_ENTITY, charge.id, "create", after=_audited(charge))
                        for charge in charges
                    ],
                )
                if self._changes is not None:
                    await self._changes.created(session, [charge_dict(charge) for charge in charges])
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
        """Apply ``changes`` to a charge that is neither released nor rejected (409), if ``if_match``
        (when given) is its current ETag (412)."""
        values = changes.model_dump(exclude_unset=True)
        for _attempt in range(MAX_UPDATE_ATTEMPTS):
            async with self._sessions.begin() as session:
                repository = ChargeRepository(session)
                current = await _existing(repository, charge_id)
                _check_precondition(current, if_match)
                if is_immutable(ChargeStatus(current.status)):
                    raise Conflict(
                        f"charge {charge_id} is {current.status}; a {current.status} charge cannot be changed",
                        extra={"current": current.status},
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
                    if self._changes is not None:
                        await self._changes.updated(session, charge_dict(updated), sorted(values))
            if updated is None:
                if if_match is not None:
                    raise PreconditionFailed(f"charge {charge_id} changed while it was being updated")
                continue
            await self._cache.invalidate_tags(
                charge_tags.tags_for_change(before, charge_tags.ChargeFacets.of(updated))
            )
            return updated
        raise Conflict(f"charge {charge_id} is being changed concurrently; retry")

    async def transition(
        self, charge_id: int, target: ChargeStatus, reason: str | None, if_match: str | None = None
    ) -> Charge:
        """Move a charge along its life cycle, recording who moved it, when and why.

        Refused with 412 when ``if_match`` (if given) is not the charge's current ETag, with 409 when
        the state machine has no such edge, and, for ``released``, with 409 listing the charge's
        open quality alerts.

        Lock order: the charge row first (``FOR UPDATE``), then the alerts are read. Code that opens
        alerts and holds a charge (auto_hold) takes the same charge row lock before it inserts an
        alert, so either the alert commits first and the release sees it, or the release commits
        first and the hold then finds a released charge (and recalls it into quarantine). Taking the
        locks in this one order also rules out a deadlock between the two.
        """
        async with self._sessions.begin() as session:
            repository = ChargeRepository(session)
            current = await _existing(repository, charge_id, for_update=True)
            _check_precondition(current, if_match)
            before = charge_tags.ChargeFacets.of(current)
            try:
                check_transition(ChargeStatus(current.status), target)
            except IllegalTransition as exc:
                raise Conflict(
                    str(exc),
                    extra={"current": exc.current.value, "allowed": [status.value for status in exc.allowed]},
                ) from None
            if target is ChargeStatus.RELEASED:
                if await self._guards.rule_checks_pending(session, charge_id):
                    # An alert those checks open must be able to stop the release: wait for them.
                    raise Conflict(
                        f"charge {charge_id} has measurements whose rule checks are still running; "
                        "retry in a moment",
                        extra={"current": current.status, "rule_checks_pending": True},
                        headers={"Retry-After": "1"},
                    )
                open_alerts = await self._guards.open_alert_ids(session, charge_id)
                if open_alerts:
                    raise Conflict(
                        f"charge {charge_id} has open quality alerts ({_id_list(open_alerts)}); "
                        "resolve or dismiss them before releasing it",
                        extra={"current": current.status, "open_alert_ids": open_alerts},
                    )
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
                after={**_audited(updated), "reason": reason},
            )
            change = StatusChanged(
                charge_id=charge_id,
                charge_number=updated.charge_number,
                product_sku=updated.product_sku,
                from_status=before.status,
                to_status=target.value,
                reason=reason,
                changed_at=updated.updated_at,
                actor=current_principal(),
            )
            staged = await self._notifier.stage(session, change) if self._notifier is not None else ()
            if self._changes is not None:
                await self._changes.status_changed(session, change)
        await self._cache.invalidate_tags(
            charge_tags.tags_for_change(before, charge_tags.ChargeFacets.of(updated))
        )
        if self._notifier is not None and staged:
            await self._notifier.send(staged)
        return updated

    async def delete(self, charge_id: int) -> None:
        """Delete a planned charge that has no measurements (409 otherwise: its data is on record)."""
        async with self._sessions.begin() as session:
            repository = ChargeRepository(session)
            # Locked: a measurement written concurrently commits before this check or after the
            # delete (and then finds no charge), never in between.
            current = await _existing(repository, charge_id, for_update=True)
            before = charge_tags.ChargeFacets.of(current)
            refusal = Conflict(
                f"charge {charge_id} is {current.status}; only planned charges can be deleted",
                extra={"current": current.status},
            )
            if not is_deletable(ChargeStatus(current.status)):
                raise refusal
            if await self._guards.has_measurements(session, charge_id):
                raise Conflict(
                    f"charge {charge_id} has measurements; a charge with quality data cannot be deleted",
                    extra={"current": current.status},
                )
            if not await repository.delete_if_status(charge_id, ChargeStatus.PLANNED.value):
                raise refusal
            await audit.record(
                session, entity=AUDIT_ENTITY, entity_id=charge_id, action="delete", before=_audited(current)
            )
        await self._cache.invalidate_tags(charge_tags.tags_for_change(before))


async def _existing(repository: ChargeRepository, charge_id: int, *, for_update: bool = False) -> Charge:
    charge = await repository.get(charge_id, for_update=for_update)
    if charge is None:
        raise NotFound(f"charge {charge_id} does not exist")
    return charge


def _check_precondition(charge: Charge, if_match: str | None) -> None:
    """412 with the current ETag unless ``if_match`` (RFC 9110 If-Match) passes for ``charge``."""
    etag = charge_etag(charge.id, charge.version)
    if not if_match_passes(if_match, etag):
        raise PreconditionFailed(
            f"charge {charge.id} has changed; its current ETag is {etag}", headers={"ETag": etag}
        )


def _id_list(ids: Sequence[int]) -> str:
    return ", ".join(str(alert_id) for alert_id in ids)


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


def _document_entry(charge_id: int) -> tuple[tuple[str, int], list[str]]:
    """The cache key and tags of a charge's document."""
    return ("charge", charge_id), [charge_tags.charge_tag(charge_id)]
