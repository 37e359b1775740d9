"""The default backend: a vLLM (or any OpenAI-compatible) server over a lean HTTP client.

Why not the openai SDK or httpx: measured on a 2-core machine (issue 4), one tool call plus a
final answer against a local stub costs ~0.6–0.9 ms of CPU per run on a hand-written aiohttp
loop, ~3 ms on httpx and ~6 ms on the openai SDK. Replies read whole (every request that is not
streamed, ``http://`` or ``https://``) go through foxagent's own keep-alive HTTP/1.1 client
(``foxagent.models._http1``), which costs about 40 % of aiohttp's CPU per request (issue 18);
streams use aiohttp. A backend that embeds thousands of runs in one process cannot give that
away. Users who already hold an ``openai.AsyncOpenAI`` client can still bring it (a separate
adapter); this module is the hot path.

Behaviour:
- ``base_url`` from the argument, else ``FOXAGENT_BASE_URL``, else ``OPENAI_BASE_URL``, else
  ``http://127.0.0.1:8883/v1`` (``DEFAULT_BASE_URL``: the port ``foxagent serve`` and FoxBrain's
  guide use); the API key from the argument, else ``FOXAGENT_API_KEY``, else
  ``OPENAI_API_KEY``. The key is sent as a bearer token and never appears in reprs or errors.
- ``model_name=None`` asks the server's ``/models`` once and uses the first served model.
- Retries with exponential backoff (honouring ``Retry-After``) on 429, 5xx, connection errors,
  timeouts and 200 replies that broke on the way (body cut short or not JSON), within a total
  ``retry_budget``; other statuses, replies that parse but are not chat completions and replies
  over the size caps fail at once. A stream is retried only before its first chunk was read.
  Every transport error becomes a ``ModelError``.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import ssl
import urllib.parse
import uuid
from collections.abc import AsyncIterator, Mapping, Sequence
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any

import orjson

from foxagent._affinity import DEFAULT_AFFINITY_HEADERS, affinity_header_names, affinity_headers
from foxagent._environment import DEFAULT_BASE_URL, first_env
from foxagent._exceptions import (
    ModelConnectionError,
    ModelError,
    ModelHTTPError,
    ModelResponseError,
    ModelTimeoutError,
    UserError,
)
from foxagent._json_text import compact_json, loads_json
from foxagent._messages import (
    ModelResponse,
    ModelRetry,
    ModelSettings,
    StreamEnd,
    StreamEvent,
    Usage,
)
from foxagent.models._base import Model
from foxagent.models._generated import generated_text
from foxagent.models._http1 import Http1Pool, ReplyTooLarge, TransportError
from foxagent.models._retry import RetryPolicy, garbled, report_retry
from foxagent.models._sse import LineSplitter, StreamAssembler, too_large

if TYPE_CHECKING:
    import aiohttp  # imported when first used: an http:// server never needs it (streams do)

__all__ = ["DEFAULT_BASE_URL", "VLLMModel", "resolve_endpoint"]

_MIB = 1024 * 1024
# An error status's body is only read for its message (500 characters of it are kept).
_MAX_ERROR_BYTES = 64 * 1024
# What the lean client adds to the session's headers (aiohttp adds its own equivalents).
_LEAN_HEADERS = {"User-Agent": "foxagent", "Accept": "application/json"}


def resolve_endpoint(base_url: str | None, api_key: str | None) -> tuple[str, str | None]:
    """The server URL and key from the arguments, else the environment (module docstring)."""
    url = base_url or first_env("FOXAGENT_BASE_URL", "OPENAI_BASE_URL") or DEFAULT_BASE_URL
    key = api_key if api_key is not None else first_env("FOXAGENT_API_KEY", "OPENAI_API_KEY")
    return url.rstrip("/"), key


class VLLMModel(Model):
    """A chat-completions client for vLLM's OpenAI-compatible server.

    Args:
        base_url: the server's ``/v1`` URL (see the module docstring for the defaults).
        api_key: the server's ``--api-key`` (see the module docstring for the defaults).
        model_name: the served model's name; ``None`` asks the server.
        timeout: seconds one attempt may take in all, generation included (a reply that is
            not streamed arrives in one piece after generation, so this is its only limit).
        connect_timeout: seconds to open a TCP connection (waiting for a free connection of
            the pool is not counted; ``timeout`` bounds it).
        read_timeout: seconds a stream may go silent (no byte at all) before the attempt
            fails as a timeout; ``None``: no such limit. Not used without streaming.
        retry_budget: seconds, from the first attempt's start, within which retries happen: no
            retry starts later, no wait before one ends later (a ``Retry-After`` past it fails
            at once), and a retry's attempt is cut at it. The first attempt always gets the
            whole ``timeout``, so one request takes at most ``max(timeout, retry_budget)``
            seconds (and any wait for a place among ``max_concurrent_requests``). ``None``:
            only ``max_retries`` limits the retries.
        max_retries: retries after the first attempt, for retryable failures.
        backoff: the first retry's delay in seconds; doubled each time, with jitter.
        max_response_bytes: the most bytes one reply may have: a whole body, or all the lines
            of a stream together. A larger reply fails with ``ModelResponseError`` (not
            retried: the same request would get the same reply).
        max_stream_line_bytes: the most bytes one line of a stream (one server-sent event's
            ``data:`` line) may have; a longer one fails the same way.
        max_connections: the connection pool's size.
        max_concurrent_requests: chat requests this model sends at once; more wait their turn
            (in order) instead of failing. ``None``: as many as the pool allows. One vLLM
            deployment shared by thousands of runs in a process is the case for it.
        affinity_headers: header names that carry the run's session-affinity id on every
            request (the session's when the run has one, else the run's; see
            ``foxagent._affinity``), for routers that keep a conversation on one replica
            (vllm-router and Ray Serve read ``x-session-id``, NVIDIA Dynamo
            ``X-Dynamo-Session-ID``). ``None`` or empty: no such header.
    """

    def __init__(
        self,
        base_url: str | None = None,
        api_key: str | None = None,
        model_name: str | None = None,
        *,
        # A reply that is not streamed comes in one piece after generation: 2,048 tokens (the
        # default max_tokens) of a 70B model on a busy server take a minute or two, so an
        # attempt needs minutes, and without streaming nothing can tell a stall sooner.
        timeout: float = 300.0,
        # Opening a TCP connection takes milliseconds; 5 s leaves room for two lost SYNs (Linux
        # resends after 1 s and 3 s). The openai SDK uses 5 s too. It was 10 s and counted the
        # wait for a free pooled connection as well, so runs that only queued for a busy pool
        # could fail.
        connect_timeout: float = 5.0,
        # vLLM sends a chunk per token once generation runs; before the first one a stream
        # waits for the queue and the prefill (seconds, tens of seconds on a loaded server with
        # a long prompt). A minute of silence is a stall, not a slow token.
        read_timeout: float | None = 60.0,
        # One request takes at most max(timeout, retry_budget) = 5 minutes, not 20 (300 s x 4
        # attempts): room for the backoff schedule (~5 s), a 60 s Retry-After (the cap) and a
        # stalled stream retried a few times; longer than that is an outage to report, not a
        # blip to hide, and a service can set less.
        retry_budget: float | None = 300.0,
        max_retries: int = 3,
        backoff: float = 0.5,
        # A chat completion is a few KiB; 16 MiB holds a 32k-token reply (vLLM's longest
        # context) with room to spare, streamed (~220 bytes of SSE per token) or not. A 50 MB
        # body used to cost ~440 MB of memory on its way to a dict.
        max_response_bytes: int = 16 * _MIB,
        # One SSE line is one chunk, a token or a tool-call fragment (~0.2-1 KiB); 1 MiB fits
        # a whole tool call's arguments sent at once and stops a line that never ends.
        max_stream_line_bytes: int = _MIB,
        max_connections: int = 512,
        max_concurrent_requests: int | None = None,
        affinity_headers: str | Sequence[str] | None = DEFAULT_AFFINITY_HEADERS,
    ) -> None:
        self.base_url, self._api_key = resolve_endpoint(base_url, api_key)
        try:
            self.affinity_headers = affinity_header_names(affinity_headers)
        except ValueError as error:
            raise UserError(f"VLLMModel: {error}") from None
        self.model_name = model_name
        self.max_retries = max_retries
        self.backoff = backoff
        for name, value in (
            ("timeout", timeout),
            ("connect_timeout", connect_timeout),
            ("read_timeout", read_timeout),
            ("retry_budget", retry_budget),
            ("max_response_bytes", max_response_bytes),
            ("max_stream_line_bytes", max_stream_line_bytes),
        ):
            if value is not None and not value > 0:
                raise UserError(f"VLLMModel({name}=...) must be positive, got {value!r}.")
        self.retry_budget = retry_budget
        self.max_response_bytes = max_response_bytes
        self.max_stream_line_bytes = max_stream_line_bytes
        self._timeout = _Timeout(timeout, connect_timeout)
        self._stream_timeout = _Timeout(timeout, connect_timeout, read_timeout)
        self._max_connections = max_connections
        if max_concurrent_requests is not None and max_concurrent_requests < 1:
            raise UserError(
                f"max_concurrent_requests must be at least 1, got {max_concurrent_requests}."
            )
        self.max_concurrent_requests = max_concurrent_requests
        self._slots: asyncio.Semaphore | None = None
        self._templates: dict[tuple[int, int, str, bool], _Template] = {}
        self._fragments: dict[str, orjson.Fragment] = {}  # system prompts, encoded
        self._session: aiohttp.ClientSession | None = None
        self._session_loop: asyncio.AbstractEventLoop | None = None
        # Replies read whole from an http:// server go through the lean client (_http1).
        self._origin = _lean_origin(self.base_url)
        self._tls: ssl.SSLContext | None = None  # made once, for an https:// server
        self._pool: Http1Pool | None = None
        self._pool_loop: asyncio.AbstractEventLoop | None = None

    def __repr__(self) -> str:
        key = "set" if self._api_key else "none"
        return (
            f"VLLMModel(base_url={self.base_url!r}, model_name={self.model_name!r}, api_key={key})"
        )

    async def request(
        self,
        messages: Sequence[Mapping[str, Any]],
        tools: Sequence[Mapping[str, Any]],
        settings: ModelSettings,
    ) -> ModelResponse:
        payload = await self._payload(messages, tools, settings, stream=False)
        data = await self._call("POST", "/chat/completions", payload, slotted=True)
        return _parse_completion(data)

    async def stream(
        self,
        messages: Sequence[Mapping[str, Any]],
        tools: Sequence[Mapping[str, Any]],
        settings: ModelSettings,
    ) -> AsyncIterator[StreamEvent]:
        """Stream a reply as server-sent events (retries only before the first chunk)."""
        import aiohttp

        payload = await self._payload(messages, tools, settings, stream=True)
        url = self.base_url + "/chat/completions"
        assembler = StreamAssembler()
        started = asyncio.get_running_loop().time()
        attempt = 0
        while True:
            timeout = self._attempt_timeout(self._stream_timeout, attempt, started)
            try:
                async with (
                    self._slot(),
                    self._client().post(
                        url, data=payload, timeout=timeout.aiohttp(), headers=self._affinity()
                    ) as response,
                ):
                    if response.status >= 400:
                        raw = await _read_capped(response, _MAX_ERROR_BYTES, url, truncate=True)
                        raise _http_error(
                            response.status,
                            raw.decode("utf-8", "replace"),
                            response.headers.get("Retry-After"),
                        )
                    lines = LineSplitter(url, self.max_response_bytes, self.max_stream_line_bytes)
                    async for data in response.content.iter_any():
                        for line in lines.feed(data):
                            for event in assembler.feed(line):
                                yield event
                    for event in assembler.feed(lines.rest()):
                        yield event
                    if not assembler.finished:
                        # A complete reply ends with a finish_reason; a body that just stops
                        # (empty, not SSE, cut) would otherwise pass for a short answer.
                        raise ModelConnectionError(
                            f"The stream from {url} ended before the reply was finished"
                        )
                break
            except (asyncio.TimeoutError, aiohttp.ClientError) as error:
                failure = _stream_failure(url, error)
                delay = None if assembler.started else self._retry_delay(failure, attempt, started)
                if delay is None:
                    if isinstance(failure, ModelConnectionError):
                        failure.mid_stream = assembler.started
                    raise failure from None
                report_retry(ModelRetry(attempt=attempt + 1, delay=delay, reason=str(failure)))
            except ModelError as error:
                # Nothing has been passed on before the first chunk, so only then is a retry safe.
                delay = None if assembler.started else self._retry_delay(error, attempt, started)
                if delay is None:
                    if isinstance(error, ModelConnectionError):
                        error.mid_stream = assembler.started
                    raise
                report_retry(ModelRetry(attempt=attempt + 1, delay=delay, reason=str(error)))
            attempt += 1
            await asyncio.sleep(delay)
        yield StreamEnd(response=assembler.response())

    async def _body(
        self,
        messages: Sequence[Mapping[str, Any]],
        tools: Sequence[Mapping[str, Any]],
        settings: ModelSettings,
        *,
        stream: bool = False,
    ) -> dict[str, Any]:
        """The request as a dict (`_payload` sends the same JSON, encoded faster)."""
        model = self.model_name or await self.served_model()
        return _request_body(model, list(messages), tools, settings, stream=stream)

    async def _payload(
        self,
        messages: Sequence[Mapping[str, Any]],
        tools: Sequence[Mapping[str, Any]],
        settings: ModelSettings,
        *,
        stream: bool,
    ) -> bytes:
        """``compact_json(await self._body(...))``, byte for byte, with the part that does not
        change between requests (model, settings, tool schemas) encoded once: the cached
        `_Template` is split where the messages go, and only the messages are encoded per
        request (a system prompt as long as FoxBrain's once per prompt, as an orjson fragment).

        The cache holds the ``tools`` list and ``settings`` themselves and is used only for
        those very objects: ``Agent`` sends ``Toolset.schemas``, a new list whenever the tools
        change, and frozen settings (a list changed in place would be sent stale: don't).
        """
        model = self.model_name or await self.served_model()
        key = (id(settings), id(tools), model, stream)
        template = self._templates.get(key)
        if template is None or template.settings is not settings or template.tools is not tools:
            if len(self._templates) >= 16:
                self._templates.clear()
            template = _Template(model, tools, settings, stream=stream)
            self._templates[key] = template
        return template.encode(messages, self._fragments)

    async def count_tokens(
        self, messages: Sequence[Mapping[str, Any]], tools: Sequence[Mapping[str, Any]]
    ) -> int:
        """The prompt's exact length from vLLM's ``/tokenize`` (chat template applied); an
        estimate when the server has no such endpoint or it fails."""
        body: dict[str, Any] = {"model": self.model_name or await self.served_model()}
        body |= {"messages": list(messages), "tools": list(tools) or None}
        try:
            raw = await self._tokenize(compact_json(body))
            data = loads_json(raw) if raw else {}
        except ValueError:
            data = {}
        count = data.get("count") if isinstance(data, dict) else None
        if isinstance(count, int):
            return count
        return await super().count_tokens(messages, tools)

    async def _tokenize(self, payload: bytes) -> bytes:
        """The body of ``/tokenize``'s 200 reply; ``b""`` for any other outcome."""
        pool = self._lean_pool()
        if pool is not None:  # a session compacting its history asks before every run
            assert self._origin is not None
            target = self._origin[3].removesuffix("/v1") + "/tokenize"
            limit = self.max_response_bytes
            try:
                reply = await pool.request(
                    "POST",
                    target,
                    payload,
                    limit=limit,
                    error_limit=1024,
                    timeout=self._timeout.total,
                )
            except (TransportError, asyncio.TimeoutError):
                return b""
            return reply.body if reply.status == 200 else b""
        import aiohttp

        url = self.base_url.removesuffix("/v1") + "/tokenize"
        try:
            async with self._client().post(url, data=payload) as response:
                ok = response.status == 200
                return await _read_capped(response, self.max_response_bytes, url) if ok else b""
        except (aiohttp.ClientError, asyncio.TimeoutError, ModelResponseError):
            return b""

    async def served_model(self) -> str:
        """The first model the server serves (cached as ``model_name``)."""
        if self.model_name is None:
            data = await self._call("GET", "/models", None)
            try:
                self.model_name = str(data["data"][0]["id"])
            except (KeyError, IndexError, TypeError):
                raise ModelResponseError(f"{self.base_url}/models lists no model") from None
        return self.model_name

    async def aclose(self) -> None:
        pool, self._pool = self._pool, None
        if pool is not None:
            await pool.aclose()
        session, self._session = self._session, None
        if session is not None and not session.closed:
            await session.close()

    def _headers(self) -> dict[str, str]:
        headers = {"Content-Type": "application/json"}
        if self._api_key:
            headers["Authorization"] = f"Bearer {self._api_key}"
        return headers

    def _affinity(self) -> dict[str, str] | None:
        """This request's session-affinity headers (per request: they follow the run)."""
        return affinity_headers(self.affinity_headers)

    def _client(self) -> aiohttp.ClientSession:
        import aiohttp

        loop = asyncio.get_running_loop()
        if self._session is None or self._session.closed or self._session_loop is not loop:
            # A session belongs to one event loop; sync `run()` calls each start a new one.
            connector = aiohttp.TCPConnector(limit=self._max_connections, ttl_dns_cache=300)
            # Headers set once on the session: per-request header dicts cost a few µs each.
            self._session = aiohttp.ClientSession(
                connector=connector,
                timeout=self._timeout.aiohttp(),
                headers=self._headers(),
            )
            self._session_loop = loop
            # Like the session, a semaphore belongs to the loop it was first used in.
            if self.max_concurrent_requests is not None:
                self._slots = asyncio.Semaphore(self.max_concurrent_requests)
        return self._session

    def _slot(self) -> contextlib.AbstractAsyncContextManager[Any]:
        """A place among ``max_concurrent_requests`` (a no-op without a cap)."""
        if self.max_concurrent_requests is None:
            return contextlib.nullcontext()
        self._client()  # a new event loop gets a new session and a new semaphore
        assert self._slots is not None
        return self._slots

    async def _call(
        self, method: str, path: str, payload: bytes | None, *, slotted: bool = False
    ) -> Any:
        started = asyncio.get_running_loop().time()
        attempt = 0
        while True:
            timeout = self._attempt_timeout(self._timeout, attempt, started)
            try:
                # Each attempt takes its own place among max_concurrent_requests: a run that
                # waits to retry (Retry-After can be a minute) must not hold one meanwhile.
                if not slotted or self.max_concurrent_requests is None:
                    return await self._once(method, path, payload, timeout)
                async with self._slot():
                    return await self._once(method, path, payload, timeout)
            except ModelError as error:
                delay = self._retry_delay(error, attempt, started)
                if delay is None:
                    raise
                report_retry(ModelRetry(attempt=attempt + 1, delay=delay, reason=str(error)))
            attempt += 1
            await asyncio.sleep(delay)

    def _retry_delay(self, error: ModelError, attempt: int, started: float) -> float | None:
        policy = RetryPolicy(self.max_retries, self.backoff, self.retry_budget)
        return policy.delay(error, attempt, elapsed=asyncio.get_running_loop().time() - started)

    def _attempt_timeout(self, base: _Timeout, attempt: int, started: float) -> _Timeout:
        """``base``, or for a retry ``base`` cut at the end of the retry budget."""
        if attempt == 0 or self.retry_budget is None:
            return base
        left = self.retry_budget - (asyncio.get_running_loop().time() - started)
        # RetryPolicy only retries when its wait ends inside the budget, so ``left`` is
        # positive but for the sleep's lateness; aiohttp reads total=0 as "no limit".
        left = max(left, 0.001)
        return replace(base, total=left if base.total is None else min(base.total, left))

    def _lean_pool(self) -> Http1Pool | None:
        """The lean client's connections for this event loop (``None``: aiohttp's URL)."""
        if self._origin is None:
            return None
        loop = asyncio.get_running_loop()
        if self._pool is None or self._pool_loop is not loop:
            tls, host, port, _ = self._origin
            if tls and self._tls is None:
                # The system's certificate store, as aiohttp uses (SSL_CERT_FILE honoured).
                self._tls = ssl.create_default_context()
            self._pool = Http1Pool(
                host,
                port,
                {**_LEAN_HEADERS, **self._headers()},
                max_connections=self._max_connections,
                connect_timeout=self._timeout.connect,
                tls=self._tls if tls else None,
            )
            self._pool_loop = loop
        return self._pool

    async def _once(self, method: str, path: str, payload: bytes | None, timeout: _Timeout) -> Any:
        pool = self._lean_pool()
        if pool is not None:
            return await self._once_lean(pool, method, path, payload, timeout)
        import aiohttp

        url = self.base_url + path
        # The first attempt's timeout is the session's own: not passing it saves aiohttp work.
        options: dict[str, Any] = {} if timeout is self._timeout else {"timeout": timeout.aiohttp()}
        try:
            async with self._client().request(
                method, url, data=payload, headers=self._affinity(), **options
            ) as response:
                if response.status >= 400:
                    raw = await _read_capped(response, _MAX_ERROR_BYTES, url, truncate=True)
                    text = raw.decode("utf-8", "replace")
                    raise _http_error(response.status, text, response.headers.get("Retry-After"))
                raw = await _read_capped(response, self.max_response_bytes, url)
        except asyncio.TimeoutError:
            raise ModelTimeoutError(f"{url} did not answer in time") from None
        except aiohttp.ClientError as error:
            reason = type(error).__name__
            raise ModelConnectionError(
                f"Cannot talk to the model server at {url}: {reason}"
            ) from None
        return _decoded_json(raw, url)

    async def _once_lean(
        self,
        pool: Http1Pool,
        method: str,
        path: str,
        payload: bytes | None,
        timeout: _Timeout,
    ) -> Any:
        """`_once` through the lean client: the same errors, the same retries."""
        url = self.base_url + path
        assert self._origin is not None
        try:
            reply = await pool.request(
                method,
                self._origin[3] + path,
                payload,
                self._affinity(),
                limit=self.max_response_bytes,
                error_limit=_MAX_ERROR_BYTES,
                timeout=timeout.total,
            )
        except asyncio.TimeoutError:
            raise ModelTimeoutError(f"{url} did not answer in time") from None
        except ReplyTooLarge:
            raise too_large(url, self.max_response_bytes) from None
        except TransportError as error:
            failure = f"Cannot talk to the model server at {url}: {error}"
            raise ModelConnectionError(failure) from None
        if reply.status >= 400:
            text = reply.body.decode("utf-8", "replace")
            raise _http_error(reply.status, text, reply.headers.get("retry-after"))
        return _decoded_json(reply.body, url)


@dataclass(frozen=True, slots=True)
class _Timeout:
    """An attempt's limits in seconds: in all, to connect, and a stream's silence."""

    total: float | None
    connect: float | None
    read: float | None = None

    def aiohttp(self) -> aiohttp.ClientTimeout:
        import aiohttp

        # sock_connect, not connect: aiohttp's connect also counts the wait for a free pooled
        # connection, and runs that queue for the pool should wait, not fail.
        return aiohttp.ClientTimeout(
            total=self.total, sock_connect=self.connect, sock_read=self.read
        )


def _decoded_json(raw: bytes, url: str) -> Any:
    try:
        return loads_json(raw)  # bytes: no separate decode step
    except ValueError:
        # Cut short or not JSON at all (a proxy's HTML page, a worker that died mid-write):
        # broken on the way, so worth another attempt.
        failure = ModelResponseError(f"{url} answered with non-JSON: {raw[:200]!r}")
        raise garbled(failure) from None


def _lean_origin(base_url: str) -> tuple[bool, str, int, str] | None:
    """``(tls, host, port, path)`` of a base URL the lean client talks to, else ``None``
    (credentials or a query in the URL, another scheme: aiohttp handles those)."""
    try:
        parts = urllib.parse.urlsplit(base_url)
        tls = parts.scheme == "https"
        port = parts.port or (443 if tls else 80)
    except ValueError:
        return None
    if parts.scheme not in ("http", "https") or not parts.hostname or parts.username:
        return None
    if parts.query:
        return None
    return tls, parts.hostname, port, parts.path.rstrip("/")


async def _read_capped(
    response: aiohttp.ClientResponse, limit: int, url: str, *, truncate: bool = False
) -> bytes:
    """The body, or ``ModelResponseError`` once it passes ``limit`` bytes (``truncate``: its
    first ``limit`` bytes instead). Never holds more than ``limit`` plus one read's bytes."""
    length = response.content_length
    if length is not None and length > limit and not truncate:
        raise too_large(url, limit)  # said up front: no need to read it
    if length is not None and length <= limit:
        return await response.read()  # the parser stops at Content-Length: within the cap
    chunks: list[bytes] = []
    size = 0
    async for chunk in response.content.iter_any():
        size += len(chunk)
        if size > limit:
            if not truncate:
                raise too_large(url, limit)
            chunks.append(chunk[: len(chunk) - (size - limit)])
            break
        chunks.append(chunk)
    return b"".join(chunks)  # one chunk (the usual case): that very object, no copy


class _Template:
    """A chat request's fixed part, encoded once and split where the messages go."""

    __slots__ = ("head", "model", "settings", "stream", "tail", "tools")

    def __init__(
        self,
        model: str,
        tools: Sequence[Mapping[str, Any]],
        settings: ModelSettings,
        *,
        stream: bool,
    ) -> None:
        self.model, self.tools, self.settings, self.stream = model, tools, settings, stream
        marker = f"foxagent-messages-{uuid.uuid4().hex}"
        encoded = compact_json(_request_body(model, marker, tools, settings, stream=stream))
        head, found, tail = encoded.partition(b'"' + marker.encode() + b'"')
        # Not found: extra_body replaced the messages (each body is then encoded whole).
        self.head: bytes | None = head if found else None
        self.tail = tail

    def encode(
        self, messages: Sequence[Mapping[str, Any]], fragments: dict[str, orjson.Fragment]
    ) -> bytes:
        if self.head is None:
            body = _request_body(
                self.model, list(messages), self.tools, self.settings, stream=self.stream
            )
            return compact_json(body)
        first = messages[0] if messages else None
        if (
            type(first) is dict
            and len(first) == 2
            and first.get("role") == "system"
            and next(iter(first)) == "role"
            and type(content := first.get("content")) is str
            and len(content) >= 256
        ):
            fragment = fragments.get(content)
            if fragment is None:
                if len(fragments) >= 8:
                    fragments.clear()
                fragment = fragments[content] = orjson.Fragment(compact_json(first))
            listed: list[Any] = [fragment, *messages[1:]]
        else:
            listed = list(messages)
        try:
            encoded = orjson.dumps(listed)
        except orjson.JSONEncodeError:
            encoded = compact_json(list(messages))  # a lone surrogate: escapes, as before
        return self.head + encoded + self.tail


def _request_body(
    model: str,
    messages: Any,
    tools: Sequence[Mapping[str, Any]],
    settings: ModelSettings,
    *,
    stream: bool,
) -> dict[str, Any]:
    """The chat request, fields in the order the server has always seen them."""
    body: dict[str, Any] = {"model": model, "messages": messages, **settings.request_fields()}
    if tools:
        body["tools"] = settings.request_tools(tools)
        body["tool_choice"] = settings.tool_choice
        if settings.asks_generated_tokens(tools=True):
            body.setdefault("logprobs", True)  # see foxagent.models._generated
    if stream:
        body["stream"] = True
        body["stream_options"] = {"include_usage": True}
    return body


def _http_error(status: int, text: str, retry_after: str | None) -> ModelHTTPError:
    message = text[:500]
    try:
        data = json.loads(text)
        if isinstance(data, Mapping):
            inner = data.get("error", data)
            message = str(inner.get("message", inner) if isinstance(inner, Mapping) else inner)
    except ValueError:
        pass
    wait = None
    if retry_after is not None:
        try:
            wait = min(float(retry_after), 60.0)
        except ValueError:
            wait = None  # an HTTP date; the backoff schedule is good enough
    return ModelHTTPError(status, message, retry_after=wait)


def _parse_completion(data: Any) -> ModelResponse:
    try:
        choice = data["choices"][0]
        message = choice["message"]
        if not isinstance(message, dict):
            raise TypeError(message)
    except (KeyError, IndexError, TypeError):
        raise ModelResponseError(f"not a chat completion: {str(data)[:200]}") from None
    return ModelResponse(
        message=message,
        finish_reason=choice.get("finish_reason"),
        usage=Usage.from_wire(data.get("usage")),
        model=str(data.get("model") or ""),
        generated_text=generated_text(choice.get("logprobs")),
    )


def _stream_failure(url: str, error: BaseException) -> ModelError:
    if isinstance(error, asyncio.TimeoutError):
        return ModelTimeoutError(f"{url} did not finish streaming in time")
    return ModelConnectionError(f"The stream from {url} broke: {type(error).__name__}")
