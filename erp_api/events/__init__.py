"""Live events: a durable event log, its fan-out to each process, and the SSE stream of it."""
