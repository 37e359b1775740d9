"""``run_batch`` over 10,000 questions in one process: runs/s, and memory that stays flat.

Run from the repo root::

    python -m benchmarks.bench_batch              # 10,000 questions (about a minute)
    python -m benchmarks.bench_batch --quick      # 1,000

Each question is the task of bench_agent: FoxBrain calls a tool (vLLM's parser catches the
call), the tool's result goes back, FoxBrain answers with its tags: two model requests per
question. The server is `FakeVLLMServer` (vLLM's parser and response shapes) in its own process,
pinned to another core than the job when there are two, so the job's process holds only the
job: its RSS is read from ``/proc/self/status`` when 1,000, 5,000 and 10,000 questions are done
(flat memory: the questions are streamed and each answer is written and dropped). The answers
file is fsynced as in ``foxagent batch`` (group commit); ``--no-fsync`` measures without.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import multiprocessing
import os
import resource
import tempfile
import time
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

QUESTION = "台北現在幾度？"
CALL = '{"name": "get_weather", "parameters": {"location": "台北"}}'
ANSWER = (
    "<count>1</count><step>工具回報台北 23°C。</step><reflection>資料可信。</reflection>"
    "<reward>0.9</reward><answer>台北現在 23°C。</answer><reflection>簡潔正確。</reflection>"
    "<reward>0.9</reward>"
)


def _reply(body: dict[str, Any]) -> str:
    return ANSWER if body["messages"][-1]["role"] == "tool" else CALL


def _pin(core: int) -> None:
    if hasattr(os, "sched_setaffinity") and (os.cpu_count() or 1) > 1:
        os.sched_setaffinity(0, {core})


def _serve(connection: Connection) -> None:
    """The server process: FakeVLLMServer until the parent says stop."""
    from foxagent.testing import FakeVLLMServer

    _pin(1)

    class Forgetful(FakeVLLMServer):
        """Keeps no request bodies: 20,000 of them would be the server's memory, not news."""

        def _next_reply(self, body: dict[str, Any]) -> Any:
            self.requests.clear()
            return super()._next_reply(body)

    with Forgetful(_reply) as server:
        connection.send(server.base_url)
        connection.recv()


def _rss_mb() -> float:
    with open("/proc/self/status", encoding="ascii") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return 0.0


def weather(location: str) -> dict[str, Any]:
    """Weather now.

    Args:
        location: City.
    """
    return {"location": location, "temperature": 23, "unit": "celsius"}


async def _job(url: str, questions: Path, output: Path, concurrency: int, fsync: bool) -> Any:
    from foxagent import Agent
    from foxagent.batch import BatchSummary, run_batch
    from foxagent.models.vllm import VLLMModel

    marks = {1_000, 5_000, 10_000, 20_000, 50_000, 100_000}
    rss: dict[int, float] = {}

    def note(summary: BatchSummary) -> None:
        done = summary.answered + summary.failed
        if done in marks and done not in rss:
            rss[done] = _rss_mb()

    async with Agent(tools=[weather], model=VLLMModel(url)) as agent:
        summary = await run_batch(
            agent, questions, output, concurrency=concurrency, on_progress=note, fsync=fsync
        )
    return summary, rss


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--questions", type=int, default=10_000)
    parser.add_argument("--quick", action="store_true", help="1,000 questions")
    parser.add_argument("--concurrency", type=int, default=64)
    parser.add_argument("--no-fsync", action="store_true")
    args = parser.parse_args()
    count = 1_000 if args.quick else args.questions

    context = multiprocessing.get_context("spawn")
    parent, child = context.Pipe()
    server = context.Process(target=_serve, args=(child,), daemon=True)
    server.start()
    try:
        url = parent.recv()
        _pin(0)
        with tempfile.TemporaryDirectory() as directory:
            questions = Path(directory) / "questions.jsonl"
            with questions.open("w", encoding="utf-8") as handle:
                for number in range(count):
                    row = {"id": f"q{number:06d}", "question": f"{QUESTION} #{number}"}
                    handle.write(json.dumps(row, ensure_ascii=False) + "\n")
            output = Path(directory) / "answers.jsonl"
            rss_start = _rss_mb()
            cpu = time.process_time()
            summary, rss = asyncio.run(
                _job(url, questions, output, args.concurrency, not args.no_fsync)
            )
            cpu = time.process_time() - cpu
            peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
            size = output.stat().st_size
            with output.open("rb") as answers:
                lines = sum(1 for _ in answers)
    finally:
        parent.send("stop")
        server.join(timeout=10)

    print(
        f"questions           {count} (concurrency {args.concurrency}, fsync {not args.no_fsync})"
    )
    print(
        f"answered / errors   {summary.answered} / {summary.failed}  "
        f"({lines} lines, {size / 1e6:.1f} MB)"
    )
    print(f"model requests      {summary.requests}")
    print(f"wall time           {summary.wall_time:.2f} s")
    print(f"runs/s              {count / summary.wall_time:.0f}")
    print(f"client CPU per run  {cpu / count * 1000:.2f} ms")
    marks = "  ".join(f"{done:>6}: {mb:.0f} MB" for done, mb in sorted(rss.items()))
    print(f"RSS                 start: {rss_start:.0f} MB  {marks}  (peak {peak:.0f} MB)")
    if summary.answered != count or lines != count:
        raise SystemExit("not every question was answered")


if __name__ == "__main__":
    main()
