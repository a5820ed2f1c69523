"""Names of the queues and tasks: what the API publishes and the workers consume, in one place."""

from __future__ import annotations

HIGH_PRIORITY = "high_priority"
"""Work a person is waiting for (analyses started through the API)."""
AGGREGATIONS = "aggregations"
"""Summary refreshes and cache warming."""
MAINTENANCE = "maintenance"
"""The reaper and retention cleanup."""
QUEUES = (HIGH_PRIORITY, AGGREGATIONS, MAINTENANCE)

ANALYSIS_TASK = "erp.analysis.run"
REAP_TASK = "erp.maintenance.reap_analyses"
RETENTION_TASK = "erp.maintenance.retention_cleanup"
WARM_TASK = "erp.aggregations.warm_quality_summaries"

TASK_ROUTES = {
    "erp.analysis.*": {"queue": HIGH_PRIORITY},
    "erp.aggregations.*": {"queue": AGGREGATIONS},
    "erp.maintenance.*": {"queue": MAINTENANCE},
}
