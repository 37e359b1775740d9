"""foxagent's per-run cost against a careful hand-written aiohttp loop sending the same bytes.

Run from the repo root::

    python -m benchmarks.bench_agent            # full run (about a minute)
    python -m benchmarks.bench_agent --quick    # smaller counts, for a smoke test

The task: one question, FoxBrain calls a tool (vLLM's parser catches the call), the tool's result
goes back, FoxBrain answers with its tags. What users run, as issue 18 asked:

- the server is a fast stub (raw asyncio, replies built once, vLLM 0.32's shape with the
  ``logprobs`` foxagent asks for) in its *own process*, pinned to another core than the client
  (``os.sched_setaffinity``), so the CPU time measured here is the client's alone and the
  server is never the bottleneck;
- the baseline is a careful hand-written loop: aiohttp with the headers set once on the session
  (the bearer token), orjson both ways, a status check, the tool called directly, and the same
  request bytes as foxagent: FoxBrain's system prompt, the tool's schema, the guide's settings,
  ``logprobs``. Before measuring, the stub records one run of each client and the benchmark
  prints whether the bodies are byte-identical (and fails if they differ beyond whitespace);
- foxagent is ``Agent.arun`` (recovery, validation, the generated-token check, transcript,
  answer parsing, tracing decision included), with a sync (``def``) and an async tool, with and
  without the system prompt; each against the loop doing the same. foxagent talks to an
  ``http://`` server through its own lean HTTP/1.1 client; the row "foxagent, sync tool,
  aiohttp" sends the same requests through aiohttp, as the loop does (and as foxagent did for
  every request before), so the agent layer's own cost shows too.

For each client: p50 latency of sequential runs, runs/s with 64 concurrent runs, and CPU ms per
run (the process's CPU time during the concurrent phase / runs). Rounds interleave the clients
(a noisy neighbour hits all alike) and the medians over rounds are printed, with each foxagent
row's ratios against its loop: CPU × (lower is better) and runs/s × (higher is better).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import re
import statistics
import subprocess
import sys
import time
from collections.abc import Awaitable, Callable
from typing import Any

QUESTION = "台北現在幾度？"
CALL = '{"name": "get_weather", "parameters": {"location": "台北"}}'
ANSWER = (
    "<count>1</count><step>工具回報台北 23°C。</step><reflection>資料可信。</reflection>"
    "<reward>0.9</reward><answer>台北現在 23°C。</answer><reflection>簡潔正確。</reflection>"
    "<reward>0.9</reward>"
)
EXPECTED = "台北現在 23°C。"
API_KEY = "bench-key"
MODEL = "foxbrain"
WIDTH = 64
_CALL_ID = re.compile(rb"chatcmpl-tool-[0-9a-f]+")


def weather(location: str) -> dict[str, Any]:
    """Weather now.

    Args:
        location: City.
    """
    return {"location": location, "temperature": 23, "unit": "celsius"}


async def weather_async(location: str) -> dict[str, Any]:
    """Weather now.

    Args:
        location: City.
    """
    return weather(location)


def _pin(core: int) -> None:
    if hasattr(os, "sched_setaffinity") and (os.cpu_count() or 1) > 1:
        os.sched_setaffinity(0, {core})


# --- the stub server (child process) --------------------------------------------------------


def _bodies() -> tuple[bytes, bytes]:
    """The call reply and the answer reply, as vLLM 0.32 sends them with ``logprobs``."""
    from foxagent._tokens import estimate_tokens
    from foxagent.testing._fake_logprobs import logprobs_content
    from foxagent.testing._vllm_llama3_json import server_message

    tools = [{"type": "function", "function": {"name": "get_weather", "parameters": {}}}]
    bodies = []
    for text in (CALL, ANSWER):
        message, finish = server_message(
            text, generation="brace", tools=tools, id_factory=lambda: "chatcmpl-tool-1"
        )
        tokens = estimate_tokens(text) + 1
        choice = {
            "index": 0,
            "message": message,
            "logprobs": {"content": logprobs_content(text, tokens, stopped=True)},
            "finish_reason": finish,
        }
        usage = {"prompt_tokens": 900, "completion_tokens": tokens, "total_tokens": 900 + tokens}
        document = {"id": "chatcmpl-1", "object": "chat.completion", "model": MODEL}
        document |= {"choices": [choice], "usage": usage}
        bodies.append(json.dumps(document, ensure_ascii=False).encode())
    return bodies[0], bodies[1]


def _response(body: bytes) -> bytes:
    head = (
        b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\n"
        b"content-length: " + str(len(body)).encode() + b"\r\n\r\n"
    )
    return head + body


class _Stub(asyncio.Protocol):
    """HTTP/1.1 keep-alive, Content-Length bodies only: just enough for the two clients."""

    call = answer = b""
    captured: list[bytes] | None = None

    def connection_made(self, transport: Any) -> None:
        self.transport = transport
        self.buffer = b""

    def data_received(self, data: bytes) -> None:
        self.buffer += data
        while True:
            end = self.buffer.find(b"\r\n\r\n")
            if end < 0:
                return
            head = self.buffer[:end].lower()
            at = head.find(b"content-length:")
            length = int(head[at + 15 :].split(b"\r\n", 1)[0]) if at >= 0 else 0
            if len(self.buffer) < end + 4 + length:
                return
            body = self.buffer[end + 4 : end + 4 + length]
            self.buffer = self.buffer[end + 4 + length :]
            self.transport.write(self._reply(head, body))

    def _reply(self, head: bytes, body: bytes) -> bytes:
        if head.startswith(b"post /v1/chat/completions"):
            if _Stub.captured is not None:
                _Stub.captured.append(body)
            # The answer once a tool result is the last message (same test for both clients).
            last = body.rfind(b'"role"')
            tool = body.startswith(b'"tool"', last + 7) or body.startswith(b'"tool"', last + 8)
            return _Stub.answer if tool else _Stub.call
        if head.startswith(b"post /v1/capture"):
            _Stub.captured = []
            return _response(b"{}")
        if head.startswith(b"get /v1/capture"):
            captured, _Stub.captured = _Stub.captured or [], None
            return _response(json.dumps([b.decode() for b in captured]).encode())
        return _response(b'{"object": "list", "data": [{"id": "foxbrain"}]}')


def serve(core: int) -> None:
    """Child process: run the stub until stdin closes, printing its base URL first."""
    _pin(core)
    call, answer = _bodies()
    _Stub.call, _Stub.answer = _response(call), _response(answer)

    async def main() -> None:
        loop = asyncio.get_running_loop()
        server = await loop.create_server(_Stub, "127.0.0.1", 0, backlog=1024)
        port = server.sockets[0].getsockname()[1]
        print(f"http://127.0.0.1:{port}/v1", flush=True)
        await loop.run_in_executor(None, sys.stdin.read)
        server.close()

    asyncio.run(main())


# --- the clients ----------------------------------------------------------------------------


def _foxagent_tool(sync_tool: bool) -> Any:
    from foxagent import tool

    return tool(name="get_weather")(weather if sync_tool else weather_async)


class CarefulLoop:
    """The hand-written loop: the least a client sending these bytes can do."""

    def __init__(self, base_url: str, *, system_prompt: bool, sync_tool: bool) -> None:
        import aiohttp
        import orjson

        from foxagent import ModelSettings, Toolset
        from foxagent._prompts import DEFAULT_SYSTEM_PROMPT

        self.name = f"loop, {'sync' if sync_tool else 'async'} tool"
        self.orjson = orjson
        self.url = base_url + "/chat/completions"
        self.system = DEFAULT_SYSTEM_PROMPT if system_prompt else None
        self.sync_tool = sync_tool
        # The same fields in the same order as foxagent (the settings are the guide's).
        self.fields = ModelSettings().request_fields()
        self.tools = Toolset([_foxagent_tool(sync_tool)]).schemas
        headers = {"Content-Type": "application/json", "Authorization": f"Bearer {API_KEY}"}
        self.session = aiohttp.ClientSession(
            connector=aiohttp.TCPConnector(limit=512), headers=headers
        )

    async def run(self) -> str:
        dumps, loads = self.orjson.dumps, self.orjson.loads
        # foxagent names each run to session-affine routers (x-session-id): so does the loop.
        affinity = {"x-session-id": f"{random.getrandbits(128):032x}"}
        messages: list[dict[str, Any]] = []
        if self.system:
            messages.append({"role": "system", "content": self.system})
        messages.append({"role": "user", "content": QUESTION})
        for _ in range(4):
            body = {"model": MODEL, "messages": messages, **self.fields}
            body |= {"tools": self.tools, "tool_choice": "auto", "logprobs": True}
            async with self.session.post(self.url, data=dumps(body), headers=affinity) as response:
                if response.status != 200:
                    raise RuntimeError(f"HTTP {response.status}")
                message = loads(await response.read())["choices"][0]["message"]
            calls = message.get("tool_calls") or []
            if not calls:
                text = message["content"]
                return str(text[text.index("<answer>") + 8 : text.index("</answer>")])
            for call in calls:
                function = call["function"]
                arguments = json.loads(function["arguments"])
                if self.sync_tool:
                    result = weather(**arguments)
                else:
                    result = await weather_async(**arguments)
                arguments_text = json.dumps(arguments, ensure_ascii=False)
                turn = {"name": function["name"], "arguments": arguments_text}
                messages.append(
                    {
                        "role": "assistant",
                        "content": None,
                        "tool_calls": [{"id": call["id"], "type": "function", "function": turn}],
                    }
                )
                messages.append(
                    {
                        "role": "tool",
                        "tool_call_id": call["id"],
                        "name": function["name"],
                        "content": json.dumps(result, ensure_ascii=False),
                    }
                )
        raise RuntimeError("no answer")

    async def close(self) -> None:
        await self.session.close()


class FoxagentClient:
    """``Agent.arun``; ``over_aiohttp``: its requests through aiohttp (as every request went before)
    instead of foxagent's lean HTTP/1.1 client, to show the agent layer's cost on its own."""

    def __init__(
        self, base_url: str, *, system_prompt: bool, sync_tool: bool, over_aiohttp: bool = False
    ) -> None:
        from foxagent import Agent
        from foxagent.models.vllm import VLLMModel

        self.name = f"foxagent, {'sync' if sync_tool else 'async'} tool"
        self.name += ", aiohttp" if over_aiohttp else ""
        model = VLLMModel(base_url, api_key=API_KEY, model_name=MODEL)
        if over_aiohttp:
            model._origin = None  # the benchmark's switch, not an option
        kwargs: dict[str, Any] = {} if system_prompt else {"system_prompt": None}
        self.agent = Agent(tools=[_foxagent_tool(sync_tool)], model=model, **kwargs)

    async def run(self) -> str:
        return (await self.agent.arun(QUESTION)).answer

    async def close(self) -> None:
        await self.agent.aclose()


# --- measuring ------------------------------------------------------------------------------


async def sequential(run: Callable[[], Awaitable[str]], count: int) -> list[float]:
    latencies = []
    for _ in range(count):
        started = time.perf_counter()
        answer = await run()
        latencies.append(time.perf_counter() - started)
        assert answer == EXPECTED, answer
    return latencies


async def concurrent(
    run: Callable[[], Awaitable[str]], count: int, width: int
) -> tuple[float, float]:
    """``(runs per second, CPU ms per run)`` with ``width`` runs in flight."""
    semaphore = asyncio.Semaphore(width)

    async def one() -> None:
        async with semaphore:
            await run()

    cpu, wall = time.process_time(), time.perf_counter()
    await asyncio.gather(*(one() for _ in range(count)))
    wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    return count / wall, cpu / count * 1000


async def same_bytes(base_url: str, loop: CarefulLoop, agent: FoxagentClient) -> str:
    """Record one run of each client at the stub; compare the request bodies."""
    import aiohttp

    async with aiohttp.ClientSession() as session:

        async def record(run: Callable[[], Awaitable[str]]) -> list[bytes]:
            async with session.post(base_url + "/capture", data=b"{}"):
                pass
            await run()
            async with session.get(base_url + "/capture") as response:
                return [b.encode() for b in json.loads(await response.read())]

        mine, theirs = await record(agent.run), await record(loop.run)
    # foxagent names the call it decided from the generated tokens itself; the loop keeps the
    # server's id. Only that value may differ.
    mine = [_CALL_ID.sub(b"chatcmpl-tool-ID", body) for body in mine]
    theirs = [_CALL_ID.sub(b"chatcmpl-tool-ID", body) for body in theirs]
    if mine == theirs:
        return "byte-identical (but for the tool call's id)"
    parsed = [json.loads(b) for b in mine] == [json.loads(b) for b in theirs]
    if not parsed:
        for a, b in zip(mine, theirs, strict=False):
            print(" foxagent:", a.decode()[-900:], "\n loop:   ", b.decode()[-900:])
        raise AssertionError("the clients send different requests: fix the loop or foxagent")
    sizes = ", ".join(f"{len(a)} vs {len(b)} B" for a, b in zip(mine, theirs, strict=False))
    return f"the same JSON, not the same bytes ({sizes})"


async def measure(base_url: str, rounds: int, sequential_runs: int, concurrent_runs: int) -> None:
    pairs: list[tuple[str, CarefulLoop, list[FoxagentClient]]] = []
    for system_prompt in (True, False):
        for sync_tool in (True, False):
            label = f"{'system prompt' if system_prompt else 'no system prompt'}, " + (
                "sync tool" if sync_tool else "async tool"
            )
            options = {"system_prompt": system_prompt, "sync_tool": sync_tool}
            agents = [FoxagentClient(base_url, **options)]
            if system_prompt and sync_tool:  # issue 18's row: also over aiohttp, like the loop
                agents.append(FoxagentClient(base_url, **options, over_aiohttp=True))
            pairs.append((label, CarefulLoop(base_url, **options), agents))
    results: dict[tuple[str, str], dict[str, list[float]]] = {}
    try:
        for label, loop, agents in pairs:
            for agent in agents:
                print(f"{label}: requests {await same_bytes(base_url, loop, agent)} ({agent.name})")
            for client in (loop, *agents):
                await sequential(client.run, 20)  # warm-up: connections, imports, caches
                results[label, client.name] = {"p50": [], "rps": [], "cpu": []}
        for _ in range(rounds):
            for label, loop, agents in pairs:
                for client in (loop, *agents):
                    latencies = sorted(await sequential(client.run, sequential_runs))
                    rps, cpu = await concurrent(client.run, concurrent_runs, WIDTH)
                    row = results[label, client.name]
                    row["p50"].append(latencies[len(latencies) // 2] * 1000)
                    row["rps"].append(rps)
                    row["cpu"].append(cpu)
    finally:
        for _, loop, agents in pairs:
            await loop.close()
            for agent in agents:
                await agent.close()
    report(results, [label for label, _, _ in pairs])


def report(results: dict[tuple[str, str], dict[str, list[float]]], labels: list[str]) -> None:
    median = {
        key: {k: statistics.median(v) for k, v in row.items()} for key, row in results.items()
    }
    print(
        f"{'':<30}{'client':<31}{'p50 ms':>8}{'runs/s@64':>11}{'CPU ms/run':>12}"
        f"{'CPU ×':>8}{'runs/s ×':>10}"
    )
    for label in labels:
        rows = [(name, row) for (lab, name), row in median.items() if lab == label]
        base = rows[0][1]
        for name, row in rows:
            ratios = (
                f"{row['cpu'] / base['cpu']:>8.2f}{row['rps'] / base['rps']:>10.2f}"
                if name.startswith("foxagent")
                else ""
            )
            print(
                f"{label:<30}{name:<31}{row['p50']:>8.2f}{row['rps']:>11.0f}{row['cpu']:>12.3f}"
                + ratios
            )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--quick", action="store_true", help="small counts (a smoke test)")
    parser.add_argument("--rounds", type=int, default=None, help="interleaved rounds")
    parser.add_argument("--serve", type=int, default=None, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve is not None:
        serve(args.serve)
        return
    child = subprocess.Popen(
        [sys.executable, "-m", "benchmarks.bench_agent", "--serve", "1"],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONPATH": os.getcwd()},
    )
    _pin(0)
    try:
        assert child.stdout is not None
        base_url = child.stdout.readline().strip()
        rounds, seq, conc = (1, 20, 256) if args.quick else (5, 100, 640)
        rounds = args.rounds or rounds
        print(
            f"stub {base_url} (separate process, core 1; client core 0); {rounds} interleaved "
            f"rounds, {seq} sequential and {conc} concurrent runs (C={WIDTH}) per client per "
            "round; medians over rounds"
        )
        asyncio.run(measure(base_url, rounds, seq, conc))
    finally:
        if child.stdin is not None:
            child.stdin.close()
        child.wait(timeout=10)


if __name__ == "__main__":
    main()
