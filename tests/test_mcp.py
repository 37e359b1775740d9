"""MCP both ways, against real processes: SDK-written servers used as foxagent tools (stdio and
streamable HTTP on 127.0.0.1), and `foxagent mcp serve` driven by the SDK's own client."""

from __future__ import annotations

import asyncio
import io
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from mcp import Client, StdioServerParameters
from mcp.shared.exceptions import MCPError

from foxagent import ToolArgumentsError, ToolError, Toolset, UserError, cli, tool
from foxagent._mcp import MCPServerError, MCPTool
from foxagent.testing import FakeVLLMServer
from tests.conftest import AgentFactory, free_port, wait_listening

FIXTURES = Path(__file__).parent / "fixtures"
CALC = [sys.executable, str(FIXTURES / "mcp_calc_server.py")]
SERVE = [sys.executable, "-m", "foxagent", "mcp", "serve"]
TOKEN = "sk-mcp-secret-token"


def call(tool_name: str, /, **arguments: Any) -> str:
    return json.dumps({"name": tool_name, "parameters": arguments}, ensure_ascii=False)


def start_http(command: list[str], port: int) -> subprocess.Popen[bytes]:
    """Start an HTTP MCP server process and wait until its port accepts connections."""
    process = subprocess.Popen(command, stderr=subprocess.DEVNULL)
    wait_listening(process, port, seconds=15, output=lambda: "(stderr not kept)")
    return process


def stop(process: subprocess.Popen[bytes]) -> None:
    process.kill()
    process.wait(5)


@pytest.fixture
def calc_http() -> Iterator[tuple[str, subprocess.Popen[bytes]]]:
    """The calc server over streamable HTTP, requiring a bearer token."""
    port = free_port()
    process = start_http([*CALC, "--http", str(port), "--token", TOKEN], port)
    yield f"http://127.0.0.1:{port}/mcp", process
    stop(process)


@pytest.fixture
def fake_server_options() -> dict[str, Any]:
    return {"api_key": "sk-test"}


@pytest.fixture
def agent_options() -> dict[str, Any]:
    return {"system_prompt": None}


# --- MCP servers' tools in foxagent ---------------------------------------------------------


async def test_stdio_tools_are_listed_in_the_llama_dialect() -> None:
    tools = Toolset.from_mcp(CALC)
    assert len(tools) == 0  # nothing is known before the server is started
    async with tools:
        assert tools.names == ["add", "divide", "distance", "greet", "pixel", "pid", "crash"]
        assert isinstance(tools["add"], MCPTool)
        assert tools["add"].openai_schema()["function"] == {
            "name": "add",
            "description": "Add two integers.",
            "parameters": {
                "type": "object",
                "properties": {"a": {"type": "integer"}, "b": {"type": "integer"}},
                "required": ["a", "b"],
            },
        }
        distance = tools["distance"].parameters
        text = json.dumps(distance)
        assert "$defs" not in text and "$ref" not in text and "title" not in text
        assert distance["properties"]["start"]["properties"]["x"] == {
            "description": "Horizontal coordinate.",
            "type": "number",
        }
        assert distance["properties"]["unit"]["type"] == ["string", "null"]
        connection = tools.sources[0].connection  # type: ignore[attr-defined]
        assert connection.connected
    assert not connection.connected
    with pytest.raises(
        ToolError, match=r"MCP server 'mcp_calc_server\.py' is closed, so 'add' was not"
    ):
        await tools["add"].invoke({"a": 1, "b": 2})  # closed: a clear error, no reconnect
    async with tools:  # reopened: a new process, the tools replaced
        assert len(tools) == 7 and await tools["add"].invoke({"a": 1, "b": 2}) == 3


async def test_results_text_structured_image_and_errors() -> None:
    async with Toolset.from_mcp(CALC, name="calc") as tools:
        assert await tools["add"].invoke({"a": 1, "b": "2"}) == 3  # coerced, then unwrapped
        assert await tools["greet"].invoke({"name": "Ada"}) == "你好, Ada!"
        assert await tools["distance"].invoke(
            {"start": {"x": 0, "y": 0}, "end": {"x": 3, "y": 4}}
        ) == {"distance": 5.0, "unit": "m"}
        image = await tools["pixel"].invoke({})
        assert image.startswith("[image: image/png, ") and "not shown" in image
        with pytest.raises(ToolError, match=r"Tool 'divide' \(MCP server 'calc'\) failed: .*"):
            await tools["divide"].invoke({"a": 1, "b": 0})
        with pytest.raises(ToolArgumentsError, match="'b': required argument is missing"):
            await tools["add"].invoke({"a": 1})  # refused before anything is sent


