"""The default backend: a vLLM (or any OpenAI-compatible) server over a lean aiohttp client.

Why aiohttp and not the openai SDK or httpx: measured on a 2-core machine (issue 4), one tool call
plus a final answer against a local stub costs ~0.6–0.9 ms of CPU per run on a hand-written
aiohttp loop, ~3 ms on httpx and ~6 ms on the openai SDK, and only aiohttp keeps its throughput
at 64 concurrent runs. A backend that embeds thousands of runs in one process cannot give that
away. Users who already hold an ``openai.AsyncOpenAI`` client can still bring it (a separate
adapter); this module is the hot path.

Behaviour:
- ``base_url`` from the argument, else ``FOXAGENT_BASE_URL``, else ``OPENAI_BASE_URL``, else
  ``http://127.0.0.1:8000/v1``; the API key from the argument, else ``FOXAGENT_API_KEY``, else
  ``OPENAI_API_KEY``. The key is sent as a bearer token and never appears in reprs or errors.
- ``model_name=None`` asks the server's ``/models`` once and uses the first served model.
- Retries with exponential backoff (honouring ``Retry-After``) on 429, 5xx, connection errors
  and timeouts; other statuses fail at once. Every transport error becomes a ``ModelError``.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator, Mapping, Sequence
from typing import Any

import aiohttp

from foxagent._environment import first_env
from foxagent._exceptions import (
    ModelConnectionError,
    ModelError,
    ModelHTTPError,
    ModelResponseError,
    ModelTimeoutError,
    UserError,
)
from foxagent._messages import (
    ModelResponse,
    ModelRetry,
    ModelSettings,
    StreamEnd,
    StreamEvent,
    TextDelta,
    ToolCallDelta,
    Usage,
)
from foxagent.models._base import Model
from foxagent.models._retry import RetryPolicy, report_retry

__all__ = ["DEFAULT_BASE_URL", "VLLMModel", "resolve_endpoint"]

DEFAULT_BASE_URL = "http://127.0.0.1:8000/v1"


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
        timeout: seconds for a whole request, including generation.
        connect_timeout: seconds to open a connection.
        max_retries: retries after the first attempt, for retryable failures.
        backoff: the first retry's delay in seconds; doubled each time, with jitter.
        max_connections: the connection pool's size.
        max_concurrent_requests: chat requests this model sends at once; more wait their turn
            (in order) instead of failing. ``None``: as many as the pool allows. One vLLM
            deployment shared by thousands of runs in a process is the case for it.
    """

    def __init__(
        self,
        base_url: str | None = None,
        api_key: str | None = None,
        model_name: str | None = None,
        *,
        timeout: float = 300.0,
        connect_timeout: float = 10.0,
        max_retries: int = 3,
        backoff: float = 0.5,
        max_connections: int = 512,
        max_concurrent_requests: int | None = None,
    ) -> None:
        self.base_url, self._api_key = resolve_endpoint(base_url, api_key)
        self.model_name = model_name
        self.max_retries = max_retries
        self.backoff = backoff
        self._timeout = aiohttp.ClientTimeout(total=timeout, connect=connect_timeout)
        self._max_connections = max_connections
        if max_concurrent_requests is not None and max_concurrent_requests < 1:
            raise UserError(
                f"max_concurrent_requests must be at least 1, got {max_concurrent_requests}."
            )
        self.max_concurrent_requests = max_concurrent_requests
        self._slots: asyncio.Semaphore | None = None
        self._session: aiohttp.ClientSession | None = None
        self._session_loop: asyncio.AbstractEventLoop | None = None

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
        body = await self._body(messages, tools, settings)
        data = await self._call("POST", "/chat/completions", body, slotted=True)
        return _parse_completion(data)

    async def stream(
        self,
        messages: Sequence[Mapping[str, Any]],
        tools: Sequence[Mapping[str, Any]],
        settings: ModelSettings,
    ) -> AsyncIterator[StreamEvent]:
        """Stream a reply as server-sent events (retries only before the first byte)."""
        body = await self._body(messages, tools, settings)
        body["stream"] = True
        body["stream_options"] = {"include_usage": True}
        url = self.base_url + "/chat/completions"
        assembler = _StreamAssembler()
        attempt = 0
        while True:
            try:
                async with (
                    self._slot(),
                    self._client().post(
                        url, data=json.dumps(body, ensure_ascii=False).encode()
                    ) as response,
                ):
                    if response.status >= 400:
                        text = await response.text()
                        raise _http_error(
                            response.status, text, response.headers.get("Retry-After")
                        )
                    async for line in response.content:
                        for event in assembler.feed(line):
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
                delay = self._retry_delay(failure, attempt) if not assembler.started else None
                if delay is None:
                    raise failure from None
                report_retry(ModelRetry(attempt=attempt + 1, delay=delay, reason=str(failure)))
            except ModelError as error:
                # Nothing has been passed on before the first chunk, so only then is a retry safe.
                delay = self._retry_delay(error, attempt) if not assembler.started else None
                if delay is None:
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
    ) -> dict[str, Any]:
        body: dict[str, Any] = {
            "model": self.model_name or await self.served_model(),
            "messages": list(messages),
            **settings.request_fields(),
        }
        if tools:
            body["tools"] = settings.request_tools(tools)
            body["tool_choice"] = settings.tool_choice
        return body

    async def count_tokens(
        self, messages: Sequence[Mapping[str, Any]], tools: Sequence[Mapping[str, Any]]
    ) -> int:
        """The prompt's exact length from vLLM's ``/tokenize`` (chat template applied); an
        estimate when the server has no such endpoint or it fails."""
        body: dict[str, Any] = {"model": self.model_name or await self.served_model()}
        body |= {"messages": list(messages), "tools": list(tools) or None}
        root = self.base_url.removesuffix("/v1")
        try:
            async with self._client().post(
                root + "/tokenize", data=json.dumps(body, ensure_ascii=False).encode()
            ) as response:
                data = await response.json(content_type=None) if response.status == 200 else {}
        except (aiohttp.ClientError, asyncio.TimeoutError, ValueError):
            data = {}
        count = data.get("count") if isinstance(data, dict) else None
        if isinstance(count, int):
            return count
        return await super().count_tokens(messages, tools)

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
        session, self._session = self._session, None
        if session is not None and not session.closed:
            await session.close()

    def _headers(self) -> dict[str, str]:
        headers = {"Content-Type": "application/json"}
        if self._api_key:
            headers["Authorization"] = f"Bearer {self._api_key}"
        return headers

    def _client(self) -> aiohttp.ClientSession:
        loop = asyncio.get_running_loop()
        if self._session is None or self._session.closed or self._session_loop is not loop:
            # A session belongs to one event loop; sync `run()` calls each start a new one.
            connector = aiohttp.TCPConnector(limit=self._max_connections, ttl_dns_cache=300)
            # Headers set once on the session: per-request header dicts cost a few µs each.
            self._session = aiohttp.ClientSession(
                connector=connector,
                timeout=self._timeout,
                headers=self._headers(),
                json_serialize=json.dumps,
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

    async def _call(self, method: str, path: str, body: Any, *, slotted: bool = False) -> Any:
        attempt = 0
        while True:
            try:
                # Each attempt takes its own place among max_concurrent_requests: a run that
                # waits to retry (Retry-After can be a minute) must not hold one meanwhile.
                async with self._slot() if slotted else contextlib.nullcontext():
                    return await self._once(method, path, body)
            except ModelError as error:
                delay = self._retry_delay(error, attempt)
                if delay is None:
                    raise
                report_retry(ModelRetry(attempt=attempt + 1, delay=delay, reason=str(error)))
            attempt += 1
            await asyncio.sleep(delay)

    def _retry_delay(self, error: ModelError, attempt: int) -> float | None:
        return RetryPolicy(self.max_retries, self.backoff).delay(error, attempt)

    async def _once(self, method: str, path: str, body: Any) -> Any:
        url = self.base_url + path
        payload = None if body is None else json.dumps(body, ensure_ascii=False).encode()
        try:
            async with self._client().request(method, url, data=payload) as response:
                raw = await response.read()
                if response.status >= 400:
                    text = raw.decode("utf-8", "replace")
                    raise _http_error(response.status, text, response.headers.get("Retry-After"))
        except asyncio.TimeoutError:
            raise ModelTimeoutError(f"{url} did not answer in time") from None
        except aiohttp.ClientError as error:
            reason = type(error).__name__
            raise ModelConnectionError(
                f"Cannot talk to the model server at {url}: {reason}"
            ) from None
        try:
            return json.loads(raw)  # bytes: no separate decode step
        except ValueError:
            raise ModelResponseError(f"{url} answered with non-JSON: {raw[:200]!r}") from None


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
    )


