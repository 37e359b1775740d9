"""Parsing long replies off the event loop.

Recovery and answer parsing are linear with stated budgets (``benchmarks/bench_parsing.py``),
but a reply of a few hundred KB still takes tens of milliseconds: inline, that would stall
every other run sharing the event loop. Replies past `INLINE_PARSE_CHARS` are parsed in a
worker thread; shorter ones inline (the worst adversarial 8 KB reply takes about 4 ms, a normal
one microseconds), where the thread hop would cost more than the parse.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Mapping
from typing import Any, TypeVar

__all__ = ["INLINE_PARSE_CHARS", "off_the_loop_if_long", "reply_chars"]

_T = TypeVar("_T")

INLINE_PARSE_CHARS = 8_192


def reply_chars(message: Mapping[str, Any]) -> int:
    """How much text recovery will scan in ``message``: its content and call arguments."""
    content = message.get("content")
    size = len(content) if isinstance(content, str) else 0
    for call in message.get("tool_calls") or ():
        function = call.get("function") if isinstance(call, Mapping) else None
        arguments = function.get("arguments") if isinstance(function, Mapping) else None
        size += len(arguments) if isinstance(arguments, str) else 0
    return size


async def off_the_loop_if_long(
    size: int, parse: Callable[..., _T], *args: Any, **kwargs: Any
) -> _T:
    """``parse(*args, **kwargs)``, in a worker thread when ``size`` passes the inline budget."""
    if size <= INLINE_PARSE_CHARS:
        return parse(*args, **kwargs)
    return await asyncio.to_thread(parse, *args, **kwargs)
