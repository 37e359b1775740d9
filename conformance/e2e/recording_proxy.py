"""A reverse proxy on 127.0.0.1 that forwards to a real vLLM and records every exchange.

Each exchange is stored as JSON: method, path, request body (parsed), status, content type and
the response body exactly as the server sent it (an SSE stream as its raw text). Headers are not
recorded: the only interesting one, ``Authorization``, is a secret.
"""

from __future__ import annotations

import json
from types import TracebackType
from typing import Any

import aiohttp
from aiohttp import web

from conformance.e2e.loopback import serve_on_loopback

# Hop-by-hop and length headers are the proxy's own business.
_FORWARDED_REQUEST_HEADERS = ("Authorization", "Content-Type", "Accept")


class RecordingProxy:
    """``async with RecordingProxy("http://127.0.0.1:8399") as proxy: proxy.base_url``."""

    def __init__(self, upstream_root: str) -> None:
        self.upstream_root = upstream_root.rstrip("/")
        self.exchanges: list[dict[str, Any]] = []
        self._runner: web.AppRunner | None = None
        self._session: aiohttp.ClientSession | None = None
        self._port = 0

    @property
    def base_url(self) -> str:
        """The proxy's ``/v1`` URL, for foxagent."""
        return f"http://127.0.0.1:{self._port}/v1"

    async def __aenter__(self) -> RecordingProxy:
        # Generous: a 135M model on CPU answers in seconds, the first request after start later.
        self._session = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=900))
        app = web.Application(client_max_size=64 * 1024 * 1024)
        app.router.add_route("*", "/{tail:.*}", self._forward)
        self._runner, self._port = await serve_on_loopback(app)
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
        if self._session is not None:
            await self._session.close()

    async def _forward(self, request: web.Request) -> web.StreamResponse:
        assert self._session is not None
        body = await request.read()
        headers = {
            k: request.headers[k] for k in _FORWARDED_REQUEST_HEADERS if k in request.headers
        }
        url = self.upstream_root + request.path_qs
        async with self._session.request(
            request.method, url, data=body or None, headers=headers
        ) as upstream:
            content_type = upstream.headers.get("Content-Type", "")
            raw = bytearray()
            if content_type.startswith("text/event-stream"):
                response = web.StreamResponse(
                    status=upstream.status, headers={"Content-Type": content_type}
                )
                await response.prepare(request)
                async for piece in upstream.content.iter_any():
                    raw += piece
                    await response.write(piece)
                await response.write_eof()
            else:
                raw += await upstream.read()
                response = web.Response(
                    status=upstream.status, body=bytes(raw), headers={"Content-Type": content_type}
                )
        self.exchanges.append(
            {
                "method": request.method,
                "path": request.path,
                "request": json.loads(body) if body else None,
                "status": upstream.status,
                "content_type": content_type,
                "body": raw.decode("utf-8"),
            }
        )
        return response
