"""Locust scenarios and the pass/fail run of ``make loadtest``."""
