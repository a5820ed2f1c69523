"""Capability summaries and trends from exact running rollups, flat in history."""
