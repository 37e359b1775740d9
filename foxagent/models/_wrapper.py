"""Behaviour that wraps any backend instead of living inside one.

* `WrapperModel` hands every call to the model it wraps; subclasses change one thing.
* `RetryingModel` retries failed requests by a `RetryPolicy` and reports each retry.
* `ConcurrencyLimitedModel` lets at most N requests of the wrapped model run at once; the others
  wait their turn, in order, instead of failing.

They compose: ``RetryingModel(ConcurrencyLimitedModel(model, 8))`` takes a place for each
attempt, so a request waiting to retry does not hold one.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Mapping, Sequence
from typing import Any

from foxagent._exceptions import ModelError, UserError
from foxagent._messages import ModelResponse, ModelRetry, ModelSettings, StreamEvent
from foxagent.models._base import Model
from foxagent.models._retry import RetryPolicy, report_retry

__all__ = ["ConcurrencyLimitedModel", "RetryingModel", "WrapperModel"]


class WrapperModel(Model):
    """A model that passes everything to ``wrapped`` (subclass it to change one behaviour)."""

    def __init__(self, wrapped: Model) -> None:
        self.wrapped = wrapped

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.wrapped!r})"

    def __getattr__(self, name: str) -> Any:
        # `model_name`, `base_url` and other backend attributes read through the wrapper.
        if name == "wrapped":  # not set yet (during unpickling, say): no recursion
            raise AttributeError(name)
        return getattr(self.wrapped, name)

    async def request(
        self,
        messages: Sequence[Mapping[str, Any]],
        tools: Sequence[Mapping[str, Any]],
        settings: ModelSettings,
    ) -> ModelResponse:
        return await self.wrapped.request(messages, tools, settings)

    async def stream(
        self,
        messages: Sequence[Mapping[str, Any]],
        tools: Sequence[Mapping[str, Any]],
        settings: ModelSettings,
    ) -> AsyncIterator[StreamEvent]:
        async for event in self.wrapped.stream(messages, tools, settings):
            yield event

    async def count_tokens(
        self, messages: Sequence[Mapping[str, Any]], tools: Sequence[Mapping[str, Any]]
    ) -> int:
        return await self.wrapped.count_tokens(messages, tools)

    async def aclose(self) -> None:
        await self.wrapped.aclose()


class RetryingModel(WrapperModel):
    """Retries the wrapped model's failed requests (see `RetryPolicy` for which and when).

    A stream is retried only before its first event: after that, text has been passed on.

    Args:
        wrapped: the backend.
        max_retries: retries after the first attempt.
        backoff: the first retry's delay in seconds; doubled each time, with jitter.
    """

    def __init__(self, wrapped: Model, *, max_retries: int = 3, backoff: float = 0.5) -> None:
        super().__init__(wrapped)
        self.policy = RetryPolicy(max_retries, backoff)

    async def request(
        self,
        messages: Sequence[Mapping[str, Any]],
        tools: Sequence[Mapping[str, Any]],
        settings: ModelSettings,
    ) -> ModelResponse:
        attempt = 0
        while True:
            try:
                return await self.wrapped.request(messages, tools, settings)
            except ModelError as error:
                await self._wait(error, attempt)
            attempt += 1

    async def stream(
        self,
        messages: Sequence[Mapping[str, Any]],
        tools: Sequence[Mapping[str, Any]],
        settings: ModelSettings,
    ) -> AsyncIterator[StreamEvent]:
        attempt = 0
        while True:
            started = False
            try:
                async for event in self.wrapped.stream(messages, tools, settings):
                    started = True
                    yield event
                return
            except ModelError as error:
                if started:
                    raise
                await self._wait(error, attempt)
            attempt += 1

    async def _wait(self, error: ModelError, attempt: int) -> None:
        """Sleep before the next attempt, or re-raise ``error`` when there is none."""
        delay = self.policy.delay(error, attempt)
        if delay is None:
            raise error
        report_retry(ModelRetry(attempt=attempt + 1, delay=delay, reason=str(error)))
        await asyncio.sleep(delay)


class ConcurrencyLimitedModel(WrapperModel):
    """At most ``limit`` requests (streams included) of the wrapped model at once.

    Args:
        wrapped: the backend.
        limit: requests in flight; more wait their turn, in order.
    """

    def __init__(self, wrapped: Model, limit: int) -> None:
        if limit < 1:
            raise UserError(f"ConcurrencyLimitedModel needs a limit of at least 1, got {limit}.")
        super().__init__(wrapped)
        self.limit = limit
        self._slots: asyncio.Semaphore | None = None
        self._slots_loop: asyncio.AbstractEventLoop | None = None

    async def request(
        self,
        messages: Sequence[Mapping[str, Any]],
        tools: Sequence[Mapping[str, Any]],
        settings: ModelSettings,
    ) -> ModelResponse:
        async with self._semaphore():
            return await self.wrapped.request(messages, tools, settings)

    async def stream(
        self,
        messages: Sequence[Mapping[str, Any]],
        tools: Sequence[Mapping[str, Any]],
        settings: ModelSettings,
    ) -> AsyncIterator[StreamEvent]:
        async with self._semaphore():
            async for event in self.wrapped.stream(messages, tools, settings):
                yield event

    def _semaphore(self) -> asyncio.Semaphore:
        # A semaphore belongs to one event loop; each sync `Agent.run()` starts a new one.
        loop = asyncio.get_running_loop()
        if self._slots is None or self._slots_loop is not loop:
            self._slots, self._slots_loop = asyncio.Semaphore(self.limit), loop
        return self._slots
