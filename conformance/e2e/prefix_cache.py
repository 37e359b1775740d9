"""How much of each step's prompt a real vLLM serves from its prefix cache (issue 19, part 4).

Against a running server with prefix caching on (vLLM 0.32's default; serve.py)::

    python -m conformance.e2e.prefix_cache --base-url http://127.0.0.1:8400/v1 [--runs 4]

Each run is a multi-step agent run (FoxBrain's system prompt, the calculator and weather tools,
a question that needs both). Around every model request it reads ``/metrics``
(``vllm:prefix_cache_queries_total`` and ``vllm:prefix_cache_hits_total``, in tokens; vLLM 0.32's
names) and prints, per step, the prompt tokens queried and the share served from the cache. The
runs go one after another, so the deltas belong to one request each. vLLM caches whole blocks
(128 tokens on CPU unless ``--block-size`` says otherwise, 16 on GPU), so a step can reuse at most
the whole blocks of the prompt before it: the share printed is bounded by that. Step 1 of the
first run is cold; step 1 of later runs shares the system prompt and tools with earlier runs;
steps >= 2 re-send the whole conversation so far and should come almost entirely from the cache.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import re
import statistics
import urllib.request
from collections.abc import Mapping, Sequence
from typing import Any

from foxagent import Agent, ModelSettings, RunError, tool
from foxagent.models import VLLMModel
from foxagent.models._wrapper import WrapperModel
from foxagent_tools.calculator import calculator

_METRIC = re.compile(r"^vllm:prefix_cache_(queries|hits)_total\{[^}]*\} ([0-9.e+]+)$", re.M)
QUESTIONS = (
    "台北現在幾度？換算成華氏是多少？請用工具。",
    "What is the weather in Tokyo, and what is 17 * 23? Use the tools.",
    "高雄和台中現在的天氣如何？",
    "Convert 30 degrees Celsius to Fahrenheit with the calculator, then tell me Taipei's weather.",
)


@tool
def get_weather(location: str) -> dict[str, Any]:
    """Current weather for a place (a fixed stand-in: the stock tool needs the network).

    Args:
        location: City name, e.g. "台北".
    """
    return {"location": location, "temperature_c": 23, "condition": "多雲"}


def read_counters(root: str) -> dict[str, float]:
    with urllib.request.urlopen(root + "/metrics", timeout=10) as response:
        text = response.read().decode()
    return {kind: float(value) for kind, value in _METRIC.findall(text)}


class MeteredModel(WrapperModel):
    """Reads the prefix-cache counters around each request and keeps one row per request."""

    def __init__(self, wrapped: VLLMModel, root: str) -> None:
        super().__init__(wrapped)
        self.root = root
        self.rows: list[dict[str, Any]] = []

    async def request(
        self,
        messages: Sequence[Mapping[str, Any]],
        tools: Sequence[Mapping[str, Any]],
        settings: ModelSettings,
    ) -> Any:
        before = await asyncio.to_thread(read_counters, self.root)
        response = await self.wrapped.request(messages, tools, settings)
        after = await asyncio.to_thread(read_counters, self.root)
        queried = after["queries"] - before["queries"]
        hit = after["hits"] - before["hits"]
        self.rows.append({"queried": queried, "hit": hit, "messages": len(messages)})
        return response


async def measure(base_url: str, runs: int, max_steps: int) -> list[list[dict[str, Any]]]:
    root = base_url.removesuffix("/v1")
    per_run = []
    for question in (QUESTIONS * runs)[:runs]:
        model = MeteredModel(VLLMModel(base_url, api_key=""), root)
        settings = ModelSettings(max_tokens=256)
        async with Agent(
            [calculator, get_weather], model, settings=settings, max_steps=max_steps
        ) as agent:
            try:
                await agent.arun(question)
            except RunError as error:  # a small model may loop; the steps still count
                print(f"  (run ended: {type(error).__name__})")
        per_run.append(model.rows)
        for step, row in enumerate(model.rows, start=1):
            share = row["hit"] / row["queried"] if row["queried"] else 0.0
            print(
                f"run {len(per_run)} step {step}: {row['queried']:.0f} prompt tokens, "
                f"{share:.1%} from the cache"
            )
    return per_run


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--base-url", default="http://127.0.0.1:8400/v1")
    parser.add_argument("--runs", type=int, default=4)
    parser.add_argument("--max-steps", type=int, default=4)
    parser.add_argument("--json", help="write the rows here")
    args = parser.parse_args()
    per_run = asyncio.run(measure(args.base_url, args.runs, args.max_steps))
    later = [r for rows in per_run for r in rows[1:] if r["queried"]]
    firsts = [rows[0] for rows in per_run[1:] if rows and rows[0]["queried"]]
    for label, rows in (("steps >= 2", later), ("step 1 of runs >= 2", firsts)):
        if rows:
            hit, queried = sum(r["hit"] for r in rows), sum(r["queried"] for r in rows)
            median = statistics.median(r["hit"] / r["queried"] for r in rows)
            print(
                f"{label}: {hit:.0f}/{queried:.0f} tokens from the cache ({hit / queried:.1%}); "
                f"median per request {median:.1%}"
            )
    if args.json:
        with open(args.json, "w", encoding="utf-8") as out:
            json.dump(per_run, out, indent=1)


if __name__ == "__main__":
    main()