async def test_agent_run_calls_the_mcp_tool(
    fake_server: FakeVLLMServer, make_agent: AgentFactory
) -> None:
    @tool
    def shout(text: str) -> str:
        """Upper-case text."""
        return text.upper()

    tools = Toolset([shout]) + Toolset.from_mcp(CALC)
    fake_server.add(call("add", a=1, b=2), "<answer>3</answer>")
    async with make_agent(tools=tools) as agent:
        result = await agent.arun("1+2?")
    assert result.answer == "3"
    assert [(c.name, c.status, c.result) for c in result.tool_calls] == [("add", "ok", 3)]
    sent = [t["function"]["name"] for t in fake_server.requests[0]["tools"]]
    assert sent == ["shout", "add", "divide", "distance", "greet", "pixel", "pid", "crash"]
    tool_message = fake_server.requests[1]["messages"][-1]
    assert tool_message["role"] == "tool" and tool_message["content"] == "3"
    assert not tools.sources[0].connection.connected  # type: ignore[attr-defined]


def test_sync_run_opens_and_closes_the_server(
    fake_server: FakeVLLMServer, make_agent: AgentFactory
) -> None:
    fake_server.add(call("greet", name="FoxBrain"), "<answer>done</answer>")
    result = make_agent(tools=Toolset.from_mcp(CALC)).run("greet")
    assert result.tool_calls[0].result == "你好, FoxBrain!"


async def test_mcp_tool_error_goes_back_to_the_model(
    fake_server: FakeVLLMServer, make_agent: AgentFactory
) -> None:
    fake_server.add(call("divide", a=1, b=0), "<answer>cannot</answer>")
    async with make_agent(tools=Toolset.from_mcp(CALC)) as agent:
        result = await agent.arun("1/0?")
    record = result.tool_calls[0]
    assert record.status == "error"
    assert "cannot divide by zero" in (record.error or "")
    assert "MCP server 'mcp_calc_server.py'" in (record.error or "")
    tool_message = fake_server.requests[1]["messages"][-1]
    assert tool_message["role"] == "tool" and "cannot divide by zero" in tool_message["content"]
    assert result.answer == "cannot"


async def test_stdio_server_that_dies_mid_run_is_restarted(
    fake_server: FakeVLLMServer, make_agent: AgentFactory
) -> None:
    mcp_tools = Toolset.from_mcp(CALC)

    @tool
    async def kill_server() -> str:
        """Kill the MCP server process while no call is in flight."""
        pid = await mcp_tools["pid"].invoke({"note": "kill"})
        os.kill(pid, signal.SIGKILL)
        await asyncio.sleep(0.3)  # let the SDK see the end of its stdout
        return "killed"

    fake_server.add(
        call("pid", note="first"),
        call("crash"),  # the process exits during this call
        call("pid", note="after crash"),
        call("kill_server"),  # and is killed between calls
        call("pid", note="after kill"),
        "<answer>ok</answer>",
    )
    started = time.monotonic()
    # The toolset is open twice (itself, for kill_server, and inside the agent's sum): the one
    # server process is shared, reference counted.
    async with mcp_tools, make_agent(tools=mcp_tools + Toolset([kill_server])) as agent:
        result = await agent.arun("survive")
    assert time.monotonic() - started < 20
    assert not mcp_tools.sources[0].connection.connected  # type: ignore[attr-defined]
    statuses = [(c.name, c.status) for c in result.tool_calls]
    assert statuses == [
        ("pid", "ok"),
        ("crash", "error"),
        ("pid", "ok"),
        ("kill_server", "ok"),
        ("pid", "ok"),
    ]
    crash = result.tool_calls[1].error or ""
    assert "MCP server 'mcp_calc_server.py' broke during the call to 'crash'" in crash
    assert "may or may not have run" in crash
    pids = [c.result for c in result.tool_calls if c.name == "pid"]
    assert len(set(pids)) == 3  # a fresh process after each death


