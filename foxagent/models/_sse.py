"""Reading a streamed chat completion: server-sent event lines, then one message.

`LineSplitter` cuts the stream's bytes into lines and holds the stream and each line to their
caps; `StreamAssembler` turns each ``data:`` line into events (text and tool-call deltas) and, at
the end, into the same `ModelResponse` a reply that was not streamed gives.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from foxagent._exceptions import ModelResponseError
from foxagent._json_text import loads_json
from foxagent._messages import ModelResponse, StreamEvent, TextDelta, ToolCallDelta, Usage
from foxagent.models._generated import GeneratedTokens
from foxagent.models._retry import garbled

__all__ = ["LineSplitter", "StreamAssembler", "too_large"]


def too_large(url: str, limit: int) -> ModelResponseError:
    """The error for a reply from ``url`` over ``max_response_bytes``."""
    return ModelResponseError(
        f"The reply from {url} is larger than max_response_bytes ({limit:,} bytes); "
        "pass VLLMModel(max_response_bytes=...) a larger number if replies this long are expected"
    )


class LineSplitter:
    """Splits a stream's bytes into lines, holding the stream and each line to their caps."""

    def __init__(self, url: str, max_bytes: int, max_line_bytes: int) -> None:
        self._url = url
        self._max_bytes = max_bytes
        self._max_line = max_line_bytes
        self._received = 0
        self._pending = bytearray()  # the start of a line whose end has not arrived yet

    def feed(self, data: bytes) -> list[bytes]:
        """The lines ``data`` completes (without their ``\n``)."""
        self._received += len(data)
        if self._received > self._max_bytes:
            raise too_large(self._url, self._max_bytes)
        lines = data.split(b"\n")
        if len(lines) == 1:  # no line ends here
            self._pending += data
            self._check(len(self._pending))
            return []
        if self._pending:
            self._pending += lines[0]
            lines[0] = bytes(self._pending)
        self._pending = bytearray(lines.pop())
        for line in lines:
            self._check(len(line))
        self._check(len(self._pending))
        return lines

    def rest(self) -> bytes:
        """The last line, when the stream did not end with ``\n``."""
        return bytes(self._pending)

    def _check(self, size: int) -> None:
        if size > self._max_line:
            raise ModelResponseError(
                f"A line of the stream from {self._url} is longer than max_stream_line_bytes "
                f"({self._max_line:,} bytes); pass VLLMModel(max_stream_line_bytes=...) a larger "
                "number if chunks this long are expected"
            )


class StreamAssembler:
    """Turns SSE lines into events and, at the end, into one assistant message."""

    def __init__(self) -> None:
        self.started = False
        self._text: list[str] = []
        self._calls: dict[int, dict[str, Any]] = {}
        self._finish_reason: str | None = None
        self._usage = Usage()
        self._model = ""
        self._generated = GeneratedTokens()

    @property
    def finished(self) -> bool:
        """A chunk carried the reply's finish_reason."""
        return self._finish_reason is not None

    def feed(self, line: bytes) -> list[StreamEvent]:
        line = line.strip()
        if not line.startswith(b"data:"):
            return []
        payload = line[5:].strip()
        if payload == b"[DONE]":
            return []
        try:
            chunk = loads_json(payload)
        except ValueError:
            # A line cut short or not JSON: broken on the way (retried before the first chunk).
            raise garbled(ModelResponseError(f"bad stream chunk: {payload[:200]!r}")) from None
        self.started = True
        try:
            self._model = str(chunk.get("model") or self._model)
            if chunk.get("usage"):
                self._usage = Usage.from_wire(chunk["usage"])
            events: list[StreamEvent] = []
            for choice in chunk.get("choices") or ():
                events.extend(self._choice(choice))
        except (AttributeError, TypeError, ValueError):
            # JSON, but not a chat-completion chunk (a list, a number, choices of strings...).
            raise ModelResponseError(f"not a chat completion chunk: {payload[:200]!r}") from None
        return events

    def _choice(self, choice: Mapping[str, Any]) -> list[StreamEvent]:
        if choice.get("finish_reason"):
            self._finish_reason = choice["finish_reason"]
        self._generated.add(choice.get("logprobs"))
        delta = choice.get("delta") or {}
        events: list[StreamEvent] = []
        text = delta.get("content")
        if text is not None and not isinstance(text, str):
            raise TypeError(f"content is {type(text).__name__}")  # reported as a bad chunk
        if text:
            self._text.append(text)
            events.append(TextDelta(text=text))
        for call in delta.get("tool_calls") or ():
            events.append(self._tool_call(call))
        return events

    def _tool_call(self, call: Mapping[str, Any]) -> ToolCallDelta:
        index = int(call.get("index") or 0)
        function = call.get("function") or {}
        slot = self._calls.setdefault(index, {"id": None, "name": None, "arguments": []})
        slot["id"] = slot["id"] or call.get("id")
        slot["name"] = slot["name"] or function.get("name")
        fragment = function.get("arguments") or ""  # vLLM sends "" fragments too
        if not isinstance(fragment, str):
            raise TypeError(f"arguments are {type(fragment).__name__}")  # reported as a bad chunk
        slot["arguments"].append(fragment)
        return ToolCallDelta(
            index=index, id=call.get("id"), name=function.get("name"), arguments=fragment
        )

    def response(self) -> ModelResponse:
        calls = [
            {
                "id": slot["id"] or "",
                "type": "function",
                "function": {"name": slot["name"] or "", "arguments": "".join(slot["arguments"])},
            }
            for _, slot in sorted(self._calls.items())
        ]
        content = "".join(self._text) if self._text or not calls else None
        message = {"role": "assistant", "content": content, "tool_calls": calls}
        return ModelResponse(
            message=message,
            finish_reason=self._finish_reason,
            usage=self._usage,
            model=self._model,
            generated_text=self._generated.text(),
        )
