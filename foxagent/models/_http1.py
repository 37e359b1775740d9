"""A lean HTTP/1.1 client for the hot path: keep-alive connections to one origin (``http://``,
or ``https://`` through asyncio's TLS), a request sent in one write, its reply read whole.

Why not aiohttp here: against a fast local server a whole ``VLLMModel.request`` (body encoded,
reply decoded) costs about 102 µs of CPU through aiohttp's client (request and response objects,
timers, connector bookkeeping, a stream reader) and about 39 µs through this one; a run is two
requests or more, and a service holds thousands of runs on a few cores. aiohttp stays where it
earns its keep: streaming.

What it speaks (RFC 9112, the part a chat-completions server uses):

- requests: ``METHOD target HTTP/1.1`` with ``Host``, the caller's headers and a
  ``Content-Length`` body, written with one ``transport.write``;
- replies: a status line (``1xx`` interim replies skipped), headers (64 KiB at most), and a body
  delimited by ``Content-Length``, by ``Transfer-Encoding: chunked``, or by the connection's
  close; ``gzip``/``deflate`` bodies are decoded (none is asked for);
- connections are kept alive and reused (last used first) unless the reply or its version says
  otherwise; at most ``max_connections`` are open, and requests beyond that wait in order for one.

Every failure is a `TransportError` whose ``reason`` says what happened in words; a reply over
its byte limit is `ReplyTooLarge` (never read past the limit plus one read). A request that is
cancelled (a timeout, its run cancelled) closes its connection: the reply still on its way must
not be read as the next request's.
"""

from __future__ import annotations

import asyncio
import collections
import os
import socket
import ssl
import zlib
from dataclasses import dataclass
from typing import Final

from foxagent._timeouts import within

__all__ = [
    "ConnectFailed",
    "Disconnected",
    "Http1Pool",
    "Reply",
    "ReplyTooLarge",
    "TransportError",
]


MAX_HEAD_BYTES: Final = 64 * 1024
# A connection idle this long is not reused. vLLM's server (uvicorn) closes connections idle for
# 5 s; a request sent as that close is on its way gets no reply and fails into a retry (with its
# backoff), since "no reply" cannot tell such a race from a worker that died on the request.
# A new connection costs ~0.1 ms; an agent's steps are usually far closer together.
KEEP_IDLE: Final = 4.0
# A reply read whole comes in a few chunks (a proxy re-chunks in KBs); each costs ~2 µs of
# Python, so a hostile server's 1-byte chunks are cut off at ~30 ms instead of seconds.
MAX_CHUNKS: Final = 16_384
_CRLF: Final = b"\r\n"
_HEAD_END: Final = b"\r\n\r\n"


class TransportError(Exception):
    """The connection failed or the reply could not be read as HTTP/1.1."""

    reason = "the connection failed"

    def __init__(self, detail: str | None = None) -> None:
        super().__init__(self.reason if detail is None else f"{self.reason} ({detail})")


class ConnectFailed(TransportError):
    """No connection could be opened (refused, unreachable, name not resolved)."""

    reason = "cannot connect"


class Disconnected(TransportError):
    """The server closed the connection before the reply was complete."""

    reason = "the server closed the connection"


class BadReply(TransportError):
    """The bytes that came back are not an HTTP/1.1 reply this client reads."""

    reason = "the reply is not valid HTTP/1.1"


class ReplyTooLarge(TransportError):
    """The reply's body is longer than the caller's limit."""

    reason = "the reply is too large"

    def __init__(self, limit: int) -> None:
        super().__init__(f"over {limit:,} bytes")
        self.limit = limit


@dataclass(frozen=True, slots=True)
class Reply:
    """A reply read whole: status, headers (names in lower case) and decoded body."""

    status: int
    headers: dict[str, str]
    body: bytes


