"""Tags name the data an entry was computed from; templates derive them from call arguments.

A tag is a non-empty string without control characters (``"charge:42"``). Invalidating a tag makes
every entry stored with it a miss. Templates such as ``"charge:{charge_id}"`` are compiled once, at
decoration time, into positional format strings so that formatting them per call is one
``str.format`` with no argument binding.
"""

from __future__ import annotations

import string
from collections.abc import Iterable, Sequence
from typing import Any

__all__ = ["TagTemplates", "validate_tags"]

_FORBIDDEN = frozenset(chr(code) for code in range(0x20)) | {"\x7f"}


def validate_tags(tags: Iterable[str]) -> tuple[str, ...]:
    """Return ``tags`` as a tuple, raising ``ValueError`` for an empty or control-character tag."""
    if isinstance(tags, str):
        raise TypeError(f"tags must be a collection of tags, not the string {tags!r}")
    result = tuple(tags)
    for tag in result:
        if not isinstance(tag, str) or not tag:
            raise ValueError(f"a tag must be a non-empty string, not {tag!r}")
        if not _FORBIDDEN.isdisjoint(tag):
            raise ValueError(f"a tag must not contain control characters: {tag!r}")
    return result


class TagTemplates:
    """Tag templates compiled against a function's parameter names.

    ``TagTemplates(["charge:{charge_id}", "charges:list"], ["charge_id"]).format((42,))`` gives
    ``("charge:42", "charges:list")``. Field names may use attribute or index access on a parameter
    (``"{charge.id}"``); a field that names no parameter raises ``ValueError`` at compile time.
    """

    __slots__ = ("_compiled", "_formats", "_static")

    def __init__(self, templates: Sequence[str], parameters: Sequence[str]) -> None:
        if isinstance(templates, str):
            raise TypeError("tags must be a sequence of templates, not a single string")
        positions = {name: index for index, name in enumerate(parameters)}
        compiled: list[str] = []
        dynamic = False
        for template in templates:
            pieces: list[str] = []
            for literal, field, spec, conversion in string.Formatter().parse(template):
                pieces.append(literal.replace("{", "{{").replace("}", "}}"))
                if field is None:
                    continue
                dynamic = True
                name, rest = _split_field(field)
                if name not in positions:
                    raise ValueError(f"tag template {template!r} names {name!r}, which is not a parameter")
                conv = f"!{conversion}" if conversion else ""
                fmt = f":{spec}" if spec else ""
                pieces.append(f"{{{positions[name]}{rest}{conv}{fmt}}}")
            compiled.append("".join(pieces))
        self._compiled = tuple(compiled)
        self._formats: tuple[str, ...] | None = self._compiled if dynamic else None
        self._static: tuple[str, ...] = () if dynamic else validate_tags(templates)

    @property
    def dynamic(self) -> bool:
        """True if any template has a field, so tags differ from call to call."""
        return self._formats is not None

    def prefixed(self, prefix: str) -> tuple[str, ...]:
        """Positional format strings that yield ``prefix + tag`` for each template."""
        escaped = prefix.replace("{", "{{").replace("}", "}}")
        return tuple(escaped + template for template in self._compiled)

    def format(self, arguments: Sequence[Any]) -> tuple[str, ...]:
        """Tags for one call, given its arguments in parameter order."""
        if self._formats is None:
            return self._static
        return tuple([template.format(*arguments) for template in self._formats])


def _split_field(field: str) -> tuple[str, str]:
    for index, char in enumerate(field):
        if char in ".[":
            return field[:index], field[index:]
    return field, ""
