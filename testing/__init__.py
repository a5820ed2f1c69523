"""Tooling shared by tests, benchmarks and load runs (never shipped): real service processes."""
