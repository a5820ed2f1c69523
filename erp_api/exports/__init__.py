"""Exports: charges, measurements and alerts streamed as CSV or NDJSON, in constant memory."""
