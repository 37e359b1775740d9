"""foxagent's per-run cost against hand-written loops, on the same task and the same server.

Run from the repo root::

    python -m benchmarks.bench_agent            # full run (about a minute)
    python -m benchmarks.bench_agent --quick    # smaller counts, for a smoke test

The task: one question, FoxBrain calls a tool (vLLM's parser catches the call), the tool's result
goes back, FoxBrain answers with its tags. ``FakeVLLMServer`` answers from a *separate process*,
so the CPU time measured here is the client's alone. Three clients do the task:

- ``aiohttp loop``: a hand-written loop on aiohttp (the baseline: the least a client can do);
- ``openai SDK loop``: the same loop on ``openai.AsyncOpenAI``;
- ``foxagent``: ``Agent.arun`` (recovery, validation, transcript, answer parsing included), with
  the tool declared ``async`` (it runs on the event loop, as the hand-written loops run it);
- ``foxagent, sync tool``: the same with a plain ``def`` tool, which foxagent runs in a worker
  thread (a sync tool may block; the thread hop costs ~60 µs of CPU per call here).

For each: p50/p90 latency of sequential runs, runs/s with 64 concurrent runs, and CPU ms per run
(process CPU time during the concurrent phase / runs). Rounds interleave the clients and the
medians over rounds are printed, with ratios against the aiohttp loop.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
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
TOOLS = [
    {
        "type": "function",
        "function": {
            "name": "get_weather",
            "description": "Weather now.",
            "parameters": {
                "type": "object",
                "properties": {"location": {"type": "string"}},
                "required": ["location"],
            },
        },
    }
]


def reply(request: dict[str, Any]) -> str:
    """The scripted model: a call first, the answer once a tool result is in the history."""
    return ANSWER if request["messages"][-1]["role"] == "tool" else CALL


def weather(location: str) -> dict[str, Any]:
    return {"location": location, "temperature": 23, "unit": "celsius"}


def serve() -> None:
    """Child process: run the fake server until stdin closes, printing its base URL first."""
    from foxagent.testing import FakeVLLMServer

    with FakeVLLMServer(reply) as server:
        print(server.base_url, flush=True)
        sys.stdin.read()


# --- the three clients ---------------------------------------------------------------------


class AiohttpLoop:
    name = "aiohttp loop"

    def __init__(self, base_url: str) -> None:
        import aiohttp

        self.url = base_url + "/chat/completions"
        self.session = aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=512))

    async def run(self) -> str:
        messages: list[dict[str, Any]] = [{"role": "user", "content": QUESTION}]
        for _ in range(4):
            body = {"model": "foxbrain", "messages": messages, "tools": TOOLS}
            async with self.session.post(self.url, json=body) as response:
                message = (await response.json())["choices"][0]["message"]
            calls = message.get("tool_calls") or []
            if not calls:
                text = message["content"]
                return text[text.index("<answer>") + 8 : text.index("</answer>")]
            messages.append(message)
            for call in calls:
                result = weather(**json.loads(call["function"]["arguments"]))
                messages.append(
                    {"role": "tool", "tool_call_id": call["id"], "content": json.dumps(result)}
                )
        raise RuntimeError("no answer")

    async def close(self) -> None:
        await self.session.close()


class OpenAILoop:
    name = "openai SDK loop"

    def __init__(self, base_url: str) -> None:
        import openai

        self.client = openai.AsyncOpenAI(base_url=base_url, api_key="none")

    async def run(self) -> str:
        messages: list[Any] = [{"role": "user", "content": QUESTION}]
        for _ in range(4):
            completion = await self.client.chat.completions.create(
                model="foxbrain",
                messages=messages,
                tools=TOOLS,  # type: ignore[arg-type]
            )
            message = completion.choices[0].message
            if not message.tool_calls:
                text = message.content or ""
                return text[text.index("<answer>") + 8 : text.index("</answer>")]
            messages.append(message.model_dump(exclude_none=True))
            for call in message.tool_calls:
                result = weather(**json.loads(call.function.arguments))  # type: ignore[union-attr]
                messages.append(
                    {"role": "tool", "tool_call_id": call.id, "content": json.dumps(result)}
                )
        raise RuntimeError("no answer")

    async def close(self) -> None:
        await self.client.close()


async def weather_async(location: str) -> dict[str, Any]:
    return weather(location)


class FoxagentClient:
    def __init__(self, base_url: str, *, sync_tool: bool = False) -> None:
        from foxagent import Agent, tool
        from foxagent.models.vllm import VLLMModel

        self.name = "foxagent, sync tool" if sync_tool else "foxagent"
        function = weather if sync_tool else weather_async
        get_weather = tool(name="get_weather")(function)
        model = VLLMModel(base_url, api_key="none", model_name="foxbrain")
        self.agent = Agent(tools=[get_weather], model=model, system_prompt=None)

    async def run(self) -> str:
        return (await self.agent.arun(QUESTION)).answer

    async def close(self) -> None:
        await self.agent.aclose()


# --- measuring -------------------------------------------------------------------------------


async def sequential(run: Callable[[], Awaitable[str]], count: int) -> list[float]:
    latencies = []
    for _ in range(count):
        started = time.perf_counter()
        answer = await run()
        latencies.append(time.perf_counter() - started)
        assert answer == "台北現在 23°C。", answer
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


async def measure(base_url: str, rounds: int, sequential_runs: int, concurrent_runs: int) -> None:
    clients = [
        AiohttpLoop(base_url),
        OpenAILoop(base_url),
        FoxagentClient(base_url),
        FoxagentClient(base_url, sync_tool=True),
    ]
    results: dict[str, dict[str, list[float]]] = {
        c.name: {"p50": [], "p90": [], "rps": [], "cpu": []} for c in clients
    }
    try:
        for client in clients:
            await sequential(client.run, 20)  # warm-up: connections, imports, caches
        for _ in range(rounds):
            for client in clients:
                latencies = sorted(await sequential(client.run, sequential_runs))
                rps, cpu = await concurrent(client.run, concurrent_runs, 64)
                row = results[client.name]
                row["p50"].append(latencies[len(latencies) // 2] * 1000)
                row["p90"].append(latencies[int(len(latencies) * 0.9)] * 1000)
                row["rps"].append(rps)
                row["cpu"].append(cpu)
    finally:
        for client in clients:
            await client.close()
    report(results)


def report(results: dict[str, dict[str, list[float]]]) -> None:
    median = {
        name: {k: statistics.median(v) for k, v in row.items()} for name, row in results.items()
    }
    base = median["aiohttp loop"]
    print(
        f"{'client':<18}{'p50 ms':>9}{'p90 ms':>9}{'runs/s@64':>11}{'CPU ms/run':>12}"
        f"{'CPU ×':>8}{'runs/s ×':>10}"
    )
    for name, row in median.items():
        print(
            f"{name:<22}{row['p50']:>9.2f}{row['p90']:>9.2f}{row['rps']:>11.0f}{row['cpu']:>12.2f}"
            f"{row['cpu'] / base['cpu']:>8.2f}{row['rps'] / base['rps']:>10.2f}"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--quick", action="store_true", help="small counts (a smoke test)")
    parser.add_argument("--serve", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve:
        serve()
        return
    child = subprocess.Popen(
        [sys.executable, __file__, "--serve"],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONPATH": os.getcwd()},
    )
    try:
        assert child.stdout is not None
        base_url = child.stdout.readline().strip()
        rounds, seq, conc = (1, 20, 128) if args.quick else (5, 100, 640)
        print(
            f"server {base_url} (separate process); {rounds} rounds, {seq} sequential, "
            f"{conc} concurrent runs per client per round"
        )
        asyncio.run(measure(base_url, rounds, seq, conc))
    finally:
        if child.stdin is not None:
            child.stdin.close()
        child.wait(timeout=10)


if __name__ == "__main__":
    main()
