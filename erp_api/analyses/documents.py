"""The JSON shapes of analyses: built once from a row, with the stored result embedded unparsed."""

from __future__ import annotations

import hashlib
from typing import Any

import orjson

from erp_api.analyses.models import AnomalyAnalysis
from erp_api.http import API_PREFIX


def status_url(analysis_id: int) -> str:
    return f"{API_PREFIX}/analyses/{analysis_id}"


def analysis_dict(row: AnomalyAnalysis) -> dict[str, Any]:
    """The ``AnalysisOut`` shape; ``baseline`` and ``result`` are stored JSON, passed through as is."""
    return {
        "id": row.id,
        "charge_id": row.charge_id,
        "rules": row.rules,
        "baseline": orjson.Fragment(row.baseline) if row.baseline is not None else None,
        "status": row.status,
        "attempts": row.attempts,
        "created_at": row.created_at,
        "started_at": row.started_at,
        "finished_at": row.finished_at,
        "error": row.error,
        "result": orjson.Fragment(row.result) if row.result is not None else None,
    }


def accepted_dict(row: AnomalyAnalysis) -> dict[str, Any]:
    return {"id": row.id, "status": row.status, "status_url": status_url(row.id)}


def request_fingerprint(charge_id: int, rules: str, baseline: dict[str, Any] | None) -> str:
    """Identifies what was asked, so a reused Idempotency-Key with a different request is recognised."""
    canonical = orjson.dumps(
        {"charge_id": charge_id, "rules": rules, "baseline": baseline}, option=orjson.OPT_SORT_KEYS
    )
    return hashlib.sha256(canonical).hexdigest()
