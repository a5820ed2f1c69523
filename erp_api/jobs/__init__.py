"""Background jobs as the API sees them: dispatch to workers, job status, run history, failures."""
