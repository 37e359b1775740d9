"""``JsonlTrace``: a run's events as JSON lines in a file (``foxagent run --trace FILE``).

Each line is one event (`foxagent.events.event_payload`) with ``time`` (Unix seconds) and
``run`` (a label per run, so several runs can share a file). Events carry no API key or
header: the file is safe to attach to a bug report, though it holds the conversation's text.

A trace records what happened, not every byte: strings longer than ``max_chars`` (tool results,
answers) are cut with a note of their full length, and lists or objects keep their first
``max_items`` entries. A 10 MB tool result (written twice before: when the tool finished and in
the final answer's calls) costs a few KB.
"""

from __future__ import annotations

import json
import time
import uuid
from pathlib import Path
from types import TracebackType
from typing import IO, Any

from foxagent._events import RunEvent, event_payload
from foxagent._run import safe_str

__all__ = ["JsonlTrace"]


class JsonlTrace:
    """An ``on_event`` listener that appends each event to ``path`` as a JSON line.

    Example:
        >>> with JsonlTrace("run.jsonl") as trace:  # doctest: +SKIP
        ...     await agent.arun("台北幾度？", on_event=trace)
    """

    def __init__(
        self,
        path: str | Path,
        *,
        run: str | None = None,
        max_chars: int = 4_000,
        max_items: int = 100,
    ) -> None:
        self.path = Path(path)
        self.run = run or uuid.uuid4().hex[:12]
        self.max_chars = max_chars
        self.max_items = max_items
        # backslashreplace: a lone surrogate in a model's text is written escaped, not an error.
        self._file: IO[str] = self.path.open(
            "a", encoding="utf-8", errors="backslashreplace", buffering=1
        )

    def __call__(self, event: RunEvent) -> None:
        payload = _bounded(event_payload(event), self.max_chars, self.max_items)
        line = {"time": round(time.time(), 6), "run": self.run, **payload}
        self._file.write(json.dumps(line, ensure_ascii=False, default=str) + "\n")

    def close(self) -> None:
        self._file.close()

    def __enter__(self) -> JsonlTrace:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()


def _bounded(value: Any, max_chars: int, max_items: int) -> Any:
    """``value`` with long strings cut and long containers shortened, each with a note."""
    if isinstance(value, str):
        if len(value) <= max_chars:
            return value
        return value[:max_chars] + f"… [cut: {len(value)} characters in all]"
    if isinstance(value, dict):
        items = list(value.items())
        kept = {str(k): _bounded(v, max_chars, max_items) for k, v in items[:max_items]}
        if len(items) > max_items:
            kept["…"] = f"[cut: {len(items)} keys in all]"
        return kept
    if isinstance(value, (list, tuple)):
        kept_list = [_bounded(v, max_chars, max_items) for v in value[:max_items]]
        if len(value) > max_items:
            kept_list.append(f"… [cut: {len(value)} items in all]")
        return kept_list
    if isinstance(value, (int, float, bool)) or value is None:
        return value
    return _bounded(safe_str(value), max_chars, max_items)
