"""Worst-case parse times on hostile model output (issue 14), against the goals.

Run from the repo root::

    python -m benchmarks.bench_parsing [--repeats 7] [--timeout 10] [--sizes 1K,10K] [--only react]
        [--check]

For every input of :mod:`benchmarks.adversarial_corpus` it times three functions:

* ``content``: ``recover_tool_calls`` with the text as the reply's content;
* ``server``: ``recover_tool_calls`` with the text as a server ``tool_calls`` entry's arguments;
* ``answer``: ``parse_answer(text)``.

Each function runs ``--repeats`` times in a worker process pinned to one core (when
``os.sched_setaffinity`` exists); the table shows the median and the worst of the repeats in
milliseconds. A run over ``--timeout`` seconds kills the worker and is reported as ``>T``. The
goals: at most 5 ms up to 10 KiB and at most 100 ms up to 256 KiB, per function; the verdict
compares the *median* of the repeats (the worst also holds a GC pause or a noisy neighbour). The
last lines give the worst median per size and function; with ``--check`` the exit status is 1
when a goal is missed.
"""

from __future__ import annotations

import argparse
import multiprocessing
import multiprocessing.connection
import os
import statistics
import sys
import time
from typing import Any

from benchmarks.adversarial_corpus import FAMILIES, SIZES

FUNCTIONS = ("content", "server", "answer")
# Per-size goal in milliseconds: 5 ms up to 10 KiB, 100 ms beyond (up to 256 KiB).
GOAL_MS = {"1K": 5.0, "10K": 5.0, "64K": 100.0, "256K": 100.0}
# A repeat loop stops early once this much time went into one input, so a slow input is measured
# fewer times instead of taking minutes.
_REPEAT_BUDGET_S = 2.0


def _subjects() -> dict[str, Any]:
    from foxagent import Toolset, parse_answer, recover_tool_calls, tool

    @tool
    def get_weather(location: str, unit: str = "celsius") -> str:
        """Weather now.

        Args:
            location: City.
            unit: celsius or fahrenheit.
        """
        return location

    @tool
    def calculator(expression: str) -> str:
        """Arithmetic."""
        return expression

    @tool
    def f(x: int = 0) -> int:
        """A tool named like the pythonic inputs."""
        return x

    tools = Toolset([get_weather, calculator, f])

    def content(text: str) -> object:
        return recover_tool_calls({"content": text, "tool_calls": []}, tools)

    def server(text: str) -> object:
        call = {"id": "call-0", "type": "function"}
        call["function"] = {"name": "get_weather", "arguments": text}  # type: ignore[assignment]
        return recover_tool_calls({"content": None, "tool_calls": [call]}, tools)

    return {"content": content, "server": server, "answer": parse_answer}


def _worker(connection: multiprocessing.connection.Connection) -> None:
    if hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, {min(os.sched_getaffinity(0))})
    subjects = _subjects()
    while True:
        task = connection.recv()
        if task is None:
            return
        function, text, repeats = task
        subject = subjects[function]
        subject(text[:64])  # warm imports and caches
        times: list[float] = []
        spent = 0.0
        while len(times) < repeats and (spent < _REPEAT_BUDGET_S or not times):
            start = time.perf_counter()
            subject(text)
            elapsed = time.perf_counter() - start
            times.append(elapsed * 1000)
            spent += elapsed
        connection.send(times)


class _Runner:
    """One worker process at a time; a task over the timeout kills it and starts another."""

    def __init__(self, timeout: float) -> None:
        self.timeout = timeout
        self._start()

    def _start(self) -> None:
        self.connection, child = multiprocessing.Pipe()
        self.process = multiprocessing.Process(target=_worker, args=(child,), daemon=True)
        self.process.start()

    def run(self, function: str, text: str, repeats: int) -> list[float] | None:
        self.connection.send((function, text, repeats))
        if self.connection.poll(self.timeout):
            times: list[float] = self.connection.recv()
            return times
        self.process.kill()
        self.process.join()
        self._start()
        return None

    def close(self) -> None:
        self.connection.send(None)
        self.process.join(5)


def _cell(times: list[float] | None, timeout: float) -> str:
    if times is None:
        return f"{'>' + format(timeout * 1000, '.0f'):>12}{'':>8}"
    return f"{statistics.median(times):>12.2f}{max(times):>8.2f}"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--timeout", type=float, default=10.0, help="seconds per input")
    parser.add_argument("--sizes", default=",".join(SIZES), help="comma-separated: 1K,10K,...")
    parser.add_argument("--only", default="", help="families whose name contains this")
    parser.add_argument("--check", action="store_true", help="exit 1 when a goal is missed")
    args = parser.parse_args(argv)
    sizes = {label: SIZES[label] for label in args.sizes.split(",")}
    runner = _Runner(args.timeout)
    header = f"{'input':<34}{'chars':>8}"
    for function in FUNCTIONS:
        header += f"{function + ' med':>12}{'worst':>8}"
    print(f"milliseconds, median and worst of {args.repeats} repeats; goal: {GOAL_MS}")
    print(header + "  verdict (median vs goal)")
    worst: dict[tuple[str, str], float] = {}
    missed = 0
    try:
        for family, builder in FAMILIES.items():
            if args.only not in family:
                continue
            for label, size in sizes.items():
                text = builder(size)
                line = f"{family + '/' + label:<34}{len(text):>8}"
                slow = []
                for function in FUNCTIONS:
                    times = runner.run(function, text, args.repeats)
                    line += _cell(times, args.timeout)
                    median = statistics.median(times) if times else args.timeout * 1000
                    key = (label, function)
                    worst[key] = max(worst.get(key, 0.0), median)
                    if median > GOAL_MS[label]:
                        slow.append(function)
                missed += bool(slow)
                verdict = "ok" if not slow else "SLOW: " + ", ".join(slow)
                print(f"{line}  {verdict}", flush=True)
    finally:
        runner.close()
    print()
    for label in sizes:
        cells = ", ".join(f"{f} {worst.get((label, f), 0.0):.2f}" for f in FUNCTIONS)
        print(f"worst median at {label:>4} (goal {GOAL_MS[label]:.0f} ms): {cells}")
    print(f"{missed} input(s) over the goal")
    return 1 if missed and args.check else 0


if __name__ == "__main__":
    sys.exit(main())