class _Connection(asyncio.Protocol):
    """One TCP connection: one request at a time, its reply parsed as the bytes arrive."""

    def __init__(self) -> None:
        self.transport: asyncio.Transport | None = None
        self.reusable = False
        self.idle_since = 0.0  # the loop's time when it went back to the pool
        self._waiter: asyncio.Future[Reply] | None = None
        self._reader: _ReplyReader | None = None

    # --- asyncio.Protocol ---

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport

    def data_received(self, data: bytes) -> None:
        reader = self._reader
        if reader is None:  # bytes nobody asked for: the connection's state is unknown
            self.close()
            return
        try:
            reply = reader.feed(data)
        except TransportError as error:
            self._finish(error)
            return
        if reply is not None:
            self.reusable = reader.reusable
            self._finish(reply)

    def eof_received(self) -> bool:
        self._ended()
        return False  # close the transport

    def connection_lost(self, exc: Exception | None) -> None:
        self._ended()

    # --- the client's side ---

    def alive(self) -> bool:
        # A lost or closed connection's transport says it is closing (TLS ones too).
        return self.transport is not None and not self.transport.is_closing()

    async def exchange(
        self, request: bytes, limit: int, error_limit: int, head: bool, deadline: float | None
    ) -> Reply:
        """Send ``request`` and wait for its reply until the loop's time ``deadline``."""
        assert self.transport is not None
        loop = asyncio.get_running_loop()
        waiter: asyncio.Future[Reply] = loop.create_future()
        self._waiter = waiter
        self._reader = _ReplyReader(limit, error_limit, head)
        self.reusable = False
        self.transport.write(request)
        if deadline is None:
            return await waiter
        # One timer on the reply itself: an ``asyncio.timeout`` block around the request cost
        # about three times as much (its own object, the task's cancel and uncancel).
        timer = loop.call_at(deadline, self._expire, waiter)
        try:
            return await waiter
        finally:
            timer.cancel()

    def _expire(self, waiter: asyncio.Future[Reply]) -> None:
        if waiter.done():
            return
        self._waiter = self._reader = None
        waiter.set_exception(asyncio.TimeoutError())
        self.close()  # the reply may still come: it must not be read as the next one's

    def close(self) -> None:
        self.reusable = False
        if self.transport is not None:
            self.transport.close()
        self._finish(Disconnected())

    def _ended(self) -> None:
        reader = self._reader
        if reader is None:
            return
        try:
            reply = reader.end()
        except TransportError as error:
            self._finish(error)
            return
        self.reusable = False
        self._finish(reply)

    def _finish(self, outcome: Reply | TransportError) -> None:
        waiter, self._waiter, self._reader = self._waiter, None, None
        if waiter is None or waiter.done():
            return
        if isinstance(outcome, Reply):
            waiter.set_result(outcome)
        else:
            self.reusable = False
            waiter.set_exception(outcome)


