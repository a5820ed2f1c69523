"""Anomaly analyses run in the background: job records, their life cycle, and the jobs' run history."""
