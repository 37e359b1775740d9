"""The live view ``foxagent run`` draws on stderr while a run works.

Steps, each tool call with its arguments, outcome and time, and (on a terminal) a spinner while
the model thinks. Plain lines when stderr is not a terminal, so logs stay readable.
"""

from __future__ import annotations

import asyncio
import json
import time
from typing import Any, TextIO

from foxagent._events import RunEvent, StepStarted, ToolFinished
from foxagent._messages import ModelRetry, TextDelta

__all__ = ["LiveView"]

_FRAMES = "⠋⠙⠹⠸⠼⠴⠦⠧⠇⠏"
_LIMIT = 160


def _short(value: Any) -> str:
    text = value if isinstance(value, str) else json.dumps(value, ensure_ascii=False, default=str)
    text = " ".join(text.split())
    return text if len(text) <= _LIMIT else text[: _LIMIT - 1] + "…"


class LiveView:
    """An ``on_event`` callback that reports a run's progress on ``stream``.

    Args:
        stream: where to draw (stderr).
        echo_text: also print streamed model text as it arrives.
    """

    def __init__(self, stream: TextIO, *, echo_text: bool = False) -> None:
        self.stream = stream
        self.echo_text = echo_text
        self.animated = stream.isatty()
        self._spinner: asyncio.Task[None] | None = None
        self._thinking_since = 0.0

    def __call__(self, event: RunEvent) -> None:
        if isinstance(event, StepStarted):
            self._stop_spinner()
            self._line(f"· step {event.step}: asking the model")
            self._start_spinner()
        elif isinstance(event, TextDelta):
            self._stop_spinner()
            if self.echo_text:
                self.stream.write(event.text)
                self.stream.flush()
        elif isinstance(event, ToolFinished):
            self._stop_spinner()
            self._tool(event)
        elif isinstance(event, ModelRetry):
            self._stop_spinner()
            # On its own line: a restarted stream's text follows from its beginning.
            self._line(
                f"\n  ↻ retry {event.attempt} in {event.delay:.1f} s: {_short(event.reason)}"
            )
            self._start_spinner()

    def close(self) -> None:
        """Stop the spinner (call when the run ends, however it ends)."""
        self._stop_spinner()

    def _tool(self, event: ToolFinished) -> None:
        record = event.record
        outcome = _short(record.result) if record.status == "ok" else _short(record.error)
        arguments = _short(record.arguments)
        self._line(
            f"  ↳ {record.name}({arguments}) {record.status} in {record.duration:.2f} s: {outcome}"
        )

    def _line(self, text: str) -> None:
        self.stream.write(text + "\n")
        self.stream.flush()

    def _start_spinner(self) -> None:
        if not self.animated:
            return
        self._thinking_since = time.perf_counter()
        try:
            self._spinner = asyncio.get_running_loop().create_task(self._spin())
        except RuntimeError:
            self._spinner = None

    def _stop_spinner(self) -> None:
        if self._spinner is not None:
            self._spinner.cancel()
            self._spinner = None
            self.stream.write("\r\033[K")
            self.stream.flush()

    async def _spin(self) -> None:
        frame = 0
        while True:
            elapsed = time.perf_counter() - self._thinking_since
            self.stream.write(f"\r{_FRAMES[frame % len(_FRAMES)]} thinking… {elapsed:4.1f} s")
            self.stream.flush()
            frame += 1
            await asyncio.sleep(0.1)
