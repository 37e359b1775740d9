"""MCP both ways: FoxBrain using an MCP server's tools, and an MCP client using foxagent's tools.

    pip install 'foxagent[mcp]'
    export FOXAGENT_BASE_URL=http://127.0.0.1:8883/v1 FOXAGENT_API_KEY=...
    python examples/mcp_tools.py                          # foxagent's own MCP server (below)
    python examples/mcp_tools.py "npx -y @modelcontextprotocol/server-everything"   # any other

The default server is `foxagent mcp serve --tools calculator`, i.e. foxagent tools served over MCP
(stdio), so the one program shows both directions:

1. an MCP client (the official SDK's `Client`) lists and calls foxagent's tools;
2. `Toolset.from_mcp(...)` turns the server's tools into tools FoxBrain can call, through
   foxagent's agent loop. The server starts when the agent is entered and stops when it is left.
"""

from __future__ import annotations

import asyncio
import json
import shlex
import sys

from mcp import Client, StdioServerParameters

from foxagent import Agent, Toolset

FOXAGENT_SERVER = [sys.executable, "-m", "foxagent", "mcp", "serve", "--tools", "calculator"]


async def mcp_client_uses_foxagent_tools() -> None:
    """Direction 1: any MCP client, here the SDK's, calls foxagent's calculator."""
    server = StdioServerParameters(command=FOXAGENT_SERVER[0], args=FOXAGENT_SERVER[1:])
    async with Client(server) as client:
        listed = await client.list_tools()
        print("MCP client sees:", ", ".join(tool.name for tool in listed.tools))
        result = await client.call_tool("calculator", {"expression": "３×（４＋５）"})
        print("MCP client: calculator(３×（４＋５）) ->", result.content[0].model_dump()["text"])


async def foxbrain_uses_mcp_tools(server: list[str], question: str) -> None:
    """Direction 2: FoxBrain calls an MCP server's tools through foxagent."""
    tools = Toolset.from_mcp(server)
    async with Agent(tools=tools) as agent:  # starts the server, lists its tools
        for schema in tools.openai_schemas():  # already in foxagent's Llama dialect
            print("tool for FoxBrain:", json.dumps(schema["function"], ensure_ascii=False))
        result = await agent.arun(question)
    for call in result.tool_calls:
        print(f"tool {call.name}({call.arguments}) -> {call.status}: {call.result or call.error}")
    print(result.parsed.pretty() if result.parsed.tagged else result.answer)


async def main() -> None:
    server = shlex.split(sys.argv[1]) if len(sys.argv) > 1 else FOXAGENT_SERVER
    question = sys.argv[2] if len(sys.argv) > 2 else "17 乘以 23 是多少？請用計算機。"
    await mcp_client_uses_foxagent_tools()
    await foxbrain_uses_mcp_tools(server, question)


if __name__ == "__main__":
    asyncio.run(main())
