"""Start an aiohttp app on a free 127.0.0.1 port (the recording proxy and the replay server)."""

from __future__ import annotations

import socket

from aiohttp import web


async def serve_on_loopback(app: web.Application) -> tuple[web.AppRunner, int]:
    """Start ``app`` on 127.0.0.1 with a port the OS picks; return its runner and the port."""
    runner = web.AppRunner(app)
    await runner.setup()
    # Binding the socket here gives the port without reaching into the site's server.
    sock = socket.create_server(("127.0.0.1", 0))
    await web.SockSite(runner, sock).start()
    return runner, int(sock.getsockname()[1])
