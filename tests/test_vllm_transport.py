"""VLLMModel on its lean HTTP/1.1 client (http://) and on aiohttp (everything else): which one a
URL gets, that both send the same request, and that the lean one keeps the backend's promises
(errors by name, Retry-After, timeouts, closing)."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import pytest

from foxagent import ModelConnectionError, ModelSettings, ModelTimeoutError
from foxagent._affinity import run_affinity
from foxagent._templates import template_path
from foxagent.models._base import Model
from foxagent.models.vllm import VLLMModel
from foxagent.testing import FakeVLLMServer
from tests.conftest import free_port
from tests.test_http1 import RawServer, make_certificates, read_request, reply

COMPLETION = json.dumps(
    {
        "id": "chatcmpl-1",
        "object": "chat.completion",
        "model": "foxbrain",
        "choices": [
            {"index": 0, "message": {"role": "assistant", "content": "hi"}, "finish_reason": "stop"}
        ],
        "usage": {"prompt_tokens": 3, "completion_tokens": 1, "total_tokens": 4},
    }
).encode()
MESSAGES = [{"role": "user", "content": "台北"}]


@pytest.mark.parametrize(
    ("url", "where"),
    [
        ("http://127.0.0.1:8883/v1", ("127.0.0.1", 8883, "/v1")),
        ("http://vllm.internal/v1/", ("vllm.internal", 80, "/v1")),
        ("http://[::1]:9000/v1", ("::1", 9000, "/v1")),
        ("https://api.example.com/v1", ("api.example.com", 443, "/v1")),
        ("https://127.0.0.1:8443/v1", ("127.0.0.1", 8443, "/v1")),
        ("http://user:secret@host/v1", None),
        ("http://host/v1?x=1", None),
        ("ftp://host/v1", None),
    ],
)
def test_which_urls_the_lean_client_serves(url: str, where: tuple[str, int, str] | None) -> None:
    origin = VLLMModel(url, api_key="k", model_name="m")._origin
    assert (origin[1:] if origin else None) == where
    assert origin is None or origin[0] == url.startswith("https:")


async def test_both_clients_send_the_same_request() -> None:
    seen: list[tuple[bytes, bytes]] = []

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        while True:
            seen.append(await read_request(reader))
            writer.write(reply(COMPLETION))
            await writer.drain()

    async with RawServer(handle) as server:
        lean = VLLMModel(f"http://127.0.0.1:{server.port}/v1", api_key="k", model_name="m")
        plain = VLLMModel(f"http://127.0.0.1:{server.port}/v1", api_key="k", model_name="m")
        plain._origin = None  # aiohttp, as for a stream
        try:
            with run_affinity("0123abcd"):
                for model in (lean, plain):
                    response = await model.request(MESSAGES, [], ModelSettings())
                    assert response.message["content"] == "hi"
        finally:
            await lean.aclose()
            await plain.aclose()
    (lean_head, lean_body), (plain_head, plain_body) = seen
    assert lean_body == plain_body
    for head in (lean_head, plain_head):
        lines = {line.lower() for line in head.split(b"\r\n")}
        assert {b"authorization: bearer k", b"content-type: application/json"} <= lines
        assert b"x-session-id: 0123abcd" in lines
        assert head.startswith(b"POST /v1/chat/completions HTTP/1.1\r\n")


async def test_retry_after_is_read_from_the_lean_reply() -> None:
    asked = 0

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        nonlocal asked
        while True:
            await read_request(reader)
            asked += 1
            busy = reply(b'{"error": {"message": "busy"}}', status="429 Too Many Requests")
            busy = busy.replace(b"Content-Type", b"Retry-After: 0\r\nContent-Type")
            writer.write(busy if asked == 1 else reply(COMPLETION))
            await writer.drain()

    async with RawServer(handle) as server:
        model = VLLMModel(f"http://127.0.0.1:{server.port}/v1", api_key="k", model_name="m")
        try:
            started = asyncio.get_running_loop().time()
            response = await model.request(MESSAGES, [], ModelSettings())
            waited = asyncio.get_running_loop().time() - started
        finally:
            await model.aclose()
    assert response.message["content"] == "hi" and asked == 2
    assert waited < 0.4  # Retry-After: 0, not the 0.5 s backoff


async def test_a_refused_connection_names_what_happened() -> None:
    model = VLLMModel(f"http://127.0.0.1:{free_port()}/v1", model_name="m", max_retries=0)
    try:
        with pytest.raises(ModelConnectionError, match=r"cannot connect \(Connection refused\)"):
            await model.request(MESSAGES, [], ModelSettings())
    finally:
        await model.aclose()


async def test_a_silent_server_times_out_and_its_connection_is_closed() -> None:
    async def silent(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await read_request(reader)
        await reader.read()  # returns once the client closes

    async with RawServer(silent) as server:
        model = VLLMModel(
            f"http://127.0.0.1:{server.port}/v1", model_name="m", timeout=0.2, max_retries=0
        )
        try:
            with pytest.raises(ModelTimeoutError, match="did not answer in time"):
                await model.request(MESSAGES, [], ModelSettings())
            assert await server.settled_open(0) == 0
        finally:
            await model.aclose()


async def test_aclose_closes_kept_connections() -> None:
    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        while True:
            await read_request(reader)
            writer.write(reply(COMPLETION))
            await writer.drain()

    async with RawServer(handle) as server:
        model = VLLMModel(f"http://127.0.0.1:{server.port}/v1", model_name="m")
        await asyncio.gather(*(model.request(MESSAGES, [], ModelSettings()) for _ in range(4)))
        assert server.open >= 1
        await model.aclose()
        assert await server.settled_open(0) == 0 and server.connections <= 4


async def test_an_http_server_never_needs_aiohttp() -> None:
    template = template_path().read_text(encoding="utf-8")
    async with FakeVLLMServer(chat_template=template) as server:
        server.add("<answer>ok</answer>")
        model = VLLMModel(server.base_url)  # the served model's name asked too
        try:
            # /tokenize (a session's check before each run): the rendered prompt's count, far
            # more than the estimate from the raw messages.
            estimate = await Model.count_tokens(model, MESSAGES, [])
            assert await model.count_tokens(MESSAGES, []) > estimate > 0
            response = await model.request(MESSAGES, [], ModelSettings())
            assert response.message["content"] == "<answer>ok</answer>"
            assert model._session is None  # no aiohttp session was ever made
        finally:
            await model.aclose()


async def test_https_goes_through_the_lean_client_with_the_system_trust(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    certificates = make_certificates(tmp_path)
    monkeypatch.setenv("SSL_CERT_FILE", str(certificates.ca))  # the "system" trusts our CA

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        while True:
            await read_request(reader)
            writer.write(reply(COMPLETION))
            await writer.drain()

    async with RawServer(handle, certificates.server_context()) as server:
        for host in ("127.0.0.1", "localhost"):  # the certificate names both
            model = VLLMModel(f"https://{host}:{server.port}/v1", model_name="m", max_retries=0)
            try:
                response = await model.request(MESSAGES, [], ModelSettings())
                assert response.message["content"] == "hi"
                assert model._session is None and model._pool is not None
            finally:
                await model.aclose()
    monkeypatch.delenv("SSL_CERT_FILE")
    async with RawServer(handle, certificates.server_context()) as server:
        model = VLLMModel(f"https://127.0.0.1:{server.port}/v1", model_name="m", max_retries=0)
        try:
            with pytest.raises(ModelConnectionError, match="CERTIFICATE_VERIFY_FAILED"):
                await model.request(MESSAGES, [], ModelSettings())
        finally:
            await model.aclose()
