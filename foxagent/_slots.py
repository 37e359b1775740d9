"""Building frozen, slotted dataclasses on the hot path without their generated ``__init__``.

A frozen dataclass's ``__init__`` sets each field through ``object.__setattr__``, looked up
anew for every field; the slots' own setters do the same work for less. A run builds a handful
of such objects (the recovered call, its record, the parsed answer), and `slot_builder` saves
a few tenths of a µs on each. Like ``dataclasses`` itself, it writes the constructor's source
once and compiles it: one straight line of setter calls, which a loop over the setters would
cost a third more. Only for frozen dataclasses with ``slots=True`` and no ``__post_init__``:
nothing is validated or defaulted, every field is given, in field order.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any, TypeVar

__all__ = ["slot_builder"]

_T = TypeVar("_T")


def slot_builder(cls: type[_T]) -> Callable[..., _T]:
    """A constructor taking every field of ``cls`` positionally, in field order."""
    if not dataclasses.is_dataclass(cls) or "__slots__" not in vars(cls):
        raise TypeError(f"{cls.__name__} is not a slotted dataclass")
    fields = dataclasses.fields(cls)
    # Numbered names: no field name can clash with the builder's own.
    scope: dict[str, Any] = {"_new": object.__new__, "_cls": cls}
    lines = [f"def build({', '.join(f'v{i}' for i in range(len(fields)))}):"]
    lines.append("    built = _new(_cls)")
    for i, field in enumerate(fields):
        scope[f"_set{i}"] = getattr(cls, field.name).__set__
        lines.append(f"    _set{i}(built, v{i})")
    lines.append("    return built")
    exec("\n".join(lines), scope)  # our own source, made of numbered names only
    build: Callable[..., _T] = scope["build"]
    build.__qualname__ = f"slot_builder({cls.__name__})"
    return build
