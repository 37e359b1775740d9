"""Session affinity: the id that keeps one conversation on one vLLM replica behind a router.

Each step of a run re-sends the whole prompt, so the replica that served the last step holds
its prefix in cache. Session-affine routers pick the replica from a request header: vllm-router
(``--policy consistent_hash``) and Ray Serve's consistent-hash routing read ``x-session-id``,
vLLM production-stack's session router reads the header it is started with
(``--session-key``), NVIDIA Dynamo reads ``X-Dynamo-Session-ID``.

- The id: a run with a session uses `session_affinity_id` of the session's id (every run of
  the session, in every process, gets the same one); a run without one uses its run id. Every
  request of the run (steps, re-asks, retries) carries it.
- It lives in a context variable set for the run (`run_affinity`), so concurrent runs, each
  in its own task, never see each other's id, and tasks a run starts inherit it.
- The backends (`VLLMModel`, `OpenAIClientModel`) send it under the header names they were
  given (``affinity_headers``; default ``("x-session-id",)``); an empty list sends nothing.

A session's id can be a user's name or an access token, and routers log the key they hash
(vllm-router at INFO), so it is not sent as it is: the header carries a SHA-256 of it (32 hex
digits), stable across processes and machines, which is all a router needs.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from contextlib import AbstractContextManager
from contextvars import ContextVar, Token

__all__ = [
    "DEFAULT_AFFINITY_HEADERS",
    "affinity_header_names",
    "affinity_headers",
    "current_affinity_id",
    "run_affinity",
    "session_affinity_id",
]

DEFAULT_AFFINITY_HEADERS: tuple[str, ...] = ("x-session-id",)
"""What the backends send by default: the header vllm-router and Ray Serve hash on."""

_CURRENT: ContextVar[str | None] = ContextVar("foxagent_affinity_id", default=None)

# RFC 9110 token characters: what a header name may be made of.
_TOKEN = frozenset("!#$%&'*+-.^_`|~0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ")
# Headers the client or the HTTP layer sets itself (the API key among them): never overwritten.
_RESERVED = frozenset(
    {
        "authorization",
        "proxy-authorization",
        "cookie",
        "content-type",
        "content-length",
        "transfer-encoding",
        "connection",
        "host",
    }
)


def affinity_header_names(names: str | Iterable[str] | None) -> tuple[str, ...]:
    """The header names to send the affinity id under (``None`` or empty: none).

    Raises:
        ValueError: a name that is not an HTTP header name, or one the client sets itself.
    """
    if names is None:
        return ()
    listed = [names] if isinstance(names, str) else list(names)
    chosen: list[str] = []
    for name in listed:
        if not isinstance(name, str) or not name or not set(name) <= _TOKEN:
            raise ValueError(f"affinity_headers: {name!r} is not an HTTP header name")
        if name.lower() in _RESERVED:
            raise ValueError(f"affinity_headers: {name!r} is set by the client itself")
        if name.lower() not in {seen.lower() for seen in chosen}:
            chosen.append(name)
    return tuple(chosen)


def session_affinity_id(session_id: str) -> str:
    """The affinity id of a session: a SHA-256 of its id (the id itself is not sent)."""
    return hashlib.sha256(b"foxagent-session\0" + session_id.encode()).hexdigest()[:32]


def current_affinity_id() -> str | None:
    """The affinity id of the run this code runs in, ``None`` outside a run."""
    return _CURRENT.get()


def run_affinity(run_id: str, session_id: str | None = None) -> AbstractContextManager[str]:
    """Within the block, requests carry the session's affinity id, else ``run_id``."""
    return _Affinity(run_id if session_id is None else session_affinity_id(session_id))


class _Affinity:
    """`run_affinity`'s block: a class, not a generator context manager (a µs less per run)."""

    __slots__ = ("_token", "_value")

    def __init__(self, value: str) -> None:
        self._value = value
        self._token: Token[str | None] | None = None

    def __enter__(self) -> str:
        self._token = _CURRENT.set(self._value)
        return self._value

    def __exit__(self, *exc_info: object) -> None:
        if self._token is not None:
            _CURRENT.reset(self._token)
            self._token = None


def affinity_headers(names: tuple[str, ...]) -> dict[str, str] | None:
    """The headers for one request: each name with the current id (``None``: nothing to send)."""
    value = _CURRENT.get()
    if value is None or not names:
        return None
    return dict.fromkeys(names, value)
