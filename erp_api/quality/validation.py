"""What a measurement must satisfy, beyond its shape, to be stored: checked in the writing transaction.

- Its parameter has a spec for the charge's product: a misspelled parameter would otherwise start a
  new series silently. The refusal names the product's known parameters.
- It is not measured more than ``FUTURE_TOLERANCE`` after the server's clock: a point dated in the
  future would stay the "latest" of its series until then. The tolerance absorbs clock skew between
  the measuring station and the server.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from datetime import datetime, timedelta
from typing import Any

from erp_api.errors import ValidationFailed

FUTURE_TOLERANCE = timedelta(minutes=5)
# A batch refusal lists at most this many of its item errors (and counts the rest).
MAX_LISTED_ERRORS = 50


def measurement_errors(
    parameter: str,
    measured_at: datetime,
    *,
    product_sku: str,
    known: Collection[str],
    now: datetime,
    field: str,
) -> list[dict[str, Any]]:
    """The problems of one measurement; ``field`` prefixes the names (``body``, ``body.items.3``)."""
    errors: list[dict[str, Any]] = []
    if parameter not in known:
        names = ", ".join(sorted(known)) or "none"
        errors.append(
            {
                "field": f"{field}.parameter",
                "message": (
                    f"{product_sku} has no spec for {parameter!r}; its known parameters: {names} "
                    f"(create its spec first: PUT /api/v1/quality/specs/{product_sku}/{parameter})"
                ),
                "type": "unknown_parameter",
                "known_parameters": sorted(known),
            }
        )
    if measured_at > now + FUTURE_TOLERANCE:
        errors.append(
            {
                "field": f"{field}.measured_at",
                "message": (
                    f"{measured_at.isoformat()} is more than {int(FUTURE_TOLERANCE.total_seconds() // 60)} "
                    f"minutes after the server's clock ({now.isoformat()})"
                ),
                "type": "measured_in_future",
            }
        )
    return errors


def measurement_refusal(
    parameter: str, measured_at: datetime, *, product_sku: str, known: Collection[str], now: datetime
) -> ValidationFailed | None:
    """Why a single measurement is refused (422), or None."""
    errors = measurement_errors(
        parameter, measured_at, product_sku=product_sku, known=known, now=now, field="body"
    )
    return _refusal(errors, len(errors)) if errors else None


def batch_refusal(
    items: Sequence[tuple[str, float, datetime]],
    *,
    product_sku: str,
    known: Collection[str],
    now: datetime,
) -> ValidationFailed | None:
    """Why a batch of (parameter, value, measured_at) is refused as a whole (422), or None.

    Errors name each item by its index; at most ``MAX_LISTED_ERRORS`` are listed.
    """
    errors: list[dict[str, Any]] = []
    total = 0
    latest = now + FUTURE_TOLERANCE
    for index, (parameter, _value, measured_at) in enumerate(items):
        if parameter in known and measured_at <= latest:
            continue
        found = measurement_errors(
            parameter, measured_at, product_sku=product_sku, known=known, now=now, field=f"body.items.{index}"
        )
        total += len(found)
        errors.extend(found[: MAX_LISTED_ERRORS - len(errors)])
    return _refusal(errors, total) if errors else None


def _refusal(errors: list[dict[str, Any]], total: int) -> ValidationFailed:
    first = errors[0]
    more = f" (and {total - 1} more)" if total > 1 else ""
    return ValidationFailed(f"{first['field']}: {first['message']}{more}", errors)
