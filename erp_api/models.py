"""Imports every package's models so the metadata is complete (for Alembic and tests)."""

from __future__ import annotations


def load_all() -> None:
    import erp_api.charges.models  # noqa: F401
    import erp_api.quality.models  # noqa: F401
