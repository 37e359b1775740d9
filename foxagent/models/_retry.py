"""Retrying model requests, and telling the run that waits about each retry.

Two parts, so every backend can have the same retries:

* `RetryPolicy` decides whether a failure is worth another attempt and how long to wait:
  429, 408, 409 and 5xx answers, connection errors and timeouts are; other HTTP statuses and
  replies that are not chat completions are not. ``Retry-After`` is honoured (up to 60 s);
  otherwise the delay doubles per attempt, with jitter that spreads the retries of many runs.
* `report_retry` is how a backend says it is about to retry. The run awaiting the request
  installed a listener with `reporting_retries`; it receives the notice as a ``ModelRetry``
  event. The listener is context-local (like OpenTelemetry's current span), so concurrent runs
  in one process never see each other's retries, and a backend never imports the loop.

`RetryingModel` (``foxagent.models._wrapper``) applies a policy to any backend; ``VLLMModel``
applies its own per attempt, inside its concurrency cap.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from typing import Any

from foxagent._exceptions import ModelConnectionError, ModelError, ModelHTTPError
from foxagent._messages import ModelRetry

__all__ = ["RetryListener", "RetryPolicy", "report_retry", "reporting_retries"]

RETRY_STATUSES = frozenset({408, 409, 429, 500, 502, 503, 504})

#: Receives each retry of the requests made inside `reporting_retries`.
RetryListener = Callable[[ModelRetry], Any]

_LISTENER: ContextVar[RetryListener | None] = ContextVar("foxagent_retry_listener", default=None)


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    """How often and how long to wait before retrying a failed model request.

    Attributes:
        max_retries: retries after the first attempt.
        backoff: the first retry's delay in seconds; doubled each time, with jitter.
    """

    max_retries: int = 3
    backoff: float = 0.5

    def delay(self, error: ModelError, attempt: int) -> float | None:
        """Seconds to wait before retry ``attempt + 1`` after ``error``; ``None``: give up."""
        if attempt >= self.max_retries:
            return None
        if isinstance(error, ModelHTTPError):
            if error.status not in RETRY_STATUSES:
                return None
            if error.retry_after is not None:
                return error.retry_after
        elif not isinstance(error, ModelConnectionError):
            return None
        jitter = 0.5 + random.random()  # spreads the retries of many concurrent runs
        return float(self.backoff * (2**attempt) * jitter)


def report_retry(notice: ModelRetry) -> None:
    """Tell the run awaiting this request that it is retried (nothing happens without one)."""
    listener = _LISTENER.get()
    if listener is not None:
        listener(notice)


@contextmanager
def reporting_retries(listener: RetryListener | None) -> Iterator[None]:
    """Send the retries of the requests made inside the ``with`` block to ``listener``."""
    token = _LISTENER.set(listener)
    try:
        yield
    finally:
        _LISTENER.reset(token)
