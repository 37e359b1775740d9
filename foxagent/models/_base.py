"""The ``Model`` interface every backend implements."""

from __future__ import annotations

import json
from abc import ABC, abstractmethod
from collections.abc import AsyncIterator, Mapping, Sequence
from types import TracebackType
from typing import Any

from foxagent._messages import ModelResponse, ModelSettings, StreamEnd, StreamEvent, TextDelta
from foxagent._tokens import estimate_tokens

__all__ = ["Model"]


class Model(ABC):
    """Something that answers a chat-completion request with one assistant message.

    Backends translate their own transport errors into foxagent's ``ModelError`` family, so the
    loop above them never sees httpx, aiohttp or openai exceptions.
    """

    @abstractmethod
    async def request(
        self,
        messages: Sequence[Mapping[str, Any]],
        tools: Sequence[Mapping[str, Any]],
        settings: ModelSettings,
    ) -> ModelResponse:
        """Send the conversation and the tool schemas; return the assistant's reply."""

    async def stream(
        self,
        messages: Sequence[Mapping[str, Any]],
        tools: Sequence[Mapping[str, Any]],
        settings: ModelSettings,
    ) -> AsyncIterator[StreamEvent]:
        """Stream the reply: text and tool-call deltas, then ``StreamEnd`` with the whole reply.

        The default makes one non-streaming request and replays it as one text delta, so every
        backend can be used where streaming is asked for.
        """
        response = await self.request(messages, tools, settings)
        content = response.message.get("content")
        if isinstance(content, str) and content:
            yield TextDelta(text=content)
        yield StreamEnd(response=response)

    async def count_tokens(
        self, messages: Sequence[Mapping[str, Any]], tools: Sequence[Mapping[str, Any]]
    ) -> int:
        """How many prompt tokens ``messages`` and ``tools`` cost; the default estimates
        (about four characters a token, one a Chinese character)."""
        text = json.dumps(list(messages), ensure_ascii=False, default=str)
        return estimate_tokens(text + json.dumps(list(tools), ensure_ascii=False))

    async def aclose(self) -> None:  # noqa: B027 - optional hook, most test doubles hold nothing
        """Release connections (the default holds none)."""

    async def __aenter__(self) -> Model:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        await self.aclose()
