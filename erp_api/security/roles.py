"""Roles, and the one table that says which role each route requires.

Roles are hierarchical: each includes everything the ones below it may do,
``admin ⊇ quality_manager ⊇ operator ⊇ viewer``. A viewer reads; an operator records production
(creates and edits charges, posts measurements); a quality manager decides on quality (specs, status
transitions, analyses, the audit trail); an admin runs the service (keys, jobs, the cache).

``access_policy()`` maps (method, route template) to the least role that may call it, or ``PUBLIC``.
The table is default-deny: a route missing from it requires ``admin`` (and a test fails until it
is listed). ``HEAD`` follows ``GET``.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from enum import StrEnum
from typing import Final, Literal

API: Final = "/api/v1"


class Role(StrEnum):
    VIEWER = "viewer"
    OPERATOR = "operator"
    QUALITY_MANAGER = "quality_manager"
    ADMIN = "admin"

    def includes(self, required: Role) -> bool:
        """True if this role may do what ``required`` may do."""
        return _RANK[self] >= _RANK[required]


_RANK: Final = {role: rank for rank, role in enumerate(Role)}

PUBLIC: Final = "public"
Requirement = Role | Literal["public"]
RouteKey = tuple[str, str]
"""(HTTP method, route template as the app declares it, mount prefix included)."""

DEFAULT_REQUIREMENT: Final = Role.ADMIN
"""What a route missing from the table requires."""

VIEWER, OPERATOR, QUALITY_MANAGER, ADMIN = Role.VIEWER, Role.OPERATOR, Role.QUALITY_MANAGER, Role.ADMIN

_POLICY: Final[Mapping[RouteKey, Requirement]] = {
    # Operations: probes and the schema are for anyone (load balancers, client generators).
    ("GET", "/health"): PUBLIC,
    ("GET", "/health/ready"): PUBLIC,
    ("GET", "/openapi.json"): PUBLIC,
    # Charges
    ("GET", f"{API}/charges"): VIEWER,
    ("POST", f"{API}/charges"): OPERATOR,
    ("POST", f"{API}/charges/batch"): OPERATOR,
    ("POST", f"{API}/charges/lookup"): VIEWER,  # a read with a large body
    ("GET", f"{API}/charges/{{id}}"): VIEWER,
    ("PATCH", f"{API}/charges/{{id}}"): OPERATOR,  # quantity, unit, line, time: shop-floor corrections
    ("DELETE", f"{API}/charges/{{id}}"): OPERATOR,  # only planned charges can be deleted at all
    ("POST", f"{API}/charges/{{id}}/transitions"): QUALITY_MANAGER,  # release, reject, quarantine
    # Quality
    ("POST", f"{API}/charges/{{id}}/measurements"): OPERATOR,
    ("GET", f"{API}/charges/{{id}}/measurements"): VIEWER,
    ("GET", f"{API}/quality/specs"): VIEWER,
    ("PUT", f"{API}/quality/specs/{{product_sku}}/{{parameter}}"): QUALITY_MANAGER,
    ("GET", f"{API}/quality/summary"): VIEWER,
    ("GET", f"{API}/quality/control-chart"): VIEWER,
    # Analyses and background jobs
    ("POST", f"{API}/charges/{{id}}/analyses"): QUALITY_MANAGER,
    ("GET", f"{API}/charges/{{id}}/analyses"): VIEWER,
    ("GET", f"{API}/analyses/{{id}}"): VIEWER,
    # Queue lengths and broker errors are the service's internals; whoever may run a job sees them.
    ("GET", f"{API}/jobs/status"): ADMIN,
    ("POST", f"{API}/jobs/{{name}}/run"): ADMIN,
    # Audit trail
    ("GET", f"{API}/audit"): QUALITY_MANAGER,
    # Administration
    ("GET", f"{API}/keys"): ADMIN,
    ("POST", f"{API}/keys"): ADMIN,
    ("DELETE", f"{API}/keys/{{id}}"): ADMIN,
    ("GET", f"{API}/cache/stats"): ADMIN,
    ("POST", f"{API}/cache/invalidate"): ADMIN,
}


def access_policy(*, metrics_public: bool) -> dict[RouteKey, Requirement]:
    """The policy table; ``/metrics`` is public unless ``ERP_METRICS_PUBLIC=false`` makes it admin-only."""
    return {**_POLICY, ("GET", "/metrics"): PUBLIC if metrics_public else ADMIN}


def requirement(policy: Mapping[RouteKey, Requirement], method: str, template: str) -> Requirement:
    """What calling ``method template`` requires: the table's entry, else ``DEFAULT_REQUIREMENT``."""
    return policy.get(("GET" if method == "HEAD" else method, template), DEFAULT_REQUIREMENT)


def required_roles(policy: Mapping[RouteKey, Requirement]) -> Callable[[str, str], str | None]:
    """For the OpenAPI document: the role name ``method template`` needs, or None when it is public."""

    def role_for(method: str, template: str) -> str | None:
        needed = requirement(policy, method, template)
        return None if needed == PUBLIC else needed.value

    return role_for
