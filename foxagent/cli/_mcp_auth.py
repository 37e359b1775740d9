"""A bearer token for ``foxagent mcp serve --transport http``, and the warning for public binds.

The token comes from the ``FOXAGENT_MCP_TOKEN`` environment variable and never from a flag: a
command line is visible to every user of the machine (``ps``, ``/proc/PID/cmdline``), the
environment only to the process's owner. `BearerTokenMiddleware` is a plain ASGI middleware
around the SDK's streamable-HTTP app. The SDK's own hook (``token_verifier=`` with
``AuthSettings``) is built for OAuth: it wants an issuer URL and a resource URL, which a
shared static token has neither of.

Nothing here puts the token in a message, a log line or a repr.
"""

from __future__ import annotations

import hmac
import ipaddress
import json
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

from foxagent._environment import first_env
from foxagent._exceptions import UserError

__all__ = [
    "TOKEN_VARIABLE",
    "BearerTokenMiddleware",
    "client_headers",
    "is_loopback",
    "public_bind_warning",
    "token_from_environment",
]

TOKEN_VARIABLE = "FOXAGENT_MCP_TOKEN"

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]


def token_from_environment() -> str | None:
    """The token in ``FOXAGENT_MCP_TOKEN`` (surrounding blanks dropped), or ``None`` if unset.

    Raises:
        UserError: the token holds characters an ``Authorization`` header cannot carry (the
            message does not show the token).
    """
    raw = first_env(TOKEN_VARIABLE)
    token = raw.strip() if raw else ""
    if not token:
        return None
    if not all("!" <= character <= "~" for character in token):
        raise UserError(
            f"{TOKEN_VARIABLE} must be printable ASCII without spaces, so that it fits in an "
            "'Authorization: Bearer' header."
        )
    return token


def client_headers(server: str) -> dict[str, str] | None:
    """The ``Authorization`` header for an MCP server URL when ``FOXAGENT_MCP_TOKEN`` is set.

    ``None`` for a command line (stdio has no headers) or when the variable is unset.
    """
    if not server.strip().lower().startswith(("http://", "https://")):
        return None
    token = token_from_environment()
    return {"Authorization": f"Bearer {token}"} if token else None


def is_loopback(host: str) -> bool:
    """Whether ``host`` is only reachable from this machine: 127.0.0.0/8, ``::1``, localhost."""
    name = host.strip().strip("[]").rstrip(".").lower()
    if name == "localhost":
        return True
    try:
        address = ipaddress.ip_address(name)
    except ValueError:
        return False  # another name may resolve to any interface
    mapped = getattr(address, "ipv4_mapped", None)  # ::ffff:127.0.0.1
    return address.is_loopback or (mapped is not None and mapped.is_loopback)


def public_bind_warning(host: str, *, token_set: bool) -> str | None:
    """The warning for serving MCP over HTTP on ``host``; ``None`` for a loopback address."""
    if is_loopback(host):
        return None
    where = f"{host or 'every interface'} exposes the tools to the network"
    if not token_set:
        return (
            f"foxagent mcp serve: warning: {where} and {TOKEN_VARIABLE} is not set; anyone who "
            "can reach this port can run these tools.\n"
        )
    return (
        f"foxagent mcp serve: warning: {where}; requests need the {TOKEN_VARIABLE} bearer "
        "token, which plain HTTP sends unencrypted (put TLS in front beyond a trusted network).\n"
    )


class BearerTokenMiddleware:
    """ASGI middleware: an HTTP request without ``Authorization: Bearer <token>`` gets a 401.

    The refused request never reaches ``app``, so no tool runs. Tokens are compared with
    `hmac.compare_digest`. Lifespan events pass through; a WebSocket is closed unopened.

    Args:
        app: the ASGI app to protect (the SDK's streamable-HTTP app).
        token: the one accepted token.
    """

    __slots__ = ("_app", "_token")

    def __init__(self, app: ASGIApp, token: str) -> None:
        if not token:
            raise UserError("BearerTokenMiddleware needs a token.")
        self._app = app
        self._token = token.encode("ascii")

    def __repr__(self) -> str:
        return f"BearerTokenMiddleware(app={self._app!r})"

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        kind = scope.get("type")
        if kind not in ("http", "websocket"):
            await self._app(scope, receive, send)
            return
        presented = _bearer_token(scope)
        if presented is not None and hmac.compare_digest(presented, self._token):
            await self._app(scope, receive, send)
            return
        if kind == "websocket":
            await send({"type": "websocket.close", "code": 1008})
            return
        await _refuse(send, wrong_token=presented is not None)


def _bearer_token(scope: Scope) -> bytes | None:
    """The token of the request's one ``Authorization: Bearer`` header, else ``None``."""
    values = [value for name, value in scope.get("headers", ()) if name.lower() == b"authorization"]
    if len(values) != 1:
        return None
    scheme, _, token = bytes(values[0]).strip().partition(b" ")
    if scheme.lower() != b"bearer":
        return None
    return token.strip() or None


async def _refuse(send: Send, *, wrong_token: bool) -> None:
    if wrong_token:
        challenge = b'Bearer realm="foxagent-mcp", error="invalid_token"'
        body = {"error": "invalid_token", "error_description": "The bearer token is not valid."}
    else:  # RFC 6750: no error code when the request carried no credentials
        challenge = b'Bearer realm="foxagent-mcp"'
        body = {
            "error": "unauthorized",
            "error_description": "This MCP server needs an 'Authorization: Bearer <token>' header.",
        }
    payload = json.dumps(body).encode()
    await send(
        {
            "type": "http.response.start",
            "status": 401,
            "headers": [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(payload)).encode()),
                (b"www-authenticate", challenge),
            ],
        }
    )
    await send({"type": "http.response.body", "body": payload})
