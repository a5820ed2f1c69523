"""Who may do what: API keys, roles, rate limits, the audit trail and the guards against hostile input.

One pure ASGI middleware (``middleware.py``) runs per request: it refuses oversized bodies, finds the
route template the router will pick (``route_match.py``), authenticates the bearer key (``keys.py``,
``key_store.py``), checks the role the policy table requires (``roles.py``) and the rate limit
(``ratelimit.py``), then binds the caller (``principal.py``) so that ``audit.record`` can attribute
every change written in the request's transaction.
"""
