"""The audit trail: who changed what, when, in which request; and the route that reads it."""