async def test_http_server_with_token_header(calc_http: tuple[str, Any]) -> None:
    url, _ = calc_http
    tools = Toolset.from_mcp(url, headers={"Authorization": f"Bearer {TOKEN}"})
    async with tools:
        assert "add" in tools.names
        assert await tools["add"].invoke({"a": 20, "b": 22}) == 42
        shown = f"{tools!r} {tools.sources!r} {tools['add']!r}"
        assert TOKEN not in shown and "127.0.0.1" in shown
    refused = Toolset.from_mcp(url, headers={"Authorization": "Bearer wrong"}, connect_timeout=5)
    with pytest.raises(MCPServerError, match=r"MCP server '127\.0\.0\.1:\d+/mcp'") as failure:
        await refused.aopen()
    assert "wrong" not in str(failure.value) and TOKEN not in str(failure.value)


async def test_http_server_that_dies_mid_run(
    calc_http: tuple[str, subprocess.Popen[bytes]],
    fake_server: FakeVLLMServer,
    make_agent: AgentFactory,
) -> None:
    url, process = calc_http
    mcp_tools = Toolset.from_mcp(url, headers={"Authorization": f"Bearer {TOKEN}"})

    @tool
    def kill_server() -> str:
        """Stop the HTTP MCP server."""
        stop(process)
        return "killed"

    fake_server.add(
        call("add", a=1, b=1), call("kill_server"), call("add", a=2, b=2), "<answer>x</answer>"
    )
    started = time.monotonic()
    async with make_agent(tools=mcp_tools + Toolset([kill_server])) as agent:
        result = await agent.arun("add")
    assert time.monotonic() - started < 15  # no hang on the dead server
    assert [c.status for c in result.tool_calls] == ["ok", "ok", "error"]
    error = result.tool_calls[2].error or ""
    assert "MCP server '127.0.0.1:" in error and "unreachable" in error
    assert "'add' was not called" in error and TOKEN not in error


async def test_servers_that_cannot_start_or_answer() -> None:
    exits = Toolset.from_mcp([sys.executable, "-c", "import sys; sys.exit(3)"], name="quitter")
    with pytest.raises(MCPServerError, match="MCP server 'quitter' could not be started"):
        await exits.aopen()
    missing = Toolset.from_mcp("no-such-mcp-command --flag")
    with pytest.raises(MCPServerError, match="could not be started: command not found"):
        await missing.aopen()
    port = free_port()
    with pytest.raises(MCPServerError, match="could not be reached: connection refused"):
        await Toolset.from_mcp(f"http://127.0.0.1:{port}/mcp").aopen()
    silent = Toolset.from_mcp(
        [sys.executable, "-c", "import time; time.sleep(60)"], connect_timeout=1
    )
    started = time.monotonic()
    with pytest.raises(MCPServerError, match=r"did not answer within 1 s \(connect_timeout\)"):
        await silent.aopen()
    assert time.monotonic() - started < 5


async def test_name_clash_needs_a_prefix() -> None:
    both = Toolset.from_mcp(CALC) + Toolset.from_mcp(CALC, prefix="b.")
    async with both:
        assert "add" in both.names and "b_add" in both.names  # '.' is not a Llama name char
        assert await both["b_add"].invoke({"a": 2, "b": 5}) == 7
        assert both["b_add"].remote_name == "add"  # type: ignore[union-attr]
    clash = Toolset.from_mcp(CALC) + Toolset.from_mcp(CALC)
    with pytest.raises(UserError, match="Two tools are named 'add'"):
        await clash.aopen()
    assert all(not s.connection.connected for s in clash.sources)  # type: ignore[attr-defined]


def test_cli_run_with_mcp(fake_server: FakeVLLMServer, tmp_path: Path, monkeypatch: Any) -> None:
    from foxagent.cli import _main
    from foxagent.cli._run import run_command

    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("FOXAGENT_API_KEY", "sk-test")
    fake_server.add(call("add", a=1, b=2), "<answer>3</answer>")
    server = " ".join(CALC)
    out, err = io.StringIO(), io.StringIO()
    url = fake_server.base_url
    argv = ["run", "1+2?", "--base-url", url, "--tools", "calculator", "--mcp", server]
    code = run_command(vars(_main._parser().parse_args(argv)), out=out, err=err)
    assert code == 0, err.getvalue()
    assert out.getvalue().strip().endswith("3")  # stdout is the answer alone
    assert '↳ add({"a": 1, "b": 2}) ok' in err.getvalue()
    names = [t["function"]["name"] for t in fake_server.requests[0]["tools"]]
    assert names[:2] == ["calculator", "add"]

    broken = ["run", "hi", "--base-url", url, "--mcp", f"{sys.executable} -c pass"]
    err = io.StringIO()
    assert run_command(vars(_main._parser().parse_args(broken)), out=out, err=err) == 3
    assert "MCP server" in err.getvalue() and "could not be started" in err.getvalue()


