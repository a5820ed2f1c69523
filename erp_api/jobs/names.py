"""Names of the queues and tasks: what the API publishes and the workers consume, in one place."""

from __future__ import annotations

HIGH_PRIORITY = "high_priority"
"""Work a person is waiting for (analyses started through the API)."""
AGGREGATIONS = "aggregations"
"""Summary refreshes and cache warming."""
MAINTENANCE = "maintenance"
"""The reaper and retention cleanup."""
WEBHOOKS = "webhooks"
"""Webhook deliveries and their sweeper. A queue of their own: an attempt waits on somebody else's
server (up to ERP_WEBHOOK_TIMEOUT_SECONDS), so a slow or dead receiver must not hold up the
analyses people wait for, and deliveries can be given workers of their own (``-Q webhooks``)."""
QUEUES = (HIGH_PRIORITY, AGGREGATIONS, MAINTENANCE, WEBHOOKS)

ANALYSIS_TASK = "erp.analysis.run"
REAP_TASK = "erp.maintenance.reap_analyses"
RETENTION_TASK = "erp.maintenance.retention_cleanup"
WARM_TASK = "erp.aggregations.warm_quality_summaries"
WEBHOOK_DELIVER_TASK = "erp.webhooks.deliver"
WEBHOOK_SWEEP_TASK = "erp.webhooks.sweep"

TASK_ROUTES = {
    "erp.analysis.*": {"queue": HIGH_PRIORITY},
    "erp.aggregations.*": {"queue": AGGREGATIONS},
    "erp.maintenance.*": {"queue": MAINTENANCE},
    "erp.webhooks.*": {"queue": WEBHOOKS},
}
