"""The live view ``foxagent run`` draws on stderr while a run works.

Steps, each tool call with its arguments, outcome and time, warnings, and (on a terminal) a
spinner while the model thinks. Plain lines when stderr is not a terminal, so logs stay
readable. The view owns the terminal's line: the spinner is wiped before anything else is
written (an error, an approval prompt, a tool line), and a line left open by streamed text is
ended first.

With ``echo_text`` (``--stream``) a reply's text shows as it comes, through `StreamFilter`:
FoxBrain's steps, reflections and scores on stderr, one labelled line each, never a tag, a
special token or a call's JSON. The answer (the ``<answer>`` or ``<clarification>``, or an
untagged reply's text) streams to stdout when stdout is a terminal, so it is shown once (see
`LiveView.show_answer`); otherwise it is previewed on stderr and stdout gets it whole at the
end. Once a tagged answer has streamed to stdout, what FoxBrain writes after it (a closing
reflection and score) is not shown, so the answer stays the last thing on the screen
(``--steps`` and ``--json`` have it).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from typing import Any, TextIO

from foxagent._events import RunEvent, RunWarning, StepStarted, ToolCallDetected, ToolFinished
from foxagent._messages import ModelRetry, TextDelta
from foxagent.cli._stream import Segment, StreamFilter

__all__ = ["LiveView"]

_FRAMES = "⠋⠙⠹⠸⠼⠴⠦⠧⠇⠏"
_LIMIT = 160
# The label of each part of a FoxBrain reply shown on stderr; "" hides the part.
_LABELS = {"step": "  📋 ", "reflection": "  🤔 ", "reward": "  ⭐ ", "count": ""}
_ANSWERS = ("text", "answer", "clarification")


# aiohttp's names for what went wrong, in words (retry lines quote the backend's reason).
_PLAIN = {
    "ClientConnectorError": "cannot connect (is the server running?)",
    "ServerDisconnectedError": "the server closed the connection",
    "ClientOSError": "the connection failed",
}


def _plain(reason: str) -> str:
    for name, words in _PLAIN.items():
        reason = reason.replace(name, words)
    return reason


def _short(value: Any) -> str:
    text = value if isinstance(value, str) else json.dumps(value, ensure_ascii=False, default=str)
    text = " ".join(text.split())
    return text if len(text) <= _LIMIT else text[: _LIMIT - 1] + "…"


def _isatty(stream: TextIO | None) -> bool:
    try:
        return stream is not None and stream.isatty()
    except (AttributeError, ValueError):  # a closed or unusual stream
        return False


class LiveView:
    """An ``on_event`` callback that reports a run's progress on ``stream``.

    Args:
        stream: where to draw (stderr).
        out: where the answer goes (stdout); streamed answers go there live when it is a
            terminal.
        echo_text: also show streamed model text as it arrives.
    """

    def __init__(
        self, stream: TextIO, *, out: TextIO | None = None, echo_text: bool = False
    ) -> None:
        self.stream = stream
        self.out = out
        self.echo_text = echo_text
        self.animated = _isatty(stream)
        self._answer_live = echo_text and _isatty(out)
        self._spinner: asyncio.Task[None] | None = None
        self._thinking_since = 0.0
        # The stream whose last line is not ended yet (None: every line is ended).
        self._open_line: TextIO | None = None
        self._reset_reply()

    def __call__(self, event: RunEvent) -> None:
        if isinstance(event, StepStarted):
            self._end_reply()
            self._stop_spinner()
            self._line(f"· step {event.step}: asking the model")
            self._start_spinner()
        elif isinstance(event, TextDelta):
            if self.echo_text:
                self._show(self._filter.feed(event.text))
            else:
                self._stop_spinner()
        elif isinstance(event, ToolCallDetected):
            self._end_reply()
            self._stop_spinner()
        elif isinstance(event, ToolFinished):
            self._end_reply()
            self._stop_spinner()
            self._tool(event)
        elif isinstance(event, RunWarning):
            self._stop_spinner()
            self._line(f"  ! {event.message}")
        elif isinstance(event, ModelRetry):
            self._stop_spinner()
            # A restarted stream's text follows from its beginning: what was shown is dropped.
            self._reset_reply()
            reason = _short(_plain(event.reason))
            self._line(f"  ↻ retry {event.attempt} in {event.delay:.1f} s: {reason}")
            self._start_spinner()

    def close(self) -> None:
        """Stop the spinner and end an open line (call when the run ends, however it ends,
        before writing anything else)."""
        self._end_reply()
        self._stop_spinner()
        self._end_line()

    def prompt(self, text: str) -> None:
        """Write a question for the user on a line of its own (no spinner on it)."""
        self._stop_spinner()
        self._end_line()
        self._write(self.stream, text)

    def answered(self, typed_on_terminal: bool) -> None:
        """The user answered a `prompt`; a terminal echoed the Enter, a pipe did not."""
        if typed_on_terminal:
            self._open_line = None
        self._end_line()

    def show_answer(self, answer: str) -> None:
        """Print the run's answer on ``out``, unless it has already streamed there.

        The answer streamed when the last reply's answer text, as shown, is the answer; then
        only its line is ended. Otherwise (not streamed, or the final answer differs from what
        streamed) the answer is printed whole on a line of its own.
        """
        if self.out is None:
            return
        self.close()
        streamed = "".join(self._answer_shown).strip()
        if not (self._answer_live and streamed and streamed == answer.strip()):
            self._write(self.out, answer + "\n")

    # --- streamed text -----------------------------------------------------------------------

    def _reset_reply(self) -> None:
        self._filter = StreamFilter()
        self._where = ""  # the part being written: a tag name, "text", or "" (none yet)
        self._gap = ""  # whitespace held back until text follows it in the same part
        self._answer_shown: list[str] = []
        self._answer_done = False  # a tagged answer streamed to stdout, and closed

    def _end_reply(self) -> None:
        if self.echo_text:
            self._show(self._filter.end())
            self._filter = StreamFilter()

    def _show(self, segments: list[Segment]) -> None:
        for where, text in segments:
            if where in _ANSWERS:
                self._show_answer(where, text)
            else:
                self._show_part(where, text)

    def _show_part(self, where: str, text: str) -> None:
        label = _LABELS.get(where, "  ")
        if not label or self._answer_done:
            return
        if self._where in ("answer", "clarification") and self._answer_live:
            self._answer_done = True  # what FoxBrain adds after its answer stays off screen
            return
        self._emit(self.stream, where, text, label=label, indent=" " * 5)

    def _show_answer(self, where: str, text: str) -> None:
        if self._answer_done:
            if where == "text":
                return  # what lies between FoxBrain's closing tags
            self._answer_done = False  # the model answers again: show that on a line of its own
            self._end_line()
        if self._answer_live:
            self._emit(self.out, where, text, label="", indent="", keep=True)
        else:
            label = "  ✅ " if where != "text" else ""
            self._emit(self.stream, where, text, label=label, indent=" " * len(label))

    def _emit(
        self,
        target: TextIO | None,
        where: str,
        text: str,
        *,
        label: str,
        indent: str,
        keep: bool = False,
    ) -> None:
        """Write ``text`` of part ``where``: a new part on a line of its own after ``label``,
        whitespace at a part's ends left out, continuation lines indented by ``indent``;
        ``keep``: it is answer text, noted for `show_answer`."""
        if target is None:
            return
        if where != self._where:
            text = text.lstrip()
            if not text:
                return  # whitespace between parts
            self._stop_spinner()
            self._end_line()
            self._where, self._gap = where, ""
            if keep:
                self._answer_shown = []
            self._write(target, label)
        body = text.rstrip()
        if not body:
            self._gap += text  # written only if more text of this part follows
            return
        shown, self._gap = self._gap + body, text[len(body) :]
        if keep:
            self._answer_shown.append(shown)
        self._write(target, shown.replace("\n", "\n" + indent) if indent else shown)

    # --- lines -------------------------------------------------------------------------------

    def _tool(self, event: ToolFinished) -> None:
        record = event.record
        outcome = _short(record.result) if record.status == "ok" else _short(record.error)
        arguments = _short(record.arguments)
        self._line(
            f"  ↳ {record.name}({arguments}) {record.status} in {record.duration:.2f} s: {outcome}"
        )

    def _line(self, text: str) -> None:
        self._end_line()
        self._write(self.stream, text + "\n")

    def _end_line(self) -> None:
        """End the line text was left on, on the stream that wrote it."""
        if self._open_line is not None:
            self._write(self._open_line, "\n")
        self._where = ""

    def _write(self, target: TextIO, text: str) -> None:
        if not text:
            return
        target.write(text)
        target.flush()
        self._open_line = None if text.endswith("\n") else target

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
            with contextlib.suppress(ValueError):  # stderr closed under us
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
