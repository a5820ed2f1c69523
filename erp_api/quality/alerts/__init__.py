"""Quality alerts: the on-ingest rule check (an outbox), the alerts it opens, their stages."""
