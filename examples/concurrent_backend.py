"""Many questions at once through one agent, as a backend service would run them.

    FOXAGENT_BASE_URL=http://127.0.0.1:8883/v1 python examples/concurrent_backend.py 100

One `Agent` (and so one connection pool) serves every run; each `arun` is independent, so a web
handler can simply `await agent.arun(question)` per request.
"""

from __future__ import annotations

import asyncio
import sys
import time

from foxagent import Agent, RunError
from foxagent_tools.calculator import calculator


async def main(count: int) -> int:
    questions = [f"What is {n} * {n + 1}? 請計算。" for n in range(count)]
    async with Agent(tools=[calculator]) as agent:
        started = time.perf_counter()
        results = await asyncio.gather(*(agent.arun(q) for q in questions), return_exceptions=True)
        elapsed = time.perf_counter() - started
    failures = [r for r in results if isinstance(r, RunError)]
    answered = [r for r in results if not isinstance(r, BaseException)]
    overhead = sum(r.timings.overhead for r in answered) / max(len(answered), 1)
    print(f"{len(answered)}/{count} answered in {elapsed:.2f} s ({count / elapsed:.0f} runs/s)")
    print(f"foxagent overhead per run: {overhead * 1000:.2f} ms; failures: {len(failures)}")
    for failure in failures[:3]:
        print(f"  {type(failure).__name__}: {failure}")
    return 0 if not failures else 1


if __name__ == "__main__":
    sys.exit(asyncio.run(main(int(sys.argv[1]) if len(sys.argv) > 1 else 20)))
