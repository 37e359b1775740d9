"""The one way a foxagent package re-exports its public names: lazily, from one table.

Each public package (``foxagent``, ``foxagent.models``, ``foxagent.sessions``,
``foxagent.events``, ``foxagent.testing``) keeps a table of its public names and the private
modules that define them, a sorted ``__all__`` literal and, for type checkers, the same imports
under ``TYPE_CHECKING``; ``tests/test_public_api.py`` checks the three agree. A name's module is
imported on first use, so ``import foxagent.cli`` (and ``foxagent --help``) pays for nothing it
does not need, and choosing one backend never loads another's dependencies.
"""

from __future__ import annotations

import importlib
import sys
from collections.abc import Callable, Mapping
from typing import Any

__all__ = ["lazy_exports"]


def lazy_exports(
    package: str, exports: Mapping[str, str]
) -> tuple[Callable[[str], Any], Callable[[], list[str]]]:
    """The module-level ``__getattr__`` and ``__dir__`` of ``package``.

    Args:
        package: the package's ``__name__``.
        exports: public name to the module (absolute name) it is imported from.
    """
    namespace = sys.modules[package].__dict__

    def __getattr__(name: str) -> Any:
        home = exports.get(name)
        if home is None:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        value = getattr(importlib.import_module(home), name)
        namespace[name] = value  # later lookups skip this function
        return value

    def __dir__() -> list[str]:
        return sorted(set(namespace) | set(exports))

    return __getattr__, __dir__
