"""Retrying model requests, and telling the run that waits about each retry.

Two parts, so every backend can have the same retries:

* `RetryPolicy` decides whether a failure is worth another attempt and how long to wait:
  429, 408, 409 and 5xx answers, connection errors, timeouts and replies that broke on the way
  (a 200 whose body is cut short or is not JSON, marked with `garbled`) are; other HTTP statuses
  and replies that parse but are not chat completions are not (the same request would get the
  same answer). ``Retry-After`` is honoured (up to 60 s); otherwise the delay doubles per
  attempt, with jitter that spreads the retries of many runs. With a ``budget``, no wait ends
  (so no retry starts) later than that many seconds after the first attempt began.
* `report_retry` is how a backend says it is about to retry. The run awaiting the request
  installed a listener with `reporting_retries`; it receives the notice as a ``ModelRetry``
  event. The listener is context-local (like OpenTelemetry's current span), so concurrent runs
  in one process never see each other's retries, and a backend never imports the loop.

`RetryingModel` (``foxagent.models._wrapper``) applies a policy to any backend; ``VLLMModel``
applies its own per attempt, inside its concurrency cap.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from contextlib import AbstractContextManager
from contextvars import ContextVar, Token
from dataclasses import dataclass
from typing import Any

from foxagent._exceptions import (
    ModelConnectionError,
    ModelError,
    ModelHTTPError,
    ModelResponseError,
)
from foxagent._messages import ModelRetry

__all__ = [
    "RetryListener",
    "RetryPolicy",
    "garbled",
    "is_garbled",
    "report_retry",
    "reporting_retries",
]

RETRY_STATUSES = frozenset({408, 409, 429, 500, 502, 503, 504})

#: Receives each retry of the requests made inside `reporting_retries`.
RetryListener = Callable[[ModelRetry], Any]

_LISTENER: ContextVar[RetryListener | None] = ContextVar("foxagent_retry_listener", default=None)

# An attribute, not a subclass: callers (and the load tests) tell errors apart by class, and a
# garbled reply is still a ModelResponseError to them.
_GARBLED = "_foxagent_garbled"


def garbled(error: ModelResponseError) -> ModelResponseError:
    """Mark ``error`` as a reply that broke on the way, so `RetryPolicy` retries it like a 5xx.

    For transport-level garbage only: a 200 whose body (or stream line) is cut short or is not
    JSON at all, what a crashed worker or a proxy that closed mid-answer leaves. A reply that
    parses but is not a chat completion stays unmarked: the server meant it, and asking again
    gets the same answer.
    """
    setattr(error, _GARBLED, True)
    return error


def is_garbled(error: BaseException) -> bool:
    """Whether ``error`` was marked by `garbled`."""
    return getattr(error, _GARBLED, False) is True


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    """How often and how long to wait before retrying a failed model request.

    Attributes:
        max_retries: retries after the first attempt.
        backoff: the first retry's delay in seconds; doubled each time, with jitter.
        budget: seconds after the first attempt's start by which a retry must have begun; a
            wait that would end later (a long ``Retry-After``, say) gives up instead of waiting.
            ``None``: no such limit, only ``max_retries``.
    """

    max_retries: int = 3
    backoff: float = 0.5
    budget: float | None = None

    def delay(self, error: ModelError, attempt: int, *, elapsed: float = 0.0) -> float | None:
        """Seconds to wait before retry ``attempt + 1`` after ``error``; ``None``: give up.

        ``elapsed`` is the time since the first attempt began (checked against ``budget``).
        """
        if attempt >= self.max_retries:
            return None
        wait: float | None = None
        if isinstance(error, ModelHTTPError):
            if error.status not in RETRY_STATUSES:
                return None
            wait = error.retry_after
        elif isinstance(error, ModelResponseError):
            if not is_garbled(error):
                return None
        elif not isinstance(error, ModelConnectionError):
            return None
        if wait is None:
            jitter = 0.5 + random.random()  # spreads the retries of many concurrent runs
            wait = float(self.backoff * (2**attempt) * jitter)
        if self.budget is not None and elapsed + wait >= self.budget:
            return None
        return wait


def report_retry(notice: ModelRetry) -> None:
    """Tell the run awaiting this request that it is retried (nothing happens without one)."""
    listener = _LISTENER.get()
    if listener is not None:
        listener(notice)


def reporting_retries(listener: RetryListener | None) -> AbstractContextManager[None]:
    """Send the retries of the requests made inside the ``with`` block to ``listener``."""
    return _Reporting(listener)


class _Reporting:
    """`reporting_retries`' block: a class, not a generator context manager (a µs less per
    run)."""

    __slots__ = ("_listener", "_token")

    def __init__(self, listener: RetryListener | None) -> None:
        self._listener = listener
        self._token: Token[RetryListener | None] | None = None

    def __enter__(self) -> None:
        self._token = _LISTENER.set(self._listener)

    def __exit__(self, *exc_info: object) -> None:
        if self._token is not None:
            _LISTENER.reset(self._token)
            self._token = None
