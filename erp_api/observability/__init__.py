"""Metrics, structured logs, request ids, health probes and HTTP hygiene for erp-api.

Every metric the service exports is defined in ``metrics.py``; the other modules wire them into the
HTTP stack (``middleware.py``), the database engine (``db_metrics.py``) and the exposition endpoint
(``exposition.py``).
"""
