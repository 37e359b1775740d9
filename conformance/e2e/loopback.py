"""Start an aiohttp app on a free 127.0.0.1 port (the recording proxy and the replay server)."""

from __future__ import annotations

from aiohttp import web


async def serve_on_loopback(app: web.Application) -> tuple[web.AppRunner, int]:
    """Start ``app`` on 127.0.0.1 with a port the OS picks; return its runner and the port."""
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    server = site._server  # aiohttp exposes the bound port only through the listening socket
    assert server is not None and server.sockets
    return runner, int(server.sockets[0].getsockname()[1])
