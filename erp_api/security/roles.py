"""Roles, from the least to the most trusted, and what a route may require.

Roles are hierarchical: each includes everything the ones below it may do,
``admin ⊇ quality_manager ⊇ operator ⊇ viewer``. A viewer reads; an operator records production
(creates and edits charges, posts measurements); a quality manager decides on quality (specs, status
transitions, analyses, the audit trail); an admin runs the service (keys, jobs, the cache).

Each route declares the least role that may call it, or ``PUBLIC``, on its own declaration
(``Endpoint`` in ``access.py``). Default-deny: a route that declares nothing requires
``DEFAULT_REQUIREMENT``. ``HEAD`` follows ``GET`` (it is served by the same route).
"""

from __future__ import annotations

from enum import StrEnum
from typing import Final, Literal


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

DEFAULT_REQUIREMENT: Final = Role.ADMIN
"""What a route that declares no role requires."""
