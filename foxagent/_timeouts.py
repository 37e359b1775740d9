"""One deadline for an awaitable, on every supported Python."""

from __future__ import annotations

import asyncio
import sys
from collections.abc import Awaitable
from typing import TypeVar

__all__ = ["within"]

_T = TypeVar("_T")


async def within(seconds: float | None, work: Awaitable[_T]) -> _T:
    """``await work``, cancelled after ``seconds`` (``None``: no limit) with ``TimeoutError``."""
    if seconds is None:
        return await work
    if sys.version_info >= (3, 11):
        async with asyncio.timeout(seconds):  # no extra task, unlike wait_for
            return await work
    return await asyncio.wait_for(work, seconds)  # pragma: no cover - Python 3.10
