"""How a charge looks on the wire: plain dicts serialized once by orjson, and its ETag."""

from __future__ import annotations

from typing import Any

import orjson

from erp_api.charges.models import Charge


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


def etag_matches(header: str | None, etag: str) -> bool:
    """RFC 9110 If-None-Match / If-Match comparison (weak comparison, ``*`` matches anything)."""
    if header is None:
        return False
    for raw in header.split(","):
        candidate = raw.strip()
        if candidate == "*" or candidate.removeprefix("W/") == etag:
            return True
    return False


def pack_document(charge: Charge) -> bytes:
    """ETag and JSON body in one cacheable value, so a conditional GET needs no parsing."""
    return charge_etag(charge.id, charge.version).encode() + b"\n" + orjson.dumps(charge_dict(charge))


def unpack_document(document: bytes) -> tuple[str, bytes]:
    etag, _, body = document.partition(b"\n")
    return etag.decode(), body
