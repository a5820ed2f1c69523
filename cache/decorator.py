"""``CacheManager.cached``: an async function whose results go through the cache.

Everything that can be worked out once is worked out at decoration time (signature, tag templates,
key prefix, static version keys), so a hit costs one key encoding, one backend read and no closure.
"""

from __future__ import annotations

import functools
import inspect
from collections.abc import Awaitable, Callable, Sequence
from typing import TYPE_CHECKING, Any, Generic, ParamSpec, TypeVar, cast

from cache.keys import encode_key
from cache.tags import TagTemplates

if TYPE_CHECKING:
    from cache.manager import CacheManager

__all__ = ["CachedFunction"]

P = ParamSpec("P")
T = TypeVar("T")

_PLAIN = (inspect.Parameter.POSITIONAL_ONLY, inspect.Parameter.POSITIONAL_OR_KEYWORD)


class CachedFunction(Generic[P, T]):
    """A cached async function; call it like the original.

    Its cache key is the tuple of its arguments in parameter order with defaults applied, so
    ``f(42)``, ``f(charge_id=42)`` and ``manager.get_or_load(namespace, (42,), ...)`` share an entry.
    """

    def __init__(
        self,
        manager: CacheManager,
        function: Callable[P, Awaitable[T]],
        namespace: str,
        ttl: float | None,
        tags: Sequence[str],
    ) -> None:
        self._manager = manager
        self._function = function
        self._signature = inspect.signature(function)
        parameters = list(self._signature.parameters.values())
        # Calls that pass exactly the plain parameters positionally need no binding at all.
        self._arity = len(parameters) if all(p.kind in _PLAIN for p in parameters) else -1
        self._templates = templates = TagTemplates(tags, [p.name for p in parameters])
        # Version keys (epoch first) are formatted directly from the arguments: one str.format per tag.
        self._epoch_key = manager._epoch_key
        self._version_key_formats: tuple[str, ...] | None = None
        self._static_version_keys: tuple[str, ...] = ()
        if templates.dynamic:
            self._version_key_formats = templates.prefixed(manager._tag_prefix)
        else:
            self._static_version_keys = manager.version_keys(templates.format(()))
        self._namespace = manager._namespaces.get(namespace)
        if ttl is not None:
            manager._checked_ttl(ttl, manager._backend)
        self._ttl = ttl
        functools.update_wrapper(self, function)

    async def __call__(self, *args: P.args, **kwargs: P.kwargs) -> T:
        arguments = args if not kwargs and len(args) == self._arity else self._bind(args, kwargs)
        ns = self._namespace
        formats = self._version_key_formats
        if formats is None:
            version_keys = self._static_version_keys
        elif len(formats) == 1:
            version_keys = (self._epoch_key, formats[0].format(*arguments))
        else:
            version_keys = (self._epoch_key, *[template.format(*arguments) for template in formats])
        value = await self._manager._fetch(
            ns, ns.key_prefix + encode_key(arguments), version_keys, self._ttl, self._function, args, kwargs
        )
        return cast(T, value)

    def key(self, *args: P.args, **kwargs: P.kwargs) -> tuple[tuple[Any, ...], tuple[str, ...]]:
        """The ``(key, tags)`` a call with these arguments uses, e.g. for ``manager.get_raw``."""
        arguments = self._bind(args, kwargs)
        return arguments, self._templates.format(arguments)

    async def peek(self, *args: P.args, **kwargs: P.kwargs) -> bytes | None:
        """The cached bytes for this call, without loading (see ``CacheManager.get_raw``)."""
        key, tags = self.key(*args, **kwargs)
        return await self._manager.get_raw(self._namespace.name, key, tags)

    @property
    def uncached(self) -> Callable[P, Awaitable[T]]:
        """The original function."""
        return self._function

    def _bind(self, args: tuple[Any, ...], kwargs: dict[str, Any]) -> tuple[Any, ...]:
        bound = self._signature.bind(*args, **kwargs)
        bound.apply_defaults()
        return tuple(bound.arguments.values())
