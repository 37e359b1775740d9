"""In-process test doubles for the ``Model`` interface (public through ``foxagent.testing``).

``ScriptedModel`` answers from a queue of raw model texts, optionally passed through an emulation
of vLLM's llama3_json parser so the loop sees what a real server would hand it;
``FunctionModel`` answers with whatever a function returns. Both record every request.
"""

from __future__ import annotations

import inspect
from collections import deque
from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

from foxagent._messages import ModelResponse, ModelSettings, Usage
from foxagent._tokens import estimate_tokens
from foxagent.models._base import Model
from foxagent.testing._vllm_llama3_json import server_message

__all__ = ["FunctionModel", "ModelRequest", "ScriptedModel"]

ReplyLike = str | Mapping[str, Any] | ModelResponse
Parser = Literal["prefix", "regex", "brace"] | None


@dataclass(frozen=True, kw_only=True, slots=True)
class ModelRequest:
    """One request a test double received (copies, so later changes do not leak in)."""

    messages: list[dict[str, Any]]
    tools: list[dict[str, Any]]
    settings: ModelSettings


def _to_response(reply: ReplyLike, parser: Parser, finish_reason: str) -> ModelResponse:
    if isinstance(reply, ModelResponse):
        return reply
    if isinstance(reply, Mapping):
        return ModelResponse(message=dict(reply), finish_reason=finish_reason)
    usage = Usage(completion_tokens=estimate_tokens(reply))
    if parser is None:  # what a streaming vLLM client sees for FoxBrain: raw text in content
        message = {"role": "assistant", "content": reply, "tool_calls": []}
        return ModelResponse(message=message, finish_reason=finish_reason, usage=usage)
    message, reported = server_message(reply, generation=parser, engine_finish_reason=finish_reason)
    return ModelResponse(message=message, finish_reason=reported, usage=usage)


class _Recording(Model):
    def __init__(self, parser: Parser) -> None:
        self.parser = parser
        self.requests: list[ModelRequest] = []

    def _record(
        self,
        messages: Sequence[Mapping[str, Any]],
        tools: Sequence[Mapping[str, Any]],
        settings: ModelSettings,
    ) -> ModelRequest:
        request = ModelRequest(
            messages=[dict(m) for m in messages], tools=[dict(t) for t in tools], settings=settings
        )
        self.requests.append(request)
        return request


class ScriptedModel(_Recording):
    """Answers each request with the next scripted reply.

    Args:
        replies: raw model texts (or ready assistant message dicts / ``ModelResponse``s).
        parser: ``"brace"``, ``"regex"`` or ``"prefix"`` to hand the loop what that vLLM parser
            generation would make of the text; ``None`` (default) gives the raw text as content.
        finish_reason: the engine's finish reason for text replies.
    """

    def __init__(
        self,
        replies: Iterable[ReplyLike] = (),
        *,
        parser: Parser = None,
        finish_reason: str = "stop",
    ) -> None:
        super().__init__(parser)
        self.replies: deque[ReplyLike] = deque(replies)
        self.finish_reason = finish_reason

    def add(self, *replies: ReplyLike) -> None:
        """Queue more replies."""
        self.replies.extend(replies)

    async def request(
        self,
        messages: Sequence[Mapping[str, Any]],
        tools: Sequence[Mapping[str, Any]],
        settings: ModelSettings,
    ) -> ModelResponse:
        self._record(messages, tools, settings)
        if not self.replies:
            raise AssertionError(
                f"ScriptedModel has no reply left for request {len(self.requests)}"
            )
        return _to_response(self.replies.popleft(), self.parser, self.finish_reason)

    def assert_complete(self) -> None:
        """Fail if scripted replies were never requested."""
        if self.replies:
            raise AssertionError(f"{len(self.replies)} scripted replies were never requested")


class FunctionModel(_Recording):
    """Answers with ``function(request)`` (sync or async), for replies that depend on the input.

    Args:
        function: takes a `ModelRequest`, returns raw text, a message dict or a response.
        parser: as for `ScriptedModel`.
    """

    def __init__(
        self,
        function: Callable[[ModelRequest], ReplyLike | Awaitable[ReplyLike]],
        *,
        parser: Parser = None,
    ) -> None:
        super().__init__(parser)
        self.function = function

    async def request(
        self,
        messages: Sequence[Mapping[str, Any]],
        tools: Sequence[Mapping[str, Any]],
        settings: ModelSettings,
    ) -> ModelResponse:
        reply = self.function(self._record(messages, tools, settings))
        if inspect.isawaitable(reply):
            reply = await reply
        return _to_response(reply, self.parser, "stop")
