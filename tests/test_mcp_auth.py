"""`foxagent mcp serve --transport http` with a bearer token (FOXAGENT_MCP_TOKEN) and the warning
for a public bind, against real server processes on 127.0.0.1 (issue 14, finding 10)."""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from foxagent import Toolset, cli
from foxagent.cli._exit import ExitCode
from foxagent.cli._mcp_auth import (
    BearerTokenMiddleware,
    client_headers,
    is_loopback,
    public_bind_warning,
)
from foxagent.testing import FakeVLLMServer
from tests.conftest import free_port, wait_listening

SERVE = [sys.executable, "-m", "foxagent", "mcp", "serve", "--transport", "http"]
TOKEN = "fxa-mcp-Zq7w3tK9-secret"  # distinctive, so that any leak into output is found
PUBLIC = "anyone who can reach this port can run these tools"
MARKS_TOOL = '''
import os

from foxagent import tool


@tool
def mark(note: str) -> str:
    """Write a note down, so the test can tell whether a call reached the tool.

    Args:
        note: the note.
    """
    with open(os.environ["MCP_AUTH_MARKS"], "a", encoding="utf-8") as marks:
        marks.write(note + "\\n")
    return "marked"
'''
HEADERS = {
    "Accept": "application/json, text/event-stream",
    "Content-Type": "application/json",
    "MCP-Protocol-Version": "2025-06-18",
}
INITIALIZE = {
    "jsonrpc": "2.0",
    "id": 1,
    "method": "initialize",
    "params": {
        "protocolVersion": "2025-06-18",
        "capabilities": {},
        "clientInfo": {"name": "test", "version": "0"},
    },
}


def call(tool_name: str, /, **arguments: Any) -> str:
    return json.dumps({"name": tool_name, "parameters": arguments}, ensure_ascii=False)


@dataclass
class Served:
    """A running `foxagent mcp serve` process and what it left behind."""

    process: subprocess.Popen[bytes]
    url: str
    stderr_path: Path
    marks: Path

    def stderr(self) -> str:
        return self.stderr_path.read_text(encoding="utf-8")

    def stop(self) -> str:
        """Stop the server; its whole stderr."""
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(5)
        return self.stderr()


def start(tmp_path: Path, *, token: str | None, host: str = "127.0.0.1") -> Served:
    """`foxagent mcp serve` over HTTP, serving the calculator and `mark`, once it listens."""
    tools = tmp_path / "marks_tool.py"
    tools.write_text(MARKS_TOOL, encoding="utf-8")
    marks = tmp_path / "marks.txt"
    env = {k: v for k, v in os.environ.items() if k != "FOXAGENT_MCP_TOKEN"}
    env["MCP_AUTH_MARKS"] = str(marks)
    if token is not None:
        env["FOXAGENT_MCP_TOKEN"] = token
    port = free_port()
    command = [*SERVE, "--host", host, "--port", str(port)]
    command += ["--tools", "calculator", "--tools", str(tools)]
    stderr_path = tmp_path / f"serve-{port}.stderr"
    with stderr_path.open("wb") as stderr:
        process = subprocess.Popen(command, stderr=stderr, stdout=subprocess.DEVNULL, env=env)
    served = Served(process, f"http://127.0.0.1:{port}/mcp", stderr_path, marks)
    try:
        wait_listening(process, port, seconds=20, output=served.stderr)
    except RuntimeError:
        served.stop()
        raise
    return served


@pytest.fixture
def guarded(tmp_path: Path) -> Iterator[Served]:
    """The server on 127.0.0.1 with FOXAGENT_MCP_TOKEN set."""
    served = start(tmp_path, token=TOKEN)
    yield served
    served.stop()


def bearer(token: str = TOKEN) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


# --- a client with the token ---------------------------------------------------------------


async def test_a_client_with_the_token_lists_and_calls_tools(guarded: Served) -> None:
    async with Toolset.from_mcp(guarded.url, headers=bearer()) as tools:
        assert sorted(tools.names) == ["calculator", "mark"]
        assert await tools["calculator"].invoke({"expression": "6 * 7"}) == "42"
    stderr = guarded.stop()
    assert "(bearer token required)" in stderr
    assert "warning" not in stderr  # 127.0.0.1 is loopback
    assert TOKEN not in stderr


