"""How a charge looks on the wire: plain dicts serialized once by orjson, its ETag and the
conditional-request checks against it, and its status history."""

from __future__ import annotations

import re
from typing import Any

import orjson

from erp_api.charges.models import Charge, ChargeStatusChange


def charge_dict(charge: Charge) -> dict[str, Any]:
    return {
        "id": charge.id,
        "charge_number": charge.charge_number,
        "product_sku": charge.product_sku,
        "quantity": f"{charge.quantity:.3f}",
        "unit": charge.unit,
        "line": charge.line,
        "status": charge.status,
        "produced_at": charge.produced_at,
        "created_at": charge.created_at,
        "updated_at": charge.updated_at,
        "version": charge.version,
    }


def charge_etag(charge_id: int, version: int) -> str:
    return f'"c{charge_id}v{version}"'


# One member of an entity-tag list (RFC 9110 §8.8.3, §5.6.1): optionally weak, an opaque quoted
# string, then a comma or the end; empty list elements are allowed.
_LIST_MEMBER = re.compile(r'[\s,]*(W/)?("[^"]*")\s*(?:,|$)')


def _entity_tags(header: str) -> list[tuple[bool, str]]:
    """(weak, opaque-tag) of each entity-tag of a list header, up to the first malformed member."""
    tags: list[tuple[bool, str]] = []
    position = 0
    while (member := _LIST_MEMBER.match(header, position)) is not None and member.end() > position:
        tags.append((member.group(1) is not None, member.group(2)))
        position = member.end()
    return tags


def if_match_passes(header: str | None, etag: str) -> bool:
    """RFC 9110 §13.1.1 If-Match: ``*`` (the charge exists), or the current tag by strong comparison.

    A weak tag (``W/"..."``) never passes: If-Match guards a write, and a weak tag only promises
    an equivalent representation, not this version. No header means no precondition: it passes.
    """
    if header is None:
        return True
    if header.strip() == "*":
        return True
    return any(not weak and tag == etag for weak, tag in _entity_tags(header))


def if_none_match_hits(header: str | None, etag: str) -> bool:
    """RFC 9110 §13.1.2 If-None-Match: ``*``, or the current tag by weak comparison (a 304 is due)."""
    if header is None:
        return False
    if header.strip() == "*":
        return True
    return any(tag == etag for _weak, tag in _entity_tags(header))


def status_change_dict(change: ChargeStatusChange) -> dict[str, Any]:
    """One entry of a charge's history: from, to, why, when, and by whom."""
    return {
        "from": change.from_status,
        "to": change.to_status,
        "reason": change.reason,
        "changed_at": change.changed_at,
        "by": {"name": change.actor_name, "role": change.actor_role, "key_id": change.actor_key_id},
    }


def pack_document(charge: Charge) -> bytes:
    """ETag and JSON body in one cacheable value, so a conditional GET needs no parsing."""
    return charge_etag(charge.id, charge.version).encode() + b"\n" + orjson.dumps(charge_dict(charge))


def unpack_document(document: bytes) -> tuple[str, bytes]:
    etag, _, body = document.partition(b"\n")
    return etag.decode(), body
