"""Webhooks: subscriptions to events, and their signed, retried, logged delivery (Standard Webhooks)."""
