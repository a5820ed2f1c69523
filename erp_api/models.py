"""Imports every package's models so the metadata is complete (for Alembic and tests)."""

from __future__ import annotations


def load_all() -> None:
    import erp_api.analyses.models
    import erp_api.audit.models
    import erp_api.charges.models
    import erp_api.events.models
    import erp_api.jobs.models
    import erp_api.quality.models
    import erp_api.security.models
    import erp_api.webhooks.models  # noqa: F401
