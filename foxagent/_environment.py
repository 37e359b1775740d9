"""Reading settings from the environment (a leaf: the CLI and the backends both use it)."""

from __future__ import annotations

import os

__all__ = ["first_env"]


def first_env(*names: str) -> str | None:
    """The value of the first of ``names`` that is set and not empty in the environment."""
    return next((os.environ[name] for name in names if os.environ.get(name)), None)
