"""erp-api: an async ERP API for production batches (charges) and their quality."""

__version__ = "0.1.0"
