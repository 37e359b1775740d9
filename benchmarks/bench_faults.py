"""Load and faults, the long version: 10,000 runs in batches of 1,000 concurrent runs.

Run from the repo root::

    python -m benchmarks.bench_faults                   # 10 batches of 1,000 (~35 s here)
    python -m benchmarks.bench_faults --batches 3       # shorter
    python -m benchmarks.bench_faults --tracemalloc     # also Python allocations (2x slower)
    python -m benchmarks.bench_faults --cap 0           # no max_concurrent_requests

The same harness as ``tests/test_load_faults.py`` (``benchmarks/load_plans.py`` and
``benchmarks/load_harness.py``): four agents sharing one ``VLLMModel`` against one
``FakeVLLMServer`` (in this process, its own thread) that injects HTTP errors, drops, malformed
bodies and calls, slow and hanging replies and tools. The agents and the model live across all
batches, as in a long-running service, so anything they keep per run shows up as growth.

After each batch it prints the outcome counts, latency p50/p99 and memory (RSS after
``gc.collect()``, live objects, and with ``--tracemalloc`` the traced bytes). At the end it
asserts that every run ended as planned and within its deadline, and that memory stayed flat:
the last batch's RSS within ``--rss-margin`` MiB of the second batch's (the first batch warms
caches, pools and the allocator's arenas), live objects within ``--object-margin`` (5 %) and,
with ``--tracemalloc``, traced memory within ``--traced-margin`` MiB instead of RSS (a leak of
1 KiB per run would add ~8 MiB over batches 3-10). Measured here: RSS creeps ~0.3 MiB per batch
(allocator arenas; traced Python memory stays at ~2 MiB between batches).
Leaks are checked at the end: no task, socket, thread or file descriptor may be left once the
agents are closed and the server stopped.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import threading
import time
import tracemalloc
from collections import Counter

from benchmarks.load_harness import (
    LoadServer,
    LoopLag,
    Outcome,
    Responder,
    check_faults_seen,
    check_outcomes,
    check_tools,
    close_agents,
    deadline_margin,
    extra_threads,
    held_sockets,
    latency_line,
    live_objects,
    make_agents,
    make_model,
    max_overshoot,
    open_fds,
    other_tasks,
    outcome_table,
    peak_rss_mib,
    rss_mib,
    run_batch,
    server_port,
    wait_for,
)
from benchmarks.load_plans import TOOL_COUNTS, make_plans


async def bench(server: LoadServer, responder: Responder, args: argparse.Namespace) -> list[str]:
    """Run the batches; returns the problems found (empty: all good)."""
    cap = args.cap or None
    agents = make_agents(make_model(server.base_url, max_concurrent_requests=cap))
    problems: list[str] = []
    all_outcomes: Counter[str] = Counter()
    known_total: Counter[str] = Counter()
    rss: list[float] = []
    traced_mib: list[float] = []
    objects: list[int] = []
    started = time.monotonic()
    for batch in range(args.batches):
        plans = make_plans(args.batch_size, start=batch * args.batch_size)
        responder.new_batch(plans)
        served_before = Counter(responder.served)
        began = time.monotonic()
        async with LoopLag() as lag:
            outcomes: list[Outcome] = await run_batch(agents, plans)
        seconds = time.monotonic() - began
        found, known = check_outcomes(outcomes, margin=deadline_margin(lag))
        problems += found
        problems += check_faults_seen(responder.served - served_before, plans)
        known_total.update(known)
        all_outcomes.update(o.kind for o in outcomes)
        summary = [
            f"batch {batch + 1:>2}: {args.batch_size} runs in {seconds:5.2f} s "
            f"({args.batch_size / seconds:.0f} runs/s); deadline overshoot "
            f"{max_overshoot(outcomes):+.2f} s at most (allowed {deadline_margin(lag):.2f} s, "
            f"worst loop lag {lag.worst * 1000:.0f} ms)",
            f"  outcomes: {outcome_table(outcomes)}",
            f"  {latency_line(outcomes)}",
        ]
        # The server keeps every request body (tests read them); a service's memory is the
        # question here, so drop them between batches, when nothing is in flight.
        server.requests.clear()
        del outcomes, plans
        objects.append(live_objects())  # runs gc.collect() first
        rss.append(rss_mib())
        traced = ""
        if args.tracemalloc:
            current, peak = tracemalloc.get_traced_memory()
            tracemalloc.reset_peak()  # the next batch's peak is its own
            traced_mib.append(current / 2**20)
            traced = f", traced {current / 2**20:.1f} MiB (batch peak {peak / 2**20:.1f})"
        summary.append(
            f"  memory: RSS {rss[-1]:.1f} MiB, peak RSS {peak_rss_mib():.1f} MiB, "
            f"{objects[-1]:,} live objects{traced}; {len(problems)} problems so far"
        )
        print("\n".join(summary), flush=True)
    total_seconds = time.monotonic() - started
    await close_agents(agents)
    port = server_port(server)
    await wait_for(lambda: not other_tasks())
    await wait_for(lambda: not held_sockets(port))
    await wait_for(lambda: server.abandoned >= responder.served["hang_reply"])
    if server.abandoned != responder.served["hang_reply"]:
        # A reply the run stopped waiting for must be closed, or vLLM would go on generating.
        problems.append(
            f"{server.abandoned} requests closed by their runs, "
            f"{responder.served['hang_reply']} outlived them"
        )
    if other_tasks():
        problems.append(f"tasks left after aclose: {other_tasks()}")
    if held_sockets(port):
        problems.append(f"sockets left after aclose: {held_sockets(port)}")
    problems += check_tools(TOOL_COUNTS)

    runs = args.batches * args.batch_size
    print(f"\n{runs} runs in {total_seconds:.1f} s; outcomes over all batches:")
    print("  " + ", ".join(f"{kind} {count}" for kind, count in all_outcomes.most_common()))
    for bug, count in known_total.items():
        print(f"  KNOWN FOXAGENT BUG hit {count} times: {bug}")
    print(f"  faults served: {dict(responder.served.most_common())}")
    print(f"  server peak in flight {server.peak_in_flight}, abandoned replies {server.abandoned}")
    if args.batches >= 3:
        growth = rss[-1] - rss[1]
        object_growth = (objects[-1] - objects[1]) / objects[1]
        print(
            f"  memory after batch 2 → last: RSS {rss[1]:.1f} → {rss[-1]:.1f} MiB "
            f"({growth:+.1f} MiB), live objects {objects[1]:,} → {objects[-1]:,} "
            f"({object_growth:+.2%})"
        )
        # tracemalloc's own tables are not traced but grow RSS, so with it the traced memory
        # is the measure, not RSS.
        if growth > args.rss_margin and not args.tracemalloc:
            problems.append(f"RSS grew {growth:.1f} MiB after batch 2 (margin {args.rss_margin})")
        if object_growth > args.object_margin:
            problems.append(f"live objects grew {object_growth:.2%} after batch 2")
        if traced_mib:
            traced_growth = traced_mib[-1] - traced_mib[1]
            print(f"  traced Python memory after batch 2 → last: {traced_growth:+.2f} MiB")
            if traced_growth > args.traced_margin:
                problems.append(f"traced memory grew {traced_growth:.2f} MiB after batch 2")
    return problems


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--batches", type=int, default=10)
    parser.add_argument("--batch-size", type=int, default=1_000)
    parser.add_argument("--cap", type=int, default=64, help="max_concurrent_requests; 0: none")
    parser.add_argument("--rss-margin", type=float, default=8.0, help="MiB")
    parser.add_argument("--object-margin", type=float, default=0.05, help="fraction")
    parser.add_argument("--tracemalloc", action="store_true")
    parser.add_argument("--traced-margin", type=float, default=1.0, help="MiB, --tracemalloc")
    args = parser.parse_args()
    if args.tracemalloc:
        tracemalloc.start()
    gc.collect()
    threads_before = set(threading.enumerate())
    fds_before = open_fds()
    responder = Responder()
    server = LoadServer(responder)
    server.start()
    try:
        problems = asyncio.run(bench(server, responder, args))
    finally:
        server.stop()
    if extra := extra_threads(threads_before):
        problems.append(f"threads left after the server stopped: {extra}")
    if new_fds := open_fds() - fds_before:
        problems.append(f"file descriptors left: {sorted(new_fds)}")
    if problems:
        print(f"\n{len(problems)} problems:")
        print("\n".join(f"  {p}" for p in problems[:50]))
        raise SystemExit(1)
    print("OK: every run ended as planned, within its deadline; memory flat; no task, socket,")
    print("thread or file descriptor left behind")


if __name__ == "__main__":
    main()