class _ReplyReader:
    """Parses one reply from the bytes fed to it; `feed` returns it once complete."""

    __slots__ = (
        "_body",
        "_buffer",
        "_chunk_left",
        "_chunks",
        "_encoding",
        "_error_limit",
        "_head_only",
        "_headers",
        "_limit",
        "_mode",
        "_position",
        "_remaining",
        "_status",
        "_truncated",
        "reusable",
    )

    def __init__(self, limit: int, error_limit: int, head: bool) -> None:
        self._limit, self._error_limit, self._head_only = limit, error_limit, head
        self._buffer = b""
        self._mode = "head"  # then "length", "chunk-size", "chunk-data", "trailers" or "close"
        self._status = 0
        self._headers: dict[str, str] = {}
        self._body: list[bytes] = []
        self._position = 0  # bytes of body kept so far
        self._remaining = 0  # for "length": bytes still to come
        self._chunk_left = 0
        self._chunks = 0
        self._encoding = ""
        self._truncated = False
        self.reusable = False

    def feed(self, data: bytes) -> Reply | None:
        buffer = self._buffer + data if self._buffer else data
        self._buffer = b""
        if self._mode == "head":
            buffer = self._read_head(buffer)
            if self._mode == "head":
                return None
        if self._mode == "length":
            return self._read_length(buffer)
        if self._mode == "close":
            self._keep(buffer)
            return None
        return self._read_chunked(buffer)

    def end(self) -> Reply:
        """The connection ended: the reply, if what came is all of it."""
        if self._mode == "close":
            return self._reply()
        raise Disconnected("before the reply was complete" if self._status else "no reply")

    # --- head ---

    def _read_head(self, buffer: bytes) -> bytes:
        while True:
            end = buffer.find(_HEAD_END)
            if end < 0:
                if len(buffer) > MAX_HEAD_BYTES:
                    raise BadReply(f"headers over {MAX_HEAD_BYTES:,} bytes")
                self._buffer = buffer
                return b""
            if end > MAX_HEAD_BYTES:
                raise BadReply(f"headers over {MAX_HEAD_BYTES:,} bytes")
            self._parse_head(buffer[:end])
            buffer = buffer[end + 4 :]
            if not 100 <= self._status < 200:
                break
            self._headers = {}  # an interim reply (100 Continue): the real one follows
        self._choose_body()
        return buffer

    def _parse_head(self, head: bytes) -> None:
        lines = head.split(_CRLF)
        status_line = lines[0]
        version, _, rest = status_line.partition(b" ")
        code = rest[:3]
        if not version.startswith(b"HTTP/1.") or len(code) != 3 or not code.isdigit():
            raise BadReply(f"status line {status_line[:80]!r}")
        self._status = int(code)
        if self._status < 100:
            raise BadReply(f"status line {status_line[:80]!r}")
        headers = self._headers
        for line in lines[1:]:
            name, colon, value = line.partition(b":")
            if not colon or not name or name != name.strip():
                raise BadReply(f"header line {line[:80]!r}")
            key = name.decode("latin-1").lower()
            text = value.strip().decode("latin-1")
            headers[key] = f"{headers[key]}, {text}" if key in headers else text
        keep = headers.get("connection", "").lower()
        self.reusable = "close" not in keep if version == b"HTTP/1.1" else "keep-alive" in keep

    def _choose_body(self) -> None:
        headers = self._headers
        self._encoding = headers.get("content-encoding", "identity").strip().lower()
        if self._head_only or self._status in (204, 304):
            self._mode, self._remaining = "length", 0
            return
        transfer = headers.get("transfer-encoding")
        if transfer is not None:
            if transfer.strip().lower() != "chunked":
                raise BadReply(f"transfer-encoding {transfer[:40]!r}")
            self._mode = "chunk-size"
            return
        length = headers.get("content-length")
        if length is None:
            self._mode, self.reusable = "close", False  # the body ends with the connection
            return
        if not length.isdigit() or len(length) > 18:
            raise BadReply(f"content-length {length[:40]!r}")
        self._remaining = int(length)
        self._mode = "length"
        if self._remaining > self._cap() and not self._truncating():
            raise ReplyTooLarge(self._limit)

    # --- body ---

    def _cap(self) -> int:
        return self._error_limit if self._status >= 400 else self._limit

    def _truncating(self) -> bool:
        """An error's body is only read for its message: kept up to its cap, not refused."""
        return self._status >= 400

    def _keep(self, data: bytes) -> bool:
        """Add ``data`` to the body; ``False`` once an error body reached its cap."""
        if not data:
            return True
        room = self._cap() - self._position
        if len(data) > room:
            if not self._truncating():
                raise ReplyTooLarge(self._limit)
            data = data[:room]
            self._truncated = True
        self._body.append(data)
        self._position += len(data)
        return not self._truncated

    def _read_length(self, buffer: bytes) -> Reply | None:
        remaining = self._remaining
        if len(buffer) < remaining:
            self._remaining -= len(buffer)
            if not self._keep(buffer):
                return self._reply()
            return None
        if len(buffer) > remaining:
            self.reusable = False  # bytes after the reply: the connection is out of step
        self._keep(buffer[:remaining] if len(buffer) > remaining else buffer)
        self._remaining = 0
        return self._reply()

    def _read_chunked(self, buffer: bytes) -> Reply | None:
        position = 0
        size = len(buffer)
        while position < size:
            if self._mode == "chunk-data":
                take = min(self._chunk_left, size - position)
                if not self._keep(buffer[position : position + take]):
                    return self._reply()
                position += take
                self._chunk_left -= take
                if self._chunk_left == 0:
                    self._mode = "chunk-end"
                continue
            end = buffer.find(_CRLF, position)
            if end < 0:
                if size - position > MAX_HEAD_BYTES:
                    raise BadReply("a chunk line that never ends")
                self._buffer = buffer[position:]
                return None
            line = buffer[position:end]
            position = end + 2
            if self._mode == "chunk-end":
                if line:
                    raise BadReply("a chunk longer than its size")
                self._mode = "chunk-size"
            elif self._mode == "chunk-size":
                self._chunks += 1
                if self._chunks > MAX_CHUNKS:
                    raise BadReply(f"more than {MAX_CHUNKS:,} chunks")
                self._chunk_left = _chunk_size(line)
                self._mode = "chunk-data" if self._chunk_left else "trailers"
            elif not line:  # the blank line after the trailers: the reply is complete
                if position < size:
                    self.reusable = False
                return self._reply()
        return None

    def _reply(self) -> Reply:
        if self._truncated:
            self.reusable = False
        body = self._body[0] if len(self._body) == 1 else b"".join(self._body)
        if self._encoding not in ("identity", "") and body:
            body = _decoded(body, self._encoding, self._cap(), truncate=self._truncating())
        return Reply(self._status, self._headers, bytes(body))


