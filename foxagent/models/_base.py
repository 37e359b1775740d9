"""The ``Model`` interface every backend implements."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Mapping, Sequence
from types import TracebackType
from typing import Any

from foxagent._messages import ModelResponse, ModelSettings

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