async def test_a_client_without_the_token_cannot_connect(guarded: Served) -> None:
    from foxagent._mcp import MCPServerError

    for headers in (None, bearer("wrong")):
        with pytest.raises(MCPServerError) as caught:
            await Toolset.from_mcp(guarded.url, headers=headers, connect_timeout=10).aopen()
        assert TOKEN not in str(caught.value)


# --- requests without the token get a 401 and reach no tool --------------------------------


async def test_requests_without_the_right_token_get_401_and_run_nothing(guarded: Served) -> None:
    mark_call = {
        "jsonrpc": "2.0",
        "id": 2,
        "method": "tools/call",
        "params": {"name": "mark", "arguments": {"note": "ran"}},
    }
    async with aiohttp.ClientSession() as http:
        # An authorized session exists, so only the token stands between a request and the tool.
        async with http.post(guarded.url, json=INITIALIZE, headers={**HEADERS, **bearer()}) as r:
            assert r.status == 200
            session = {"Mcp-Session-Id": r.headers["Mcp-Session-Id"]}
        initialized = {"jsonrpc": "2.0", "method": "notifications/initialized"}
        headers = {**HEADERS, **session, **bearer()}
        async with http.post(guarded.url, json=initialized, headers=headers) as r:
            assert r.status == 202

        refused: list[tuple[dict[str, str], str | None]] = [
            ({}, None),
            (bearer("wrong"), "invalid_token"),
            (bearer(TOKEN[:-1]), "invalid_token"),  # a prefix of the token
            (bearer(TOKEN + "x"), "invalid_token"),
            ({"Authorization": f"Basic {TOKEN}"}, None),
            ({"Authorization": TOKEN}, None),
            ({"Authorization": "Bearer "}, None),
        ]
        for extra, error in refused:
            headers = {**HEADERS, **session, **extra}
            async with http.post(guarded.url, json=mark_call, headers=headers) as r:
                assert r.status == 401, extra
                assert r.headers["WWW-Authenticate"].startswith("Bearer ")
                assert r.content_type == "application/json"
                body = await r.json()
                assert body["error"] == (error or "unauthorized")
                assert TOKEN not in json.dumps(body) and TOKEN not in str(r.headers)
        # Other methods and paths are refused just the same.
        async with http.get(guarded.url, headers={**HEADERS, **session}) as r:
            assert r.status == 401
        async with http.delete(guarded.url, headers={**HEADERS, **session}) as r:
            assert r.status == 401
        async with http.post(guarded.url, json=INITIALIZE, headers=HEADERS) as r:
            assert r.status == 401
        assert not guarded.marks.exists(), "a refused request ran the tool"

        # The same call with the token (the scheme's case does not matter) runs it.
        headers = {**HEADERS, **session, "Authorization": f"bearer {TOKEN}"}
        async with http.post(guarded.url, json=mark_call, headers=headers) as r:
            assert r.status == 200
            assert '"marked"' in await r.text()
    assert guarded.marks.read_text(encoding="utf-8") == "ran\n"
    stderr = guarded.stop()
    assert TOKEN not in stderr


# --- the client side: foxagent run --mcp URL -----------------------------------------------