# --- foxagent tools for MCP clients ---------------------------------------------------------


async def test_mcp_serve_stdio_driven_by_the_sdk_client() -> None:
    command = [*SERVE, "--tools", "calculator", "--tools", str(FIXTURES / "mcp_served_tools.py")]
    parameters = StdioServerParameters(command=command[0], args=command[1:])
    async with Client(parameters) as client:
        listed = {t.name: t for t in (await client.list_tools()).tools}
        assert sorted(listed) == ["calculator", "lookup"]  # wipe_disk needs approval
        expected = Toolset.load(["calculator"])["calculator"].parameters
        assert listed["calculator"].input_schema == expected
        result = await client.call_tool("calculator", {"expression": "17 * 23"})
        assert not result.is_error and result.content[0].text == "391"  # type: ignore[union-attr]
        result = await client.call_tool("lookup", {"city": "Taipei"})
        assert result.structured_content == {
            "city": "Taipei",
            "population": 2600000,
            "tags": ["台北", "capital"],
        }
        result = await client.call_tool("lookup", {"city": "Atlantis"})
        assert result.is_error
        assert result.content[0].text == "No city called 'Atlantis' was found."  # type: ignore[union-attr]
        result = await client.call_tool("calculator", {"expr": "1"})
        assert result.is_error and "'expr': unknown argument" in result.content[0].text  # type: ignore[union-attr]
        with pytest.raises(MCPError, match="Unknown tool 'nope'; tools: calculator, lookup"):
            await client.call_tool("nope", {})


async def test_mcp_serve_http_and_foxagent_as_its_client() -> None:
    port = free_port()
    process = start_http(
        [*SERVE, "--tools", "calculator", "--transport", "http", "--port", str(port)], port
    )
    try:
        async with Client(f"http://127.0.0.1:{port}/mcp") as client:
            assert [t.name for t in (await client.list_tools()).tools] == ["calculator"]
            result = await client.call_tool("calculator", {"expression": "６×７"})
            assert result.content[0].text == "42"  # type: ignore[union-attr]
        # Both directions at once: foxagent's client on foxagent's server.
        async with Toolset.from_mcp(f"http://127.0.0.1:{port}/mcp") as tools:
            assert await tools["calculator"].invoke({"expression": "2**10"}) == "1024"
    finally:
        stop(process)


def test_example_runs_both_directions(fake_server: FakeVLLMServer) -> None:
    fake_server.add(call("calculator", expression="17 * 23"), "<answer>391</answer>")
    env = {**os.environ, "FOXAGENT_BASE_URL": fake_server.base_url, "FOXAGENT_API_KEY": "sk-test"}
    example = Path(__file__).parent.parent / "examples" / "mcp_tools.py"
    done = subprocess.run(
        [sys.executable, str(example)], capture_output=True, text=True, timeout=60, env=env
    )
    assert done.returncode == 0, done.stderr
    assert "MCP client sees: calculator" in done.stdout
    assert "MCP client: calculator(３×（４＋５）) -> 27" in done.stdout
    assert 'tool for FoxBrain: {"name": "calculator"' in done.stdout
    assert "tool calculator({'expression': '17 * 23'}) -> ok: 391" in done.stdout
    assert "391" in done.stdout.splitlines()[-1]


def test_cli_tools_shows_mcp_schemas(capsys: pytest.CaptureFixture[str]) -> None:
    code = cli.main(["tools", "--tools", "calculator", "--mcp", " ".join(CALC), "--json"])
    document = json.loads(capsys.readouterr().out)
    assert code == 0
    names = [row["schema"]["function"]["name"] for row in document["tools"]]
    assert names == ["calculator", "add", "divide", "distance", "greet", "pixel", "pid", "crash"]
    assert all(row["tokens"] > 0 for row in document["tools"])


def test_mcp_servers_from_the_config_file(tmp_path: Path, monkeypatch: Any) -> None:
    from foxagent.cli._config import RunConfig

    monkeypatch.delenv("FOXAGENT_BASE_URL", raising=False)
    (tmp_path / "foxagent.toml").write_text(
        'mcp = ["python server.py", "http://127.0.0.1:1/mcp"]\n'
    )
    config = RunConfig.resolve({"mcp": None}, directory=tmp_path)
    assert config.mcp == ["python server.py", "http://127.0.0.1:1/mcp"]
    assert RunConfig.resolve({"mcp": ["other"]}, directory=tmp_path).mcp == ["other"]
