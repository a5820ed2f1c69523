"""Background jobs on Celery: anomaly analyses, maintenance and cache warming, calling erp_api's services."""
