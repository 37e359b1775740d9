"""``ReplayServer``: answers with the HTTP exchanges recorded from a real vLLM, in order.

``record.py`` recorded them (``tests/fixtures/vllm_e2e/``); ``tests/test_vllm_replay.py`` replays
them. The server runs on 127.0.0.1 in its own thread (like `FakeVLLMServer`), so sync CLI runs
and async tests can both use it. Every request must be the recorded one: same method and path
and, for JSON bodies, the same body once tool-call ids (random, and foxagent's own for calls it
recovered) are numbered in order of appearance. A request that differs is answered 599 and kept
in ``problems``.
"""

from __future__ import annotations

import asyncio
import json
import threading
from collections import deque
from collections.abc import Iterable
from types import TracebackType
from typing import Any

from aiohttp import web

from conformance.e2e.loopback import serve_on_loopback

MISMATCH_STATUS = 599


def numbered_ids(body: Any) -> Any:
    """``body`` with every tool-call id replaced by ``<id N>`` in order of first appearance."""
    names: dict[str, str] = {}

    def visit(value: Any, key: str = "") -> Any:
        if isinstance(value, dict):
            in_call = "function" in value
            return {
                k: visit(v, "id" if k == "tool_call_id" or (k == "id" and in_call) else k)
                for k, v in value.items()
            }
        if isinstance(value, list):
            return [visit(item) for item in value]
        if key == "id" and isinstance(value, str):
            return names.setdefault(value, f"<id {len(names) + 1}>")
        return value

    return visit(body)


class ReplayServer:
    """Serve ``exchanges`` (recorded dicts) one per request; see the module docstring."""

    def __init__(self, exchanges: Iterable[dict[str, Any]]) -> None:
        self.expected: deque[dict[str, Any]] = deque(exchanges)
        self.problems: list[str] = []
        self.served = 0
        self._loop = asyncio.new_event_loop()
        self._runner: web.AppRunner | None = None
        self._port = 0
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True)

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self._port}/v1"

    def __enter__(self) -> ReplayServer:
        self._thread.start()
        asyncio.run_coroutine_threadsafe(self._start(), self._loop).result(timeout=10)
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        if self._runner is not None:
            asyncio.run_coroutine_threadsafe(self._runner.cleanup(), self._loop).result(timeout=10)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(timeout=10)
        self._loop.close()

    async def _start(self) -> None:
        app = web.Application()
        app.router.add_route("*", "/{tail:.*}", self._answer)
        self._runner, self._port = await serve_on_loopback(app)

    async def _answer(self, request: web.Request) -> web.Response:
        raw = await request.read()
        got = json.loads(raw) if raw else None
        if not self.expected:
            return self._refuse(f"request {self.served + 1} ({request.path}) was never recorded")
        want = self.expected.popleft()
        self.served += 1
        if (request.method, request.path) != (want["method"], want["path"]):
            seen, recorded = f"{request.method} {request.path}", f"{want['method']} {want['path']}"
            return self._refuse(f"request {self.served}: {seen}, recorded {recorded}")
        if numbered_ids(got) != numbered_ids(want["request"]):
            return self._refuse(
                f"request {self.served} body differs:\n  sent     {json.dumps(got)}\n"
                f"  recorded {json.dumps(want['request'])}"
            )
        return web.Response(
            status=want["status"],
            body=want["body"].encode(),
            headers={"Content-Type": want["content_type"]},
        )

    def _refuse(self, problem: str) -> web.Response:
        self.problems.append(problem)
        return web.Response(status=MISMATCH_STATUS, text=problem)
