"""``FakeVLLMServer``: vLLM's OpenAI-compatible server on 127.0.0.1, answering from a script.

It stands in for ``vllm serve FoxBrain --enable-auto-tool-choice --tool-call-parser llama3_json``
with the Llama 3.1 JSON chat template. Each scripted `Reply` is the raw text the model would
generate; the server does with it what vLLM does: the llama3_json tool parser (non-streaming
through `foxagent.testing._vllm_llama3_json`, streaming through
`foxagent.testing._vllm_llama3_stream`; generation ``"next"``, vLLM main after PR #51577, in
`foxagent.testing._vllm_llama3_next`), ``tool_choice`` handling, request and history checks,
and vLLM's response, chunk and error shapes (``protocol.py``, ``serving_chat.py`` and
``server_utils.py`` of vllm-project/vllm).

The server runs its own event loop in a daemon thread, so sync tests, async tests and
benchmarks can all use it::

    with FakeVLLMServer(['{"name": "get_weather", "parameters": {"city": "台北"}}']) as server:
        client = openai.OpenAI(base_url=server.base_url, api_key="unused")
        ...
        server.assert_complete()
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import socket
import threading
import time
import uuid
from collections import deque
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass
from http import HTTPStatus
from types import TracebackType
from typing import Any

from aiohttp import web

from foxagent._exceptions import UserError
from foxagent._tokens import estimate_tokens
from foxagent.testing._fake_logprobs import logprobs_content
from foxagent.testing._fake_vllm_requests import (
    _AUTO_TOOLS_DISABLED,
    CURRENT as _CURRENT,
    _constrained_v032,
    _explicit_null_choice,
    _include_usage,
    _prompt_tokens,
    _request_problem,
    _required_calls,
    _tool_call,
    _tool_mode,
)
from foxagent.testing._vllm_llama3_json import (
    Generation,
    random_uuid,
    server_message,
)
from foxagent.testing._vllm_llama3_stream import (
    StreamedTurn,
    split_pieces,
    stream_auto,
    stream_named,
    stream_plain,
    stream_required,
)

__all__ = ["FakeVLLMServer", "Reply"]

_MAX_MODEL_LEN = 32768
_SHUTDOWN_TIMEOUT = 0.5  # seconds stop() waits for requests still being answered


@dataclass(frozen=True, kw_only=True)
class Reply:
    """One scripted model turn, or a fault.

    Attributes:
        text: The raw model output, as vLLM's detokenizer hands it to the tool parser. For a
            ``status`` fault it is the error message.
        finish_reason: Why the ENGINE stopped (``"stop"`` or ``"length"``); the server reports
            what vLLM would (``"tool_calls"`` when its parser found a call).
        completion_tokens: Reported completion tokens; by default estimated from ``text``, or
            the request's ``max_tokens`` for a reply cut there (``finish_reason="length"``).
        status: Fault: answer with this HTTP status and a vLLM-shaped error body.
        delay: Seconds to wait before answering (to trigger client timeouts).
        drop: Fault: close the connection without a response (mid-stream when streaming).
        body: Fault: send this raw body with status 200 (malformed JSON, broken SSE).
    """

    text: str = ""
    finish_reason: str = "stop"
    completion_tokens: int | None = None
    status: int | None = None
    delay: float = 0.0
    drop: bool = False
    body: str | None = None


def _as_reply(item: object) -> Reply:
    if isinstance(item, Reply):
        return item
    if isinstance(item, str):
        return Reply(text=item)
    raise TypeError(f"a scripted reply must be a Reply or a str, not {type(item).__name__}")


def _describe(reply: Reply) -> str:
    if reply.drop:
        return "Reply(drop=True)"
    if reply.status is not None:
        return f"Reply(status={reply.status})"
    if reply.body is not None:
        return f"Reply(body={reply.body[:40]!r})"
    return repr(reply.text if len(reply.text) <= 60 else reply.text[:57] + "...")


class _ScriptError(Exception):
    """The script has no reply for this request (exhausted, or the function failed)."""


# --- vLLM's JSON shapes ---------------------------------------------------------------------


def _dumps(value: Any) -> bytes:
    # FastAPI's JSONResponse and pydantic's model_dump_json: compact, UTF-8, no ASCII escaping.
    return json.dumps(value, ensure_ascii=False, separators=(",", ":")).encode()


def _json_response(status: int, value: Any) -> web.Response:
    return web.Response(status=status, body=_dumps(value), content_type="application/json")


def _error_type(status: int) -> str:
    known = {400: "BadRequestError", 404: "NotFoundError", 500: "InternalServerError"}
    if status in known:
        return known[status]
    try:
        phrase = HTTPStatus(status).phrase.replace(" ", "").replace("-", "")
    except ValueError:
        return "Error"
    return phrase if phrase.endswith("Error") else phrase + "Error"


def _error_body(status: int, message: str, generation: Generation) -> dict[str, Any]:
    # vLLM PR #22099 (v0.10.1) nested the error object; v0.10.0 and older sent it flat.
    if generation == "prefix":
        fields: dict[str, Any] = {"object": "error", "message": message}
        return fields | {"type": _error_type(status), "param": None, "code": status}
    inner = {"message": message, "type": _error_type(status), "param": None, "code": status}
    return {"error": inner}


def _models_body(model: str) -> dict[str, Any]:
    now = int(time.time())
    permission = {
        "id": f"modelperm-{uuid.uuid4().hex}",
        "object": "model_permission",
        "created": now,
        "allow_create_engine": False,
        "allow_sampling": True,
        "allow_logprobs": True,
        "allow_search_indices": False,
        "allow_view": True,
        "allow_fine_tuning": False,
        "organization": "*",
        "group": None,
        "is_blocking": False,
    }
    card = {"id": model, "object": "model", "created": now, "owned_by": "vllm", "root": model}
    card |= {"parent": None, "max_model_len": _MAX_MODEL_LEN, "permission": [permission]}
    return {"object": "list", "data": [card]}


def _full_message(
    content: str | None, tool_calls: list[dict[str, Any]], generation: Generation
) -> dict[str, Any]:
    # ChatMessage's fields in declaration order, all dumped. vLLM 0.32.0 ("brace") renamed
    # reasoning_content to reasoning and leaves an empty tool_calls list out.
    message: dict[str, Any] = {
        "role": "assistant",
        "content": content,
        "refusal": None,
        "annotations": None,
        "audio": None,
        "function_call": None,
        "tool_calls": tool_calls,
    }
    if generation not in _CURRENT:
        return message | {"reasoning_content": None}
    if not tool_calls:
        del message["tool_calls"]
    return message | {"reasoning": None}


def _usage(prompt: int, completion: int, *, details: bool = True) -> dict[str, Any]:
    usage: dict[str, Any] = {
        "prompt_tokens": prompt,
        "total_tokens": prompt + completion,
        "completion_tokens": completion,
    }
    if details:
        usage["prompt_tokens_details"] = None
    return usage


def _abort(request: web.Request) -> None:
    if request.transport is not None:
        request.transport.abort()


async def _wait(request: web.Request, seconds: float) -> bool:
    """Sleep, but give up early once the client has gone (its timeout fired)."""
    deadline = time.monotonic() + seconds
    while (left := deadline - time.monotonic()) > 0:
        if request.transport is None or request.transport.is_closing():
            return False
        await asyncio.sleep(min(left, 0.05))
    return True


# --- the server -------------------------------------------------------------------------------


class FakeVLLMServer:
    """A real HTTP server on 127.0.0.1 that answers like vLLM with the llama3_json parser.

    Args:
        script: Replies in order (``str`` is shorthand for ``Reply(text=...)``), or a function
            called with each request body that returns the reply (unlimited replies).
        generation: Which vLLM parser generation to emulate: ``"prefix"`` (v0.6.3-v0.9.2,
            also flat error bodies), ``"regex"`` (v0.10.0-v0.11.1), ``"brace"`` (v0.11.2-v0.33.0)
            or ``"next"`` (vLLM main after PR #51577; required/named choices as in ``"brace"``).
        model: The served model name (``/v1/models``; other names get vLLM's 404).
        api_key: When set, ``/v1`` requests need ``Authorization: Bearer <api_key>``.
        host: Interface to listen on.
        port: Port to listen on; 0 picks a free one.
        tool_parser: ``False`` answers like a server started without
            ``--enable-auto-tool-choice --tool-call-parser`` (auto tool choice is a 400).
        chat_template: a chat template's text; ``POST /tokenize`` then renders chat messages
            with it (needs jinja2), like a vLLM server started with ``--chat-template``.
        split_characters: with ``logprobs`` requested, list every character of three or more
            UTF-8 bytes as two tokens that decode to U+FFFD, as vLLM does for characters a
            byte-level tokenizer splits (most CJK in Llama 3's).

    Attributes:
        requests: Every chat-completion request body received (parsed JSON), in order.
        peak_in_flight: The most chat-completion requests being answered at the same time.
        abandoned: Delayed replies whose client closed the connection before the answer.

    Example:
        >>> with FakeVLLMServer(["<answer>台北</answer>"]) as server:
        ...     server.base_url.startswith("http://127.0.0.1:")
        True
    """

    def __init__(
        self,
        script: Iterable[Reply | str] | Callable[[dict[str, Any]], Reply | str] = (),
        *,
        generation: Generation = "brace",
        model: str = "foxbrain",
        api_key: str | None = None,
        host: str = "127.0.0.1",
        port: int = 0,
        tool_parser: bool = True,
        chat_template: str | None = None,
        split_characters: bool = False,
    ) -> None:
        if generation not in ("prefix", "regex", "brace", "next"):
            raise UserError(f"unknown generation {generation!r}; expected prefix/regex/brace/next")
        self.requests: list[dict[str, Any]] = []
        self.peak_in_flight = 0
        self.abandoned = 0
        self._in_flight = 0
        self._generation: Generation = generation
        # False imitates a server started without --enable-auto-tool-choice --tool-call-parser.
        self._tool_parser = tool_parser
        # With a template text, POST /tokenize renders chat prompts with it, as vLLM does.
        self._chat_template = chat_template
        self._split_characters = split_characters
        self._model = model
        # vLLM 0.32.0: "vllm-<version>-" and 8 hex digits of its config hash (here: the model's).
        self._fingerprint = "vllm-0.32.0-" + hashlib.sha256(model.encode()).hexdigest()[:8]
        self._api_key = api_key
        self._host = host
        self._port = port
        self._lock = threading.Lock()
        self._responder: Callable[[dict[str, Any]], Reply | str] | None = None
        self._replies: deque[Reply] = deque()
        if isinstance(script, (str, Reply)):
            self._replies.append(_as_reply(script))
        elif callable(script):
            self._responder = script
        else:
            self._replies.extend(_as_reply(item) for item in script)
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._runner: web.AppRunner | None = None
        self._bound_port: int | None = None

    def __repr__(self) -> str:
        state = f"on {self.base_url}" if self._bound_port else "stopped"
        return f"<FakeVLLMServer {self._generation} {state}>"

    @property
    def base_url(self) -> str:
        """``http://HOST:PORT/v1``, what OpenAI-style clients take as their base URL."""
        if self._bound_port is None:
            raise RuntimeError("FakeVLLMServer is not running; call start() or use `with`")
        host = f"[{self._host}]" if ":" in self._host else self._host
        return f"http://{host}:{self._bound_port}/v1"

    # --- script ---------------------------------------------------------------------------

    def add(self, *replies: Reply | str) -> None:
        """Append replies to the script."""
        if self._responder is not None:
            raise TypeError("this server answers with a function; add() needs a list script")
        with self._lock:
            self._replies.extend(_as_reply(reply) for reply in replies)

    def assert_complete(self) -> None:
        """Check that every scripted reply was used.

        Raises:
            AssertionError: Naming the replies still waiting.
        """
        with self._lock:
            left = list(self._replies)
        if left:
            listed = ", ".join(_describe(reply) for reply in left)
            raise AssertionError(f"{len(left)} scripted reply(ies) never requested: {listed}")

    def _next_reply(self, body: dict[str, Any]) -> Reply:
        with self._lock:
            responder = self._responder
            if responder is None:
                if not self._replies:
                    raise _ScriptError(
                        f"FakeVLLMServer script exhausted: request #{len(self.requests)} has no "
                        "scripted reply left (add one with server.add(...))"
                    )
                return self._replies.popleft()
        try:
            return _as_reply(responder(body))
        except Exception as exc:
            raise _ScriptError(f"FakeVLLMServer script raised {type(exc).__name__}: {exc}") from exc

    # --- lifecycle ------------------------------------------------------------------------

    def start(self) -> FakeVLLMServer:
        """Start serving in a background thread; returns ``self``."""
        if self._thread is not None:
            raise RuntimeError("FakeVLLMServer is already running")
        sock = socket.create_server((self._host, self._port))
        loop = asyncio.new_event_loop()
        thread = threading.Thread(target=loop.run_forever, name="FakeVLLMServer", daemon=True)
        thread.start()
        self._loop, self._thread = loop, thread
        try:
            asyncio.run_coroutine_threadsafe(self._open(sock), loop).result(timeout=10)
        except BaseException:
            sock.close()
            self.stop()
            raise
        self._bound_port = sock.getsockname()[1]
        return self

    def stop(self) -> None:
        """Stop serving and release the port and the thread (idempotent)."""
        loop, thread = self._loop, self._thread
        if loop is None or thread is None:
            return
        try:
            asyncio.run_coroutine_threadsafe(self._close(), loop).result(timeout=10)
        finally:
            loop.call_soon_threadsafe(loop.stop)
            thread.join(timeout=10)
            loop.close()
            self._loop = self._thread = self._runner = None
            self._bound_port = None

    def __enter__(self) -> FakeVLLMServer:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    async def __aenter__(self) -> FakeVLLMServer:
        return await asyncio.to_thread(self.start)

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await asyncio.to_thread(self.stop)

    async def _open(self, sock: socket.socket) -> None:
        app = web.Application(client_max_size=64 * 1024 * 1024)
        app.router.add_get("/v1/models", self._models)
        app.router.add_post("/v1/chat/completions", self._chat_completions)
        app.router.add_get("/health", self._health)
        app.router.add_post("/tokenize", self._tokenize)
        runner = web.AppRunner(app, access_log=None, shutdown_timeout=_SHUTDOWN_TIMEOUT)
        await runner.setup()
        self._runner = runner
        await web.SockSite(runner, sock).start()

    async def _close(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
        current = asyncio.current_task()
        leftovers = [task for task in asyncio.all_tasks() if task is not current]
        for task in leftovers:
            task.cancel()
        await asyncio.gather(*leftovers, return_exceptions=True)

    # --- handlers -------------------------------------------------------------------------

    def _error(self, status: int, message: str) -> web.Response:
        return _json_response(status, _error_body(status, message, self._generation))

    def _denied(self, request: web.Request) -> web.Response | None:
        # server_utils.AuthenticationMiddleware: only /v1 paths, "Bearer" in any case.
        if self._api_key is None:
            return None
        scheme, _, token = request.headers.get("Authorization", "").partition(" ")
        if scheme.lower() == "bearer" and token == self._api_key:
            return None
        return _json_response(401, {"error": "Unauthorized"})

    async def _health(self, request: web.Request) -> web.Response:
        return web.Response()

    async def _tokenize(self, request: web.Request) -> web.Response:
        """vLLM's ``/tokenize`` for chat messages, rendered with ``chat_template`` (if given)."""
        if self._chat_template is None:
            return web.Response(status=404)
        body = json.loads(await request.read())
        from foxagent._templates import render_with

        prompt = render_with(
            self._chat_template,
            body.get("messages") or [],
            body.get("tools"),
            add_generation_prompt=bool(body.get("add_generation_prompt", True)),
        )
        pieces = split_pieces(prompt)
        result: dict[str, Any] = {
            "count": len(pieces),
            "max_model_len": 32768,
            "tokens": list(range(len(pieces))),
        }
        if body.get("return_token_strs"):
            result["token_strs"] = pieces
        return _json_response(200, result)

    async def _models(self, request: web.Request) -> web.Response:
        return self._denied(request) or _json_response(200, _models_body(self._model))

    async def _chat_completions(self, request: web.Request) -> web.StreamResponse:
        self._in_flight += 1
        self.peak_in_flight = max(self.peak_in_flight, self._in_flight)
        try:
            return await self._answer_chat(request)
        finally:
            self._in_flight -= 1

    async def _answer_chat(self, request: web.Request) -> web.StreamResponse:
        if (denied := self._denied(request)) is not None:
            return denied
        try:
            body = json.loads(await request.read())
        except ValueError as exc:
            return self._error(400, f"JSON decode error: {exc}")
        self.requests.append(body)
        if (problem := _request_problem(body, self._model, self._generation)) is not None:
            return self._error(*problem)
        if not self._tool_parser and _tool_mode(body, stream=False)[0] == "auto":
            return self._error(400, _AUTO_TOOLS_DISABLED)
        try:
            reply = self._next_reply(body)
        except _ScriptError as exc:
            return self._error(500, str(exc))
        stream = body.get("stream") is True
        if reply.delay > 0 and not await _wait(request, reply.delay):
            self.abandoned += 1
            return web.Response()  # the client gave up; nobody reads this
        if reply.drop and not stream:
            _abort(request)
            return web.Response()
        if reply.status is not None:
            return self._error(reply.status, reply.text or f"scripted HTTP {reply.status}")
        if reply.body is not None:
            content_type = "text/event-stream" if stream else "application/json"
            return web.Response(text=reply.body, content_type=content_type)
        if stream:
            return await self._stream(request, body, reply)
        return self._complete(body, reply)

    def _complete(self, body: dict[str, Any], reply: Reply) -> web.Response:
        mode, name = _tool_mode(body, stream=False)
        finish = reply.finish_reason
        if mode == "auto":
            tools = body.get("tools")
            message, finish = server_message(
                reply.text, generation=self._generation, engine_finish_reason=finish, tools=tools
            )
            content, calls = message["content"], message.get("tool_calls", [])
        elif self._generation in _CURRENT and mode in ("named", "required"):
            content, calls = _constrained_v032(reply.text)
            finish = "tool_calls" if mode == "required" and finish == "stop" else finish
        elif mode == "named":
            content, calls = "", [_tool_call(name, reply.text)]
        elif mode == "required":
            try:
                content, calls = "", _required_calls(reply.text)
            except ValueError as exc:
                return self._error(400, str(exc))
            finish = "tool_calls" if finish == "stop" else finish
        elif self._generation in _CURRENT and _explicit_null_choice(body):
            # vLLM 0.32.0 parses the output (tool_choice null counts as auto there), then builds
            # a plain message from the parser's content: a found call is lost, content is null.
            content, calls = server_message(reply.text, generation="brace")[0]["content"], []
        else:
            content, calls = reply.text, []
        prompt = _prompt_tokens(body)
        completion = _completion_tokens(reply, body)
        message = _full_message(content, calls, self._generation)
        choice: dict[str, Any] = {"index": 0, "message": message, "logprobs": None}
        choice["logprobs"] = self._logprobs(body, reply, completion)
        choice |= {"finish_reason": finish, "stop_reason": None}
        result: dict[str, Any] = {
            "id": self._response_id(),
            "object": "chat.completion",
            "created": int(time.time()),
            "model": self._model,
            "choices": [choice],
            "service_tier": None,
            "system_fingerprint": self._fingerprint if self._generation in _CURRENT else None,
            "usage": _usage(prompt, completion),
            "prompt_logprobs": None,
        }
        if self._generation in _CURRENT:
            # vLLM 0.32.0's ChatCompletionResponse / ...Choice fields beyond v0.10.x's.
            choice |= {"token_ids": None, "routed_experts": None}
            result["usage"]["completion_tokens_details"] = None
            result |= {"prompt_token_ids": None, "prompt_text": None}
            result |= {"kv_transfer_params": None, "ec_transfer_params": None, "metrics": None}
        else:
            result["kv_transfer_params"] = None
        return _json_response(200, result)

    def _logprobs(self, body: dict[str, Any], reply: Reply, tokens: int) -> Any:
        if not body.get("logprobs"):
            return None
        stopped = reply.finish_reason == "stop"
        split = self._split_characters
        return {
            "content": logprobs_content(reply.text, tokens, stopped=stopped, split_characters=split)
        }

    def _response_id(self) -> str:
        # vLLM 0.32.0's random_uuid keeps 64 bits: 16 hex digits; older releases sent 32.
        if self._generation in _CURRENT:
            return f"chatcmpl-{random_uuid()}"
        return f"chatcmpl-{uuid.uuid4().hex}"

    def _streamed_turn(self, body: dict[str, Any], reply: Reply) -> StreamedTurn:
        mode, name = _tool_mode(body, stream=True)
        finish = reply.finish_reason
        current = self._generation in _CURRENT
        if mode == "auto" or (current and mode in ("named", "required")):
            return stream_auto(
                reply.text,
                generation=self._generation,
                engine_finish_reason=finish,
                named=mode == "named",
                tools=body.get("tools"),
            )
        if mode == "named":
            return stream_named(reply.text, name, engine_finish_reason=finish)
        if mode == "required":
            return stream_required(reply.text, engine_finish_reason=finish)
        # vLLM 0.32.0 runs even plain requests through the configured tool parser.
        skip_empty = current and self._tool_parser
        return stream_plain(reply.text, engine_finish_reason=finish, skip_empty=skip_empty)

    def _chunks(self, body: dict[str, Any], reply: Reply) -> Iterator[dict[str, Any]]:
        # Dumped by vLLM with exclude_unset=True: only the fields it set explicitly.
        turn = self._streamed_turn(body, reply)
        current = self._generation in _CURRENT
        head: dict[str, Any] = {"id": self._response_id()}
        head["object"] = "chat.completion.chunk"
        head |= {"created": int(time.time()), "model": self._model}
        role = {"role": "assistant", "content": ""}
        choice: dict[str, Any] = {"index": 0, "delta": role, "logprobs": None}
        choice["finish_reason"] = None
        first = head | {"choices": [choice]}
        # vLLM 0.32.0 sets these fields explicitly, so exclude_unset keeps them as nulls.
        yield first | {"prompt_token_ids": None, "prompt_text": None} if current else first
        for i, delta in enumerate(turn.deltas, start=1):
            choice = {"index": 0, "delta": delta, "logprobs": None, "finish_reason": None}
            if i == len(turn.deltas):
                choice |= {"finish_reason": turn.finish_reason, "stop_reason": None}
                # vLLM spreads the entries over the chunks; a client joins them in order.
                choice["logprobs"] = self._logprobs(body, reply, _completion_tokens(reply, body))
            chunk = head | {"choices": [choice]}
            if current:
                choice["token_ids"] = None
                # vLLM 0.32.0 stamps the fingerprint on the last chunk, the usage chunk if any.
                if i == len(turn.deltas) and not _include_usage(body):
                    chunk["system_fingerprint"] = self._fingerprint
            yield chunk
        if _include_usage(body):
            usage = _usage(_prompt_tokens(body), _completion_tokens(reply, body), details=False)
            last = head | {"choices": [], "usage": usage}
            yield last | {"system_fingerprint": self._fingerprint} if current else last

    async def _stream(
        self, request: web.Request, body: dict[str, Any], reply: Reply
    ) -> web.StreamResponse:
        chunks = [b"data: " + _dumps(chunk) + b"\n\n" for chunk in self._chunks(body, reply)]
        chunks.append(b"data: [DONE]\n\n")
        cut = len(chunks) // 2 if reply.drop else len(chunks)
        response = web.StreamResponse(headers={"Content-Type": "text/event-stream; charset=utf-8"})
        try:
            await response.prepare(request)
            for chunk in chunks[:cut]:
                await response.write(chunk)
            if reply.drop:
                _abort(request)
                return response
            await response.write_eof()
        except ConnectionResetError:
            pass  # the client went away mid-stream
        return response


def _completion_tokens(reply: Reply, body: Mapping[str, Any]) -> int:
    if reply.completion_tokens is not None:
        return reply.completion_tokens
    limit = body.get("max_completion_tokens") or body.get("max_tokens")
    if reply.finish_reason == "length" and isinstance(limit, int):
        return limit  # the engine stopped at the limit: vLLM reports exactly that many
    return estimate_tokens(reply.text)
