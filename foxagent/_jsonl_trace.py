"""``JsonlTrace``: a run's events as JSON lines in a file (``foxagent run --trace FILE``).

Each line is one event (`foxagent.events.event_payload`) with ``time`` (Unix seconds) and
``run`` (a label per run, so several runs can share a file). Events carry no API key or
header: the file is safe to attach to a bug report, though it holds the conversation's text.
"""

from __future__ import annotations

import json
import time
import uuid
from pathlib import Path
from types import TracebackType
from typing import IO

from foxagent._events import RunEvent, event_payload

__all__ = ["JsonlTrace"]


class JsonlTrace:
    """An ``on_event`` listener that appends each event to ``path`` as a JSON line.

    Example:
        >>> with JsonlTrace("run.jsonl") as trace:  # doctest: +SKIP
        ...     await agent.arun("台北幾度？", on_event=trace)
    """

    def __init__(self, path: str | Path, *, run: str | None = None) -> None:
        self.path = Path(path)
        self.run = run or uuid.uuid4().hex[:12]
        self._file: IO[str] = self.path.open("a", encoding="utf-8", buffering=1)

    def __call__(self, event: RunEvent) -> None:
        line = {"time": round(time.time(), 6), "run": self.run, **event_payload(event)}
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