def _stream_failure(url: str, error: BaseException) -> ModelError:
    if isinstance(error, asyncio.TimeoutError):
        return ModelTimeoutError(f"{url} did not finish streaming in time")
    return ModelConnectionError(f"The stream from {url} broke: {type(error).__name__}")


class _StreamAssembler:
    """Turns SSE lines into events and, at the end, into one assistant message."""

    def __init__(self) -> None:
        self.started = False
        self._text: list[str] = []
        self._calls: dict[int, dict[str, Any]] = {}
        self._finish_reason: str | None = None
        self._usage = Usage()
        self._model = ""

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
            chunk = json.loads(payload)
        except ValueError:
            raise ModelResponseError(f"bad stream chunk: {payload[:200]!r}") from None
        self.started = True
        self._model = str(chunk.get("model") or self._model)
        if chunk.get("usage"):
            self._usage = Usage.from_wire(chunk["usage"])
        events: list[StreamEvent] = []
        for choice in chunk.get("choices") or ():
            events.extend(self._choice(choice))
        return events

    def _choice(self, choice: Mapping[str, Any]) -> list[StreamEvent]:
        if choice.get("finish_reason"):
            self._finish_reason = choice["finish_reason"]
        delta = choice.get("delta") or {}
        events: list[StreamEvent] = []
        text = delta.get("content")
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
            message=message, finish_reason=self._finish_reason, usage=self._usage, model=self._model
        )
