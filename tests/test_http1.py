"""The lean HTTP/1.1 client (foxagent.models._http1) against a raw TCP server on 127.0.0.1 that
sends exactly the bytes each test scripts: framing, reuse, limits, hostile replies, the pool."""

from __future__ import annotations

import asyncio
import datetime
import gzip
import ipaddress
import itertools
import ssl
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings, strategies as st

from foxagent.models._http1 import (
    BadReply,
    ConnectFailed,
    Disconnected,
    Http1Pool,
    ReplyTooLarge,
    TransportError,
    _ReplyReader,
)
from tests.conftest import free_port

Handler = Callable[[asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]]

BODY = b'{"ok": true}'


def reply(body: bytes = BODY, *, status: str = "200 OK", extra: bytes = b"") -> bytes:
    head = f"HTTP/1.1 {status}\r\nContent-Type: application/json\r\n".encode()
    return head + extra + b"Content-Length: %d\r\n\r\n" % len(body) + body


def chunked(*pieces: bytes, trailer: bytes = b"") -> bytes:
    out = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
    for piece in pieces:
        out += b"%x;ext=1\r\n" % len(piece) + piece + b"\r\n"
    return out + b"0\r\n" + trailer + b"\r\n"


async def read_request(reader: asyncio.StreamReader) -> tuple[bytes, bytes]:
    """One request's head and body (Content-Length), as the server received them."""
    head = await reader.readuntil(b"\r\n\r\n")
    length = 0
    for line in head.split(b"\r\n"):
        if line.lower().startswith(b"content-length:"):
            length = int(line.split(b":")[1])
    return head, await reader.readexactly(length)


class RawServer:
    """Runs ``handler`` per connection; counts connections and the most open at once."""

    def __init__(self, handler: Handler, tls: ssl.SSLContext | None = None) -> None:
        self.handler = handler
        self.tls = tls
        self.connections = 0
        self.open = 0
        self.most_open = 0
        self.server: asyncio.Server | None = None

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        self.open += 1
        self.most_open = max(self.most_open, self.open)
        try:
            await self.handler(reader, writer)
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            self.open -= 1
            writer.close()

    async def __aenter__(self) -> RawServer:
        self.server = await asyncio.start_server(self._serve, "127.0.0.1", 0, ssl=self.tls)
        return self

    async def __aexit__(self, *exc: object) -> None:
        assert self.server is not None
        self.server.close()
        await self.server.wait_closed()

    @property
    def port(self) -> int:
        assert self.server is not None
        return int(self.server.sockets[0].getsockname()[1])

    async def settled_open(self, expected: int) -> int:
        """The open connections once they reach ``expected`` (a close takes a loop turn or
        two to arrive), or after half a second."""
        for _ in range(50):
            if self.open == expected:
                break
            await asyncio.sleep(0.01)
        return self.open


def keep_alive(*replies: bytes) -> Handler:
    """Answer each request on the connection with the next of ``replies``."""

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        for data in replies:
            await read_request(reader)
            writer.write(data)
            await writer.drain()
        await reader.read()  # until the client closes

    return handle


@pytest.fixture
async def pools() -> AsyncIterator[list[Http1Pool]]:
    made: list[Http1Pool] = []
    yield made
    for pool in made:
        await pool.aclose()


def make_pool(pools: list[Http1Pool], port: int, **options: int) -> Http1Pool:
    pool = Http1Pool(
        "127.0.0.1",
        port,
        {"Authorization": "Bearer k"},
        max_connections=options.get("max_connections", 8),
        connect_timeout=5.0,
    )
    pools.append(pool)
    return pool


async def ask(pool: Http1Pool, body: bytes | None = b"{}", *, limit: int = 1 << 20) -> bytes:
    answer = await pool.request("POST", "/v1/chat", body, limit=limit, error_limit=64)
    return answer.body


async def test_a_request_is_sent_whole_and_the_connection_reused(pools: list[Http1Pool]) -> None:
    seen: list[tuple[bytes, bytes]] = []

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        for _ in range(3):
            seen.append(await read_request(reader))
            writer.write(reply())
        await reader.read()

    async with RawServer(handle) as server:
        pool = make_pool(pools, server.port)
        for _ in range(3):
            assert await ask(pool, b'{"a": 1}') == BODY
        assert server.connections == 1
    head, body = seen[0]
    assert head.startswith(b"POST /v1/chat HTTP/1.1\r\nHost: 127.0.0.1:")
    assert b"\r\nAuthorization: Bearer k\r\n" in head and b"Content-Length: 8\r\n" in head
    assert body == b'{"a": 1}'