def _chunk_size(line: bytes) -> int:
    digits = line.split(b";", 1)[0].strip()
    if not digits or len(digits) > 15:
        raise BadReply(f"chunk size {line[:40]!r}")
    try:
        return int(digits, 16)
    except ValueError:
        raise BadReply(f"chunk size {line[:40]!r}") from None


def _decoded(body: bytes, encoding: str, cap: int, *, truncate: bool) -> bytes:
    """``body`` decompressed (``gzip``, ``deflate``), never past ``cap`` bytes."""
    if encoding == "gzip":
        decoder = zlib.decompressobj(16 + zlib.MAX_WBITS)
    elif encoding == "deflate":
        decoder = zlib.decompressobj()
    else:
        raise BadReply(f"content-encoding {encoding[:40]!r}")
    try:
        data = decoder.decompress(body, cap + 1)
    except zlib.error:
        raise BadReply(f"a {encoding} body that does not decode") from None
    if len(data) > cap:
        if not truncate:
            raise ReplyTooLarge(cap)
        data = data[:cap]
    return data


class Http1Pool:
    """Keep-alive connections to one ``http://`` origin, for one event loop.

    Args:
        host: the server's host name or address.
        port: its port.
        headers: sent with every request (after ``Host``), e.g. the bearer token.
        max_connections: connections open at once; more requests wait in order.
        connect_timeout: seconds to open one connection, TLS handshake included (a wait for a
            free one not counted).
        tls: for ``https://``: the context the server's certificate is checked with (against
            ``host``); ``None``: plain TCP.
    """

    def __init__(
        self,
        host: str,
        port: int,
        headers: dict[str, str],
        *,
        max_connections: int,
        connect_timeout: float | None,
        tls: ssl.SSLContext | None = None,
    ) -> None:
        self.host, self.port, self.tls = host, port, tls
        self.max_connections = max_connections
        self.connect_timeout = connect_timeout
        authority = f"[{host}]" if ":" in host else host
        fixed = {"Host": f"{authority}:{port}", **headers}
        self._fixed = b"".join(_header_line(name, value) for name, value in fixed.items())
        self._idle: list[_Connection] = []
        self._open = 0  # connections open or being opened
        self._waiters: collections.deque[asyncio.Future[_Connection | None]] = collections.deque()
        self._closed = False

    async def request(
        self,
        method: str,
        target: str,
        body: bytes | None,
        headers: dict[str, str] | None = None,
        *,
        limit: int,
        error_limit: int,
        timeout: float | None = None,
    ) -> Reply:
        """Send one request and read its reply whole.

        ``limit`` caps a reply's body (`ReplyTooLarge` past it); an error status's body is
        cut at ``error_limit`` instead (it is only read for its message). ``timeout``: seconds
        for all of it, a wait for a connection included (``asyncio.TimeoutError`` past them).
        """
        parts = [f"{method} {target} HTTP/1.1\r\n".encode(), self._fixed]
        if headers:
            parts.extend([_header_line(name, value) for name, value in headers.items()])
        if body is not None:
            parts.append(b"Content-Length: %d\r\n\r\n" % len(body))
            parts.append(body)
        else:
            parts.append(_CRLF)
        data = b"".join(parts)
        loop = asyncio.get_running_loop()
        deadline = None if timeout is None else loop.time() + timeout
        # A kept connection is there at once; waiting for one, or opening one, is timed.
        connection = self._idle_connection(loop.time()) if not self._closed else None
        if connection is None:
            connection = await within(timeout, self._acquire())
        try:
            head = method == "HEAD"
            reply = await connection.exchange(data, limit, error_limit, head, deadline)
        except BaseException:
            self._discard(connection)
            raise
        if connection.reusable and connection.alive():
            self._release(connection)
        else:
            self._discard(connection)
        return reply

    async def aclose(self) -> None:
        """Close every connection; requests waiting for one fail."""
        self._closed = True
        idle, self._idle = self._idle, []
        for connection in idle:
            connection.close()
        while self._waiters:
            waiter = self._waiters.popleft()
            if not waiter.done():
                waiter.set_exception(Disconnected("the client was closed"))
        if idle:
            # A transport closes its socket in the loop's next turn: return once it has.
            await asyncio.sleep(0)

    # --- the pool ---

    async def _acquire(self) -> _Connection:
        if self._closed:
            raise Disconnected("the client was closed")
        connection = self._idle_connection(asyncio.get_running_loop().time())
        if connection is not None:
            return connection
        if self._open >= self.max_connections:
            handed = await self._wait_turn()
            if handed is not None:
                return handed
        self._open += 1
        try:
            return await self._connect()
        except BaseException:
            self._open -= 1
            self._wake()
            raise

    def _idle_connection(self, now: float) -> _Connection | None:
        """The connection last put back, if it can still be used."""
        while self._idle:
            connection = self._idle.pop()
            if connection.alive() and now - connection.idle_since < KEEP_IDLE:
                return connection
            # Closed while idle, or about to be: see KEEP_IDLE.
            self._discard(connection)
        return None

    async def _wait_turn(self) -> _Connection | None:
        """Wait for a connection handed over (or ``None``: a place to open one)."""
        waiter: asyncio.Future[_Connection | None] = asyncio.get_running_loop().create_future()
        self._waiters.append(waiter)
        try:
            handed = await waiter
        except asyncio.CancelledError:
            if waiter.done() and not waiter.cancelled():
                # Handed over just as this request was cancelled: pass it on.
                outcome = waiter.result()
                if outcome is not None:
                    self._release(outcome)
                else:
                    self._wake()
            raise
        if handed is not None and not handed.alive():
            self._open -= 1
            return None
        return handed

    async def _connect(self) -> _Connection:
        loop = asyncio.get_running_loop()
        hostname = self.host if self.tls is not None else None  # checked against its cert
        opening = loop.create_connection(
            _Connection, self.host, self.port, ssl=self.tls, server_hostname=hostname
        )
        try:
            _, connection = await within(self.connect_timeout, opening)
        except asyncio.TimeoutError:
            raise ConnectFailed(f"no connection within {self.connect_timeout:g} s") from None
        except OSError as error:
            raise ConnectFailed(_os_reason(error)) from None
        return connection

    def _release(self, connection: _Connection) -> None:
        while self._waiters:
            waiter = self._waiters.popleft()
            if not waiter.done():
                waiter.set_result(connection)
                return
        if self._closed:
            self._discard(connection)
            return
        connection.idle_since = asyncio.get_running_loop().time()
        self._idle.append(connection)

    def _discard(self, connection: _Connection) -> None:
        connection.close()
        self._open -= 1
        self._wake()

    def _wake(self) -> None:
        """A place opened: the first waiter may open a connection."""
        while self._waiters:
            waiter = self._waiters.popleft()
            if not waiter.done():
                waiter.set_result(None)
                return


def _os_reason(error: OSError) -> str:
    """``Connection refused`` rather than asyncio's ``Connect call failed ('127.0.0.1', 80)``."""
    if isinstance(error, ssl.SSLError):  # its errno is OpenSSL's, not the system's
        return f"TLS: {error.reason or error}"
    if isinstance(error, socket.gaierror) or not error.errno:
        return str(error.strerror or error or type(error).__name__)
    return os.strerror(error.errno)


def _header_line(name: str, value: str) -> bytes:
    """``Name: value\\r\\n``; a line break or NUL in either would split the request."""
    line = f"{name}: {value}"
    if "\n" in line or "\r" in line or "\0" in line or ":" in name:
        raise ValueError(f"header {name!r}: a line break, NUL or ':' cannot be sent")
    return line.encode() + _CRLF
