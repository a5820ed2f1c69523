"""Charges: production batches, their data and their status life cycle."""