async def test_per_request_headers_are_sent(pools: list[Http1Pool]) -> None:
    seen: list[bytes] = []

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        seen.append((await read_request(reader))[0])
        writer.write(reply())
        await reader.read()

    async with RawServer(handle) as server:
        pool = make_pool(pools, server.port)
        answer = await pool.request(
            "GET", "/v1/models", None, {"x-session-id": "abc"}, limit=100, error_limit=10
        )
    assert answer.status == 200 and answer.body == BODY
    assert seen[0].startswith(b"GET /v1/models HTTP/1.1\r\n")
    assert b"x-session-id: abc\r\n" in seen[0] and b"Content-Length" not in seen[0]


async def test_chunked_with_extensions_and_trailers(pools: list[Http1Pool]) -> None:
    data = chunked(b'{"a": ', b"1", b"}", trailer=b"X-Trailer: yes\r\n")
    async with RawServer(keep_alive(data, reply())) as server:
        pool = make_pool(pools, server.port)
        assert await ask(pool) == b'{"a": 1}'
        assert await ask(pool) == BODY  # the connection stayed in step
        assert server.connections == 1


async def test_a_body_ended_by_the_close_and_connection_close(pools: list[Http1Pool]) -> None:
    async def until_close(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await read_request(reader)
        writer.write(b"HTTP/1.1 200 OK\r\n\r\n" + BODY)
        await writer.drain()

    async with RawServer(until_close) as server:
        pool = make_pool(pools, server.port)
        assert await ask(pool) == BODY
        assert await ask(pool) == BODY
        assert server.connections == 2  # never reused: the body ended with the connection

    closing = reply(extra=b"Connection: close\r\n")
    async with RawServer(keep_alive(closing, closing)) as server:
        pool = make_pool(pools, server.port)
        assert await ask(pool) == BODY
        assert await ask(pool) == BODY
        assert server.connections == 2


async def test_interim_replies_are_skipped(pools: list[Http1Pool]) -> None:
    data = b"HTTP/1.1 100 Continue\r\n\r\n" + reply()
    async with RawServer(keep_alive(data)) as server:
        assert await ask(make_pool(pools, server.port)) == BODY


async def test_a_body_cut_short_is_a_disconnect(pools: list[Http1Pool]) -> None:
    async def cut(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await read_request(reader)
        writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\n" + BODY)
        await writer.drain()

    async with RawServer(cut) as server:
        with pytest.raises(Disconnected, match="before the reply was complete"):
            await ask(make_pool(pools, server.port))


async def test_a_close_without_a_reply_is_a_disconnect(pools: list[Http1Pool]) -> None:
    async def silent(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await read_request(reader)

    async with RawServer(silent) as server:
        with pytest.raises(Disconnected, match="no reply"):
            await ask(make_pool(pools, server.port))


async def test_a_declared_length_over_the_limit_is_refused_unread(pools: list[Http1Pool]) -> None:
    async def huge(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await read_request(reader)
        writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 999999999\r\n\r\n")
        await reader.read()  # sends nothing more: the client must not wait for it

    async with RawServer(huge) as server:
        with pytest.raises(ReplyTooLarge) as caught:
            await ask(make_pool(pools, server.port), limit=1000)
    assert caught.value.limit == 1000


async def test_a_chunked_body_over_the_limit_is_refused(pools: list[Http1Pool]) -> None:
    data = chunked(*[b"x" * 400] * 10)
    async with RawServer(keep_alive(data)) as server:
        with pytest.raises(ReplyTooLarge):
            await ask(make_pool(pools, server.port), limit=1000)


async def test_an_error_body_is_cut_to_its_cap(pools: list[Http1Pool]) -> None:
    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        while True:
            _, body = await read_request(reader)
            failed = reply(b"e" * 5000, status="500 Internal Server Error")
            writer.write(failed if body == b"fail" else reply())
            await writer.drain()

    async with RawServer(handle) as server:
        pool = make_pool(pools, server.port)
        answer = await pool.request("POST", "/", b"fail", limit=10, error_limit=64)
        assert (answer.status, answer.body) == (500, b"e" * 64)
        answer = await pool.request("POST", "/", b"{}", limit=100, error_limit=64)
        assert (answer.status, answer.body) == (200, BODY)
        assert server.connections == 2  # the rest was never read: that connection is gone


async def test_gzip_is_decoded_within_the_limit(pools: list[Http1Pool]) -> None:
    packed = gzip.compress(BODY * 100)
    data = reply(packed, extra=b"Content-Encoding: gzip\r\n")
    async with RawServer(keep_alive(data, data)) as server:
        pool = make_pool(pools, server.port)
        assert await ask(pool) == BODY * 100
        with pytest.raises(ReplyTooLarge):  # a small bomb is still a bomb
            await ask(pool, limit=len(BODY) * 10)


@pytest.mark.parametrize(
    ("data", "problem"),
    [
        (b"SSH-2.0-OpenSSH\r\n\r\n", "status line"),
        (b"HTTP/1.1 2x0 OK\r\n\r\n", "status line"),
        (b"HTTP/1.1 099 Odd\r\n\r\n", "status line"),
        (b"HTTP/1.1 200 OK\r\nno colon here\r\n\r\n", "header line"),
        (b"HTTP/1.1 200 OK\r\n Folded: x\r\n\r\n", "header line"),
        (b"HTTP/1.1 200 OK\r\nContent-Length: -5\r\n\r\n", "content-length"),
        (b"HTTP/1.1 200 OK\r\nContent-Length: 9" + b"9" * 30 + b"\r\n\r\n", "content-length"),
        (b"HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip\r\n\r\n", "transfer-encoding"),
        (b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n", "chunk size"),
        (b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nabc\r\n", "longer than"),
        (b"HTTP/1.1 200 OK\r\nContent-Encoding: br\r\nContent-Length: 2\r\n\r\nxx", "content-enc"),
        (b"HTTP/1.1 200 OK\r\nContent-Encoding: gzip\r\nContent-Length: 2\r\n\r\nxx", "decode"),
    ],
)
async def test_replies_that_are_not_http_are_refused_by_name(
    pools: list[Http1Pool], data: bytes, problem: str
) -> None:
    async with RawServer(keep_alive(data)) as server:
        with pytest.raises(BadReply, match=problem):
            await ask(make_pool(pools, server.port))


async def test_hostile_floods_end_at_their_caps(pools: list[Http1Pool]) -> None:
    floods = [
        b"HTTP/1.1 200 OK\r\n" + b"{" * 256 * 1024,  # headers that never end
        b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n" + b"f" * 256 * 1024,
        b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n" + b"1\r\nx\r\n" * 20_000,
    ]
    for flood in floods:

        async def handle(
            reader: asyncio.StreamReader, writer: asyncio.StreamWriter, flood: bytes = flood
        ) -> None:
            await read_request(reader)
            writer.write(flood)
            await reader.read()

        async with RawServer(handle) as server:
            with pytest.raises(BadReply):
                await asyncio.wait_for(ask(make_pool(pools, server.port)), 10)


async def test_refused_connection(pools: list[Http1Pool]) -> None:
    with pytest.raises(ConnectFailed, match="cannot connect"):
        await ask(make_pool(pools, free_port()))


async def test_a_cancelled_request_never_hands_its_reply_to_the_next(
    pools: list[Http1Pool],
) -> None:
    async def slow_then_fast(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        while True:
            _, body = await read_request(reader)
            if body == b"slow":
                await asyncio.sleep(0.3)
            writer.write(reply(body))
            await writer.drain()

    async with RawServer(slow_then_fast) as server:
        pool = make_pool(pools, server.port, max_connections=1)
        with pytest.raises(asyncio.TimeoutError):
            await asyncio.wait_for(ask(pool, b"slow"), 0.05)
        assert await ask(pool, b"fast") == b"fast"
        await asyncio.sleep(0.4)  # the slow reply arrives at a closed connection
        assert await ask(pool, b"again") == b"again"
        assert server.connections == 2


async def test_the_pool_caps_connections_and_serves_everyone(pools: list[Http1Pool]) -> None:
    async def echo(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        while True:
            _, body = await read_request(reader)
            await asyncio.sleep(0.01)
            writer.write(reply(body))
            await writer.drain()

    async with RawServer(echo) as server:
        pool = make_pool(pools, server.port, max_connections=3)
        bodies = [b"%d" % n for n in range(40)]
        answers = await asyncio.gather(*(ask(pool, body) for body in bodies))
        assert answers == bodies
        assert server.most_open <= 3 and server.connections == 3


async def test_a_connection_the_server_closed_while_idle_is_replaced(
    pools: list[Http1Pool],
) -> None:
    async def one_then_close(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await read_request(reader)
        writer.write(reply())
        await writer.drain()  # then the handler returns: the server closes (keep-alive timeout)

    async with RawServer(one_then_close) as server:
        pool = make_pool(pools, server.port)
        assert await ask(pool) == BODY
        await asyncio.sleep(0.05)
        assert await ask(pool) == BODY
        assert server.connections == 2


async def test_bytes_after_the_reply_retire_the_connection(pools: list[Http1Pool]) -> None:
    async with RawServer(keep_alive(reply() + b"HTTP/1.1 200 OK\r\n", reply())) as server:
        pool = make_pool(pools, server.port)
        assert await ask(pool) == BODY
        assert await ask(pool) == BODY
        assert server.connections == 2


async def test_a_closed_pool_refuses_requests(pools: list[Http1Pool]) -> None:
    pool = make_pool(pools, free_port())
    await pool.aclose()
    with pytest.raises(Disconnected, match="closed"):
        await ask(pool)


def test_header_injection_is_refused() -> None:
    with pytest.raises(ValueError, match="line break"):
        Http1Pool(
            "h",
            80,
            {"Authorization": "Bearer a\r\nX-Evil: 1"},
            max_connections=1,
            connect_timeout=1,
        )


REPLIES = [
    reply(b'{"choices": ["\xe5\x8f\xb0\xe5\x8c\x97"]}'),
    chunked(b'{"choices": ', b'["a", ', b'"b"]}', trailer=b"T: 1\r\n"),
    b"HTTP/1.1 100 Continue\r\n\r\n" + reply(b"[1, 2, 3]", extra=b"X-A: 1\r\nX-A: 2\r\n"),
]


@settings(max_examples=200, suppress_health_check=[HealthCheck.too_slow])
@given(which=st.sampled_from(range(len(REPLIES))), cuts=st.lists(st.integers(0, 400), max_size=12))
def test_any_split_of_the_bytes_reads_the_same(which: int, cuts: list[int]) -> None:
    data = REPLIES[which]
    whole = _ReplyReader(1 << 20, 64, False).feed(data)
    assert whole is not None
    reader = _ReplyReader(1 << 20, 64, False)
    points = sorted({min(cut, len(data)) for cut in cuts} | {0, len(data)})
    outcome = None
    for start, end in itertools.pairwise(points):
        assert outcome is None  # complete only with its last byte
        outcome = reader.feed(data[start:end])
    assert outcome == whole
    assert whole.headers.get("x-a") in (None, "1, 2")


@settings(max_examples=300, suppress_health_check=[HealthCheck.too_slow])
@given(
    prefix=st.sampled_from(
        [b"", b"HTTP/1.1 200 OK\r\n", b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"]
    ),
    noise=st.lists(st.binary(max_size=300), max_size=6),
    end=st.booleans(),
)
def test_any_bytes_give_a_reply_or_a_named_refusal(
    prefix: bytes, noise: list[bytes], end: bool
) -> None:
    reader = _ReplyReader(4096, 64, False)
    try:
        outcome = reader.feed(prefix)
        for piece in noise:
            if outcome is not None:
                break
            outcome = reader.feed(piece)
        if outcome is None and end:
            outcome = reader.end()
    except TransportError as refused:  # the only way it may fail: named, never anything else
        assert str(refused)
        return
    if outcome is not None:
        assert len(outcome.body) <= 4096 and 100 <= outcome.status <= 999


async def test_a_connection_idle_past_keep_idle_is_not_reused(
    pools: list[Http1Pool], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("foxagent.models._http1.KEEP_IDLE", 0.05)
    async with RawServer(keep_alive(reply(), reply(), reply())) as server:
        pool = make_pool(pools, server.port)
        assert await ask(pool) == BODY
        assert await ask(pool) == BODY  # at once: the same connection
        assert server.connections == 1
        await asyncio.sleep(0.1)  # past KEEP_IDLE: the server may be closing it right now
        assert await ask(pool) == BODY
        assert server.connections == 2
        assert await server.settled_open(1) == 1  # the stale one was closed, not left open


async def test_a_kept_connection_closed_unanswered_is_a_disconnect(
    pools: list[Http1Pool],
) -> None:
    async def answer_once_then_hang_up(
        reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> None:
        await read_request(reader)
        writer.write(reply())
        await writer.drain()
        await read_request(reader)  # a worker that died on the request, or the idle race

    async with RawServer(answer_once_then_hang_up) as server:
        pool = make_pool(pools, server.port)
        assert await ask(pool) == BODY
        with pytest.raises(Disconnected, match="no reply"):  # the backend's retry decides
            await ask(pool)
        assert server.connections == 1


# --- TLS (https://) ------------------------------------------------------------------------


@dataclass(frozen=True)
class Certificates:
    """A throwaway CA and a server certificate it signed for 127.0.0.1 and localhost."""

    ca: Path
    server_cert: Path
    server_key: Path

    def server_context(self) -> ssl.SSLContext:
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        context.load_cert_chain(self.server_cert, self.server_key)
        return context

    def client_context(self) -> ssl.SSLContext:
        return ssl.create_default_context(cafile=str(self.ca))


def make_certificates(folder: Path) -> Certificates:
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    now = datetime.datetime.now(datetime.timezone.utc)

    def build(subject: str, key: ec.EllipticCurvePrivateKey) -> x509.CertificateBuilder:
        return (
            x509.CertificateBuilder()
            .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, subject)]))
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(hours=1))
            .not_valid_after(now + datetime.timedelta(days=1))
        )

    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "foxagent test CA")])
    ca = (
        build("foxagent test CA", ca_key)
        .issuer_name(ca_name)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(ca_key, hashes.SHA256())
    )
    key = ec.generate_private_key(ec.SECP256R1())
    names = [x509.IPAddress(ipaddress.ip_address("127.0.0.1")), x509.DNSName("localhost")]
    cert = (
        build("127.0.0.1", key)
        .issuer_name(ca_name)
        .add_extension(x509.SubjectAlternativeName(names), critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    pem = serialization.Encoding.PEM
    paths = Certificates(folder / "ca.pem", folder / "server.pem", folder / "server.key")
    paths.ca.write_bytes(ca.public_bytes(pem))
    paths.server_cert.write_bytes(cert.public_bytes(pem))
    paths.server_key.write_bytes(
        key.private_bytes(pem, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    )
    return paths


@pytest.fixture(scope="module")
def certificates(tmp_path_factory: pytest.TempPathFactory) -> Certificates:
    return make_certificates(tmp_path_factory.mktemp("tls"))


async def test_https_round_trips_and_keeps_its_connection(
    pools: list[Http1Pool], certificates: Certificates
) -> None:
    async with RawServer(keep_alive(reply(), reply()), certificates.server_context()) as server:
        pool = Http1Pool(
            "127.0.0.1",
            server.port,
            {},
            max_connections=2,
            connect_timeout=5,
            tls=certificates.client_context(),
        )
        pools.append(pool)
        assert await ask(pool) == BODY
        assert await ask(pool) == BODY
        assert server.connections == 1


async def test_https_refuses_a_certificate_it_cannot_trust(
    pools: list[Http1Pool], certificates: Certificates
) -> None:
    async with RawServer(keep_alive(reply()), certificates.server_context()) as server:
        untrusting = ssl.create_default_context()  # the system's CAs never signed it
        pool = Http1Pool(
            "127.0.0.1", server.port, {}, max_connections=1, connect_timeout=5, tls=untrusting
        )
        pools.append(pool)
        with pytest.raises(ConnectFailed, match="TLS: CERTIFICATE_VERIFY_FAILED"):
            await ask(pool)


async def test_a_timeout_covers_the_reply_and_the_wait_for_a_connection(
    pools: list[Http1Pool],
) -> None:
    async def silent(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await read_request(reader)
        await reader.read()  # never answers; returns when the client closes

    async with RawServer(silent) as server:
        pool = make_pool(pools, server.port, max_connections=1)
        waiting = asyncio.create_task(
            pool.request("POST", "/", b"{}", limit=100, error_limit=10, timeout=0.3)
        )
        await asyncio.sleep(0.05)  # the only connection is taken: the next request waits
        with pytest.raises(asyncio.TimeoutError):
            await pool.request("POST", "/", b"{}", limit=100, error_limit=10, timeout=0.1)
        with pytest.raises(asyncio.TimeoutError):
            await waiting  # no reply within its timeout
        assert await server.settled_open(0) == 0  # the timed-out connection was closed, not kept