def test_foxagent_run_sends_the_token_from_the_environment(
    guarded: Served, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from foxagent.cli import _main
    from foxagent.cli._run import run_command

    work = tmp_path / "work"
    work.mkdir()
    monkeypatch.chdir(work)  # no config file of the repository's
    with FakeVLLMServer(api_key="sk-test") as fake:
        argv = ["run", "note it", "--base-url", fake.base_url, "--tools", "get_weather"]
        argv += ["--mcp", guarded.url]
        monkeypatch.setenv("FOXAGENT_API_KEY", "sk-test")
        monkeypatch.setenv("FOXAGENT_MCP_TOKEN", TOKEN)
        fake.add(call("mark", note="from run"), "<answer>done</answer>")
        out, err = io.StringIO(), io.StringIO()
        code = run_command(vars(_main._parser().parse_args(argv)), out=out, err=err)
        assert code == ExitCode.OK, err.getvalue()
        assert guarded.marks.read_text(encoding="utf-8") == "from run\n"
        assert TOKEN not in out.getvalue() + err.getvalue()

        monkeypatch.setenv("FOXAGENT_MCP_TOKEN", "wrong-token")
        out, err = io.StringIO(), io.StringIO()
        code = run_command(vars(_main._parser().parse_args(argv)), out=out, err=err)
        assert code == ExitCode.UNREACHABLE, err.getvalue()
        assert "wrong-token" not in err.getvalue()
    assert guarded.marks.read_text(encoding="utf-8") == "from run\n"


def test_client_headers_only_for_urls_and_only_when_set(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("FOXAGENT_MCP_TOKEN", raising=False)
    assert client_headers("http://127.0.0.1:8000/mcp") is None
    monkeypatch.setenv("FOXAGENT_MCP_TOKEN", f" {TOKEN}\n")
    assert client_headers("HTTPS://mcp.example/mcp") == bearer()
    assert client_headers("python server.py") is None  # stdio has no headers


# --- the token's own rules ------------------------------------------------------------------


def test_a_token_that_cannot_be_a_header_is_refused_without_showing_it(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("FOXAGENT_MCP_TOKEN", "two words-Zq7w3tK9")
    code = cli.main(["mcp", "serve", "--transport", "http", "--tools", "calculator"])
    assert code == ExitCode.USAGE
    err = capsys.readouterr().err
    assert "FOXAGENT_MCP_TOKEN must be printable ASCII" in err
    assert "Zq7w3tK9" not in err


def test_no_flag_takes_the_token(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        cli.main(["mcp", "serve", "--help"])
    help_text = capsys.readouterr().out
    assert "FOXAGENT_MCP_TOKEN" in help_text and "--token" not in help_text
    with pytest.raises(SystemExit):
        cli.main(["mcp", "serve", "--transport", "http", "--token", "x"])
    assert "unrecognized arguments: --token" in capsys.readouterr().err


def test_the_middleware_repr_hides_the_token() -> None:
    async def app(scope: Any, receive: Any, send: Any) -> None:
        pass

    assert TOKEN not in repr(BearerTokenMiddleware(app, TOKEN))


# --- the warning for a non-loopback bind ----------------------------------------------------


@pytest.mark.parametrize(
    "host",
    ["127.0.0.1", "127.8.9.10", "::1", "[::1]", "localhost", "LOCALHOST.", "::ffff:127.0.0.1"],
)
def test_loopback_hosts_get_no_warning(host: str) -> None:
    assert is_loopback(host)
    assert public_bind_warning(host, token_set=False) is None


@pytest.mark.parametrize("host", ["0.0.0.0", "::", "192.168.1.20", "10.0.0.1", "mcp.example", ""])
def test_other_hosts_are_warned_about(host: str) -> None:
    assert not is_loopback(host)
    without = public_bind_warning(host, token_set=False)
    assert without is not None and without.startswith("foxagent mcp serve: warning: ")
    assert "exposes the tools to the network" in without and PUBLIC in without
    with_token = public_bind_warning(host, token_set=True)
    assert with_token is not None and "exposes the tools to the network" in with_token
    assert PUBLIC not in with_token and "FOXAGENT_MCP_TOKEN" in with_token


@pytest.mark.parametrize("token", [None, TOKEN], ids=["no token", "token"])
def test_serving_on_every_interface_warns_on_stderr(tmp_path: Path, token: str | None) -> None:
    served = start(tmp_path, token=token, host="0.0.0.0")
    stderr = served.stop()
    assert "foxagent mcp serve: warning: 0.0.0.0 exposes the tools to the network" in stderr
    assert (PUBLIC in stderr) is (token is None)
    assert TOKEN not in stderr
