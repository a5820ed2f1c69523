"""Who may do what: API keys, roles, rate limits, the audit trail and the guards against hostile input.

Each route declares the least role that may call it and its body limit (``access.py``, roles in
``roles.py``). One pure ASGI middleware (``middleware.py``) runs per request: it finds the route the
router will pick (``erp_api/routing.py``), refuses oversized bodies (``body_limit.py``), authenticates
the bearer key (``keys.py``, ``key_store.py``), checks the role the route declares and the rate limit
(``ratelimit.py``), then binds the caller (``principal.py``) so that ``audit.record`` can attribute
every change written in the request's transaction.
"""
