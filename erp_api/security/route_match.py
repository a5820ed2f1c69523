"""Which route template the router will pick for a request, decided before the router runs.

The app's routes (mounts descended) are compiled once with Starlette's own ``compile_path``, in the
router's order, so the first route whose path and method both match wins, exactly as Starlette
routes. A request for a static path is answered from a dict; the rest try the patterns in order.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass

from starlette.routing import BaseRoute, Mount, Route, compile_path


@dataclass(frozen=True, slots=True)
class _Compiled:
    template: str
    pattern: re.Pattern[str]
    methods: frozenset[str]


def walk_routes(routes: Iterable[BaseRoute], prefix: str = "") -> Iterator[tuple[str, Route]]:
    """Every ``Route`` with its full template (mount prefixes included), in routing order."""
    for route in routes:
        if isinstance(route, Mount):
            yield from walk_routes(route.routes, prefix + route.path)
        elif isinstance(route, Route):
            yield prefix + route.path, route


class RouteTable:
    """Maps (method, path) to the template of the route that will serve it, or None."""

    def __init__(self, routes: Iterable[BaseRoute]) -> None:
        self._compiled: list[_Compiled] = []
        for template, route in walk_routes(routes):
            if route.methods is None:
                continue
            pattern, _format, _convertors = compile_path(template)
            self._compiled.append(_Compiled(template, pattern, frozenset(route.methods)))
        # A static path's answer never depends on more than its method: precompute it.
        self._static: dict[tuple[str, str], str] = {}
        for entry in self._compiled:
            if "{" in entry.template:
                continue
            for method in {method for other in self._compiled for method in other.methods}:
                served_by = self._scan(method, entry.template)
                if served_by is not None:
                    self._static.setdefault((method, entry.template), served_by)

    def templates(self) -> list[tuple[str, str]]:
        """(method, template) of every route, ``HEAD`` excluded."""
        return [
            (method, entry.template)
            for entry in self._compiled
            for method in sorted(entry.methods - {"HEAD"})
        ]

    def match(self, method: str, path: str) -> str | None:
        """The template serving ``method path``; None when the router would answer 404 or 405."""
        found = self._static.get((method, path))
        if found is not None:
            return found
        return self._scan(method, path)

    def allowed_methods(self, path: str) -> frozenset[str]:
        """Every method some route serves ``path`` with (for the ``Allow`` header of a 405)."""
        return frozenset(
            method for entry in self._compiled if entry.pattern.match(path) for method in entry.methods
        )

    def _scan(self, method: str, path: str) -> str | None:
        for entry in self._compiled:
            if method in entry.methods and entry.pattern.match(path):
                return entry.template
        return None
