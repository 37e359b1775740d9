"""How long ``from foxagent import Agent, tool`` takes, and what a first request imports.

Run from the repo root::

    python -m benchmarks.bench_import

Each measurement is a fresh interpreter pinned to one core (``taskset`` where it exists), timed
inside the process with ``time.perf_counter`` around the statement, 21 times, interleaved; the
median and the best are printed. Issue 18's target: the import within 120 ms on this machine.

Three statements:

- ``from foxagent import Agent, tool`` (the issue's figure);
- that import plus ``Agent(...)`` with a `VLLMModel` for an ``http://`` server and the modules a
  non-streamed request loads (what a service or ``foxagent run`` pays before its first request);
- the same with aiohttp imported too, as it was before the lean HTTP client (issue 18).

The second and third differ by what an ``http://`` deployment no longer loads: aiohttp and the
SSL context its connector creates at import.
"""

from __future__ import annotations

import shutil
import statistics
import subprocess
import sys

RUNS = 21

_TIMED = """
import time
started = time.perf_counter()
{statement}
print((time.perf_counter() - started) * 1000)
"""

STATEMENTS = {
    "from foxagent import Agent, tool": "from foxagent import Agent, tool",
    "... + Agent(VLLMModel(http://...)) + the request path": (
        "from foxagent import Agent, tool\n"
        "from foxagent.models.vllm import VLLMModel\n"
        "import foxagent.models._http1\n"
        "Agent(model=VLLMModel('http://127.0.0.1:8883/v1', model_name='m'))"
    ),
    "... the same with aiohttp (before)": (
        "from foxagent import Agent, tool\n"
        "from foxagent.models.vllm import VLLMModel\n"
        "import aiohttp\n"
        "Agent(model=VLLMModel('http://127.0.0.1:8883/v1', model_name='m'))"
    ),
}


def _once(statement: str) -> float:
    command = [sys.executable, "-c", _TIMED.format(statement=statement)]
    if shutil.which("taskset"):
        command = ["taskset", "-c", "0", *command]
    done = subprocess.run(command, capture_output=True, text=True, check=True)
    return float(done.stdout.strip().splitlines()[-1])


def main() -> None:
    times: dict[str, list[float]] = {name: [] for name in STATEMENTS}
    for statement in STATEMENTS.values():
        _once(statement)  # compiled bytecode written, caches warm
    for _ in range(RUNS):
        for name, statement in STATEMENTS.items():
            times[name].append(_once(statement))
    print(f"{'statement':<58}{'median ms':>10}{'best ms':>9}")
    for name, samples in times.items():
        print(f"{name:<58}{statistics.median(samples):>10.1f}{min(samples):>9.1f}")


if __name__ == "__main__":
    main()
